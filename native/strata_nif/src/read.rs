//! Reads: single keys, versioned reads and snapshots. The non-blocking twins answer
//! `would_block` when the data is not in memory.

use super::*;

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

/// Releases a snapshot now instead of when the garbage collector frees it: `ok`. Reads through
/// it afterwards answer `{error, no_snapshot}`.
#[rustler::nif]
fn release_snapshot(snap: ResourceArc<SnapRes>) -> Atom {
    snap.0.release();
    atoms::ok()
}
