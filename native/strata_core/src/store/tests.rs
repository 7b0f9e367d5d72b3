use super::*;
use crate::keycodec;
use crate::{Bound, Commit, ReadCheck, Write};
use std::collections::HashMap;
use std::sync::mpsc;

fn open(dir: &std::path::Path) -> Store {
    let mut cfg = Config::new(dir);
    cfg.partitions = 8;
    cfg.block_cache_bytes = 8 << 20;
    Store::open(cfg).unwrap()
}

fn key(s: &Store, k: &str) -> Vec<u8> {
    s.data_key(&keycodec::encode_binary(k.as_bytes()).unwrap())
}

fn put(s: &Store, k: &str, v: &[u8]) {
    let mut c = Commit {
        reads: vec![],
        writes: vec![Write::put(key(s, k), v).unwrap()],
        snapshot: None,
    };
    s.commit(&mut c, true).unwrap();
}

fn get(s: &Store, k: &str) -> (u64, Option<Vec<u8>>) {
    s.get(&key(s, k), true, None, |st| {
        (st.version, st.value.map(<[u8]>::to_vec))
    })
    .unwrap()
}

fn sync_commit(s: &Store, c: Commit) -> Result<(), Error> {
    let (tx, rx) = mpsc::channel();
    s.commit_sync(c, Box::new(move |r| tx.send(r).unwrap()), true)
        .unwrap();
    rx.recv().unwrap()
}

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
fn a_data_key_made_in_the_encoding_s_buffer_is_the_same() {
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
    for etf in etfs {
        let k = keycodec::encode(etf).unwrap();
        assert_eq!(s.into_data_key(k.clone()), s.data_key(&k));
    }
    for bin in [&b""[..], b"k", &[0u8; 300]] {
        let k = keycodec::encode_binary(bin).unwrap();
        assert_eq!(s.into_data_key(k.clone()), s.data_key(&k));
    }
}

/// The partition of a key of `key`.
fn part(s: &Store, k: &str) -> u16 {
    s.partition_of(&keycodec::encode_binary(k.as_bytes()).unwrap())
}

#[test]
fn reads_from_a_snapshot_are_looked_up_again_only_where_their_partition_changed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let names: Vec<String> = (0..64).map(|i| format!("k{i}")).collect();
    let a = &names[0];
    let same = names[1..]
        .iter()
        .find(|k| part(&s, k) == part(&s, a))
        .unwrap();
    let other = names[1..]
        .iter()
        .find(|k| part(&s, k) != part(&s, a))
        .unwrap();
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

    // Nothing written to a's partition since the snapshot: the version is not looked up, so
    // even a wrong one passes (the engine trusts reads that came from the snapshot).
    let snap = s.snapshot();
    put(&s, other, b"elsewhere");
    assert_eq!(s.commit(&mut read_a(&snap, seen + 1000), true), Ok(()));

    // Another key of the partition written since: looked up, and unchanged.
    let snap = s.snapshot();
    put(&s, same, b"beside");
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
fn reopen_keeps_data_and_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let s = open(dir.path());
        for i in 0..100 {
            put(&s, &format!("k{i}"), b"v");
        }
        before = (0..8).map(|p| s.last_seq(p).unwrap()).collect::<Vec<_>>();
        assert_eq!(before.iter().sum::<u64>(), 100);
    }
    let s = open(dir.path());
    let after: Vec<u64> = (0..8).map(|p| s.last_seq(p).unwrap()).collect();
    assert_eq!(before, after);
    assert_eq!(get(&s, "k42").1.as_deref(), Some(&b"v"[..]));
    let (v, _) = get(&s, "k1");
    put(&s, "k1", b"w");
    assert!(get(&s, "k1").0 > v);
}

#[test]
fn second_open_is_locked_and_partition_count_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert!(matches!(
        Store::open(Config::new(dir.path())),
        Err(Error::Locked)
    ));
    drop(s);
    assert_eq!(
        Store::open(Config::new(dir.path())).err(),
        Some(Error::PartitionsMismatch {
            stored: 8,
            requested: 64
        })
    );
    let mut bad = Config::new(dir.path());
    bad.partitions = 3;
    assert!(matches!(Store::open(bad), Err(Error::Invalid(_))));
}

#[test]
fn log_follows_writes_and_truncates_to_a_tail() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let k = keycodec::encode_binary(b"same").unwrap();
    let p = s.partition_of(&k);
    for i in 0..10u8 {
        put(&s, "same", &[i]);
    }
    let log = s.log_since(p, 0, 100, true).unwrap();
    assert_eq!(log.len(), 10);
    assert!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert!(log.iter().all(|e| e.key == k.bytes && !e.delete));
    assert_eq!(
        s.log_since(p, log[4].seq, 2, true).unwrap(),
        log[5..7].to_vec()
    );
    s.truncate_log(3).unwrap();
    let tail = s.log_since(p, 0, 100, true).unwrap();
    assert_eq!(tail, log[7..].to_vec());
    assert_eq!(get(&s, "same").0, log[9].seq);
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
fn scans_merge_partitions_in_key_order_over_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    for i in 0..300 {
        put(&s, &format!("k{i:03}"), format!("{i}").as_bytes());
    }
    put(&s, "k100", b"overwritten");
    s.commit(
        &mut Commit {
            reads: vec![],
            writes: vec![Write::delete(key(&s, "k101"))],
            snapshot: None,
        },
        true,
    )
    .unwrap();
    let snap = s.snapshot();
    put(&s, "k102", b"after the snapshot");
    let enc = |k: &str| keycodec::encode_binary(k.as_bytes()).unwrap().bytes;
    let (lo, hi) = (Bound::Included(enc("k100")), Bound::Excluded(enc("k200")));
    let mut seen = Vec::new();
    let mut from = lo.clone();
    loop {
        let page = s.scan(&snap, &from, &hi, false, 7, None, true).unwrap();
        assert!(page.items.len() <= 7);
        seen.extend(page.items);
        match page.next {
            Some(k) => from = Bound::Excluded(k),
            None => break,
        }
    }
    assert_eq!(seen.len(), 99);
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(seen[0].1, b"overwritten");
    assert_eq!(seen[1].0, enc("k102"));
    assert_eq!(seen[1].1, b"102");
    let back = s.scan(&snap, &lo, &hi, true, 3, None, true).unwrap();
    let keys: Vec<_> = back.items.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, vec![enc("k199"), enc("k198"), enc("k197")]);
    let one = s
        .scan(
            &snap,
            &Bound::Included(enc("k250")),
            &Bound::Included(enc("k250")),
            false,
            10,
            None,
            true,
        )
        .unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(one.next.is_none());
}

#[test]
fn backup_is_an_openable_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("live"));
    put(&s, "b", b"kept");
    s.backup(&dir.path().join("copy")).unwrap();
    put(&s, "b", b"later");
    assert!(s.backup(&dir.path().join("copy")).is_err());
    let copy = open(&dir.path().join("copy"));
    assert_eq!(get(&copy, "b").1.as_deref(), Some(&b"kept"[..]));
}

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

type Outcome = mpsc::Receiver<Result<(), Error>>;

/// Applies or queues an async commit. An inline commit's outcome is the result itself; a
/// queued one's arrives on the receiver.
fn try_queue_commit(s: &Store, c: Commit) -> Result<(crate::Applied, Outcome), Error> {
    let (tx, rx) = mpsc::channel();
    let (applied, _served) = s.commit_or_queue(c, move || Box::new(move |r| tx.send(r).unwrap()));
    let applied = applied?;
    Ok((applied, rx))
}

/// As `try_queue_commit`, for commits that cannot fail inline.
fn queue_commit(s: &Store, c: Commit) -> (crate::Applied, Outcome) {
    try_queue_commit(s, c).unwrap()
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

/// Runs in a child process (see `log_and_data_agree_after_a_crash`): writes from several
/// threads until it aborts itself in the middle of them.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("STRATA_CRASH_DIR") else {
        return;
    };
    let s = Arc::new(open(std::path::Path::new(&dir)));
    for t in 0..4 {
        let s = s.clone();
        std::thread::spawn(move || {
            for i in 0u64.. {
                let mut c = Commit {
                    reads: vec![],
                    writes: vec![
                        Write::put(key(&s, &format!("a{}", i % 50)), &i.to_be_bytes()).unwrap(),
                        Write::put(key(&s, &format!("b{t}")), &i.to_be_bytes()).unwrap(),
                    ],
                    snapshot: None,
                };
                if t % 2 == 0 {
                    s.commit(&mut c, true).unwrap();
                } else {
                    sync_commit(&s, c).unwrap();
                }
            }
        });
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::process::abort();
}

#[test]
fn log_and_data_agree_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store::tests::crash_child", "--nocapture"])
        .env("STRATA_CRASH_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must have crashed");
    let s = open(dir.path());
    let mut latest: HashMap<Vec<u8>, (u64, bool)> = HashMap::new();
    let mut entries = 0;
    for p in 0..8u16 {
        let log = s.log_since(p, 0, 1_000_000, true).unwrap();
        assert!(
            log.windows(2).all(|w| w[1].seq == w[0].seq + 1),
            "gap in the log"
        );
        assert_eq!(log.last().map_or(0, |e| e.seq), s.last_seq(p).unwrap());
        for e in log {
            let mut dk = p.to_be_bytes().to_vec();
            dk.extend_from_slice(&e.key);
            latest.insert(dk, (e.seq, e.delete));
            entries += 1;
        }
    }
    assert!(entries > 0, "the child wrote nothing before crashing");
    // Every key's stored version is the sequence of its last log entry, and every stored key
    // has a log entry.
    for (dk, (seq, _)) in &latest {
        let v = s.get(dk, true, None, |st| st.version).unwrap();
        assert_eq!(v, *seq);
    }
    let snap = s.snapshot();
    let all = s
        .scan(
            &snap,
            &Bound::Unbounded,
            &Bound::Unbounded,
            false,
            10_000,
            None,
            true,
        )
        .unwrap();
    assert_eq!(all.items.len(), latest.len());
}

#[test]
fn closing_releases_outstanding_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    put(&s, "k", b"v");
    let snap = s.snapshot();
    let copy = snap.clone();
    s.close();
    // The directory can be opened again at once, and the old snapshot answers Closed.
    let s = open(dir.path());
    assert!(matches!(
        s.get(&key(&s, "k"), true, Some(&snap), |_| ()),
        Err(Error::Closed)
    ));
    drop(copy);
    drop(snap);
    assert_eq!(get(&s, "k").1.as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_released_snapshot_answers_no_snapshot_and_leaves_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    put(&s, "k", b"old");
    let snap = s.snapshot();
    let kept = s.snapshot();
    let copy = snap.clone();
    put(&s, "k", b"new");
    let read = |snap: &Snapshot| {
        s.get(&key(&s, "k"), true, Some(snap), |st| {
            st.value.map(<[u8]>::to_vec)
        })
    };
    assert_eq!(read(&snap), Ok(Some(b"old".to_vec())));
    assert_eq!(s.inner.snapshots.lock().live.len(), 2);
    snap.release();
    snap.release();
    assert_eq!(read(&snap), Err(Error::NoSnapshot));
    assert_eq!(read(&copy), Err(Error::NoSnapshot));
    // The other snapshot still reads its own view; only it is left to release at close.
    assert_eq!(read(&kept), Ok(Some(b"old".to_vec())));
    assert_eq!(s.inner.snapshots.lock().live.len(), 1);
    drop(kept);
    assert_eq!(s.inner.snapshots.lock().live.len(), 0);
}

#[test]
fn meta_records_survive_reopen_and_stay_apart_from_the_store_own() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        assert_eq!(s.meta_get(b"cluster").unwrap(), None);
        s.meta_put(b"cluster", b"one").unwrap();
        s.meta_put(b"cluster", b"two").unwrap();
        // A layer above cannot overwrite the partition count.
        s.meta_put(b"partitions", b"xx").unwrap();
        assert!(matches!(s.meta_put(b"", b"v"), Err(Error::Invalid(_))));
        assert!(matches!(s.meta_get(&[0; 257]), Err(Error::Invalid(_))));
    }
    let s = open(dir.path());
    assert_eq!(
        s.meta_get(b"cluster").unwrap().as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(
        s.meta_get(b"partitions").unwrap().as_deref(),
        Some(&b"xx"[..])
    );
    assert_eq!(s.partitions(), 8);
}
