//! Writes: puts, deletes and validated commits, async inline or sync through the
//! group-commit writer, which replies by message.

use super::*;

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
