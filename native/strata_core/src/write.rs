//! Writes: validated atomic commits, applied either inline by the caller or by the writer
//! thread.
//!
//! A commit lists the versions its reads saw and the values it writes. Under the write gate
//! (one commit inside RocksDB at a time) and the write locks of every partition it touches
//! (taken in ascending order, so commits never deadlock), the reads are validated against the
//! current versions, each write takes the next sequence number of its partition as its version,
//! and one RocksDB WriteBatch carries the data and the log entries (one per partition the
//! commit writes).
//!
//! An async commit that finds the gate taken spins for it a few microseconds (about one small
//! commit's time), then joins the pending queue, and whoever holds the gate serves that queue
//! after its own commit, as one batch per round (flat combining). The writer thread drains its
//! channel the same way: sync commits, so concurrent sync writers share one fsync (group
//! commit), with whatever async commits are pending.
//! Commits in one group are validated in queue order against each other's writes, exactly as
//! if applied one by one.

use crate::store::{
    with_read_opts, written_slot, Inner, LogRecord, Stored, CF_DATA, CF_LOG, FLAG_LIVE,
    FLAG_TOMBSTONE, HEADER, MAX_VALUE_BYTES,
};
use crate::{etf, Error, Store};
use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use crossbeam::queue::ArrayQueue;
use parking_lot::MutexGuard;
use rocksdb::{WriteBatch, WriteOptions};
use std::collections::HashMap;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Commits waiting for the writer, and async commits pending, at most each; past that,
/// writers get back-pressure.
pub(crate) const QUEUE: usize = 4096;
/// Commits merged into one batch at most.
const MAX_GROUP: usize = 512;
/// How long one caller keeps serving pending commits, in rounds of at most `SERVE_GROUP`
/// (a round of 64 small commits takes well under this); the writer thread takes what is left,
/// so a call on a scheduler stays short. The writer is the last resort: waking it costs a
/// thread switch, and on a machine whose cores the schedulers keep busy, a wait for a core.
const SERVE_BUDGET: Duration = Duration::from_micros(500);
const SERVE_GROUP: usize = 64;
/// How long an async commit that finds the gate taken spins for it before it queues: about
/// one small commit's time under the gate. Measured with 8 processes putting (2 schedulers),
/// medians of alternating runs: 114,810 puts/s with 4 us (15 runs), about 115,000 with 2 us
/// and 100,000 with 10 us (4 runs each), 100,871 without (15 runs).
const SPIN: Duration = Duration::from_micros(4);

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
    /// The record to store, laid out once: the flag, room for the version (filled in when the
    /// write is applied), then the value's external term format for a put.
    record: Vec<u8>,
}

impl Write {
    /// A put of a value's external term format; fails when it is over `MAX_VALUE_BYTES`. The
    /// bytes are copied once, into the record that goes to RocksDB.
    pub fn put(key: Vec<u8>, etf: &[u8]) -> Result<Write, Error> {
        if etf.len() > MAX_VALUE_BYTES {
            return Err(Error::ValueTooLarge);
        }
        let mut record = Vec::with_capacity(HEADER + etf.len());
        record.push(FLAG_LIVE);
        record.extend_from_slice(&[0; HEADER - 1]);
        record.extend_from_slice(etf);
        Ok(Write { key, record })
    }

    /// A put of a binary value, laid out as its external term format (`BINARY_EXT`) straight
    /// from `bytes`: the same stored form as `put` of `term_to_binary(Bin)`, with one copy.
    pub fn put_binary(key: Vec<u8>, bytes: &[u8]) -> Result<Write, Error> {
        const ETF_HEADER: usize = 6;
        if bytes.len() > MAX_VALUE_BYTES - ETF_HEADER {
            return Err(Error::ValueTooLarge);
        }
        let mut record = Vec::with_capacity(HEADER + ETF_HEADER + bytes.len());
        record.push(FLAG_LIVE);
        record.extend_from_slice(&[0; HEADER - 1]);
        record.extend_from_slice(&[etf::VERSION, etf::BINARY_EXT]);
        record.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        record.extend_from_slice(bytes);
        Ok(Write { key, record })
    }

    /// A delete (it leaves a versioned tombstone).
    pub fn delete(key: Vec<u8>) -> Write {
        let mut record = vec![0; HEADER];
        record[0] = FLAG_TOMBSTONE;
        Write { key, record }
    }

    /// True for a put, false for a delete.
    fn is_put(&self) -> bool {
        self.record[0] == FLAG_LIVE
    }
}

/// An atomic set of writes, conditional on the versions of some reads.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Versions to validate.
    pub reads: Vec<ReadCheck>,
    /// Writes to apply if every read still has its version.
    pub writes: Vec<Write>,
    /// `Store::seq_of` the snapshot every read came from, if they did. Then a read of a key
    /// nobody wrote since that snapshot (nor any key sharing its slot of `Inner::written`) is
    /// valid without looking the key up again.
    pub snapshot: Option<u64>,
}

/// Called with the outcome of a queued commit, by whichever thread applies it.
pub type CommitReply = Box<dyn FnOnce(Result<(), Error>) + Send>;

/// Where an async commit was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// By the caller: it is done.
    Inline,
    /// Queued: whoever applies it calls the reply.
    Queued,
}

/// A commit waiting for its turn, with the reply to call once it is applied.
pub(crate) struct Queued {
    commit: Commit,
    reply: CommitReply,
    sync: bool,
}

/// Async commits waiting for the next holder of the gate.
pub(crate) type Pending = ArrayQueue<Queued>;

/// What the writer thread is asked to do.
enum Job {
    /// Apply a commit (with whatever else is waiting).
    Commit(Queued),
    /// Serve the pending async commits that callers left.
    Serve,
}

pub(crate) struct GroupWriter {
    tx: Sender<Job>,
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
fn build<'c>(
    inner: &Inner,
    locked: &mut Locked,
    commits: &'c mut [&mut Commit],
    blocking: bool,
    batch: &mut WriteBatch,
) -> Result<Vec<Result<(), Error>>, Error> {
    let data = inner.cf(CF_DATA);
    let log = inner.cf(CF_LOG);
    // Versions written by earlier commits of this group (not needed for a group of one).
    let mut written: HashMap<&'c [u8], u64> = HashMap::new();
    let grouped = commits.len() > 1;
    let mut results = Vec::with_capacity(commits.len());
    // A commit's log entries, one per partition it writes.
    let mut logs: Vec<LogRecord> = Vec::new();
    for c in commits.iter_mut() {
        let Commit {
            reads,
            writes,
            snapshot,
        } = &mut **c;
        let mut conflicts = Vec::new();
        for (i, r) in reads.iter().enumerate() {
            let current = match written.get(r.key.as_slice()) {
                Some(v) => *v,
                // Nothing written to its slot of keys since the snapshot it was read from.
                None if snapshot.is_some_and(|s| {
                    inner.written[written_slot(&r.key)].load(Ordering::Relaxed) <= s
                }) =>
                {
                    r.version
                }
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
        logs.clear();
        for w in writes.iter_mut() {
            let p = partition(&w.key)?;
            let seq = locked.next_seq(p);
            w.record[1..HEADER].copy_from_slice(&seq.to_be_bytes());
            batch.put_cf(data, &w.key, &w.record);
            let delete = !w.is_put();
            match logs.iter_mut().find(|l| l.partition as usize == p) {
                Some(l) => l.add(seq, delete, &w.key[2..]),
                None => logs.push(LogRecord::new(p as u16, seq, delete, &w.key[2..])),
            }
            if grouped {
                written.insert(w.key.as_slice(), seq);
            }
        }
        for l in &logs {
            batch.put_cf(log, l.key(), l.value());
        }
        results.push(Ok(()));
    }
    Ok(results)
}

impl Store {
    /// Applies a commit with async durability. With `blocking` false it never waits: another
    /// commit in progress, a busy partition, a value not in cache or a write stall give
    /// `Error::WouldBlock`, and nothing is written. Then serves pending commits (see
    /// `commit_or_queue`). The writes' records get their versions in place.
    pub fn commit(&self, commit: &mut Commit, blocking: bool) -> Result<(), Error> {
        let inner = &*self.inner;
        let gate = if blocking {
            inner.gate.lock()
        } else {
            inner.gate.try_lock().ok_or(Error::WouldBlock)?
        };
        let applied = apply_inline(inner, commit, blocking);
        drop(gate);
        self.serve();
        applied
    }

    /// Applies a commit with async durability without waiting: inline when no other commit is
    /// in progress or the one in progress ends within `SPIN`, otherwise queued for whoever
    /// holds the gate, which applies it in a group with the others pending and then calls the
    /// reply `reply()` makes. Either way the caller then serves what others queued while it
    /// held the gate or waited; the count of those commits comes back with the outcome, work
    /// done on the caller's time. A full queue, a busy partition, a value not in cache or a
    /// write stall give `Error::WouldBlock`, and nothing is written.
    ///
    /// The reply may be called on this thread, during this call or a later call of another
    /// commit, or on the writer thread.
    pub fn commit_or_queue(
        &self,
        mut commit: Commit,
        reply: impl FnOnce() -> CommitReply,
    ) -> (Result<Applied, Error>, usize) {
        let inner = &*self.inner;
        let applied = match gate_spinning(inner, &commit) {
            Some(gate) => {
                let r = apply_inline(inner, &mut commit, false);
                drop(gate);
                r.map(|()| Applied::Inline)
            }
            None => partitions_of(inner, std::iter::once(&commit)).and_then(|_| {
                let q = Queued {
                    commit,
                    reply: reply(),
                    sync: false,
                };
                match inner.pending.push(q) {
                    Ok(()) => Ok(Applied::Queued),
                    Err(_) => Err(Error::WouldBlock),
                }
            }),
        };
        (applied, self.serve())
    }

    /// Serves pending async commits while the gate is free, a group per round. Whoever
    /// releases the gate calls this, and a commit is queued only after the gate was found
    /// taken, so a pending commit always has someone to serve it: the holder at the time, or
    /// the writer thread when the holder's time budget runs out. Returns how many commits this
    /// call applied or answered.
    pub(crate) fn serve(&self) -> usize {
        let inner = &*self.inner;
        let mut started = None;
        let mut served = 0;
        while started.is_none_or(|t: Instant| t.elapsed() < SERVE_BUDGET) {
            // Orders the gate's release (or the push) before the look at the queue.
            fence(Ordering::SeqCst);
            if inner.pending.is_empty() {
                return served;
            }
            let Some(gate) = inner.gate.try_lock() else {
                return served; // its holder serves them when it leaves
            };
            started.get_or_insert_with(Instant::now);
            let mut group = drain(&inner.pending, Vec::new(), SERVE_GROUP);
            let results = apply_group(inner, &mut group, false);
            drop(gate);
            match results {
                Err(Error::WouldBlock) => self.hand_over(group),
                Err(e) => {
                    served += group.len();
                    reply_all(group, &e)
                }
                Ok(results) => {
                    served += group.len();
                    reply_each(group, results)
                }
            }
        }
        fence(Ordering::SeqCst);
        if !inner.pending.is_empty() {
            self.send_writer(Job::Serve, |_| {});
        }
        served
    }

    /// Gives commits that would have blocked a scheduler to the writer thread, which may wait.
    fn hand_over(&self, group: Vec<Queued>) {
        for q in group {
            self.send_writer(Job::Commit(q), |job| {
                if let Job::Commit(q) = job {
                    (q.reply)(Err(Error::WouldBlock));
                }
            });
        }
    }

    /// Sends `job` to the writer without waiting; `refused` gets it back when the channel is
    /// full or the writer stopped. A refused `Serve` needs nothing: a writer with a full
    /// channel looks at the pending queue after every group, and a stopping one before it ends.
    fn send_writer(&self, job: Job, refused: impl FnOnce(Job)) {
        let writer = self.writer.read();
        let job = match writer.as_ref() {
            Some(w) => match w.tx.try_send(job) {
                Ok(()) => return,
                Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => job,
            },
            None => job,
        };
        refused(job)
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
        partitions_of(&self.inner, std::iter::once(&commit))?;
        let writer = self.writer.read();
        let w = writer.as_ref().ok_or(Error::Closed)?;
        let job = Job::Commit(Queued {
            commit,
            reply,
            sync: true,
        });
        if blocking {
            w.tx.send(job).map_err(|_| Error::Closed)
        } else {
            match w.tx.try_send(job) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(Error::WouldBlock),
                Err(TrySendError::Disconnected(_)) => Err(Error::Closed),
            }
        }
    }
}

/// The write gate, if it is free or comes free within `SPIN`. A commit holds it for a few
/// microseconds: spinning that long is cheaper than queueing, whose answer by message often
/// has to wake a scheduler that went to sleep meanwhile. Before spinning, `warm` looks up the
/// commit's first keys, trying the gate after each; the lookups read memory only (memtable and
/// block cache), so they never wait on the disk.
fn gate_spinning<'a>(inner: &'a Inner, commit: &Commit) -> Option<MutexGuard<'a, ()>> {
    if let Some(gate) = inner.gate.try_lock() {
        return Some(gate);
    }
    let start = Instant::now();
    for w in commit.writes.iter().take(WARM_KEYS) {
        warm(inner, &w.key);
        if let Some(gate) = inner.gate.try_lock() {
            return Some(gate);
        }
    }
    while start.elapsed() < SPIN {
        std::hint::spin_loop();
        if let Some(gate) = inner.gate.try_lock() {
            return Some(gate);
        }
    }
    None
}

/// How many of a waiting commit's keys `gate_spinning` looks up before it spins.
const WARM_KEYS: usize = 4;

/// Looks up a key a waiting commit writes. The search passes the memtable nodes the insert
/// will pass and brings them into the caches, the last level shared by the cores included,
/// where the gate's holder finds them if it applies this commit; the core would otherwise spin.
/// What the lookup finds, or any error, is of no use here: the commit validates and writes
/// under the gate as before. Like a get, a lookup copies the key's current value out of the
/// memtable, so warming a key that holds a large value costs what reading it costs. A seek of
/// an iterator over the memtables only, which copies nothing, made 8 putting processes 8%
/// slower than this (163,110 against 178,283 puts/s, 6 alternating runs).
fn warm(inner: &Inner, key: &[u8]) {
    with_read_opts(false, None, |ro| {
        let _ = inner.db.get_pinned_cf_opt(inner.cf(CF_DATA), key, ro);
    })
}

/// Moves pending commits into `group`, up to `max` in all.
fn drain(pending: &Pending, mut group: Vec<Queued>, max: usize) -> Vec<Queued> {
    while group.len() < max {
        match pending.pop() {
            Some(q) => group.push(q),
            None => break,
        }
    }
    group
}

fn reply_each(group: Vec<Queued>, results: Vec<Result<(), Error>>) {
    for (q, r) in group.into_iter().zip(results) {
        (q.reply)(r);
    }
}

fn reply_all(group: Vec<Queued>, e: &Error) {
    for q in group {
        (q.reply)(Err(e.clone()));
    }
}

/// Applies one commit in the calling thread; the caller holds the write gate.
fn apply_inline(inner: &Inner, commit: &mut Commit, blocking: bool) -> Result<(), Error> {
    apply(inner, &mut [commit], false, blocking)?
        .pop()
        .expect("one result")
}

fn run_writer(inner: &Inner, rx: Receiver<Job>) {
    loop {
        fence(Ordering::SeqCst);
        let mut group = Vec::new();
        if inner.pending.is_empty() {
            match rx.recv() {
                Ok(Job::Commit(q)) => group.push(q),
                Ok(Job::Serve) => {}
                Err(_) => break,
            }
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Job::Commit(q)) => group.push(q),
                Ok(Job::Serve) => {}
                Err(_) => break,
            }
        }
        let group = drain(&inner.pending, group, MAX_GROUP);
        if !group.is_empty() {
            apply_and_reply(inner, group);
        }
    }
    // Closing: commits queued by callers that found the gate taken still get their answer.
    while !inner.pending.is_empty() {
        apply_and_reply(inner, drain(&inner.pending, Vec::new(), MAX_GROUP));
    }
}

/// Applies a group on the writer thread, which may wait for the gate, locks and stalls.
fn apply_and_reply(inner: &Inner, mut group: Vec<Queued>) {
    let gate = inner.gate.lock();
    let results = apply_group(inner, &mut group, true);
    drop(gate);
    match results {
        Ok(results) => reply_each(group, results),
        Err(e) => reply_all(group, &e),
    }
}

/// Applies a group of queued commits in one batch, fsynced if any of them asked for it; the
/// caller holds the gate.
fn apply_group(
    inner: &Inner,
    group: &mut [Queued],
    blocking: bool,
) -> Result<Vec<Result<(), Error>>, Error> {
    let sync = group.iter().any(|q| q.sync);
    let mut commits: Vec<&mut Commit> = group.iter_mut().map(|q| &mut q.commit).collect();
    apply(inner, &mut commits, sync, blocking)
}

/// Applies commits in one batch; the caller holds the gate. Returns one result per commit,
/// or an error for them all (nothing written): not `blocking`, `Error::WouldBlock` when it
/// would have to wait.
fn apply(
    inner: &Inner,
    commits: &mut [&mut Commit],
    sync: bool,
    blocking: bool,
) -> Result<Vec<Result<(), Error>>, Error> {
    let parts = partitions_of(inner, commits.iter().map(|c| &**c))?;
    let mut locked = Locked::take(inner, &parts, blocking)?;
    let mut batch = WriteBatch::default();
    let results = match build(inner, &mut locked, commits, blocking, &mut batch) {
        Ok(r) => r,
        Err(e) => {
            locked.rollback();
            return Err(e);
        }
    };
    if batch.is_empty() {
        return Ok(results);
    }
    let written = if sync {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        wo.set_no_slowdown(!blocking);
        inner.db.write_opt(batch, &wo)
    } else {
        WRITE_OPTS.with(|(fast, slow)| {
            inner
                .db
                .write_opt(batch, if blocking { slow } else { fast })
        })
    };
    match written {
        Ok(()) => {
            // At least this batch's last sequence number (only the gate holder writes data):
            // the keys it wrote are visible from there on.
            let seq = inner.db.latest_sequence_number();
            for (c, r) in commits.iter().zip(&results) {
                if r.is_ok() {
                    for w in &c.writes {
                        inner.written[written_slot(&w.key)].store(seq, Ordering::Relaxed);
                    }
                }
            }
            Ok(results)
        }
        Err(e) => {
            locked.rollback();
            Err(e.into())
        }
    }
}
