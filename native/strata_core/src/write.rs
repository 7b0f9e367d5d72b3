//! Writes: validated atomic commits, applied either inline by the caller or by the writer
//! thread.
//!
//! A commit lists the versions its reads saw and the values it writes. Under the write gate
//! (one commit inside RocksDB at a time) and the write locks of every partition it touches
//! (taken in ascending order, so commits never deadlock), the reads are validated against the
//! current versions, each write takes the next sequence number of its partition as its version,
//! and one RocksDB WriteBatch carries the data and the log entries.
//!
//! The writer thread drains every queued commit into one batch: sync commits, so concurrent
//! sync writers share one fsync (group commit), and async commits that found the gate taken, so
//! concurrent writers share one write instead of waiting for each other inside RocksDB. Commits
//! in one group are validated in queue order against each other's writes, exactly as if
//! applied one by one.

use crate::store::{
    log_key, with_read_opts, Inner, Stored, CF_DATA, CF_LOG, FLAG_LIVE, FLAG_TOMBSTONE, HEADER,
    MAX_VALUE_BYTES, OP_DELETE, OP_PUT,
};
use crate::{Error, Store};
use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use parking_lot::MutexGuard;
use rocksdb::{WriteBatch, WriteOptions};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Commits waiting for the writer at most; past that, writers get back-pressure.
const QUEUE: usize = 4096;
/// Commits merged into one batch at most.
const MAX_GROUP: usize = 512;

thread_local! {
    /// Async write options, made once per thread: (never stall, may stall).
    static WRITE_OPTS: (WriteOptions, WriteOptions) = {
        let mut fast = WriteOptions::default();
        fast.set_no_slowdown(true);
        (fast, WriteOptions::default())
    };
}

/// A version a commit's read observed; the commit aborts if the key's version has changed.
#[derive(Debug, Clone)]
pub struct ReadCheck {
    /// The data key (partition prefix and encoding).
    pub key: Vec<u8>,
    /// The version seen, 0 for a key that never existed.
    pub version: u64,
}

/// One write of a commit.
#[derive(Debug, Clone)]
pub struct Write {
    /// The data key (partition prefix and encoding).
    pub key: Vec<u8>,
    /// The value's external term format, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

impl Write {
    /// A put; fails when the value is over `MAX_VALUE_BYTES`.
    pub fn put(key: Vec<u8>, etf: &[u8]) -> Result<Write, Error> {
        if etf.len() > MAX_VALUE_BYTES {
            return Err(Error::ValueTooLarge);
        }
        Ok(Write {
            key,
            value: Some(etf.to_vec()),
        })
    }

    /// A delete (it leaves a versioned tombstone).
    pub fn delete(key: Vec<u8>) -> Write {
        Write { key, value: None }
    }
}

/// An atomic set of writes, conditional on the versions of some reads.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Versions to validate.
    pub reads: Vec<ReadCheck>,
    /// Writes to apply if every read still has its version.
    pub writes: Vec<Write>,
}

/// Called by the writer thread with the outcome of a queued commit.
pub type CommitReply = Box<dyn FnOnce(Result<(), Error>) + Send>;

/// Where an async commit was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// By the caller: it is done.
    Inline,
    /// Queued for the writer thread, which calls the reply when it is done.
    Queued,
}

struct Queued {
    commit: Commit,
    reply: CommitReply,
    sync: bool,
}

pub(crate) struct GroupWriter {
    tx: Sender<Queued>,
    thread: JoinHandle<()>,
}

impl GroupWriter {
    pub(crate) fn start(inner: Arc<Inner>) -> Result<GroupWriter, Error> {
        let (tx, rx) = channel::bounded(QUEUE);
        let thread = std::thread::Builder::new()
            .name("strata-commit".into())
            .spawn(move || run_writer(&inner, rx))
            .map_err(|e| Error::Rocks(format!("cannot start writer thread: {e}")))?;
        Ok(GroupWriter { tx, thread })
    }

    pub(crate) fn stop(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

fn partition(key: &[u8]) -> Result<usize, Error> {
    match key {
        [a, b, ..] => Ok(u16::from_be_bytes([*a, *b]) as usize),
        _ => Err(Error::BadKey("data key without partition")),
    }
}

/// The partitions a set of commits touches, ascending and without duplicates.
fn partitions_of<'a>(
    inner: &Inner,
    commits: impl Iterator<Item = &'a Commit>,
) -> Result<Vec<usize>, Error> {
    let mut parts = Vec::new();
    for c in commits {
        for k in c
            .reads
            .iter()
            .map(|r| &r.key)
            .chain(c.writes.iter().map(|w| &w.key))
        {
            let p = partition(k)?;
            if p >= inner.seqs.len() {
                return Err(Error::Invalid("no such partition".into()));
            }
            parts.push(p);
        }
    }
    parts.sort_unstable();
    parts.dedup();
    Ok(parts)
}

/// Write locks of a set of partitions, with the sequence numbers to restore if the write fails.
struct Locked<'a> {
    guards: Vec<(usize, MutexGuard<'a, u64>, u64)>,
}

impl<'a> Locked<'a> {
    fn take(inner: &'a Inner, parts: &[usize], blocking: bool) -> Result<Locked<'a>, Error> {
        let mut guards = Vec::with_capacity(parts.len());
        for &p in parts {
            let g = if blocking {
                inner.seqs[p].lock()
            } else {
                inner.seqs[p].try_lock().ok_or(Error::WouldBlock)?
            };
            let saved = *g;
            guards.push((p, g, saved));
        }
        Ok(Locked { guards })
    }

    fn next_seq(&mut self, p: usize) -> u64 {
        let (_, g, _) = self
            .guards
            .iter_mut()
            .find(|(q, _, _)| *q == p)
            .expect("partition locked");
        **g += 1;
        **g
    }

    fn rollback(&mut self) {
        for (_, g, saved) in &mut self.guards {
            **g = *saved;
        }
    }
}

/// Builds the batch for a group of commits: validates each against the store and the writes of
/// the commits before it, and returns one result per commit (Ok for those in the batch).
fn build(
    inner: &Inner,
    locked: &mut Locked,
    commits: &[&Commit],
    blocking: bool,
    batch: &mut WriteBatch,
) -> Result<Vec<Result<(), Error>>, Error> {
    let data = inner.cf(CF_DATA);
    let log = inner.cf(CF_LOG);
    // Versions written by earlier commits of this group (not needed for a group of one).
    let mut written: HashMap<&[u8], u64> = HashMap::new();
    let grouped = commits.len() > 1;
    let mut results = Vec::with_capacity(commits.len());
    for c in commits {
        let mut conflicts = Vec::new();
        for (i, r) in c.reads.iter().enumerate() {
            let current = match written.get(r.key.as_slice()) {
                Some(v) => *v,
                None => {
                    let rec = with_read_opts(blocking, None, |ro| {
                        inner.db.get_pinned_cf_opt(data, &r.key, ro)
                    })?;
                    match rec {
                        Some(rec) => Stored::parse(&rec)?.version,
                        None => 0,
                    }
                }
            };
            if current != r.version {
                conflicts.push(i);
            }
        }
        if !conflicts.is_empty() {
            results.push(Err(Error::Conflict(conflicts)));
            continue;
        }
        for w in &c.writes {
            let p = partition(&w.key)?;
            let seq = locked.next_seq(p);
            let mut record = Vec::with_capacity(HEADER + w.value.as_ref().map_or(0, |v| v.len()));
            record.push(if w.value.is_some() {
                FLAG_LIVE
            } else {
                FLAG_TOMBSTONE
            });
            record.extend_from_slice(&seq.to_be_bytes());
            if let Some(v) = &w.value {
                record.extend_from_slice(v);
            }
            batch.put_cf(data, &w.key, &record);
            let mut entry = Vec::with_capacity(w.key.len() - 1);
            entry.push(if w.value.is_some() { OP_PUT } else { OP_DELETE });
            entry.extend_from_slice(&w.key[2..]);
            batch.put_cf(log, log_key(p as u16, seq), &entry);
            if grouped {
                written.insert(&w.key, seq);
            }
        }
        results.push(Ok(()));
    }
    Ok(results)
}

impl Store {
    /// Applies a commit with async durability. With `blocking` false it never waits: another
    /// commit in progress, a busy partition, a value not in cache or a write stall give
    /// `Error::WouldBlock`, and nothing is written.
    pub fn commit(&self, commit: &Commit, blocking: bool) -> Result<(), Error> {
        let inner = &*self.inner;
        let _gate = if blocking {
            inner.gate.lock()
        } else {
            inner.gate.try_lock().ok_or(Error::WouldBlock)?
        };
        apply_inline(inner, commit, blocking)
    }

    /// Applies a commit with async durability without waiting: inline when no other commit is
    /// in progress, otherwise queued for the writer thread, which applies it in a group with
    /// the others waiting and then calls the reply `reply()` makes. A full queue, a busy
    /// partition, a value not in cache or a write stall give `Error::WouldBlock`, and nothing
    /// is written.
    pub fn commit_or_queue(
        &self,
        commit: Commit,
        reply: impl FnOnce() -> CommitReply,
    ) -> Result<Applied, Error> {
        let inner = &*self.inner;
        let gate = match inner.contended.load(Ordering::Relaxed) {
            true => None,
            false => inner.gate.try_lock(),
        };
        match gate {
            Some(_gate) => apply_inline(inner, &commit, false).map(|()| Applied::Inline),
            None => {
                inner.contended.store(true, Ordering::Relaxed);
                self.queue(commit, reply(), false, false)
                    .map(|()| Applied::Queued)
            }
        }
    }

    /// Queues a commit for the group-commit writer, which applies it with sync durability and
    /// then calls `reply`. With `blocking` false a full queue gives `Error::WouldBlock` (and
    /// `reply` is not called); with `blocking` true the caller waits for room.
    pub fn commit_sync(
        &self,
        commit: Commit,
        reply: CommitReply,
        blocking: bool,
    ) -> Result<(), Error> {
        self.queue(commit, reply, true, blocking)
    }

    fn queue(
        &self,
        commit: Commit,
        reply: CommitReply,
        sync: bool,
        blocking: bool,
    ) -> Result<(), Error> {
        partitions_of(&self.inner, std::iter::once(&commit))?;
        let writer = self.writer.read();
        let w = writer.as_ref().ok_or(Error::Closed)?;
        let q = Queued {
            commit,
            reply,
            sync,
        };
        if blocking {
            w.tx.send(q).map_err(|_| Error::Closed)
        } else {
            match w.tx.try_send(q) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(Error::WouldBlock),
                Err(TrySendError::Disconnected(_)) => Err(Error::Closed),
            }
        }
    }
}

/// Applies one commit in the calling thread; the caller holds the write gate.
fn apply_inline(inner: &Inner, commit: &Commit, blocking: bool) -> Result<(), Error> {
    let parts = partitions_of(inner, std::iter::once(commit))?;
    let mut locked = Locked::take(inner, &parts, blocking)?;
    let mut batch = WriteBatch::default();
    let result = build(inner, &mut locked, &[commit], blocking, &mut batch);
    let outcome = match result {
        Ok(mut rs) => rs.pop().expect("one result"),
        Err(e) => Err(e),
    };
    if outcome.is_err() || commit.writes.is_empty() {
        locked.rollback();
        return outcome;
    }
    let written = WRITE_OPTS.with(|(fast, slow)| {
        inner
            .db
            .write_opt(batch, if blocking { slow } else { fast })
    });
    if let Err(e) = written {
        locked.rollback();
        return Err(e.into());
    }
    Ok(())
}

fn run_writer(inner: &Inner, rx: Receiver<Queued>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(q) => group.push(q),
                Err(_) => break,
            }
        }
        let results = apply_group(inner, &group);
        // Writers keep queueing while groups form; a group of one means they no longer meet.
        inner.contended.store(group.len() > 1, Ordering::Relaxed);
        for (q, r) in group.into_iter().zip(results) {
            (q.reply)(r);
        }
    }
}

/// Applies a group of queued commits in one batch, fsynced if any of them asked for it.
fn apply_group(inner: &Inner, group: &[Queued]) -> Vec<Result<(), Error>> {
    let commits: Vec<&Commit> = group.iter().map(|q| &q.commit).collect();
    let fail = |e: Error| vec![Err(e); commits.len()];
    let _gate = inner.gate.lock();
    let parts = match partitions_of(inner, commits.iter().copied()) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let mut locked = match Locked::take(inner, &parts, true) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let mut batch = WriteBatch::default();
    let results = match build(inner, &mut locked, &commits, true, &mut batch) {
        Ok(r) => r,
        Err(e) => {
            locked.rollback();
            return fail(e);
        }
    };
    if batch.is_empty() {
        return results;
    }
    let mut wo = WriteOptions::default();
    wo.set_sync(group.iter().any(|q| q.sync));
    let written = inner.db.write_opt(batch, &wo);
    match written {
        Ok(()) => results,
        Err(e) => {
            locked.rollback();
            let e: Error = e.into();
            results.into_iter().map(|r| r.and(Err(e.clone()))).collect()
        }
    }
}
