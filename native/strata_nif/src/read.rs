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

/// A versioned read that also answers the key as stored (partition and encoding), which a
/// commit takes instead of the key (`{encoded, DataKey, Version, Key}`).
fn do_read<'a>(
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
            let mut stored = NewBinary::new(env, k.len());
            stored.as_mut_slice().copy_from_slice(&k);
            let stored = Term::from(stored);
            match st.value {
                Some(v) => {
                    decode_value(env, v).map(|t| (atoms::ok(), t, st.version, stored).encode(env))
                }
                None => Ok((atoms::not_found(), st.version, stored).encode(env)),
            }
        })?
    });
    consumed(env, 1);
    answer(env, out)
}

/// `{ok, Value, Version, DataKey}` | `{not_found, Version, DataKey}` as of a snapshot (or of
/// now, given `latest`), or `would_block`. `DataKey` is the key as stored: a transaction
/// commits with it instead of encoding the key again.
#[rustler::nif]
fn read<'a>(env: Env<'a>, res: ResourceArc<StoreRes>, snap: Term<'a>, key: Term<'a>) -> Term<'a> {
    do_read(env, &res, snap, key, false)
}

/// `read/3` on a dirty IO scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn read_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: Term<'a>,
    key: Term<'a>,
) -> Term<'a> {
    do_read(env, &res, snap, key, true)
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
