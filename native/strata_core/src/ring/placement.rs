//! Claim's working state: primaries, replica targets and placement by min-cost flow.

use super::flow::Network;
use super::*;

/// The smallest `c` with `sum(min(size, c)) >= n_val`, as per-zone bounds: every preflist holds
/// between `min(size, c - 1)` and `min(size, c)` nodes of each zone. Needs `n_val <= sum(sizes)`.
fn zone_bounds(sizes: &[usize], n_val: usize) -> (Vec<usize>, Vec<usize>) {
    let mut c = 1;
    while sizes.iter().map(|&size| size.min(c)).sum::<usize>() < n_val {
        c += 1;
    }
    let lo = sizes.iter().map(|&size| size.min(c - 1)).collect();
    let hi = sizes.iter().map(|&size| size.min(c)).collect();
    (lo, hi)
}

/// The working state of one claim. Nodes are indexes into the members sorted by name, zones
/// indexes into the sorted zone names.
pub(super) struct Claim<'a> {
    names: Vec<&'a str>,
    zone_of: Vec<usize>,
    zone_nodes: Vec<Vec<usize>>,
    /// Per zone, the fewest and most replicas of one partition it may hold.
    lo: Vec<usize>,
    hi: Vec<usize>,
    partitions: usize,
    n_val: usize,
    /// Per partition, the previous primary if it is still a member.
    previous_primary: Vec<Option<usize>>,
    /// Per partition, the previous preflist's nodes that are still members, in order.
    previous: Vec<Vec<usize>>,
    /// Per partition, the preflist being built; element 0 is the primary.
    lists: Vec<Vec<usize>>,
    /// Per node, the replicas it should hold and the replicas it holds.
    target: Vec<usize>,
    load: Vec<usize>,
}

impl<'a> Claim<'a> {
    pub(super) fn new(
        sorted: &[&'a Member],
        config: RingConfig,
        previous: Option<&Ownership>,
    ) -> Self {
        let names: Vec<&str> = sorted.iter().map(|m| m.name.as_str()).collect();
        let zone_index: BTreeMap<&str, usize> = sorted
            .iter()
            .map(|m| m.zone.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .enumerate()
            .map(|(i, zone)| (zone, i))
            .collect();
        let zone_of: Vec<usize> = sorted.iter().map(|m| zone_index[m.zone.as_str()]).collect();
        let mut zone_nodes = vec![Vec::new(); zone_index.len()];
        for (node, &zone) in zone_of.iter().enumerate() {
            zone_nodes[zone].push(node);
        }
        let n_val = usize::from(config.n_val).min(names.len());
        let sizes: Vec<usize> = zone_nodes.iter().map(Vec::len).collect();
        let (lo, hi) = zone_bounds(&sizes, n_val);
        let partitions = usize::from(config.partitions);
        let index_of = |name: &String| names.binary_search(&name.as_str()).ok();
        let (previous_primary, previous) = match previous {
            Some(previous) => previous
                .preflists()
                .map(|list| {
                    (
                        index_of(&list[0]),
                        list.iter().filter_map(index_of).collect(),
                    )
                })
                .unzip(),
            None => (vec![None; partitions], vec![Vec::new(); partitions]),
        };
        let n = names.len();
        Claim {
            names,
            zone_of,
            zone_nodes,
            lo,
            hi,
            partitions,
            n_val,
            previous_primary,
            previous,
            lists: Vec::new(),
            target: vec![0; n],
            load: vec![0; n],
        }
    }

    fn nodes(&self) -> usize {
        self.names.len()
    }

    /// Step 1: primaries by a min-cost max-flow: `source -> partition` (1), `partition ->
    /// node` (1; cost 0 for the previous primary, `lead` for another previous replica, `copy`
    /// for any other node), `node -> sink` (`P / n` at cost 0, plus one more at a cost above
    /// any sum of moves). The cheapest flow gives every node `P / n` or one more primaries and
    /// among those the fewest primary moves, then the fewest copies. Equal choices follow the
    /// ring (partition `p` tries node `p mod n` first), which deals a fresh ring round-robin.
    pub(super) fn assign_primaries(&mut self) {
        let n = self.nodes();
        let p = self.partitions;
        let lead = p as i64 + 1; // outweighs every copy
        let copy = lead + 1;
        let extra = (p as i64 + 1) * copy; // outweighs every move
        let (source, sink) = (0, 1);
        let node_vertex = |node: usize| 2 + p + node;
        let mut network = Network::new(2 + p + n);
        let mut choices = Vec::with_capacity(p);
        for partition in 0..p {
            network.add_edge(source, 2 + partition, 1, 0);
            let row: Vec<(usize, usize)> = (0..n)
                .map(|step| (partition + step) % n)
                .map(|node| {
                    let cost = if self.previous_primary[partition] == Some(node) {
                        0
                    } else if self.previous[partition].contains(&node) {
                        lead
                    } else {
                        copy
                    };
                    let edge = network.add_edge(2 + partition, node_vertex(node), 1, cost);
                    (edge, node)
                })
                .collect();
            choices.push(row);
        }
        for node in 0..n {
            network.add_edge(node_vertex(node), sink, (p / n) as u32, 0);
            if !p.is_multiple_of(n) {
                network.add_edge(node_vertex(node), sink, 1, extra);
            }
        }
        network.min_cost_max_flow(source, sink);
        self.lists = choices
            .iter()
            .map(|row| {
                let (_, node) = row
                    .iter()
                    .find(|&&(edge, _)| network.flow(edge) > 0)
                    .expect("every partition has a primary");
                vec![*node]
            })
            .collect();
    }

    /// Step 2: water-fill the `P * n_val` replicas over the nodes, within the zone rule.
    pub(super) fn set_targets(&mut self) {
        let n = self.nodes();
        let p = self.partitions;
        let mut previous_load = vec![0usize; n];
        for &node in self.previous.iter().flatten() {
            previous_load[node] += 1;
        }
        let mut rank = vec![0usize; n];
        let mut by_load: Vec<usize> = (0..n).collect();
        by_load.sort_by_key(|&node| (Reverse(previous_load[node]), node));
        for (position, &node) in by_load.iter().enumerate() {
            rank[node] = position;
        }

        let mut target = vec![0usize; n];
        for list in &self.lists {
            target[list[0]] += 1;
        }
        let mut zone_total: Vec<usize> = self
            .zone_nodes
            .iter()
            .map(|nodes| nodes.iter().map(|&node| target[node]).sum())
            .collect();
        let lowest = |target: &[usize], candidates: &mut dyn Iterator<Item = usize>| {
            candidates
                .filter(|&node| target[node] < p)
                .min_by_key(|&node| (target[node], rank[node]))
        };
        // Zones the rule makes hold many replicas (a one-node zone in every preflist).
        for (zone, nodes) in self.zone_nodes.iter().enumerate() {
            while zone_total[zone] < p * self.lo[zone] {
                let node = lowest(&target, &mut nodes.iter().copied())
                    .expect("a zone has at least lo nodes");
                target[node] += 1;
                zone_total[zone] += 1;
            }
        }
        let mut left = p * self.n_val - target.iter().sum::<usize>();
        while left > 0 {
            let open = |node: &usize| {
                let zone = self.zone_of[*node];
                zone_total[zone] < p * self.hi[zone]
            };
            let node = lowest(&target, &mut (0..n).filter(open))
                .expect("zone caps leave room for n_val replicas");
            target[node] += 1;
            zone_total[self.zone_of[node]] += 1;
            left -= 1;
        }
        self.target = target;
    }

    /// Whether `node` may join `list` (whose per-zone counts are `counts`) without breaking
    /// the zone rule now or leaving too few slots to meet it.
    fn fits(&self, list: &[usize], counts: &[usize], node: usize) -> bool {
        let zone = self.zone_of[node];
        if list.contains(&node) || counts[zone] >= self.hi[zone] {
            return false;
        }
        let missing: usize = self
            .lo
            .iter()
            .zip(counts)
            .map(|(&lo, &c)| lo.saturating_sub(c))
            .sum();
        let missing_after = missing - usize::from(counts[zone] < self.lo[zone]);
        missing_after < self.n_val - list.len()
    }

    fn zone_counts(&self, list: &[usize]) -> Vec<usize> {
        let mut counts = vec![0; self.zone_nodes.len()];
        for &node in list {
            counts[self.zone_of[node]] += 1;
        }
        counts
    }

    /// Step 3: every partition's secondaries by a min-cost max-flow, then [`Claim::mend`] for
    /// any partition the flow could not complete. The network:
    ///
    /// - `source -> partition`: `n_val - 1`, the secondaries;
    /// - `partition -> (partition, zone)`: the zone's bounds minus the primary, up to the lower
    ///   bound at cost 0 and above it at `floor_cost`;
    /// - `(partition, zone) -> node`: 1, cost 0 if the node held the partition before, else 1;
    /// - `node -> sink`: up to one below its target at cost 0, then one unit per level for the
    ///   target and one above, each at `level_cost * level`.
    ///
    /// The costs are lexicographic: `floor_cost` outweighs all level costs, which outweigh all
    /// moves (path costs stay far inside `i64` for any cluster claim can handle in reasonable
    /// time). So the cheapest flow meets the zone floors, then balances (levels are convex:
    /// the flow never loads a node two above another it could have used), then copies the
    /// fewest replicas; which tied nodes take the target's extra replicas is decided by moves.
    /// Equal choices follow the ring after the primary, the order the edges are tried.
    pub(super) fn place_replicas(&mut self) {
        let n = self.nodes();
        let p = self.partitions;
        let zones = self.zone_nodes.len();
        let (source, sink) = (0, 1);
        let partition_vertex = |partition: usize| 2 + partition;
        let zone_vertex = |partition: usize, zone: usize| 2 + p + partition * zones + zone;
        let node_vertex = |node: usize| 2 + p + p * zones + node;
        let level_cost = (p * self.n_val) as i64 + 1;
        let floor_cost = 2 * level_cost * (p as i64 + 2) * n as i64 + 1;

        let mut network = Network::new(2 + p + p * zones + n);
        let mut primaries = vec![0usize; n];
        let mut choices = Vec::with_capacity(p);
        for partition in 0..p {
            let primary = self.lists[partition][0];
            primaries[primary] += 1;
            let from = partition_vertex(partition);
            network.add_edge(source, from, (self.n_val - 1) as u32, 0);
            let ring: Vec<usize> = (1..n).map(|step| (primary + step) % n).collect();
            let mut zone_order: Vec<usize> = Vec::with_capacity(zones);
            for &node in &ring {
                if !zone_order.contains(&self.zone_of[node]) {
                    zone_order.push(self.zone_of[node]);
                }
            }
            let mut edges = Vec::new();
            for zone in zone_order {
                let here = usize::from(self.zone_of[primary] == zone);
                let upper = self.hi[zone] - here;
                let lower = self.lo[zone].saturating_sub(here).min(upper);
                let vertex = zone_vertex(partition, zone);
                if lower > 0 {
                    network.add_edge(from, vertex, lower as u32, 0);
                }
                if upper > lower {
                    network.add_edge(from, vertex, (upper - lower) as u32, floor_cost);
                }
                if upper == 0 {
                    continue;
                }
                for &node in ring.iter().filter(|&&node| self.zone_of[node] == zone) {
                    let moved = !self.previous[partition].contains(&node);
                    let edge = network.add_edge(vertex, node_vertex(node), 1, i64::from(moved));
                    edges.push((edge, node));
                }
            }
            choices.push(edges);
        }
        for (node, (&target, &primaries)) in self.target.iter().zip(&primaries).enumerate() {
            let vertex = node_vertex(node);
            let free = target.saturating_sub(1).saturating_sub(primaries);
            if free > 0 {
                network.add_edge(vertex, sink, free as u32, 0);
            }
            for level in (primaries + free + 1)..=(target + 1).min(p) {
                network.add_edge(vertex, sink, 1, level_cost * level as i64);
            }
        }
        network.min_cost_max_flow(source, sink);

        for (partition, edges) in choices.into_iter().enumerate() {
            let chosen: Vec<usize> = edges
                .into_iter()
                .filter(|&(edge, _)| network.flow(edge) > 0)
                .map(|(_, node)| node)
                .collect();
            // Previous replicas keep their order; new ones follow in ring order.
            let list = &mut self.lists[partition];
            list.extend(
                self.previous[partition]
                    .iter()
                    .filter(|node| chosen.contains(node)),
            );
            let new: Vec<usize> = chosen
                .into_iter()
                .filter(|node| !list.contains(node))
                .collect();
            list.extend(new);
        }
        for list in &self.lists {
            for &node in list {
                self.load[node] += 1;
            }
        }
        for partition in 0..p {
            self.mend(partition);
        }
    }

    /// Makes a preflist obey the zone rule and have `n_val` nodes, whatever the flow left:
    /// keep what fits, fill from the nodes furthest below target. A no-op on a valid list.
    fn mend(&mut self, partition: usize) {
        let n = self.nodes();
        let old = std::mem::take(&mut self.lists[partition]);
        let mut list = vec![old[0]];
        for &node in &old[1..] {
            if self.fits(&list, &self.zone_counts(&list), node) {
                list.push(node);
            } else {
                self.load[node] -= 1;
            }
        }
        let primary = list[0];
        while list.len() < self.n_val {
            let counts = self.zone_counts(&list);
            let deficit = |node: usize| self.target[node] as i64 - self.load[node] as i64;
            let node = (0..n)
                .filter(|&node| self.fits(&list, &counts, node))
                .max_by_key(|&node| (deficit(node), Reverse((node + n - primary) % n)))
                .expect("the zone bounds leave a node for every slot");
            list.push(node);
            self.load[node] += 1;
        }
        self.lists[partition] = list;
    }

    pub(super) fn into_ownership(self) -> Ownership {
        let names = self.names;
        Ownership {
            partitions: self.partitions as u16,
            n_val: self.n_val,
            nodes: names.iter().map(|name| name.to_string()).collect(),
            preflists: self
                .lists
                .iter()
                .flatten()
                .map(|&node| names[node].to_string())
                .collect(),
        }
    }
}
