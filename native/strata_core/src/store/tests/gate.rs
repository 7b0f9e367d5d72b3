//! The write gate: declining instead of waiting, queued commits and who serves them.

use super::*;

#[test]
fn non_blocking_paths_decline_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    put(&s, "held", b"v");
    let k = keycodec::encode_binary(b"held").unwrap();
    let p = s.partition_of(&k) as usize;
    let guard = s.inner.seqs[p].lock();
    let mut c = Commit {
        reads: vec![],
        writes: vec![Write::put(key(&s, "held"), b"w").unwrap()],
        snapshot: None,
    };
    assert_eq!(s.commit(&mut c, false), Err(Error::WouldBlock));
    drop(guard);
    s.commit(&mut c, false).unwrap();
    assert_eq!(get(&s, "held").1.as_deref(), Some(&b"w"[..]));
}

/// A table's filter and index stay with the open table, not in the block cache, so a read of
/// an absent key on the non-blocking path is answered from memory however busy the cache is.
/// When they lived in the cache (with this cache, 9 of the 100 reads were answered), data
/// blocks evicted them, and reads of absent keys answered "would block" until one on a dirty
/// scheduler read them from the table again.
#[test]
fn absent_keys_in_a_table_are_answered_without_the_disk_when_the_cache_churns() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(dir.path());
    cfg.partitions = 8;
    cfg.block_cache_bytes = 16 << 10;
    let s = Store::open(cfg).unwrap();
    let value = [7u8; 100];
    // Two tables of interleaved keys, merged by a compaction into a new one below level 0
    // (the filters and indexes of level 0 stay pinned in the cache).
    for half in 0..2 {
        for batch in 0..10 {
            let writes = (0..1000)
                .map(|i| {
                    let n = (batch * 1000 + i) * 2 + half;
                    Write::put(key(&s, &format!("k{n}")), &value).unwrap()
                })
                .collect();
            let mut c = Commit {
                reads: vec![],
                writes,
                snapshot: None,
            };
            s.commit(&mut c, true).unwrap();
        }
        s.inner.db.flush_cf(s.inner.cf(CF_DATA)).unwrap();
    }
    s.inner
        .db
        .compact_range_cf(s.inner.cf(CF_DATA), None::<&[u8]>, None::<&[u8]>);
    // Reading every present key passes about 2.5 MB of data blocks through a 16 KB cache,
    // smaller than the table's filter (about 25 KB).
    for i in 0..20_000 {
        assert!(get(&s, &format!("k{i}")).1.is_some());
    }
    let answered = (0..100)
        .filter(|i| {
            let r = s.get(&key(&s, &format!("absent{i}")), false, None, |st| {
                st.version
            });
            assert!(matches!(r, Ok(0) | Err(Error::WouldBlock)), "{r:?}");
            r.is_ok()
        })
        .count();
    // A filter false positive (about 1 in 100) needs a data block, which may be on disk.
    assert!(
        answered >= 95,
        "{answered} of 100 absent keys answered from memory"
    );
}

#[test]
fn async_commits_that_find_the_gate_taken_are_served_once_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let one = |k: &str, v: &[u8], reads: Vec<ReadCheck>| Commit {
        reads,
        writes: vec![Write::put(key(&s, k), v).unwrap()],
        snapshot: None,
    };
    let gate = s.inner.gate.lock();
    assert_eq!(
        s.commit(&mut one("a", b"x", vec![]), false),
        Err(Error::WouldBlock)
    );
    let (a1, r1) = queue_commit(&s, one("a", b"1", vec![]));
    let (a2, r2) = queue_commit(&s, one("b", b"2", vec![]));
    // Read `a' as never written: the first commit of the group writes it, so this one fails.
    let stale = vec![ReadCheck {
        key: key(&s, "a"),
        version: 0,
    }];
    let (a3, r3) = queue_commit(&s, one("c", b"3", stale));
    assert_eq!(
        (a1, a2, a3),
        (
            crate::Applied::Queued,
            crate::Applied::Queued,
            crate::Applied::Queued
        )
    );
    assert!(
        r1.try_recv().is_err(),
        "nothing applied while the gate is held"
    );
    assert_eq!(get(&s, "a"), (0, None));
    drop(gate);
    // The next commit, once applied, serves the three as one group, where the third fails on
    // the first's write of `a`. The writer thread, when it starts only after they were queued,
    // takes what is queued at that moment and waits for the gate: if this thread gets the gate
    // first and serves the rest, the third is applied before the first, reads `a` as it then
    // is (never written) and succeeds. Both orders are serializable; the third sees the first's
    // write exactly when it is applied after it.
    s.commit(&mut one("d", b"4", vec![]), true).unwrap();
    let wait = std::time::Duration::from_secs(10);
    assert_eq!(r1.recv_timeout(wait).unwrap(), Ok(()));
    assert_eq!(r2.recv_timeout(wait).unwrap(), Ok(()));
    match r3.recv_timeout(wait).unwrap() {
        Err(Error::Conflict(stale)) => {
            assert_eq!(stale, vec![0]);
            assert_eq!(get(&s, "c"), (0, None));
        }
        Ok(()) => {
            let (a, _) = get(&s, "a");
            let (c, value) = get(&s, "c");
            assert_eq!(value.as_deref(), Some(&b"3"[..]));
            // Applied before the first: in a partition of its own, or at a lower version.
            assert!(part(&s, "a") != part(&s, "c") || c < a);
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    assert_eq!(get(&s, "a").1.as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&s, "b").1.as_deref(), Some(&b"2"[..]));
    assert_eq!(get(&s, "d").1.as_deref(), Some(&b"4"[..]));
}

#[test]
fn a_caller_reports_the_commits_it_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let put = |k: &str| Commit {
        reads: vec![],
        writes: vec![Write::put(key(&s, k), b"v").unwrap()],
        snapshot: None,
    };
    let (tx, rx) = mpsc::channel();
    let reply = || {
        let tx = tx.clone();
        move || -> crate::CommitReply {
            Box::new(move |r| tx.send((r, std::thread::current().id())).unwrap())
        }
    };
    let gate = s.inner.gate.lock();
    for k in ["a", "b", "c"] {
        let (applied, served) = s.commit_or_queue(put(k), reply());
        assert_eq!((applied, served), (Ok(crate::Applied::Queued), 0));
    }
    drop(gate);
    // This call serves what is pending, unless the writer thread took some of it first (then
    // its own commit may be queued behind them): every reply sent from this thread is counted.
    let (applied, served) = s.commit_or_queue(put("d"), reply());
    let replies = 3 + usize::from(applied == Ok(crate::Applied::Queued));
    let wait = std::time::Duration::from_secs(10);
    let mut here = 0;
    for _ in 0..replies {
        let (r, thread) = rx.recv_timeout(wait).unwrap();
        assert_eq!(r, Ok(()));
        here += usize::from(thread == std::thread::current().id());
    }
    assert_eq!(served, here);
    for k in ["a", "b", "c", "d"] {
        assert_eq!(get(&s, k).1.as_deref(), Some(&b"v"[..]));
    }
}

#[test]
fn pending_commits_that_would_block_a_caller_go_to_the_writer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let part = |k: &str| s.partition_of(&keycodec::encode_binary(k.as_bytes()).unwrap());
    let other = (0..)
        .map(|i| format!("o{i}"))
        .find(|k| part(k) != part("held"))
        .unwrap();
    let put = |k: &str| Commit {
        reads: vec![],
        writes: vec![Write::put(key(&s, k), b"v").unwrap()],
        snapshot: None,
    };
    let gate = s.inner.gate.lock();
    let (a1, r1) = queue_commit(&s, put("held"));
    assert_eq!(a1, crate::Applied::Queued);
    drop(gate);
    // The next caller cannot take the partition lock of the pending commit without waiting,
    // so it hands that commit to the writer thread, which waits for the lock.
    let lock = s.inner.seqs[part("held") as usize].lock();
    let (a2, r2) = queue_commit(&s, put(&other));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        r1.try_recv().is_err(),
        "applied while its partition was locked"
    );
    drop(lock);
    assert_eq!(r1.recv().unwrap(), Ok(()));
    if a2 == crate::Applied::Queued {
        assert_eq!(r2.recv().unwrap(), Ok(())); // the writer held the gate first
    }
    assert_eq!(get(&s, "held").1.as_deref(), Some(&b"v"[..]));
    assert_eq!(get(&s, &other).1.as_deref(), Some(&b"v"[..]));
}

#[test]
fn pending_commits_are_applied_when_the_store_closes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let c = Commit {
        reads: vec![],
        writes: vec![Write::put(key(&s, "late"), b"kept").unwrap()],
        snapshot: None,
    };
    let gate = s.inner.gate.lock();
    let (applied, rx) = queue_commit(&s, c);
    assert_eq!(applied, crate::Applied::Queued);
    drop(gate);
    s.close();
    assert_eq!(rx.recv().unwrap(), Ok(()));
    let s = open(dir.path());
    assert_eq!(get(&s, "late").1.as_deref(), Some(&b"kept"[..]));
}
