//! Snapshots: scans over them, their release and the store closing under them.

use super::*;

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
fn closing_releases_outstanding_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    put(&s, "k", b"v");
    let snap = s.snapshot();
    let copy = snap.clone();
    s.close();
    // The directory can be opened again at once, and the old snapshot answers Closed.
    let s = open(dir.path());
    assert_eq!(get_at(&s, "k", Some(&snap)), Err(Error::Closed));
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
    let read = |snap: &Snapshot| get_at(&s, "k", Some(snap)).map(|(_, value)| value);
    assert_eq!(read(&snap), Ok(Some(b"old".to_vec())));
    assert_eq!(s.inner.snapshots.lock().len(), 2);
    snap.release();
    snap.release();
    assert_eq!(read(&snap), Err(Error::NoSnapshot));
    assert_eq!(read(&copy), Err(Error::NoSnapshot));
    // The other snapshot still reads its own view; only it is left to release at close.
    assert_eq!(read(&kept), Ok(Some(b"old".to_vec())));
    assert_eq!(s.inner.snapshots.lock().len(), 1);
    drop(kept);
    assert_eq!(s.inner.snapshots.lock().len(), 0);
}
