//! The consistent-hash ring: which partition a key lives in, and which nodes hold each
//! partition. Pure and deterministic, so every node that computes the ring from the same
//! inputs gets the same answer; it depends on nothing but `std`.
//!
//! # Keys to partitions
//!
//! A key's partition is `partition_of(hash64(bytes), partitions)`, where `bytes` is the
//! keycodec encoding of the key, or of its hash tag (DESIGN section 5). Both functions are
//! part of the on-disk format: changing either would move every stored key. [`hash64`]
//! documents the exact algorithm and its constants, and the tests pin it with fixed vectors.
//! The partition count is `2^k` with `1 <= k <= 12`, fixed when the cluster is created.
//!
//! # Claim
//!
//! [`claim`] computes an [`Ownership`]: for each partition a preference list ("preflist") of
//! `n_val` distinct nodes, primary first. It is a pure function of the members (node name and
//! zone), the [`RingConfig`] and optionally the previous ownership. Members are sorted by name
//! and every tie is broken by that order, so input order never matters. With `P` partitions,
//! `n` members and `n_val` capped at `n`:
//!
//! 1. **Primaries**, by a min-cost flow. Every node gets `P / n` primaries or one more (a hard
//!    constraint); within that the flow keeps the most previous primaries, then hands a
//!    partition to a node that already replicates it (a change of leader, no copy) where it
//!    can, then to any node. Without a previous ring it deals the partitions round-robin in
//!    name order.
//! 2. **Replica targets.** The `P * n_val` replicas are water-filled: starting from its
//!    primaries, the least loaded node gets the next replica, skipping zones that hold all the
//!    zone rule (below) lets them; a zone the rule forces to hold many replicas is first filled
//!    to that floor.
//! 3. **Secondaries**, by a second min-cost flow through `partition -> (partition, zone) ->
//!    node`, whose costs are ordered lexicographically: meet the zone rule's floors, then keep
//!    every node within one of its target (convex per-replica costs, so no node ends two above
//!    one that could have taken the replica; which tied nodes get the extra is left to the
//!    next criterion), then copy the fewest replicas the node did not hold before. Equal
//!    choices follow the ring: the nodes after the primary in name order.
//! 4. **Mend.** A preflist the flow left short or below a zone floor (only possible if the
//!    targets cannot be met; never seen in the tests) is completed greedily, so the zone rule
//!    holds whatever happens.
//!
//! Both flows are solved exactly (primal-dual: Dijkstra with potentials, then blocking flows
//! over the zero reduced-cost edges), so balance and minimal movement hold by construction
//! rather than by heuristics. The cost grows with `P * n`: 4096 partitions on 100 nodes took
//! 0.25-0.6 s on this busy 2-core machine (64 partitions take well under a millisecond), so
//! callers run claim off the normal schedulers (a DirtyCpu NIF).
//!
//! # Zone rule
//!
//! Let `c` be the smallest count with `sum over zones of min(size, c) >= n_val`. Every preflist
//! holds at most `min(size, c)` and at least `min(size, c - 1)` nodes of each zone. With at
//! least `n_val` zones, `c = 1`: the replicas lie on `n_val` distinct zones. With fewer zones,
//! every zone holds a replica and the replicas are spread as evenly as the zone sizes allow
//! (two zones and `n_val = 3`: two in one zone, one in the other). Members without zones
//! should all use the same zone (for example `""`); then the rule allows anything.
//!
//! # Guarantees (property-tested below)
//!
//! - Every preflist holds `min(n_val, n)` distinct members and obeys the zone rule.
//! - Primary counts per node differ by at most one.
//! - Replica counts (primaries included) of nodes in the same zone differ by at most one; so
//!   with a single zone, or one node per zone, all counts differ by at most one. A node holds
//!   two or more replicas more than another only when the zone rule forces it: the smaller
//!   node's zone is at its cap (`P * min(size, c)` replicas), or the larger node's zone is at
//!   its floor (`P * min(size, c - 1)`), as when a one-node zone must be in every preflist.
//! - Movement relative to a balanced previous ring: the same members give the same ring; a
//!   join moves exactly the new node's primaries, at most `ceil(P / (n + 1))`; a leave moves
//!   exactly the partitions the departed node was primary for.
//! - Replica copies are the fewest possible for the chosen primaries and balanced loads. With a
//!   single zone a join copies exactly the new node's replicas, and a leave at most the
//!   departed node's replicas plus its primaries (a departed primary whose replicas are all at
//!   their primary quota goes to a node that must copy it, and that node sheds a replica
//!   elsewhere). A change of zone structure (a zone appearing or emptying) can force more.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// The smallest partition count a ring may have (`2^1`).
pub const MIN_PARTITIONS: u16 = 2;
/// The largest partition count a ring may have (`2^12`).
pub const MAX_PARTITIONS: u16 = 4096;
/// The partition count of a new cluster unless configured otherwise.
pub const DEFAULT_PARTITIONS: u16 = 64;
/// The number of replicas of each partition unless configured otherwise.
pub const DEFAULT_N_VAL: u8 = 3;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const FMIX_C1: u64 = 0xff51_afd7_ed55_8ccd;
const FMIX_C2: u64 = 0xc4ce_b9fe_1a85_ec53;

/// The ring's 64-bit hash: FNV-1a 64 of `bytes`, then the murmur3 `fmix64` finalizer.
///
/// Exactly, with all arithmetic wrapping modulo 2^64:
///
/// ```text
/// h = 0xcbf29ce484222325                  FNV-1a 64 offset basis
/// for each byte b: h = (h XOR b) * 0x100000001b3      FNV 64 prime
/// h ^= h >> 33;  h *= 0xff51afd7ed558ccd
/// h ^= h >> 33;  h *= 0xc4ceb9fe1a85ec53
/// h ^= h >> 33
/// ```
///
/// FNV-1a alone mixes poorly into its high bits, which [`partition_of`] uses; the finalizer
/// spreads every input bit over the whole word. For example `hash64(b"")` is
/// `0xefd01f60ba992926` and `hash64(b"strata")` is `0x5a4f965e8a9b0ac3`. This function is
/// part of the storage format and must never change.
pub fn hash64(bytes: &[u8]) -> u64 {
    fmix64(fnv1a64(bytes))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(FMIX_C1);
    k ^= k >> 33;
    k = k.wrapping_mul(FMIX_C2);
    k ^ (k >> 33)
}

/// The partition of a hash: for `partitions = 2^k` it is the top `k` bits of `hash`, that is
/// `hash >> (64 - k)`.
///
/// It is computed as `floor(hash * partitions / 2^64)`, which is the same for powers of two and
/// stays in range for any count, so it cannot misbehave on a value that [`RingConfig`] would
/// reject. `partitions` must be at least 1.
pub fn partition_of(hash: u64, partitions: u16) -> u16 {
    debug_assert!(partitions > 0, "a ring has at least one partition");
    ((u128::from(hash) * u128::from(partitions)) >> 64) as u16
}

/// Why a ring could not be configured or claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingError {
    /// The partition count is not a power of two between [`MIN_PARTITIONS`] and
    /// [`MAX_PARTITIONS`].
    BadPartitions(u16),
    /// `n_val` is zero.
    BadNVal,
    /// Claim was asked to place partitions on no members.
    NoMembers,
    /// Two members have this name.
    DuplicateMember(String),
    /// The previous ownership has another partition count (the count never changes).
    PartitionsMismatch {
        /// The partition count of the previous ownership.
        previous: u16,
        /// The partition count asked for.
        requested: u16,
    },
    /// Preference lists that do not describe a ring.
    BadPreflists(&'static str),
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::BadPartitions(p) => write!(
                f,
                "partition count {p} is not a power of two in {MIN_PARTITIONS}..={MAX_PARTITIONS}"
            ),
            RingError::BadNVal => write!(f, "n_val must be at least 1"),
            RingError::NoMembers => write!(f, "a ring needs at least one member"),
            RingError::DuplicateMember(name) => write!(f, "member {name} is listed twice"),
            RingError::PartitionsMismatch {
                previous,
                requested,
            } => write!(
                f,
                "previous ring has {previous} partitions, configuration asks for {requested}"
            ),
            RingError::BadPreflists(why) => write!(f, "bad preference lists: {why}"),
        }
    }
}

impl std::error::Error for RingError {}

/// A validated ring configuration: the partition count (`2^k`, `1 <= k <= 12`) and the number
/// of replicas per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RingConfig {
    partitions: u16,
    n_val: u8,
}

impl RingConfig {
    /// Checks that `partitions` is a power of two in [`MIN_PARTITIONS`]`..=`[`MAX_PARTITIONS`]
    /// and that `n_val` is at least 1. An `n_val` above the member count is allowed; claim
    /// caps it.
    pub fn new(partitions: u16, n_val: u8) -> Result<Self, RingError> {
        if !partitions.is_power_of_two() || !(MIN_PARTITIONS..=MAX_PARTITIONS).contains(&partitions)
        {
            return Err(RingError::BadPartitions(partitions));
        }
        if n_val == 0 {
            return Err(RingError::BadNVal);
        }
        Ok(RingConfig { partitions, n_val })
    }

    /// The number of partitions.
    pub fn partitions(self) -> u16 {
        self.partitions
    }

    /// The number of replicas asked for per partition (before capping at the member count).
    pub fn n_val(self) -> u8 {
        self.n_val
    }

    /// The partition of an encoded key (or hash tag): `partition_of(hash64(key), partitions)`.
    pub fn partition_of_key(self, key: &[u8]) -> u16 {
        partition_of(hash64(key), self.partitions)
    }
}

impl Default for RingConfig {
    /// [`DEFAULT_PARTITIONS`] partitions, [`DEFAULT_N_VAL`] replicas.
    fn default() -> Self {
        RingConfig {
            partitions: DEFAULT_PARTITIONS,
            n_val: DEFAULT_N_VAL,
        }
    }
}

/// A cluster member as claim sees it: its node name and its zone (data centre, rack).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    /// The Erlang node name, unique in the cluster.
    pub name: String,
    /// The failure zone; members without zones should share one (for example `""`).
    pub zone: String,
}

impl Member {
    /// A member called `name` in `zone`.
    pub fn new(name: impl Into<String>, zone: impl Into<String>) -> Self {
        Member {
            name: name.into(),
            zone: zone.into(),
        }
    }
}

/// Who holds each partition: a preference list of distinct nodes per partition, primary
/// first. Built by [`claim`], or from stored lists by [`Ownership::from_preflists`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    partitions: u16,
    n_val: usize,
    /// The members it was claimed for, sorted (some may hold nothing when `n > P`).
    nodes: Vec<String>,
    /// `partitions * n_val` names: the preflist of partition `p` is the `p`-th chunk.
    preflists: Vec<String>,
}

impl Ownership {
    /// Rebuilds an ownership from its preference lists (for example as stored by the cluster
    /// layer), to pass as `previous` to [`claim`]. Every list must be non-empty, all of the
    /// same length, without repeated nodes, and there must be one per partition.
    pub fn from_preflists(partitions: u16, preflists: Vec<Vec<String>>) -> Result<Self, RingError> {
        RingConfig::new(partitions, 1)?;
        if preflists.len() != usize::from(partitions) {
            return Err(RingError::BadPreflists("not one list per partition"));
        }
        let n_val = preflists[0].len();
        if n_val == 0 {
            return Err(RingError::BadPreflists("empty list"));
        }
        let mut nodes = BTreeSet::new();
        for list in &preflists {
            if list.len() != n_val {
                return Err(RingError::BadPreflists("lists of different lengths"));
            }
            for (i, name) in list.iter().enumerate() {
                if list[..i].contains(name) {
                    return Err(RingError::BadPreflists("a node twice in one list"));
                }
                nodes.insert(name.clone());
            }
        }
        Ok(Ownership {
            partitions,
            n_val,
            nodes: nodes.into_iter().collect(),
            preflists: preflists.into_iter().flatten().collect(),
        })
    }

    /// The number of partitions.
    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    /// The length of every preflist: the configured `n_val`, capped at the member count.
    pub fn n_val(&self) -> usize {
        self.n_val
    }

    /// The nodes of the ring in name order: the members for a claimed ring, the nodes named
    /// in the lists for one built by [`Ownership::from_preflists`].
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The preference list of `partition`: `n_val` distinct nodes, primary first.
    ///
    /// # Panics
    ///
    /// If `partition >= self.partitions()`.
    pub fn preflist(&self, partition: u16) -> &[String] {
        assert!(
            partition < self.partitions,
            "partition {partition} out of range"
        );
        let start = usize::from(partition) * self.n_val;
        &self.preflists[start..start + self.n_val]
    }

    /// The primary of `partition`.
    ///
    /// # Panics
    ///
    /// If `partition >= self.partitions()`.
    pub fn primary(&self, partition: u16) -> &str {
        &self.preflist(partition)[0]
    }

    /// All preference lists, in partition order.
    pub fn preflists(&self) -> impl ExactSizeIterator<Item = &[String]> + '_ {
        self.preflists.chunks(self.n_val)
    }

    /// For every node of the ring, the number of partitions it is primary for.
    pub fn owner_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = self.zero_counts();
        for list in self.preflists() {
            *counts.entry(list[0].as_str()).or_default() += 1;
        }
        counts
    }

    /// For every node of the ring, the number of partitions it holds a replica of (primaries
    /// included).
    pub fn replica_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = self.zero_counts();
        for name in &self.preflists {
            *counts.entry(name.as_str()).or_default() += 1;
        }
        counts
    }

    /// The number of partitions whose primary differs from `previous`.
    pub fn primary_moves(&self, previous: &Ownership) -> usize {
        self.preflists()
            .zip(previous.preflists())
            .filter(|(new, old)| new[0] != old[0])
            .count()
    }

    /// The number of replicas that are not in `previous`: the partition copies a move from
    /// `previous` to this ring has to make.
    pub fn replica_moves(&self, previous: &Ownership) -> usize {
        self.preflists()
            .zip(previous.preflists())
            .map(|(new, old)| new.iter().filter(|name| !old.contains(name)).count())
            .sum()
    }

    fn zero_counts(&self) -> BTreeMap<&str, usize> {
        self.nodes.iter().map(|name| (name.as_str(), 0)).collect()
    }
}

/// Places every partition's `n_val` replicas on `members` (algorithm and guarantees in the
/// module documentation). `previous` is the ring being replaced, if any; claim keeps as much
/// of it in place as balance and the zone rule allow. The result depends on the members as a
/// set, not on their order.
pub fn claim(
    members: &[Member],
    config: RingConfig,
    previous: Option<&Ownership>,
) -> Result<Ownership, RingError> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort();
    if sorted.is_empty() {
        return Err(RingError::NoMembers);
    }
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].name == pair[1].name) {
        return Err(RingError::DuplicateMember(pair[0].name.clone()));
    }
    if let Some(previous) = previous {
        if previous.partitions != config.partitions {
            return Err(RingError::PartitionsMismatch {
                previous: previous.partitions,
                requested: config.partitions,
            });
        }
    }
    let mut claim = Claim::new(&sorted, config, previous);
    claim.assign_primaries();
    claim.set_targets();
    claim.place_replicas();
    Ok(claim.into_ownership())
}

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
struct Claim<'a> {
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
    fn new(sorted: &[&'a Member], config: RingConfig, previous: Option<&Ownership>) -> Self {
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
    fn assign_primaries(&mut self) {
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
    fn set_targets(&mut self) {
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
    fn place_replicas(&mut self) {
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

    fn into_ownership(self) -> Ownership {
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

/// A min-cost max-flow network solved by the primal-dual method: Dijkstra with potentials
/// finds the cheapest augmenting cost, then Dinic-style blocking flows saturate every path of
/// that cost. Costs are non-negative, so zero potentials start it. Iterative throughout, so
/// it runs on small (NIF) thread stacks.
struct Network {
    adjacency: Vec<Vec<usize>>,
    /// Edge `e` and its residual twin `e ^ 1`.
    head: Vec<usize>,
    capacity: Vec<u32>,
    cost: Vec<i64>,
}

impl Network {
    fn new(vertices: usize) -> Self {
        Network {
            adjacency: vec![Vec::new(); vertices],
            head: Vec::new(),
            capacity: Vec::new(),
            cost: Vec::new(),
        }
    }

    fn add_edge(&mut self, from: usize, to: usize, capacity: u32, cost: i64) -> usize {
        let edge = self.head.len();
        for (tail, head, capacity, cost) in [(from, to, capacity, cost), (to, from, 0, -cost)] {
            self.adjacency[tail].push(self.head.len());
            self.head.push(head);
            self.capacity.push(capacity);
            self.cost.push(cost);
        }
        edge
    }

    /// The flow on a forward edge.
    fn flow(&self, edge: usize) -> u32 {
        self.capacity[edge ^ 1]
    }

    fn min_cost_max_flow(&mut self, source: usize, sink: usize) {
        let vertices = self.adjacency.len();
        let mut potential = vec![0i64; vertices];
        loop {
            let distance = self.distances(source, &potential);
            let to_sink = distance[sink];
            if to_sink == i64::MAX {
                return;
            }
            for (potential, &distance) in potential.iter_mut().zip(&distance) {
                *potential += distance.min(to_sink);
            }
            while let Some(level) = self.levels(source, sink, &potential) {
                let mut next_edge = vec![0; vertices];
                while self.augment(source, sink, &level, &potential, &mut next_edge) {}
            }
        }
    }

    fn reduced_cost(&self, tail: usize, edge: usize, potential: &[i64]) -> i64 {
        self.cost[edge] + potential[tail] - potential[self.head[edge]]
    }

    /// Dijkstra over residual edges by reduced cost.
    fn distances(&self, source: usize, potential: &[i64]) -> Vec<i64> {
        let mut distance = vec![i64::MAX; self.adjacency.len()];
        let mut heap = std::collections::BinaryHeap::new();
        distance[source] = 0;
        heap.push(Reverse((0, source)));
        while let Some(Reverse((d, tail))) = heap.pop() {
            if d > distance[tail] {
                continue;
            }
            for &edge in &self.adjacency[tail] {
                if self.capacity[edge] == 0 {
                    continue;
                }
                let reduced = self.reduced_cost(tail, edge, potential);
                debug_assert!(reduced >= 0, "potentials keep reduced costs non-negative");
                let head = self.head[edge];
                let through = d.saturating_add(reduced);
                if through < distance[head] {
                    distance[head] = through;
                    heap.push(Reverse((through, head)));
                }
            }
        }
        distance
    }

    /// BFS levels over the admissible edges (residual, zero reduced cost), or `None` when the
    /// sink is out of reach.
    fn levels(&self, source: usize, sink: usize, potential: &[i64]) -> Option<Vec<usize>> {
        let mut level = vec![usize::MAX; self.adjacency.len()];
        let mut queue = VecDeque::from([source]);
        level[source] = 0;
        while let Some(tail) = queue.pop_front() {
            for &edge in &self.adjacency[tail] {
                let head = self.head[edge];
                if self.capacity[edge] > 0
                    && level[head] == usize::MAX
                    && self.reduced_cost(tail, edge, potential) == 0
                {
                    level[head] = level[tail] + 1;
                    queue.push_back(head);
                }
            }
        }
        (level[sink] != usize::MAX).then_some(level)
    }

    /// Pushes flow along one admissible source-to-sink path that climbs the levels; false
    /// when none is left. `next_edge` is Dinic's current-arc pointer per vertex.
    fn augment(
        &mut self,
        source: usize,
        sink: usize,
        level: &[usize],
        potential: &[i64],
        next_edge: &mut [usize],
    ) -> bool {
        let mut path: Vec<usize> = Vec::new();
        let mut tail = source;
        loop {
            if tail == sink {
                let amount = path.iter().map(|&e| self.capacity[e]).min().unwrap_or(0);
                for &edge in &path {
                    self.capacity[edge] -= amount;
                    self.capacity[edge ^ 1] += amount;
                }
                return true;
            }
            let step = self.adjacency[tail][next_edge[tail]..]
                .iter()
                .position(|&edge| {
                    let head = self.head[edge];
                    self.capacity[edge] > 0
                        && level[head] == level[tail] + 1
                        && self.reduced_cost(tail, edge, potential) == 0
                });
            match step {
                Some(skip) => {
                    next_edge[tail] += skip;
                    let edge = self.adjacency[tail][next_edge[tail]];
                    path.push(edge);
                    tail = self.head[edge];
                }
                None => {
                    next_edge[tail] = self.adjacency[tail].len();
                    let Some(edge) = path.pop() else {
                        return false;
                    };
                    tail = self.head[edge ^ 1];
                    next_edge[tail] += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn member(name: &str, zone: &str) -> Member {
        Member::new(name, zone)
    }

    /// `count` members named `n00@host`.. in one zone.
    fn flat(count: usize) -> Vec<Member> {
        (0..count)
            .map(|i| member(&format!("n{i:02}@host"), ""))
            .collect()
    }

    fn config(partitions: u16, n_val: u8) -> RingConfig {
        RingConfig::new(partitions, n_val).unwrap()
    }

    fn spread(counts: impl IntoIterator<Item = usize>) -> usize {
        let counts: Vec<usize> = counts.into_iter().collect();
        counts.iter().max().unwrap() - counts.iter().min().unwrap()
    }

    /// The zone rule's `c`, computed from its definition.
    fn zone_cap(members: &[Member], n_val: usize) -> usize {
        let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in members {
            *sizes.entry(&m.zone).or_default() += 1;
        }
        (1..)
            .find(|&c| sizes.values().map(|&s| s.min(c)).sum::<usize>() >= n_val)
            .unwrap()
    }

    /// Everything a claimed ring must satisfy, checked from the public view only.
    fn check(
        members: &[Member],
        config: RingConfig,
        ring: &Ownership,
    ) -> Result<(), TestCaseError> {
        let p = usize::from(config.partitions());
        let n = members.len();
        let n_val = usize::from(config.n_val()).min(n);
        let zone: BTreeMap<&str, &str> = members
            .iter()
            .map(|m| (m.name.as_str(), m.zone.as_str()))
            .collect();
        let mut zone_size: BTreeMap<&str, usize> = BTreeMap::new();
        for m in members {
            *zone_size.entry(&m.zone).or_default() += 1;
        }
        let zones = zone_size.len();
        let c = zone_cap(members, n_val);

        prop_assert_eq!(ring.partitions(), config.partitions());
        prop_assert_eq!(ring.n_val(), n_val);
        prop_assert_eq!(ring.preflists().len(), p);
        let names: Vec<&str> = ring.nodes().iter().map(String::as_str).collect();
        prop_assert_eq!(names, zone.keys().copied().collect::<Vec<_>>());
        for (partition, list) in ring.preflists().enumerate() {
            prop_assert_eq!(list, ring.preflist(partition as u16));
            prop_assert_eq!(list.len(), n_val);
            prop_assert_eq!(
                list.iter().collect::<BTreeSet<_>>().len(),
                n_val,
                "{:?}",
                list
            );
            let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
            for name in list {
                prop_assert!(zone.contains_key(name.as_str()), "{} is no member", name);
                *per_zone.entry(zone[name.as_str()]).or_default() += 1;
            }
            prop_assert_eq!(per_zone.len(), zones.min(n_val), "zones of {:?}", list);
            for (z, &size) in &zone_size {
                let held = per_zone.get(z).copied().unwrap_or(0);
                prop_assert!(held <= size.min(c) && held >= size.min(c - 1), "{:?}", list);
            }
        }

        let owners = ring.owner_counts();
        prop_assert_eq!(owners.values().sum::<usize>(), p);
        prop_assert!(
            spread(owners.values().copied()) <= 1,
            "primaries {:?}",
            owners
        );

        let replicas = ring.replica_counts();
        prop_assert_eq!(replicas.values().sum::<usize>(), p * n_val);
        let mut zone_total: BTreeMap<&str, usize> = BTreeMap::new();
        for (name, &count) in &replicas {
            *zone_total.entry(zone[name]).or_default() += count;
        }
        for (a, &more) in &replicas {
            for (b, &fewer) in &replicas {
                if zone[a] == zone[b] {
                    prop_assert!(more <= fewer + 1, "same zone {:?}", replicas);
                } else if more >= fewer + 2 {
                    let at_cap = zone_total[zone[b]] == p * zone_size[zone[b]].min(c);
                    let at_floor = zone_total[zone[a]] == p * zone_size[zone[a]].min(c - 1);
                    prop_assert!(
                        at_cap || at_floor,
                        "{} holds {} and {} holds {}: {:?} zones {:?}",
                        a,
                        more,
                        b,
                        fewer,
                        replicas,
                        zone_total
                    );
                }
            }
        }
        Ok(())
    }

    // ---- hash and partitions ----

    #[test]
    fn fnv1a64_matches_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fmix64_matches_murmur3() {
        assert_eq!(fmix64(0), 0);
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
    }

    #[test]
    fn hash64_is_pinned() {
        // Computed by an independent implementation; these must never change.
        let all_bytes: Vec<u8> = (0..=255).collect();
        let vectors: [(&[u8], u64); 6] = [
            (b"", 0xefd0_1f60_ba99_2926),
            (b"a", 0x82a2_a958_a9be_ce5b),
            (b"foobar", 0x2c22_1949_22d1_672b),
            (b"strata", 0x5a4f_965e_8a9b_0ac3),
            (&[0], 0xb903_4ad3_7056_f5fb),
            (&all_bytes, 0x2067_db6d_bd4e_fa06),
        ];
        for (bytes, hash) in vectors {
            assert_eq!(hash64(bytes), hash, "hash64({bytes:?})");
        }
    }

    #[test]
    fn partition_is_the_top_bits() {
        for k in 1..=12u32 {
            let partitions = 1u16 << k;
            assert_eq!(partition_of(0, partitions), 0);
            assert_eq!(partition_of(u64::MAX, partitions), partitions - 1);
            assert_eq!(partition_of(1 << 63, partitions), partitions / 2);
            assert_eq!(partition_of((1 << (64 - k)) - 1, partitions), 0);
            assert_eq!(partition_of(1 << (64 - k), partitions), 1);
        }
        assert_eq!(partition_of(0xabcd_0000_0000_0000, 4096), 0xabc);
        assert_eq!(partition_of(0xabcd_0000_0000_0000, 2), 1);
    }

    #[test]
    fn keys_spread_evenly() {
        let config = RingConfig::default();
        let mut counts = vec![0usize; usize::from(config.partitions())];
        let keys = 64_000;
        for i in 0..keys {
            counts[usize::from(config.partition_of_key(format!("key{i}").as_bytes()))] += 1;
        }
        let mean = keys / counts.len();
        for (partition, &count) in counts.iter().enumerate() {
            assert!(
                count.abs_diff(mean) < mean / 10,
                "partition {partition}: {count}"
            );
        }
    }

    #[test]
    fn config_is_validated() {
        for bad in [0, 1, 3, 6, 100, 8192, 65535] {
            assert_eq!(RingConfig::new(bad, 3), Err(RingError::BadPartitions(bad)));
        }
        assert_eq!(RingConfig::new(64, 0), Err(RingError::BadNVal));
        for good in [2, 4, 64, 1024, 4096] {
            assert_eq!(RingConfig::new(good, 1).unwrap().partitions(), good);
        }
        let default = RingConfig::default();
        assert_eq!((default.partitions(), default.n_val()), (64, 3));
        assert_eq!(
            RingError::BadPartitions(3).to_string(),
            "partition count 3 is not a power of two in 2..=4096"
        );
    }

    // ---- claim examples ----

    #[test]
    fn claim_rejects_bad_members() {
        assert_eq!(claim(&[], config(64, 3), None), Err(RingError::NoMembers));
        let twice = [member("a@h", "z1"), member("b@h", ""), member("a@h", "z2")];
        assert_eq!(
            claim(&twice, config(64, 3), None),
            Err(RingError::DuplicateMember("a@h".into()))
        );
        let previous = claim(&flat(3), config(32, 3), None).unwrap();
        assert_eq!(
            claim(&flat(3), config(64, 3), Some(&previous)),
            Err(RingError::PartitionsMismatch {
                previous: 32,
                requested: 64
            })
        );
    }

    #[test]
    fn fresh_ring_is_balanced() {
        let members = flat(4);
        let ring = claim(&members, config(64, 3), None).unwrap();
        check(&members, config(64, 3), &ring).unwrap();
        assert!(ring.owner_counts().values().all(|&c| c == 16));
        assert!(ring.replica_counts().values().all(|&c| c == 48));
        // Round-robin primaries in name order.
        assert_eq!(ring.primary(0), "n00@host");
        assert_eq!(ring.primary(1), "n01@host");
        assert_eq!(ring.primary(5), "n01@host");
    }

    #[test]
    fn one_node_holds_everything() {
        let members = flat(1);
        let ring = claim(&members, config(64, 3), None).unwrap();
        assert_eq!(ring.n_val(), 1);
        assert!(ring.preflists().all(|list| list == ["n00@host"]));
        assert_eq!(ring.owner_counts()["n00@host"], 64);
    }

    #[test]
    fn n_val_is_capped_at_the_member_count() {
        let members = flat(2);
        let ring = claim(&members, config(8, 5), None).unwrap();
        assert_eq!(ring.n_val(), 2);
        check(&members, config(8, 5), &ring).unwrap();
    }

    #[test]
    fn more_nodes_than_partitions() {
        let members = flat(5);
        let ring = claim(&members, config(2, 3), None).unwrap();
        check(&members, config(2, 3), &ring).unwrap();
        assert_eq!(ring.owner_counts().values().filter(|&&c| c == 0).count(), 3);
        assert_eq!(
            ring.replica_counts().values().filter(|&&c| c == 1).count(),
            4
        );
    }

    #[test]
    fn replicas_land_on_distinct_zones() {
        // Zones of 1, 2 and 3 nodes: every preflist takes one node of each.
        let members = vec![
            member("a@h", "za"),
            member("b1@h", "zb"),
            member("b2@h", "zb"),
            member("c1@h", "zc"),
            member("c2@h", "zc"),
            member("c3@h", "zc"),
        ];
        let ring = claim(&members, config(64, 3), None).unwrap();
        check(&members, config(64, 3), &ring).unwrap();
        let replicas = ring.replica_counts();
        assert_eq!(replicas["a@h"], 64);
        assert_eq!((replicas["b1@h"], replicas["b2@h"]), (32, 32));
        assert!(["c1@h", "c2@h", "c3@h"]
            .iter()
            .all(|n| replicas[n].abs_diff(21) <= 1));
        assert!(spread(ring.owner_counts().values().copied()) <= 1);
    }

    #[test]
    fn two_zones_share_three_replicas() {
        let east = ["e1@h", "e2@h", "e3@h"];
        let west = ["w1@h", "w2@h", "w3@h"];
        let members: Vec<Member> = east
            .iter()
            .map(|n| member(n, "east"))
            .chain(west.iter().map(|n| member(n, "west")))
            .collect();
        let ring = claim(&members, config(64, 3), None).unwrap();
        check(&members, config(64, 3), &ring).unwrap();
        for list in ring.preflists() {
            let in_east = list.iter().filter(|n| east.contains(&n.as_str())).count();
            assert!(in_east == 1 || in_east == 2, "{list:?}");
        }
        assert!(spread(ring.replica_counts().values().copied()) <= 1);
    }

    #[test]
    fn same_members_give_the_same_ring() {
        let members = flat(5);
        let ring = claim(&members, config(64, 3), None).unwrap();
        let mut reversed = members.clone();
        reversed.reverse();
        assert_eq!(claim(&reversed, config(64, 3), None).unwrap(), ring);
        assert_eq!(claim(&members, config(64, 3), Some(&ring)).unwrap(), ring);
    }

    #[test]
    fn join_moves_only_what_the_new_node_takes() {
        let before = claim(&flat(4), config(64, 3), None).unwrap();
        let members = flat(5);
        let after = claim(&members, config(64, 3), Some(&before)).unwrap();
        check(&members, config(64, 3), &after).unwrap();
        let new = "n04@host";
        assert_eq!(after.primary_moves(&before), after.owner_counts()[new]);
        assert_eq!(after.owner_counts()[new], 12);
        assert_eq!(after.replica_moves(&before), after.replica_counts()[new]);
        for (old, new_list) in before.preflists().zip(after.preflists()) {
            if !new_list.iter().any(|n| n == new) {
                assert_eq!(old, new_list);
            }
        }
    }

    #[test]
    fn leave_moves_only_what_the_node_held() {
        let before = claim(&flat(5), config(64, 3), None).unwrap();
        let gone = "n02@host";
        let members: Vec<Member> = flat(5).into_iter().filter(|m| m.name != gone).collect();
        let after = claim(&members, config(64, 3), Some(&before)).unwrap();
        check(&members, config(64, 3), &after).unwrap();
        assert_eq!(after.primary_moves(&before), before.owner_counts()[gone]);
        assert_eq!(after.replica_moves(&before), before.replica_counts()[gone]);
    }

    #[test]
    fn a_departed_primary_hands_over_to_a_replica() {
        let lists = [
            ["a", "b"],
            ["a", "c"],
            ["b", "c"],
            ["b", "d"],
            ["c", "d"],
            ["c", "b"],
            ["d", "b"],
            ["d", "c"],
        ];
        let lists = lists
            .iter()
            .map(|list| list.iter().map(|name| name.to_string()).collect())
            .collect();
        let before = Ownership::from_preflists(8, lists).unwrap();
        let members: Vec<Member> = ["b", "c", "d"].iter().map(|n| member(n, "")).collect();
        let after = claim(&members, config(8, 2), Some(&before)).unwrap();
        check(&members, config(8, 2), &after).unwrap();
        // b and c already hold partitions 0 and 1: leader changes, no copy. d, the least
        // loaded, takes the two new replicas, and nothing else moves.
        assert_eq!(after.preflist(0), ["b", "d"]);
        assert_eq!(after.preflist(1), ["c", "d"]);
        assert_eq!(after.primary_moves(&before), 2);
        assert_eq!(after.replica_moves(&before), 2);
    }

    #[test]
    fn large_ring() {
        let members: Vec<Member> = (0..10)
            .map(|i| member(&format!("n{i}@h"), &format!("z{}", i % 3)))
            .collect();
        let ring = claim(&members[..9], config(4096, 3), None).unwrap();
        check(&members[..9], config(4096, 3), &ring).unwrap();
        let joined = claim(&members, config(4096, 3), Some(&ring)).unwrap();
        check(&members, config(4096, 3), &joined).unwrap();
        assert_eq!(joined.primary_moves(&ring), 409);
    }

    #[test]
    fn preflists_round_trip() {
        let ring = claim(&flat(4), config(16, 3), None).unwrap();
        let lists: Vec<Vec<String>> = ring.preflists().map(<[String]>::to_vec).collect();
        let rebuilt = Ownership::from_preflists(16, lists.clone()).unwrap();
        assert_eq!(rebuilt, ring);
        assert_eq!(
            claim(&flat(4), config(16, 3), Some(&rebuilt)).unwrap(),
            ring
        );

        let bad = |partitions, lists| Ownership::from_preflists(partitions, lists);
        assert_eq!(bad(3, lists.clone()), Err(RingError::BadPartitions(3)));
        assert!(bad(32, lists.clone()).is_err());
        let mut short = lists.clone();
        short[3].pop();
        assert!(bad(16, short).is_err());
        let mut twice = lists.clone();
        twice[0][1] = twice[0][0].clone();
        assert!(bad(16, twice).is_err());
        assert!(bad(2, vec![vec![], vec![]]).is_err());
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn preflist_of_a_missing_partition_panics() {
        let ring = claim(&flat(2), config(8, 2), None).unwrap();
        ring.preflist(8);
    }

    // ---- properties ----

    /// Up to `max_nodes` members spread over up to `max_zones` zones.
    fn members_strategy(max_nodes: usize, max_zones: usize) -> impl Strategy<Value = Vec<Member>> {
        (1..=max_zones)
            .prop_flat_map(move |zones| prop::collection::vec(0..zones, 1..=max_nodes))
            .prop_map(|zones| {
                zones
                    .into_iter()
                    .enumerate()
                    .map(|(i, z)| member(&format!("n{i:02}@host"), &format!("z{z}")))
                    .collect()
            })
    }

    fn config_strategy() -> impl Strategy<Value = RingConfig> {
        (1..=8u32, 1..=5u8).prop_map(|(k, n_val)| config(1 << k, n_val))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn fresh_claim_holds_the_invariants(
            members in members_strategy(12, 5),
            config in config_strategy(),
        ) {
            let ring = claim(&members, config, None).unwrap();
            check(&members, config, &ring)?;
        }

        #[test]
        fn claim_ignores_member_order(
            (members, shuffled) in members_strategy(10, 4)
                .prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle())),
            config in config_strategy(),
        ) {
            let ring = claim(&members, config, None).unwrap();
            prop_assert_eq!(&claim(&shuffled, config, None).unwrap(), &ring);
            let again = claim(&shuffled, config, Some(&ring)).unwrap();
            prop_assert_eq!(&again, &ring);
        }

        #[test]
        fn join_moves_at_most_the_new_quota(
            members in members_strategy(10, 4),
            zone in 0..5usize,
            config in config_strategy(),
        ) {
            let before = claim(&members, config, None).unwrap();
            let mut joined = members.clone();
            joined.push(member("new@host", &format!("z{zone}")));
            let after = claim(&joined, config, Some(&before)).unwrap();
            check(&joined, config, &after)?;
            let p = usize::from(config.partitions());
            let bound = p.div_ceil(joined.len());
            prop_assert!(after.primary_moves(&before) <= bound);
            prop_assert_eq!(after.primary_moves(&before), after.owner_counts()["new@host"]);
        }

        #[test]
        fn leave_moves_only_the_departed_primaries(
            (members, gone) in members_strategy(10, 4)
                .prop_filter("two members", |m| m.len() >= 2)
                .prop_flat_map(|m| { let n = m.len(); (Just(m), 0..n) }),
            config in config_strategy(),
        ) {
            let before = claim(&members, config, None).unwrap();
            let mut left = members.clone();
            let gone = left.remove(gone).name;
            let after = claim(&left, config, Some(&before)).unwrap();
            check(&left, config, &after)?;
            prop_assert_eq!(after.primary_moves(&before), before.owner_counts()[gone.as_str()]);
        }

        #[test]
        fn single_zone_join_copies_only_the_new_replicas(
            nodes in 1..10usize,
            config in config_strategy(),
        ) {
            let before = claim(&flat(nodes), config, None).unwrap();
            let members = flat(nodes + 1);
            let after = claim(&members, config, Some(&before)).unwrap();
            let new = members[nodes].name.as_str();
            prop_assert_eq!(after.replica_moves(&before), after.replica_counts()[new]);
        }

        #[test]
        fn single_zone_leave_copies_little(
            (nodes, gone) in (2..10usize).prop_flat_map(|n| (Just(n), 0..n)),
            config in config_strategy(),
        ) {
            let before = claim(&flat(nodes), config, None).unwrap();
            let mut members = flat(nodes);
            let gone = members.remove(gone).name;
            let after = claim(&members, config, Some(&before)).unwrap();
            let replicas = before.replica_counts()[gone.as_str()];
            let primaries = before.owner_counts()[gone.as_str()];
            prop_assert!(after.replica_moves(&before) <= replicas + primaries);
        }

        #[test]
        fn membership_histories_stay_balanced(
            start in members_strategy(6, 3),
            changes in prop::collection::vec((any::<bool>(), 0..12usize, 0..4usize), 1..8),
            config in config_strategy(),
        ) {
            let mut members = start;
            let mut ring = claim(&members, config, None).unwrap();
            let mut next_name = 0;
            for (join, pick, zone) in changes {
                let p = usize::from(config.partitions());
                if join || members.len() == 1 {
                    members.push(member(&format!("m{next_name:02}@host"), &format!("z{zone}")));
                    next_name += 1;
                    let after = claim(&members, config, Some(&ring)).unwrap();
                    prop_assert!(after.primary_moves(&ring) <= p.div_ceil(members.len()) + 2);
                    ring = after;
                } else {
                    let gone = members.remove(pick % members.len()).name;
                    let after = claim(&members, config, Some(&ring)).unwrap();
                    let owned = ring.owner_counts()[gone.as_str()];
                    prop_assert!(after.primary_moves(&ring) <= owned + 2);
                    ring = after;
                }
                check(&members, config, &ring)?;
                prop_assert_eq!(&claim(&members, config, Some(&ring)).unwrap(), &ring);
            }
        }
    }
}
