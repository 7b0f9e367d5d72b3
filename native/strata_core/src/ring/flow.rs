//! The min-cost flow solver behind claim.

use std::cmp::Reverse;
use std::collections::VecDeque;

/// A min-cost max-flow network solved by the primal-dual method: Dijkstra with potentials
/// finds the cheapest augmenting cost, then Dinic-style blocking flows saturate every path of
/// that cost. Costs are non-negative, so zero potentials start it. Iterative throughout, so
/// it runs on small (NIF) thread stacks.
pub(super) struct Network {
    adjacency: Vec<Vec<usize>>,
    /// Edge `e` and its residual twin `e ^ 1`.
    head: Vec<usize>,
    capacity: Vec<u32>,
    cost: Vec<i64>,
}

impl Network {
    pub(super) fn new(vertices: usize) -> Self {
        Network {
            adjacency: vec![Vec::new(); vertices],
            head: Vec::new(),
            capacity: Vec::new(),
            cost: Vec::new(),
        }
    }

    pub(super) fn add_edge(&mut self, from: usize, to: usize, capacity: u32, cost: i64) -> usize {
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
    pub(super) fn flow(&self, edge: usize) -> u32 {
        self.capacity[edge ^ 1]
    }

    pub(super) fn min_cost_max_flow(&mut self, source: usize, sink: usize) {
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

    pub(super) fn reduced_cost(&self, tail: usize, edge: usize, potential: &[i64]) -> i64 {
        self.cost[edge] + potential[tail] - potential[self.head[edge]]
    }

    /// Dijkstra over residual edges by reduced cost.
    pub(super) fn distances(&self, source: usize, potential: &[i64]) -> Vec<i64> {
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
    pub(super) fn levels(
        &self,
        source: usize,
        sink: usize,
        potential: &[i64],
    ) -> Option<Vec<usize>> {
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
    pub(super) fn augment(
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
