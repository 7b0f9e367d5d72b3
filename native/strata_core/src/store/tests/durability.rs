//! What survives: reopening, the commit log, a crash mid-write, backups, meta records.

use super::*;
use crate::store::log::read_log_entry;

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
fn a_commit_logs_one_entry_per_partition_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    let (p, same, other);
    let log;
    {
        let s = open(dir.path());
        p = part(&s, &names[0]);
        same = names
            .iter()
            .filter(|k| part(&s, k) == p)
            .take(3)
            .collect::<Vec<_>>();
        other = names.iter().find(|k| part(&s, k) != p).unwrap();
        put(&s, same[0], b"before");
        let mut c = Commit {
            reads: vec![],
            writes: vec![
                Write::put(key(&s, same[0]), b"a").unwrap(),
                Write::put(key(&s, other), b"b").unwrap(),
                Write::delete(key(&s, same[1])),
                Write::put(key(&s, same[2]), b"c").unwrap(),
            ],
            snapshot: None,
        };
        s.commit(&mut c, true).unwrap();
        put(&s, same[1], b"after");
        let entry = |seq, delete, k: &str| LogEntry {
            seq,
            delete,
            key: keycodec::encode_binary(k.as_bytes()).unwrap().bytes,
        };
        log = s.log_since(p, 0, 100, true).unwrap();
        assert_eq!(
            log,
            vec![
                entry(1, false, same[0]),
                entry(2, false, same[0]),
                entry(3, true, same[1]),
                entry(4, false, same[2]),
                entry(5, false, same[1]),
            ]
        );
        assert_eq!(get(&s, same[2]).0, 4);
        let q = part(&s, other);
        assert_eq!(
            s.log_since(q, 0, 100, true).unwrap(),
            vec![entry(1, false, other)]
        );
        // Three entries in p: the commit's three writes there are one.
        let inner = &s.inner;
        let stored = inner
            .db
            .prefix_iterator_cf(inner.cf(CF_LOG), p.to_be_bytes())
            .take_while(|kv| kv.as_ref().unwrap().0[..2] == p.to_be_bytes())
            .count();
        assert_eq!(stored, 3);
        // Read from inside that entry, and stopped inside it.
        assert_eq!(s.log_since(p, 2, 100, true).unwrap(), log[2..]);
        assert_eq!(s.log_since(p, 1, 2, true).unwrap(), log[1..3]);
        // Truncation keeps the whole entry of a write it keeps.
        s.truncate_log(2).unwrap();
        assert_eq!(s.log_since(p, 0, 100, true).unwrap(), log[1..]);
    }
    let s = open(dir.path());
    assert_eq!(s.last_seq(p).unwrap(), 5);
    assert_eq!(s.log_since(p, 3, 100, true).unwrap(), log[3..]);
}

#[test]
fn a_malformed_log_entry_is_reported_corrupt() {
    let mut out = Vec::new();
    let corrupt = |value: &[u8], out: &mut Vec<LogEntry>| {
        matches!(read_log_entry(5, value, 0, 10, out), Err(Error::Corrupt(_)))
    };
    // Empty, an unknown op, a count of one, a count above the sequence, a write cut short,
    // bytes after the last write.
    assert!(corrupt(&[], &mut out));
    assert!(corrupt(&[7, 1], &mut out));
    assert!(corrupt(&[2, 0, 0, 0, 1, 0, 0, 0, 0, 1, 9], &mut out));
    assert!(corrupt(&[2, 0, 0, 0, 6], &mut out));
    assert!(corrupt(
        &[2, 0, 0, 0, 2, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 2, 9],
        &mut out
    ));
    assert!(corrupt(
        &[2, 0, 0, 0, 2, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 1, 8, 0],
        &mut out
    ));
    out.clear();
    read_log_entry(
        5,
        &[2, 0, 0, 0, 2, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 1, 8],
        0,
        10,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            LogEntry {
                seq: 4,
                delete: false,
                key: vec![9]
            },
            LogEntry {
                seq: 5,
                delete: true,
                key: vec![8]
            }
        ]
    );
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
        .args([
            "--exact",
            "store::tests::durability::crash_child",
            "--nocapture",
        ])
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
