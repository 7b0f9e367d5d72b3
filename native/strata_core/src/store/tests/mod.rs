//! Tests of the store, by concern; the helpers they share are here.

use super::*;
use crate::keycodec;
use crate::{Bound, Commit, ReadCheck, Write};
use std::collections::HashMap;
use std::sync::mpsc;

mod commits;
mod durability;
mod gate;
mod snapshots;

fn open(dir: &std::path::Path) -> Store {
    let mut cfg = Config::new(dir);
    cfg.partitions = 8;
    cfg.block_cache_bytes = 8 << 20;
    Store::open(cfg).unwrap()
}

fn key(s: &Store, k: &str) -> Vec<u8> {
    s.data_key(keycodec::encode_binary(k.as_bytes()).unwrap())
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
    get_at(s, k, None).unwrap()
}

/// A key's version and value as of a snapshot (or of now).
fn get_at(s: &Store, k: &str, snap: Option<&Snapshot>) -> Result<(u64, Option<Vec<u8>>), Error> {
    s.get(&key(s, k), true, snap, |st| {
        (st.version, st.value.map(<[u8]>::to_vec))
    })
}

fn sync_commit(s: &Store, c: Commit) -> Result<(), Error> {
    let (tx, rx) = mpsc::channel();
    s.commit_sync(c, Box::new(move |r| tx.send(r).unwrap()), true)
        .unwrap();
    rx.recv().unwrap()
}

/// The partition of a key of `key`.
fn part(s: &Store, k: &str) -> u16 {
    s.partition_of(&keycodec::encode_binary(k.as_bytes()).unwrap())
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
