//! Requests and their execution over one `strata_core::Store`.
//!
//! The replies have the shapes of the NIF's (see `strata_nif`), except that keys and values are
//! binaries holding their external term format, which the Erlang side turns back into terms.
//! `WouldBlock` never reaches Erlang: the dispatcher repeats such a request on a worker that
//! may block.

use crate::wire::{as_atom, as_bytes, as_list, as_u64, atom, binary, error, list, tuple, uint};
use eetf::Term;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use strata_core::keycodec;
use strata_core::{Bound, Commit, Config, Error, ReadCheck, Snapshot, Store, Write};

/// Snapshots a store may have open at once; past that, `{error, too_many_snapshots}`.
pub const MAX_SNAPSHOTS: usize = 4096;
/// Entries a scan page or log read may ask for.
const MAX_PAGE: u64 = 100_000;

/// A decoded request. Keys and values are external term format bytes.
#[derive(Debug)]
pub enum Request {
    /// Opens the store; every other request needs it open.
    Open(Config),
    /// Closes the store (queued sync commits finish first).
    Close,
    /// `{ok, Value}` | `{error, not_found}`.
    Get(Vec<u8>),
    /// `{ok, Value, Version}` | `{not_found, Version}` as of a snapshot, or of now.
    GetVersioned(Option<u64>, Vec<u8>),
    /// `{ok, SnapshotId}`.
    Snapshot,
    /// Releases a snapshot: `ok`.
    Release(u64),
    /// A validated atomic commit of `[{Key, Version}]` reads and `[{Key, Value | none}]`
    /// writes, with sync (fsynced, group commit) or async durability.
    Commit {
        reads: Vec<(Vec<u8>, u64)>,
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        sync: bool,
    },
    /// One page of a scan over a snapshot.
    Scan {
        snap: u64,
        lo: WireBound,
        hi: WireBound,
        reverse: bool,
        limit: usize,
        partition: Option<u16>,
    },
    /// The partition of a key.
    PartitionOf(Vec<u8>),
    /// `{ok, [{Seq, Key, put | delete}]}`.
    LogSince(u16, u64, usize),
    /// The last sequence number of a partition.
    LastSeq(u16),
    /// `{ok, PartitionsTruncated}`.
    TruncateLog(u64),
    /// Writes a checkpoint into a new directory: `ok`.
    Backup(String),
    /// `{ok, Binary}` | `not_found`: a record of the layers above from the meta column family.
    MetaGet(Vec<u8>),
    /// Replaces a meta record durably: `ok`.
    MetaPut(Vec<u8>, Vec<u8>),
    /// `[{Name, Integer}]`.
    Info,
}

/// A scan bound as it travels: keys as their external term format, continuations raw.
#[derive(Debug)]
pub enum WireBound {
    Unbounded,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
    /// `{after | before, Binary}`: strictly past an encoded key from a previous page.
    Past(Vec<u8>),
}

impl Request {
    /// True for requests that always wait on the disk; they go straight to a worker.
    pub fn blocks(&self) -> bool {
        matches!(
            self,
            Request::Open(_)
                | Request::Close
                | Request::LogSince(..)
                | Request::TruncateLog(_)
                | Request::Backup(_)
                | Request::MetaGet(_)
                | Request::MetaPut(..)
        )
    }
}

/// Why a request failed, as the `Reason` of `{error, Reason}`.
#[derive(Debug)]
pub enum Fail {
    /// From the core, with the NIF's reason terms.
    Core(Error),
    /// A request before `open`.
    NotOpen,
    /// An unknown or already released snapshot id.
    NoSnapshot,
    /// `MAX_SNAPSHOTS` are open.
    TooManySnapshots,
    /// The frame was not a request this program knows.
    BadRequest(String),
    /// The handler panicked; the program carries on.
    Panic(String),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Core(e)
    }
}

fn text(s: &str) -> Term {
    binary(s.as_bytes().to_vec())
}

impl Fail {
    /// The `{error, Reason}` reply.
    pub fn term(&self) -> Term {
        let reason = match self {
            Fail::Core(e) => match e {
                Error::WouldBlock => atom("would_block"),
                Error::Locked => atom("locked"),
                Error::Closed => atom("closed"),
                Error::NoSnapshot => atom("no_snapshot"),
                Error::Conflict(idx) => tuple(vec![
                    atom("conflict"),
                    list(idx.iter().map(|&i| uint(i as u64)).collect()),
                ]),
                Error::BadKey(why) => tuple(vec![atom("bad_key"), text(why)]),
                Error::KeyTooLarge => atom("key_too_large"),
                Error::ValueTooLarge => atom("value_too_large"),
                Error::Invalid(why) => tuple(vec![atom("invalid"), text(why)]),
                Error::PartitionsMismatch { stored, requested } => tuple(vec![
                    atom("partitions_mismatch"),
                    uint(u64::from(*stored)),
                    uint(u64::from(*requested)),
                ]),
                Error::Corrupt(why) => tuple(vec![atom("corrupt"), text(why)]),
                Error::Rocks(why) => tuple(vec![atom("rocksdb"), text(why)]),
            },
            Fail::NotOpen => atom("not_open"),
            Fail::NoSnapshot => atom("no_snapshot"),
            Fail::TooManySnapshots => atom("too_many_snapshots"),
            Fail::BadRequest(why) => tuple(vec![atom("bad_request"), text(why)]),
            Fail::Panic(why) => tuple(vec![atom("panic"), text(why)]),
        };
        error(reason)
    }
}

// ---- parsing ----

fn bad(why: &str) -> Fail {
    Fail::BadRequest(why.to_string())
}

fn etf_arg(t: Term, what: &str) -> Result<Vec<u8>, Fail> {
    match t {
        Term::Binary(b) => Ok(b.bytes),
        _ => Err(bad(&format!(
            "{what} must be a binary (term_to_binary of the term)"
        ))),
    }
}

fn u64_arg(t: &Term, what: &str) -> Result<u64, Fail> {
    as_u64(t).ok_or_else(|| bad(&format!("{what} must be a non-negative integer")))
}

fn u16_arg(t: &Term, what: &str) -> Result<u16, Fail> {
    u16::try_from(u64_arg(t, what)?).map_err(|_| bad(&format!("{what} is out of range")))
}

fn page_arg(t: &Term, what: &str) -> Result<usize, Fail> {
    match u64_arg(t, what)? {
        n if n <= MAX_PAGE => Ok(n as usize),
        _ => Err(bad(&format!("{what} is over {MAX_PAGE}"))),
    }
}

fn bool_arg(t: &Term, what: &str) -> Result<bool, Fail> {
    match as_atom(t) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(bad(&format!("{what} must be a boolean"))),
    }
}

fn path_arg(t: &Term, what: &str) -> Result<String, Fail> {
    as_bytes(t)
        .and_then(|b| std::str::from_utf8(b).ok())
        .map(str::to_string)
        .ok_or_else(|| bad(&format!("{what} must be a UTF-8 binary")))
}

fn bound_arg(t: Term) -> Result<WireBound, Fail> {
    if as_atom(&t) == Some("unbounded") {
        return Ok(WireBound::Unbounded);
    }
    let msg = "a bound is unbounded, {incl | excl, Key} or {after | before, Binary}";
    let Term::Tuple(tu) = t else {
        return Err(bad(msg));
    };
    let [kind, k]: [Term; 2] = tu.elements.try_into().map_err(|_| bad(msg))?;
    match as_atom(&kind) {
        Some("incl") => Ok(WireBound::Incl(etf_arg(k, "a bound's key")?)),
        Some("excl") => Ok(WireBound::Excl(etf_arg(k, "a bound's key")?)),
        Some("after" | "before") => Ok(WireBound::Past(etf_arg(k, "a continuation")?)),
        _ => Err(bad(msg)),
    }
}

fn open_arg(path: &Term, opts: &Term) -> Result<Config, Fail> {
    let mut cfg = Config::new(path_arg(path, "the data directory")?);
    let Term::Map(m) = opts else {
        return Err(bad("open options must be a map"));
    };
    for (k, v) in &m.map {
        match as_atom(k) {
            Some("partitions") => cfg.partitions = u16_arg(v, "partitions")?,
            Some("block_cache_bytes") => {
                cfg.block_cache_bytes = u64_arg(v, "block_cache_bytes")? as usize
            }
            Some("write_buffer_bytes") => {
                cfg.write_buffer_bytes = u64_arg(v, "write_buffer_bytes")? as usize
            }
            _ => return Err(bad("unknown open option")),
        }
    }
    Ok(cfg)
}

fn reads_arg(t: &Term) -> Result<Vec<(Vec<u8>, u64)>, Fail> {
    let msg = "reads are [{Key, Version}]";
    let items = as_list(t).ok_or_else(|| bad(msg))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Term::Tuple(tu) = item else {
            return Err(bad(msg));
        };
        let [k, v]: [Term; 2] = tu.elements.try_into().map_err(|_| bad(msg))?;
        let version = u64_arg(&v, "a read's version")?;
        out.push((etf_arg(k, "a read's key")?, version));
    }
    Ok(out)
}

type WireWrite = (Vec<u8>, Option<Vec<u8>>);

fn writes_arg(t: &Term) -> Result<Vec<WireWrite>, Fail> {
    let msg = "writes are [{put, Key, Value} | {delete, Key}]";
    let items = as_list(t).ok_or_else(|| bad(msg))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Term::Tuple(tu) = item else {
            return Err(bad(msg));
        };
        let mut e = tu.elements.into_iter();
        match (e.next(), e.next(), e.next(), e.next()) {
            (Some(op), Some(k), Some(v), None) if as_atom(&op) == Some("put") => {
                out.push((etf_arg(k, "a key")?, Some(etf_arg(v, "a value")?)));
            }
            (Some(op), Some(k), None, None) if as_atom(&op) == Some("delete") => {
                out.push((etf_arg(k, "a key")?, None));
            }
            _ => return Err(bad(msg)),
        }
    }
    Ok(out)
}

fn snap_arg(t: &Term) -> Result<Option<u64>, Fail> {
    if as_atom(t) == Some("latest") {
        return Ok(None);
    }
    Ok(Some(u64_arg(t, "a snapshot")?))
}

/// Decodes a request term.
pub fn parse(req: Term) -> Result<Request, Fail> {
    let (name, args) = match req {
        Term::Atom(a) => (a.name, Vec::new()),
        Term::Tuple(t) if !t.elements.is_empty() => {
            let mut e = t.elements;
            let name = match e.remove(0) {
                Term::Atom(a) => a.name,
                _ => return Err(bad("a request is an atom or a tuple led by one")),
            };
            (name, e)
        }
        _ => return Err(bad("a request is an atom or a tuple led by one")),
    };
    let wrong = || bad(&format!("wrong arguments for {name}"));
    let mut a = args.into_iter();
    let mut next = || a.next();
    let req = match (
        name.as_str(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    ) {
        ("open", Some(path), Some(opts), None, ..) => Request::Open(open_arg(&path, &opts)?),
        ("close", None, ..) => Request::Close,
        ("info", None, ..) => Request::Info,
        ("snapshot", None, ..) => Request::Snapshot,
        ("get", Some(k), None, ..) => Request::Get(etf_arg(k, "the key")?),
        ("get_versioned", Some(s), Some(k), None, ..) => {
            Request::GetVersioned(snap_arg(&s)?, etf_arg(k, "the key")?)
        }
        ("release", Some(s), None, ..) => Request::Release(u64_arg(&s, "a snapshot")?),
        ("put", Some(k), Some(v), None, ..) => Request::Commit {
            reads: Vec::new(),
            writes: vec![(etf_arg(k, "the key")?, Some(etf_arg(v, "the value")?))],
            sync: false,
        },
        ("delete", Some(k), None, ..) => Request::Commit {
            reads: Vec::new(),
            writes: vec![(etf_arg(k, "the key")?, None)],
            sync: false,
        },
        ("commit", Some(r), Some(w), Some(d), None, ..) => Request::Commit {
            reads: reads_arg(&r)?,
            writes: writes_arg(&w)?,
            sync: match as_atom(&d) {
                Some("sync") => true,
                Some("async") => false,
                _ => return Err(bad("durability is sync or async")),
            },
        },
        ("scan", Some(s), Some(lo), Some(hi), Some(rev), Some(lim), Some(p)) => {
            if a.next().is_some() {
                return Err(wrong());
            }
            Request::Scan {
                snap: u64_arg(&s, "a snapshot")?,
                lo: bound_arg(lo)?,
                hi: bound_arg(hi)?,
                reverse: bool_arg(&rev, "reverse")?,
                limit: page_arg(&lim, "the limit")?,
                partition: match as_atom(&p) {
                    Some("undefined") => None,
                    _ => Some(u16_arg(&p, "the partition")?),
                },
            }
        }
        ("partition_of", Some(k), None, ..) => Request::PartitionOf(etf_arg(k, "the key")?),
        ("log_since", Some(p), Some(after), Some(lim), None, ..) => Request::LogSince(
            u16_arg(&p, "the partition")?,
            u64_arg(&after, "after")?,
            page_arg(&lim, "the limit")?,
        ),
        ("last_seq", Some(p), None, ..) => Request::LastSeq(u16_arg(&p, "the partition")?),
        ("truncate_log", Some(k), None, ..) => Request::TruncateLog(u64_arg(&k, "keep")?),
        ("backup", Some(d), None, ..) => Request::Backup(path_arg(&d, "the directory")?),
        ("meta_get", Some(n), None, ..) => Request::MetaGet(etf_arg(n, "the name")?),
        ("meta_put", Some(n), Some(v), None, ..) => {
            Request::MetaPut(etf_arg(n, "the name")?, etf_arg(v, "the value")?)
        }
        (
            "open" | "close" | "info" | "snapshot" | "get" | "get_versioned" | "release" | "put"
            | "delete" | "commit" | "scan" | "partition_of" | "log_since" | "last_seq"
            | "truncate_log" | "backup" | "meta_get" | "meta_put",
            ..,
        ) => return Err(wrong()),
        _ => return Err(bad(&format!("unknown request {name}"))),
    };
    Ok(req)
}

// ---- execution ----

/// Called with the outcome of a sync commit, from the group-commit writer.
pub type Deliver = Box<dyn FnOnce(Result<Term, Fail>) + Send>;

/// The store and the snapshots handed out.
#[derive(Default)]
pub struct Engine {
    store: RwLock<Option<Store>>,
    /// Open means the store was opened once; after `close` requests answer `closed`.
    opened: std::sync::atomic::AtomicBool,
    snapshots: Mutex<HashMap<u64, Snapshot>>,
    next_snapshot: AtomicU64,
}

fn key(store: &Store, etf: &[u8]) -> Result<Vec<u8>, Fail> {
    Ok(store.data_key(keycodec::encode(etf)?))
}

fn bound(b: &WireBound) -> Result<Bound, Fail> {
    Ok(match b {
        WireBound::Unbounded => Bound::Unbounded,
        WireBound::Incl(k) => Bound::Included(keycodec::encode(k)?.bytes),
        WireBound::Excl(k) => Bound::Excluded(keycodec::encode(k)?.bytes),
        WireBound::Past(raw) => Bound::Excluded(raw.clone()),
    })
}

fn build_commit(s: &Store, reads: &[(Vec<u8>, u64)], writes: &[WireWrite]) -> Result<Commit, Fail> {
    let mut c = Commit {
        reads: Vec::with_capacity(reads.len()),
        writes: Vec::with_capacity(writes.len()),
        snapshot: None,
    };
    for (k, version) in reads {
        c.reads.push(ReadCheck {
            key: key(s, k)?,
            version: *version,
        });
    }
    for (k, v) in writes {
        c.writes.push(match v {
            Some(v) => Write::put(key(s, k)?, v)?,
            None => Write::delete(key(s, k)?),
        });
    }
    Ok(c)
}

impl Engine {
    fn with_store<T>(&self, f: impl FnOnce(&Store) -> Result<T, Fail>) -> Result<T, Fail> {
        let guard = self.store.read();
        match guard.as_ref() {
            Some(s) => f(s),
            None if self.opened.load(Ordering::Acquire) => Err(Error::Closed.into()),
            None => Err(Fail::NotOpen),
        }
    }

    fn snapshot(&self, id: u64) -> Result<Snapshot, Fail> {
        self.snapshots
            .lock()
            .get(&id)
            .cloned()
            .ok_or(Fail::NoSnapshot)
    }

    /// Runs a request. With `blocking` false it never waits on the disk or a lock and may
    /// fail with `WouldBlock`. A sync commit answers `Ok(None)` once queued and delivers its
    /// outcome later through `deliver`.
    pub fn execute(
        &self,
        req: &Request,
        blocking: bool,
        deliver: impl FnOnce() -> Deliver,
    ) -> Result<Option<Term>, Fail> {
        let ok = || Ok(Some(atom("ok")));
        match req {
            Request::Open(cfg) => {
                let mut guard = self.store.write();
                if guard.is_some() || self.opened.load(Ordering::Acquire) {
                    return Err(bad("the store was opened already"));
                }
                *guard = Some(Store::open(cfg.clone())?);
                self.opened.store(true, Ordering::Release);
                ok()
            }
            Request::Close => {
                let store = self.store.write().take();
                // Snapshots go first: the store releases them on close anyway.
                self.snapshots.lock().clear();
                if let Some(s) = store {
                    s.close();
                }
                ok()
            }
            Request::Get(k) => self.with_store(|s| {
                let reply = s.get(&key(s, k)?, blocking, None, |st| match st.value {
                    Some(v) => tuple(vec![atom("ok"), binary(v.to_vec())]),
                    None => error(atom("not_found")),
                })?;
                Ok(Some(reply))
            }),
            Request::GetVersioned(snap, k) => {
                let snap = snap.map(|id| self.snapshot(id)).transpose()?;
                self.with_store(|s| {
                    let reply =
                        s.get(&key(s, k)?, blocking, snap.as_ref(), |st| match st.value {
                            Some(v) => {
                                tuple(vec![atom("ok"), binary(v.to_vec()), uint(st.version)])
                            }
                            None => tuple(vec![atom("not_found"), uint(st.version)]),
                        })?;
                    Ok(Some(reply))
                })
            }
            Request::Snapshot => self.with_store(|s| {
                let mut snaps = self.snapshots.lock();
                if snaps.len() >= MAX_SNAPSHOTS {
                    return Err(Fail::TooManySnapshots);
                }
                let id = self.next_snapshot.fetch_add(1, Ordering::Relaxed) + 1;
                snaps.insert(id, s.snapshot());
                Ok(Some(tuple(vec![atom("ok"), uint(id)])))
            }),
            Request::Release(id) => {
                // Dropped outside the lock: releasing a RocksDB snapshot takes its own lock.
                let released = self.snapshots.lock().remove(id);
                match released {
                    Some(_) => ok(),
                    None => Err(Fail::NoSnapshot),
                }
            }
            Request::Commit {
                reads,
                writes,
                sync: false,
            } => self.with_store(|s| {
                s.commit(&mut build_commit(s, reads, writes)?, blocking)?;
                ok()
            }),
            Request::Commit {
                reads,
                writes,
                sync: true,
            } => self.with_store(|s| {
                let c = build_commit(s, reads, writes)?;
                let deliver = deliver();
                let reply = Box::new(move |r: Result<(), Error>| {
                    deliver(r.map(|()| atom("ok")).map_err(Fail::Core))
                });
                s.commit_sync(c, reply, blocking)?;
                Ok(None)
            }),
            Request::Scan {
                snap,
                lo,
                hi,
                reverse,
                limit,
                partition,
            } => {
                let snap = self.snapshot(*snap)?;
                self.with_store(|s| {
                    let page = s.scan(
                        &snap,
                        &bound(lo)?,
                        &bound(hi)?,
                        *reverse,
                        *limit,
                        *partition,
                        blocking,
                    )?;
                    let mut items = Vec::with_capacity(page.items.len());
                    for (k, v) in page.items {
                        items.push(tuple(vec![binary(keycodec::decode(&k)?), binary(v)]));
                    }
                    let next = match page.next {
                        Some(k) => binary(k),
                        None => atom("done"),
                    };
                    Ok(Some(tuple(vec![atom("ok"), list(items), next])))
                })
            }
            Request::PartitionOf(k) => self
                .with_store(|s| Ok(Some(uint(u64::from(s.partition_of(&keycodec::encode(k)?)))))),
            Request::LogSince(p, after, limit) => self.with_store(|s| {
                let mut out = Vec::new();
                for e in s.log_since(*p, *after, *limit, blocking)? {
                    let op = if e.delete { "delete" } else { "put" };
                    out.push(tuple(vec![
                        uint(e.seq),
                        binary(keycodec::decode(&e.key)?),
                        atom(op),
                    ]));
                }
                Ok(Some(tuple(vec![atom("ok"), list(out)])))
            }),
            Request::LastSeq(p) => self.with_store(|s| Ok(Some(uint(s.last_seq(*p)?)))),
            Request::TruncateLog(keep) => self.with_store(|s| {
                let n = s.truncate_log(*keep)?;
                Ok(Some(tuple(vec![atom("ok"), uint(n as u64)])))
            }),
            Request::MetaGet(name) => self.with_store(|s| {
                Ok(Some(match s.meta_get(name)? {
                    Some(v) => tuple(vec![atom("ok"), binary(v)]),
                    None => atom("not_found"),
                }))
            }),
            Request::MetaPut(name, value) => self.with_store(|s| {
                s.meta_put(name, value)?;
                ok()
            }),
            Request::Backup(dir) => self.with_store(|s| {
                s.backup(std::path::Path::new(dir))?;
                ok()
            }),
            Request::Info => self.with_store(|s| {
                let mut out = vec![tuple(vec![
                    atom("partitions"),
                    uint(u64::from(s.partitions())),
                ])];
                out.extend(
                    s.stats()
                        .into_iter()
                        .map(|(name, v)| tuple(vec![atom(name), uint(v)])),
                );
                out.push(tuple(vec![
                    atom("snapshots"),
                    uint(self.snapshots.lock().len() as u64),
                ]));
                Ok(Some(list(out)))
            }),
        }
    }

    /// Closes the store if it is open (at the end of input).
    pub fn shutdown(&self) {
        let _ = self.execute(&Request::Close, true, || Box::new(|_| ()));
    }
}
