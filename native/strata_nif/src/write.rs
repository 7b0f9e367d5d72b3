//! Writes: puts, deletes and validated commits. Async ones run inline; one that still finds
//! another commit in progress after a spin of a few microseconds is queued, and the caller
//! holding the engine's write gate applies it with its own (or hands it to the writer thread if
//! that would block a scheduler). Sync ones always go to the writer thread (group commit). A
//! queued commit is answered by message: `{strata_commit, Tag, Result}`.

use super::*;
use rustler::sys::{enif_send, ErlNifEnv};
use std::cell::Cell;
use strata_core::{Applied, CommitReply};

thread_local! {
    /// The environment of the NIF call running on this scheduler thread while it applies
    /// commits: it may answer other processes' queued commits, and a scheduler thread sends
    /// from its calling process's environment. Null elsewhere (the writer thread).
    static CALLER: Cell<*mut ErlNifEnv> = const { Cell::new(std::ptr::null_mut()) };
}

/// Marks the calling process's environment as this thread's sender until dropped.
struct Caller;

impl Caller {
    fn enter(env: Env) -> Caller {
        CALLER.with(|c| c.set(env.as_c_arg()));
        Caller
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        CALLER.with(|c| c.set(std::ptr::null_mut()));
    }
}

/// The reply that answers a queued commit of the calling process, from whichever thread
/// applies it.
fn reply_to<'a>(env: Env<'a>, tag: Term<'a>) -> CommitReply {
    let pid: LocalPid = env.pid();
    let msg_env = OwnedEnv::new();
    let saved = msg_env.save(tag);
    Box::new(move |r: Result<(), Error>| {
        let caller = CALLER.with(Cell::get);
        msg_env.run(|e| {
            let tag = saved.load(e);
            let msg = match r {
                Ok(()) => (atoms::strata_commit(), tag, atoms::ok()).encode(e),
                Err(err) => (atoms::strata_commit(), tag, Failure(err)).encode(e),
            };
            // SAFETY: `caller` is null on a thread the VM does not manage, and on a scheduler
            // thread it is the environment of the NIF call now running there (set by `Caller`
            // around every call that may apply others' commits); `e` is the process-independent
            // environment that holds `msg`. The send consumes it; the caller may have exited,
            // and then nobody waits for the answer.
            unsafe { enif_send(caller, pid.as_c_arg(), e.as_c_arg(), msg.as_c_arg()) };
        });
    })
}

/// Applies an async commit: `ok` when done inline, or `{queued, Tag}` when it will be
/// answered by message with a new reference `Tag`; on a dirty scheduler (`blocking`) always
/// inline, waiting for its turn. Reports the pending commits of others it applied as work done.
fn apply<'a>(env: Env<'a>, s: &Store, mut c: Commit, blocking: bool) -> Result<Term<'a>, Error> {
    let _caller = Caller::enter(env);
    if blocking {
        return s.commit(&mut c, true).map(|()| atoms::ok().encode(env));
    }
    let mut tag = None;
    let (applied, served) = s.commit_or_queue(c, || {
        let r: Term = *env.make_ref();
        tag = Some(r);
        reply_to(env, r)
    });
    // Others' commits this call applied ran on this process's time slice.
    if served > 0 {
        consumed(env, served);
    }
    Ok(match (applied?, tag) {
        (Applied::Queued, Some(tag)) => (atoms::queued(), tag).encode(env),
        _ => atoms::ok().encode(env),
    })
}

/// A put of `value` under the data key `key`: a binary goes into the stored record directly,
/// any other term through `term_to_binary`.
fn put(key: Vec<u8>, value: Term) -> Result<Write, Error> {
    match value.decode::<Binary>() {
        Ok(bin) => Write::put_binary(key, bin.as_slice()),
        Err(_) => Write::put(key, value_etf(value)?.as_slice()),
    }
}

/// A key as stored, given back by `read/3`: a partition prefix and an encoding.
fn stored_key(bin: Term) -> Result<Vec<u8>, Error> {
    match bin.decode::<Binary>() {
        Ok(b) if b.len() > 2 => Ok(b.as_slice().to_vec()),
        _ => Err(Error::Invalid(
            "an encoded key is a binary from read/3".into(),
        )),
    }
}

/// Builds a commit from the snapshot its reads came from (or `latest`), reads
/// `[{Key, Version} | {encoded, DataKey, Version, Key}]` and writes `[{put, Key, Value} |
/// {delete, Key} | {put_encoded, DataKey, Value} | {delete_encoded, DataKey}]`, where
/// `DataKey` is a key as `read/3` answered it.
fn build_commit(
    s: &Store,
    snap: Term,
    reads: Vec<Term>,
    writes: Vec<Term>,
) -> Result<Commit, Error> {
    let mut c = Commit {
        reads: Vec::with_capacity(reads.len()),
        writes: Vec::with_capacity(writes.len()),
        snapshot: snap
            .decode::<ResourceArc<SnapRes>>()
            .ok()
            .and_then(|r| s.seq_of(&r.0)),
    };
    let is = |t: &Term, a: Atom| t.decode::<Atom>().is_ok_and(|b| b == a);
    for r in reads {
        let bad = || {
            Error::Invalid("a read is {Key, Version} or {encoded, DataKey, Version, Key}".into())
        };
        let t = rustler::types::tuple::get_tuple(r).map_err(|_| bad())?;
        let (key, version) = match t.as_slice() {
            [k, v] => (data_key(s, *k)?, v.decode::<u64>().map_err(|_| bad())?),
            [tag, k, v, _] if is(tag, atoms::encoded()) => {
                (stored_key(*k)?, v.decode::<u64>().map_err(|_| bad())?)
            }
            _ => return Err(bad()),
        };
        c.reads.push(ReadCheck { key, version });
    }
    for w in writes {
        let bad = || {
            Error::Invalid(
                "a write is {put, Key, Value}, {delete, Key}, {put_encoded, DataKey, Value} \
                 or {delete_encoded, DataKey}"
                    .into(),
            )
        };
        let t = rustler::types::tuple::get_tuple(w).map_err(|_| bad())?;
        match t.as_slice() {
            [op, k, v] if is(op, atoms::put()) => c.writes.push(put(data_key(s, *k)?, *v)?),
            [op, k] if is(op, atoms::delete()) => c.writes.push(Write::delete(data_key(s, *k)?)),
            [op, k, v] if is(op, atoms::put_encoded()) => c.writes.push(put(stored_key(*k)?, *v)?),
            [op, k] if is(op, atoms::delete_encoded()) => {
                c.writes.push(Write::delete(stored_key(*k)?))
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
            Some(v) => put(k, v)?,
            None => Write::delete(k),
        };
        let c = Commit {
            reads: Vec::new(),
            writes: vec![write],
            snapshot: None,
        };
        apply(env, s, c, blocking)
    });
    consumed(env, 1);
    answer(env, out)
}

/// Stores one value with async durability: `ok` | `{queued, Tag}` (the outcome arrives as
/// `{strata_commit, Tag, ok | {error, Reason}}`) | `would_block` | `{error, Reason}`.
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

/// Deletes one key with async durability: as `put/3`.
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
    snap: Term<'a>,
    reads: Vec<Term<'a>>,
    writes: Vec<Term<'a>>,
    blocking: bool,
) -> Term<'a> {
    let units = reads.len() + writes.len();
    let out = with_store(res, |s| {
        apply(env, s, build_commit(s, snap, reads, writes)?, blocking)
    });
    consumed(env, units);
    answer(env, out)
}

/// Applies a commit of `[{Key, Version}]` reads, made from snapshot `Snap` (or `latest`:
/// from no one snapshot), and `[{put, K, V} | {delete, K}]` writes with async durability: as
/// `put/3`; a failed validation is `{error, {conflict, [ReadIndex]}}`.
#[rustler::nif]
fn commit<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: Term<'a>,
    reads: Vec<Term<'a>>,
    writes: Vec<Term<'a>>,
) -> Term<'a> {
    do_commit(env, &res, snap, reads, writes, false)
}

/// `commit/4` on a dirty IO scheduler: waits for locks and stalls instead of declining.
#[rustler::nif(schedule = "DirtyIo")]
fn commit_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: Term<'a>,
    reads: Vec<Term<'a>>,
    writes: Vec<Term<'a>>,
) -> Term<'a> {
    do_commit(env, &res, snap, reads, writes, true)
}

fn do_commit_sync<'a>(
    env: Env<'a>,
    res: &StoreRes,
    snap: Term<'a>,
    reads: Vec<Term<'a>>,
    writes: Vec<Term<'a>>,
    tag: Term<'a>,
    blocking: bool,
) -> Term<'a> {
    let out = with_store(res, |s| {
        let c = build_commit(s, snap, reads, writes)?;
        s.commit_sync(c, reply_to(env, tag), blocking)
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
    snap: Term<'a>,
    reads: Vec<Term<'a>>,
    writes: Vec<Term<'a>>,
    tag: Term<'a>,
) -> Term<'a> {
    do_commit_sync(env, &res, snap, reads, writes, tag, false)
}

/// `commit_sync/5` on a dirty IO scheduler: waits for room in the queue.
#[rustler::nif(schedule = "DirtyIo")]
fn commit_sync_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: Term<'a>,
    reads: Vec<Term<'a>>,
    writes: Vec<Term<'a>>,
    tag: Term<'a>,
) -> Term<'a> {
    do_commit_sync(env, &res, snap, reads, writes, tag, true)
}
