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
fn check(members: &[Member], config: RingConfig, ring: &Ownership) -> Result<(), TestCaseError> {
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
