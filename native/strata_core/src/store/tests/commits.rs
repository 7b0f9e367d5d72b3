//! Commits: versions, validation of reads, encoded keys, group commit.

use super::*;

#[test]
fn put_get_delete_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert_eq!(get(&s, "a"), (0, None));
    put(&s, "a", b"one");
    let (v1, val) = get(&s, "a");
    assert_eq!(val.as_deref(), Some(&b"one"[..]));
    put(&s, "a", b"two");
    let (v2, _) = get(&s, "a");
    assert!(v2 > v1);
    s.commit(
        &mut Commit {
            reads: vec![],
            writes: vec![Write::delete(key(&s, "a"))],
            snapshot: None,
        },
        true,
    )
    .unwrap();
    let (v3, val) = get(&s, "a");
    assert!(v3 > v2);
    assert_eq!(val, None);
}

#[test]
fn a_binary_put_stores_the_external_term_format_of_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut c = Commit {
        reads: vec![],
        writes: vec![Write::put_binary(key(&s, "b"), b"abc").unwrap()],
        snapshot: None,
    };
    s.commit(&mut c, true).unwrap();
    // term_to_binary(<<"abc">>)
    let etf = [131, 109, 0, 0, 0, 3, b'a', b'b', b'c'];
    assert_eq!(get(&s, "b").1.as_deref(), Some(&etf[..]));
    assert!(matches!(
        Write::put_binary(key(&s, "b"), &vec![0; MAX_VALUE_BYTES - 5]),
        Err(Error::ValueTooLarge)
    ));
    assert!(Write::put_binary(key(&s, "b"), &vec![0; MAX_VALUE_BYTES - 6]).is_ok());
}

#[test]
fn stale_read_aborts_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    put(&s, "x", b"1");
    let (seen, _) = get(&s, "x");
    put(&s, "x", b"2");
    let mut c = Commit {
        reads: vec![
            ReadCheck {
                key: key(&s, "y"),
                version: 0,
            },
            ReadCheck {
                key: key(&s, "x"),
                version: seen,
            },
        ],
        writes: vec![Write::put(key(&s, "z"), b"never").unwrap()],
        snapshot: None,
    };
    assert_eq!(s.commit(&mut c, true), Err(Error::Conflict(vec![1])));
    assert_eq!(sync_commit(&s, c), Err(Error::Conflict(vec![1])));
    assert_eq!(get(&s, "z"), (0, None));
}

#[test]
fn a_key_created_after_it_was_read_missing_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut c = Commit {
        reads: vec![ReadCheck {
            key: key(&s, "new"),
            version: 0,
        }],
        writes: vec![Write::put(key(&s, "other"), b"v").unwrap()],
        snapshot: None,
    };
    put(&s, "new", b"created meanwhile");
    assert_eq!(s.commit(&mut c, true), Err(Error::Conflict(vec![0])));
}

#[test]
fn a_data_key_is_the_partition_then_the_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    // `{'$tag', <<"t">>, {e, 1}}` and `[1, a]` in external term format, and binaries.
    let etfs: [&[u8]; 2] = [
        &[
            131, 104, 3, 100, 0, 4, b'$', b't', b'a', b'g', 109, 0, 0, 0, 1, b't', 104, 2, 100, 0,
            1, b'e', 97, 1,
        ],
        &[131, 108, 0, 0, 0, 2, 97, 1, 100, 0, 1, b'a', 106],
    ];
    let laid_out = |k: keycodec::EncodedKey| {
        let expected = [&s.partition_of(&k).to_be_bytes()[..], &k.bytes].concat();
        assert_eq!(s.data_key(k), expected);
    };
    for etf in etfs {
        laid_out(keycodec::encode(etf).unwrap());
    }
    for bin in [&b""[..], b"k", &[0u8; 300]] {
        laid_out(keycodec::encode_binary(bin).unwrap());
    }
}

#[test]
fn reads_from_a_snapshot_are_looked_up_again_only_where_their_slot_changed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = "k0";
    let slot = |k: &str| written_slot(&key(&s, k));
    // The first other key that `pred` accepts.
    let find = |pred: &dyn Fn(&str) -> bool| {
        (1..100_000)
            .map(|i| format!("k{i}"))
            .find(|k| pred(k))
            .unwrap()
    };
    let same_slot = &find(&|k| slot(k) == slot(a));
    let same_partition = &find(&|k| part(&s, k) == part(&s, a) && slot(k) != slot(a));
    let other = &find(&|k| part(&s, k) != part(&s, a) && slot(k) != slot(a));
    put(&s, a, b"1");
    let read_a = |snap: &Snapshot, version: u64| Commit {
        reads: vec![ReadCheck {
            key: key(&s, a),
            version,
        }],
        writes: vec![Write::put(key(&s, "out"), b"v").unwrap()],
        snapshot: Some(snap.seq()),
    };
    let (seen, _) = get(&s, a);

    // Nothing written to a's slot since the snapshot, in its partition or elsewhere: the
    // version is not looked up, so even a wrong one passes (the engine trusts reads that came
    // from the snapshot).
    for k in [other, same_partition] {
        let snap = s.snapshot();
        put(&s, k, b"beside");
        assert_eq!(s.commit(&mut read_a(&snap, seen + 1000), true), Ok(()));
    }

    // Another key of the slot written since: looked up, and unchanged.
    let snap = s.snapshot();
    put(&s, same_slot, b"beside");
    assert_eq!(s.commit(&mut read_a(&snap, seen), true), Ok(()));
    assert_eq!(
        s.commit(&mut read_a(&snap, seen + 1000), true),
        Err(Error::Conflict(vec![0]))
    );

    // The key itself written since: a conflict, inline and through the writer thread.
    let snap = s.snapshot();
    put(&s, a, b"2");
    assert_eq!(
        s.commit(&mut read_a(&snap, seen), true),
        Err(Error::Conflict(vec![0]))
    );
    assert_eq!(
        sync_commit(&s, read_a(&snap, seen)),
        Err(Error::Conflict(vec![0]))
    );

    // A snapshot taken after that write: nothing to look up again.
    let snap = s.snapshot();
    let (now, _) = get(&s, a);
    assert_eq!(s.commit(&mut read_a(&snap, now), true), Ok(()));
    assert_eq!(s.seq_of(&snap), Some(snap.seq()));

    // A snapshot of another store says nothing about this one's writes.
    let other_dir = tempfile::tempdir().unwrap();
    let other = open(other_dir.path());
    assert_eq!(s.seq_of(&other.snapshot()), None);
}

#[test]
fn concurrent_validated_increments_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path()));
    put(&s, "n", &0u64.to_be_bytes());
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut done = 0;
                while done < 200 {
                    let (v, val) = get(&s, "n");
                    let n = u64::from_be_bytes(val.unwrap().try_into().unwrap()) + 1;
                    let mut c = Commit {
                        reads: vec![ReadCheck {
                            key: key(&s, "n"),
                            version: v,
                        }],
                        writes: vec![Write::put(key(&s, "n"), &n.to_be_bytes()).unwrap()],
                        snapshot: None,
                    };
                    let r = match t % 3 {
                        0 => s.commit(&mut c, true),
                        1 => sync_commit(&s, c),
                        _ => match try_queue_commit(&s, c) {
                            Ok((crate::Applied::Inline, _)) => Ok(()),
                            Ok((crate::Applied::Queued, rx)) => rx.recv().unwrap(),
                            Err(e) => Err(e),
                        },
                    };
                    match r {
                        Ok(()) => done += 1,
                        // Nothing was written: read again and retry.
                        Err(Error::Conflict(_) | Error::WouldBlock) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let val = get(&s, "n").1.unwrap();
    assert_eq!(u64::from_be_bytes(val.try_into().unwrap()), 1200);
}

#[test]
fn sync_writers_share_the_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let c = Commit {
                        reads: vec![],
                        writes: vec![Write::put(key(&s, &format!("t{t}-{i}")), b"v").unwrap()],
                        snapshot: None,
                    };
                    sync_commit(&s, c).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let total: u64 = (0..8).map(|p| s.last_seq(p).unwrap()).sum();
    assert_eq!(total, 400);
    assert!(get(&s, "t7-49").1.is_some());
}
