//! strata_nif: thin rustler adapters over strata_core.
//!
//! Scheduling (see DESIGN 3.2): the hot calls (`get`, `get_versioned`, `commit`, `scan`) run on
//! normal schedulers and never block: reads use only the memtable and block cache, writes never
//! wait for a lock or a stall. When they would block they return `would_block`, and the Erlang
//! wrapper repeats the call through its `*_dirty` twin on a dirty IO scheduler. Sync commits go
//! to the group-commit writer thread, which replies by message. Everything else that touches
//! the disk (open, close, backup, log reads) runs on dirty IO.

use parking_lot::RwLock;
use rustler::{
    Atom, Binary, Encoder, Env, LocalPid, NewBinary, OwnedEnv, Resource, ResourceArc, Term,
};
use strata_core::keycodec::{self, EncodedKey};
use strata_core::ring::{self, Member, Ownership, RingConfig};
use strata_core::{Bound, Commit, Config, Error, ReadCheck, Snapshot, Store, Write};

mod atoms {
    rustler::atoms! {
        ok, error, would_block, not_found, closed, locked, conflict, bad_key, key_too_large,
        value_too_large, invalid, partitions_mismatch, corrupt, rocksdb, done,
        put, delete, strata_commit, partitions, block_cache_bytes, write_buffer_bytes,
        unbounded, incl, excl, after, before, ring, undefined
    }
}

/// An open store. `close` empties it; later calls answer `{error, closed}`.
pub struct StoreRes(RwLock<Option<Store>>);

#[rustler::resource_impl]
impl Resource for StoreRes {}

/// A consistent read view (transactions and scan continuations hold one).
pub struct SnapRes(Snapshot);

#[rustler::resource_impl]
impl Resource for SnapRes {}

/// An error as Erlang sees it: `would_block`, or `{error, Reason}` with a reason atom or tuple.
struct Failure(Error);

impl Encoder for Failure {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let reason = match &self.0 {
            Error::WouldBlock => return atoms::would_block().encode(env),
            Error::Locked => atoms::locked().encode(env),
            Error::Closed => atoms::closed().encode(env),
            Error::Conflict(idx) => (atoms::conflict(), idx.clone()).encode(env),
            Error::BadKey(why) => (atoms::bad_key(), *why).encode(env),
            Error::KeyTooLarge => atoms::key_too_large().encode(env),
            Error::ValueTooLarge => atoms::value_too_large().encode(env),
            Error::Invalid(why) => (atoms::invalid(), why.as_str()).encode(env),
            Error::PartitionsMismatch { stored, requested } => {
                (atoms::partitions_mismatch(), *stored, *requested).encode(env)
            }
            Error::Corrupt(why) => (atoms::corrupt(), *why).encode(env),
            Error::Rocks(why) => (atoms::rocksdb(), why.as_str()).encode(env),
        };
        (atoms::error(), reason).encode(env)
    }
}

/// The reply of a NIF: the success term as given, or the failure.
fn answer<'a, T: Encoder>(env: Env<'a>, r: Result<T, Error>) -> Term<'a> {
    match r {
        Ok(t) => t.encode(env),
        Err(e) => Failure(e).encode(env),
    }
}

fn with_store<T>(res: &StoreRes, f: impl FnOnce(&Store) -> Result<T, Error>) -> Result<T, Error> {
    let guard = res.0.read();
    f(guard.as_ref().ok_or(Error::Closed)?)
}

fn key_of(term: Term) -> Result<EncodedKey, Error> {
    if term.is_binary() {
        let bin = Binary::from_term(term).map_err(|_| Error::BadKey("binary"))?;
        keycodec::encode_binary(bin.as_slice())
    } else {
        keycodec::encode(term.to_binary().as_slice())
    }
}

fn data_key(store: &Store, term: Term) -> Result<Vec<u8>, Error> {
    Ok(store.data_key(&key_of(term)?))
}

/// A term as stored: its external term format, within the value size limit.
fn value_etf(term: Term) -> Result<rustler::OwnedBinary, Error> {
    let etf = term.to_binary();
    if etf.len() > strata_core::store::MAX_VALUE_BYTES {
        return Err(Error::ValueTooLarge);
    }
    Ok(etf)
}

fn decode_value<'a>(env: Env<'a>, etf: &[u8]) -> Result<Term<'a>, Error> {
    // SAFETY: the bytes were produced by term_to_binary when written. The unsafe variant is
    // needed because the safe one refuses atoms this VM has not seen yet (after a restart).
    unsafe { env.binary_to_term_trusted(etf) }
        .map(|(t, _)| t)
        .ok_or(Error::Corrupt("stored value is not a term"))
}

/// Reports work done on a normal scheduler (one percent of a time slice per small call).
fn consumed(env: Env, units: usize) {
    rustler::schedule::consume_timeslice(env, units.clamp(1, 100) as i32);
}

// ---- open, close, info ----

/// `{ok, Store}` | `{error, Reason}`.
#[rustler::nif(schedule = "DirtyIo")]
fn open<'a>(env: Env<'a>, path: String, opts: Term<'a>) -> Term<'a> {
    let opened = (|| {
        let mut cfg = Config::new(path);
        let field = |name: Atom, what: &str| -> Result<Option<Term>, Error> {
            match opts.map_get(name) {
                Ok(t) => Ok(Some(t)),
                Err(_) if opts.is_map() => Ok(None),
                Err(_) => Err(Error::Invalid(format!("options must be a map, not {what}"))),
            }
        };
        let bad = |what: &str| Error::Invalid(what.to_string());
        if let Some(p) = field(atoms::partitions(), "partitions")? {
            cfg.partitions = p.decode().map_err(|_| bad("partitions"))?;
        }
        if let Some(b) = field(atoms::block_cache_bytes(), "block_cache_bytes")? {
            cfg.block_cache_bytes = b.decode().map_err(|_| bad("block_cache_bytes"))?;
        }
        if let Some(b) = field(atoms::write_buffer_bytes(), "write_buffer_bytes")? {
            cfg.write_buffer_bytes = b.decode().map_err(|_| bad("write_buffer_bytes"))?;
        }
        let store = Store::open(cfg)?;
        Ok((
            atoms::ok(),
            ResourceArc::new(StoreRes(RwLock::new(Some(store)))),
        ))
    })();
    answer(env, opened)
}

/// Stops the writer (queued sync commits finish) and closes the store: `ok`.
#[rustler::nif(schedule = "DirtyIo")]
fn close(res: ResourceArc<StoreRes>) -> Atom {
    if let Some(store) = res.0.write().take() {
        store.close();
    }
    atoms::ok()
}

/// The partition of a key.
#[rustler::nif]
fn partition_of<'a>(env: Env<'a>, res: ResourceArc<StoreRes>, key: Term<'a>) -> Term<'a> {
    answer(env, with_store(&res, |s| Ok(s.partition_of(&key_of(key)?))))
}

/// `[{Name, Integer}]`: the partition count and engine statistics.
#[rustler::nif]
fn info(env: Env, res: ResourceArc<StoreRes>) -> Term {
    answer(
        env,
        with_store(&res, |s| {
            let mut out = vec![(atoms::partitions(), s.partitions() as u64)];
            for (name, v) in s.stats() {
                out.push((Atom::from_str(env, name).expect("atom"), v));
            }
            Ok(out)
        }),
    )
}

// ---- reads ----

fn do_get<'a>(env: Env<'a>, res: &StoreRes, key: Term<'a>, blocking: bool) -> Term<'a> {
    let out = with_store(res, |s| {
        let k = data_key(s, key)?;
        s.get(&k, blocking, None, |st| match st.value {
            Some(v) => decode_value(env, v).map(|t| (atoms::ok(), t).encode(env)),
            None => Ok((atoms::error(), atoms::not_found()).encode(env)),
        })?
    });
    consumed(env, 1);
    answer(env, out)
}

/// `{ok, Value}` | `{error, not_found}` | `would_block` | `{error, Reason}`.
#[rustler::nif]
fn get<'a>(env: Env<'a>, res: ResourceArc<StoreRes>, key: Term<'a>) -> Term<'a> {
    do_get(env, &res, key, false)
}

/// `get/2` on a dirty IO scheduler, reading from disk when needed.
#[rustler::nif(schedule = "DirtyIo")]
fn get_dirty<'a>(env: Env<'a>, res: ResourceArc<StoreRes>, key: Term<'a>) -> Term<'a> {
    do_get(env, &res, key, true)
}

fn do_get_versioned<'a>(
    env: Env<'a>,
    res: &StoreRes,
    snap: Term<'a>,
    key: Term<'a>,
    blocking: bool,
) -> Term<'a> {
    // `latest` (or any non-snapshot) reads the current state.
    let snap: Option<ResourceArc<SnapRes>> = snap.decode().ok();
    let out = with_store(res, |s| {
        let k = data_key(s, key)?;
        s.get(&k, blocking, snap.as_ref().map(|r| &r.0), |st| {
            match st.value {
                Some(v) => decode_value(env, v).map(|t| (atoms::ok(), t, st.version).encode(env)),
                None => Ok((atoms::not_found(), st.version).encode(env)),
            }
        })?
    });
    consumed(env, 1);
    answer(env, out)
}

/// `{ok, Value, Version}` | `{not_found, Version}` as of a snapshot (or of now, given
/// `latest`), or `would_block`.
#[rustler::nif]
fn get_versioned<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: Term<'a>,
    key: Term<'a>,
) -> Term<'a> {
    do_get_versioned(env, &res, snap, key, false)
}

/// `get_versioned/3` on a dirty IO scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn get_versioned_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: Term<'a>,
    key: Term<'a>,
) -> Term<'a> {
    do_get_versioned(env, &res, snap, key, true)
}

/// A consistent read view of the store.
#[rustler::nif]
fn snapshot(env: Env, res: ResourceArc<StoreRes>) -> Term {
    answer(
        env,
        with_store(&res, |s| Ok(ResourceArc::new(SnapRes(s.snapshot())))),
    )
}

// ---- writes ----

/// Builds a commit from `[{Key, Version}]` and `[{put, Key, Value} | {delete, Key}]`.
fn build_commit(s: &Store, reads: Vec<(Term, u64)>, writes: Vec<Term>) -> Result<Commit, Error> {
    let mut c = Commit {
        reads: Vec::with_capacity(reads.len()),
        writes: Vec::with_capacity(writes.len()),
    };
    for (k, version) in reads {
        c.reads.push(ReadCheck {
            key: data_key(s, k)?,
            version,
        });
    }
    for w in writes {
        let bad = || Error::Invalid("a write is {put, Key, Value} or {delete, Key}".into());
        let t = rustler::types::tuple::get_tuple(w).map_err(|_| bad())?;
        match t.as_slice() {
            [op, k, v] if op.decode::<Atom>().is_ok_and(|a| a == atoms::put()) => {
                c.writes
                    .push(Write::put(data_key(s, *k)?, value_etf(*v)?.as_slice())?);
            }
            [op, k] if op.decode::<Atom>().is_ok_and(|a| a == atoms::delete()) => {
                c.writes.push(Write::delete(data_key(s, *k)?));
            }
            _ => return Err(bad()),
        }
    }
    Ok(c)
}

fn do_write<'a>(
    env: Env<'a>,
    res: &StoreRes,
    key: Term<'a>,
    value: Option<Term<'a>>,
    blocking: bool,
) -> Term<'a> {
    let out = with_store(res, |s| {
        let k = data_key(s, key)?;
        let write = match value {
            Some(v) => Write::put(k, value_etf(v)?.as_slice())?,
            None => Write::delete(k),
        };
        let c = Commit {
            reads: Vec::new(),
            writes: vec![write],
        };
        s.commit(&c, blocking)
    });
    consumed(env, 1);
    answer(env, out.map(|()| atoms::ok()))
}

/// Stores one value with async durability: `ok` | `would_block` | `{error, Reason}`.
#[rustler::nif]
fn put<'a>(env: Env<'a>, res: ResourceArc<StoreRes>, key: Term<'a>, value: Term<'a>) -> Term<'a> {
    do_write(env, &res, key, Some(value), false)
}

/// `put/3` on a dirty IO scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn put_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    key: Term<'a>,
    value: Term<'a>,
) -> Term<'a> {
    do_write(env, &res, key, Some(value), true)
}

/// Deletes one key with async durability: `ok` | `would_block` | `{error, Reason}`.
#[rustler::nif]
fn delete<'a>(env: Env<'a>, res: ResourceArc<StoreRes>, key: Term<'a>) -> Term<'a> {
    do_write(env, &res, key, None, false)
}

/// `delete/2` on a dirty IO scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn delete_dirty<'a>(env: Env<'a>, res: ResourceArc<StoreRes>, key: Term<'a>) -> Term<'a> {
    do_write(env, &res, key, None, true)
}

fn do_commit<'a>(
    env: Env<'a>,
    res: &StoreRes,
    reads: Vec<(Term<'a>, u64)>,
    writes: Vec<Term<'a>>,
    blocking: bool,
) -> Term<'a> {
    let units = reads.len() + writes.len();
    let out = with_store(res, |s| {
        s.commit(&build_commit(s, reads, writes)?, blocking)
    });
    consumed(env, units);
    answer(env, out.map(|()| atoms::ok()))
}

/// Applies a commit of `[{Key, Version}]` reads and `[{put, K, V} | {delete, K}]` writes
/// with async durability: `ok` | `would_block` | `{error, {conflict, [ReadIndex]}}` |
/// `{error, Reason}`.
#[rustler::nif]
fn commit<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    reads: Vec<(Term<'a>, u64)>,
    writes: Vec<Term<'a>>,
) -> Term<'a> {
    do_commit(env, &res, reads, writes, false)
}

/// `commit/3` on a dirty IO scheduler: waits for locks and stalls instead of declining.
#[rustler::nif(schedule = "DirtyIo")]
fn commit_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    reads: Vec<(Term<'a>, u64)>,
    writes: Vec<Term<'a>>,
) -> Term<'a> {
    do_commit(env, &res, reads, writes, true)
}

fn do_commit_sync<'a>(
    env: Env<'a>,
    res: &StoreRes,
    reads: Vec<(Term<'a>, u64)>,
    writes: Vec<Term<'a>>,
    tag: Term<'a>,
    blocking: bool,
) -> Term<'a> {
    let pid: LocalPid = env.pid();
    let out = with_store(res, |s| {
        let c = build_commit(s, reads, writes)?;
        let mut msg_env = OwnedEnv::new();
        let saved = msg_env.save(tag);
        let reply = Box::new(move |r: Result<(), Error>| {
            // The caller may have exited meanwhile; then nobody waits for the answer.
            let _ = msg_env.send_and_clear(&pid, |e| {
                let tag = saved.load(e);
                match r {
                    Ok(()) => (atoms::strata_commit(), tag, atoms::ok()).encode(e),
                    Err(err) => (atoms::strata_commit(), tag, Failure(err)).encode(e),
                }
            });
        });
        s.commit_sync(c, reply, blocking)
    });
    consumed(env, 1);
    answer(env, out.map(|()| atoms::ok()))
}

/// Queues a commit for the group-commit writer (sync durability): `ok` once queued, and the
/// outcome arrives as `{strata_commit, Tag, ok | {error, Reason}}`; or `would_block` when the
/// queue is full.
#[rustler::nif]
fn commit_sync<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    reads: Vec<(Term<'a>, u64)>,
    writes: Vec<Term<'a>>,
    tag: Term<'a>,
) -> Term<'a> {
    do_commit_sync(env, &res, reads, writes, tag, false)
}

/// `commit_sync/4` on a dirty IO scheduler: waits for room in the queue.
#[rustler::nif(schedule = "DirtyIo")]
fn commit_sync_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    reads: Vec<(Term<'a>, u64)>,
    writes: Vec<Term<'a>>,
    tag: Term<'a>,
) -> Term<'a> {
    do_commit_sync(env, &res, reads, writes, tag, true)
}

// ---- scans ----

fn decode_bound(b: Term) -> Result<Bound, Error> {
    let bad = || Error::Invalid("bad scan bound".into());
    if b.decode::<Atom>().is_ok_and(|a| a == atoms::unbounded()) {
        return Ok(Bound::Unbounded);
    }
    let t = rustler::types::tuple::get_tuple(b).map_err(|_| bad())?;
    let [kind, k] = t.as_slice() else {
        return Err(bad());
    };
    let kind: Atom = kind.decode().map_err(|_| bad())?;
    if kind == atoms::incl() {
        Ok(Bound::Included(key_of(*k)?.bytes))
    } else if kind == atoms::excl() {
        Ok(Bound::Excluded(key_of(*k)?.bytes))
    } else if kind == atoms::after() || kind == atoms::before() {
        let bin = Binary::from_term(*k).map_err(|_| bad())?;
        Ok(Bound::Excluded(bin.as_slice().to_vec()))
    } else {
        Err(bad())
    }
}

/// What one scan page asks for.
struct PageReq<'a> {
    lo: Term<'a>,
    hi: Term<'a>,
    reverse: bool,
    limit: usize,
    partition: Option<u16>,
}

fn do_scan<'a>(
    env: Env<'a>,
    res: &StoreRes,
    snap: &SnapRes,
    req: PageReq<'a>,
    blocking: bool,
) -> Term<'a> {
    let out = with_store(res, |s| {
        let page = s.scan(
            &snap.0,
            &decode_bound(req.lo)?,
            &decode_bound(req.hi)?,
            req.reverse,
            req.limit,
            req.partition,
            blocking,
        )?;
        let mut items = Vec::with_capacity(page.items.len());
        for (k, v) in &page.items {
            let key = decode_value(env, &keycodec::decode(k)?)?;
            items.push((key, decode_value(env, v)?));
        }
        let next = match page.next {
            Some(k) => {
                let mut bin = NewBinary::new(env, k.len());
                bin.as_mut_slice().copy_from_slice(&k);
                Term::from(bin)
            }
            None => atoms::done().encode(env),
        };
        Ok((atoms::ok(), items, next).encode(env))
    });
    consumed(env, req.limit / 4);
    answer(env, out)
}

/// One page of a scan over a snapshot: `{ok, [{Key, Value}], Next}`, Next being `done` or a
/// binary to pass back as the bound `{after, Next}` (`{before, Next}` when reversed); or
/// `would_block`. Bounds are `unbounded | {incl, Key} | {excl, Key} | {after | before, Bin}`.
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn scan<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: ResourceArc<SnapRes>,
    lo: Term<'a>,
    hi: Term<'a>,
    reverse: bool,
    limit: usize,
    partition: Term<'a>,
) -> Term<'a> {
    let partition = partition.decode().ok();
    let req = PageReq {
        lo,
        hi,
        reverse,
        limit,
        partition,
    };
    do_scan(env, &res, &snap, req, false)
}

/// `scan/8` on a dirty IO scheduler.
#[rustler::nif(schedule = "DirtyIo")]
#[allow(clippy::too_many_arguments)]
fn scan_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: ResourceArc<SnapRes>,
    lo: Term<'a>,
    hi: Term<'a>,
    reverse: bool,
    limit: usize,
    partition: Term<'a>,
) -> Term<'a> {
    let partition = partition.decode().ok();
    let req = PageReq {
        lo,
        hi,
        reverse,
        limit,
        partition,
    };
    do_scan(env, &res, &snap, req, true)
}

// ---- log, backup, keycodec ----

/// `{ok, [{Seq, Key, put | delete}]}`: at most `limit` entries with a sequence above `after`.
#[rustler::nif(schedule = "DirtyIo")]
fn log_since(
    env: Env,
    res: ResourceArc<StoreRes>,
    partition: u16,
    after: u64,
    limit: usize,
) -> Term {
    let out = with_store(&res, |s| {
        let mut out = Vec::new();
        for e in s.log_since(partition, after, limit, true)? {
            let key = decode_value(env, &keycodec::decode(&e.key)?)?;
            let op = if e.delete {
                atoms::delete()
            } else {
                atoms::put()
            };
            out.push((e.seq, key, op));
        }
        Ok((atoms::ok(), out))
    });
    answer(env, out)
}

/// The last sequence number of a partition.
#[rustler::nif]
fn last_seq(env: Env, res: ResourceArc<StoreRes>, partition: u16) -> Term {
    answer(env, with_store(&res, |s| s.last_seq(partition)))
}

/// Keeps the last `keep` log entries of each partition: `{ok, PartitionsTruncated}`.
#[rustler::nif(schedule = "DirtyIo")]
fn truncate_log(env: Env, res: ResourceArc<StoreRes>, keep: u64) -> Term {
    answer(
        env,
        with_store(&res, |s| s.truncate_log(keep)).map(|n| (atoms::ok(), n)),
    )
}

/// Writes a checkpoint of the store into `dir` (which must not exist): `ok`.
#[rustler::nif(schedule = "DirtyIo")]
fn backup(env: Env, res: ResourceArc<StoreRes>, dir: String) -> Term {
    let out = with_store(&res, |s| s.backup(std::path::Path::new(&dir)));
    answer(env, out.map(|()| atoms::ok()))
}

/// `{ok, Binary}`: the order-preserving encoding of a term.
#[rustler::nif]
fn encode_key<'a>(env: Env<'a>, key: Term<'a>) -> Term<'a> {
    let out = key_of(key).map(|k| {
        let mut bin = NewBinary::new(env, k.bytes.len());
        bin.as_mut_slice().copy_from_slice(&k.bytes);
        (atoms::ok(), Term::from(bin))
    });
    answer(env, out)
}

/// `{ok, Term}`: the term an encoding came from.
#[rustler::nif]
fn decode_key<'a>(env: Env<'a>, bin: Binary<'a>) -> Term<'a> {
    let out = keycodec::decode(bin.as_slice()).and_then(|etf| decode_value(env, &etf));
    answer(env, out.map(|t| (atoms::ok(), t)))
}

// ---- meta records ----

/// `{ok, Binary}` | `not_found`: a record of the layers above from the meta column family.
#[rustler::nif(schedule = "DirtyIo")]
fn meta_get<'a>(env: Env<'a>, res: ResourceArc<StoreRes>, name: Binary<'a>) -> Term<'a> {
    let out = with_store(&res, |s| s.meta_get(name.as_slice()));
    match out {
        Ok(Some(v)) => {
            let mut bin = NewBinary::new(env, v.len());
            bin.as_mut_slice().copy_from_slice(&v);
            (atoms::ok(), Term::from(bin)).encode(env)
        }
        Ok(None) => atoms::not_found().encode(env),
        Err(e) => Failure(e).encode(env),
    }
}

/// `ok`: replaces a meta record durably (fsynced).
#[rustler::nif(schedule = "DirtyIo")]
fn meta_put<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    name: Binary<'a>,
    value: Binary<'a>,
) -> Term<'a> {
    let out = with_store(&res, |s| s.meta_put(name.as_slice(), value.as_slice()));
    answer(env, out.map(|()| atoms::ok()))
}

// ---- ring ----

/// The partition of a key in a ring of `partitions` partitions (of its hash tag when it has
/// one); the same function the store uses, without a store.
#[rustler::nif]
fn ring_partition<'a>(env: Env<'a>, key: Term<'a>, partitions: u16) -> Term<'a> {
    let out = RingConfig::new(partitions, 1)
        .map_err(|e| Error::Invalid(e.to_string()))
        .and_then(|cfg| Ok(cfg.partition_of_key(key_of(key)?.hash_bytes())));
    answer(env, out)
}

/// The ring's 64-bit hash of a binary (`ring::hash64`).
#[rustler::nif]
fn ring_hash(bin: Binary) -> u64 {
    ring::hash64(bin.as_slice())
}

fn names(list: Term) -> Result<Vec<String>, Error> {
    let bins: Vec<Binary> = list
        .decode()
        .map_err(|_| Error::Invalid("a preflist is a list of binaries".into()))?;
    bins.iter()
        .map(|b| {
            String::from_utf8(b.as_slice().to_vec())
                .map_err(|_| Error::Invalid("node names are UTF-8".into()))
        })
        .collect()
}

/// `{ok, Preflists}` | `{error, {ring, Why}}`: claims the ring for `members` (`[{Name, Zone}]`,
/// binaries), keeping what it can of `previous` (`undefined` or its preflists). Preflists are
/// one list of node names per partition, primary first. Claim is a pure function of its
/// arguments; it runs on a dirty CPU scheduler because large rings take milliseconds.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_claim<'a>(
    env: Env<'a>,
    members: Vec<(Binary<'a>, Binary<'a>)>,
    partitions: u16,
    n_val: u8,
    previous: Term<'a>,
) -> Term<'a> {
    let claimed = (|| {
        let members = members
            .iter()
            .map(|(name, zone)| {
                match (
                    std::str::from_utf8(name.as_slice()),
                    std::str::from_utf8(zone.as_slice()),
                ) {
                    (Ok(n), Ok(z)) => Ok(Member::new(n, z)),
                    _ => Err(Error::Invalid("member names and zones are UTF-8".into())),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ring_err = |e: ring::RingError| Error::Invalid(e.to_string());
        let cfg = RingConfig::new(partitions, n_val).map_err(ring_err)?;
        let previous = if previous.decode::<Atom>().ok() == Some(atoms::undefined()) {
            None
        } else {
            let lists: Vec<Term> = previous.decode().map_err(|_| {
                Error::Invalid("previous is undefined or a list of preflists".into())
            })?;
            let lists = lists.into_iter().map(names).collect::<Result<_, _>>()?;
            Some(Ownership::from_preflists(partitions, lists).map_err(ring_err)?)
        };
        ring::claim(&members, cfg, previous.as_ref()).map_err(ring_err)
    })();
    match claimed {
        Ok(own) => {
            let lists: Vec<Vec<Term>> = own
                .preflists()
                .map(|l| {
                    l.iter()
                        .map(|n| {
                            let mut bin = NewBinary::new(env, n.len());
                            bin.as_mut_slice().copy_from_slice(n.as_bytes());
                            Term::from(bin)
                        })
                        .collect()
                })
                .collect();
            (atoms::ok(), lists).encode(env)
        }
        Err(Error::Invalid(why)) => (atoms::error(), (atoms::ring(), why.as_str())).encode(env),
        Err(e) => Failure(e).encode(env),
    }
}

rustler::init!("strata_nif");
