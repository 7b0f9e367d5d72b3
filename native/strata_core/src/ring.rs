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
use std::collections::{BTreeMap, BTreeSet};
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

pub(crate) fn fmix64(mut k: u64) -> u64 {
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

mod flow;
mod placement;

use placement::Claim;

#[cfg(test)]
mod tests;
