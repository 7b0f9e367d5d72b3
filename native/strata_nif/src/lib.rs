//! strata_nif: thin rustler adapters over strata_core.
//!
//! Scheduling (see DESIGN 3.2): the hot calls (`get`, `read`, `commit`, `scan`) run on
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

/// The engine's allocations (keys, records, queued commits) come and go on several threads:
/// schedulers, the writer thread, and the scheduler that serves another's queued commit. The
/// system allocator's arenas contended on that (a profile of 8 processes appending to 8 feeds
/// spent about 9% of its time waiting for arena locks).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod atoms {
    rustler::atoms! {
        ok, error, would_block, not_found, closed, no_snapshot, locked, conflict, bad_key, key_too_large,
        value_too_large, invalid, partitions_mismatch, corrupt, rocksdb, done,
        put, delete, strata_commit, partitions, block_cache_bytes, write_buffer_bytes,
        unbounded, incl, excl, after, before, ring, undefined, queued, encoded, put_encoded,
        delete_encoded
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
            Error::NoSnapshot => atoms::no_snapshot().encode(env),
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
    Ok(store.data_key(key_of(term)?))
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
    use strata_core::etf::{BINARY_EXT, VERSION};
    // A binary (the common value) is copied out directly, without the term decoder.
    if let [VERSION, BINARY_EXT, a, b, c, d, bytes @ ..] = etf {
        if u32::from_be_bytes([*a, *b, *c, *d]) as usize == bytes.len() {
            let mut bin = NewBinary::new(env, bytes.len());
            bin.as_mut_slice().copy_from_slice(bytes);
            return Ok(Term::from(bin));
        }
    }
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

mod keys;
mod log;
mod read;
mod scan;
mod write;

rustler::init!("strata_nif");
