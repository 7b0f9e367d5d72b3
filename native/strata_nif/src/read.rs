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

/// A versioned read; with `with_key`, the reply also carries the key as stored (partition and
/// encoding), which a commit takes instead of the key (`{encoded, DataKey, Version, Key}`).
fn do_get_versioned<'a>(
    env: Env<'a>,
    res: &StoreRes,
    snap: Term<'a>,
    key: Term<'a>,
    blocking: bool,
    with_key: bool,
) -> Term<'a> {
    // `latest` (or any non-snapshot) reads the current state.
    let snap: Option<ResourceArc<SnapRes>> = snap.decode().ok();
    let out = with_store(res, |s| {
        let k = data_key(s, key)?;
        let stored = |env: Env<'a>| {
            let mut bin = NewBinary::new(env, k.len());
            bin.as_mut_slice().copy_from_slice(&k);
            Term::from(bin)
        };
        s.get(&k, blocking, snap.as_ref().map(|r| &r.0), |st| {
            match (st.value, with_key) {
                (Some(v), false) => {
                    decode_value(env, v).map(|t| (atoms::ok(), t, st.version).encode(env))
                }
                (Some(v), true) => decode_value(env, v)
                    .map(|t| (atoms::ok(), t, st.version, stored(env)).encode(env)),
                (None, false) => Ok((atoms::not_found(), st.version).encode(env)),
                (None, true) => Ok((atoms::not_found(), st.version, stored(env)).encode(env)),
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
    do_get_versioned(env, &res, snap, key, false, false)
}

/// `get_versioned/3` on a dirty IO scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn get_versioned_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: Term<'a>,
    key: Term<'a>,
) -> Term<'a> {
    do_get_versioned(env, &res, snap, key, true, false)
}

/// `get_versioned/3` that also answers the key as stored: `{ok, Value, Version, DataKey}` |
/// `{not_found, Version, DataKey}`, or `would_block`. A transaction commits with `DataKey`
/// instead of encoding the key again.
#[rustler::nif]
fn read<'a>(env: Env<'a>, res: ResourceArc<StoreRes>, snap: Term<'a>, key: Term<'a>) -> Term<'a> {
    do_get_versioned(env, &res, snap, key, false, true)
}

/// `read/3` on a dirty IO scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn read_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: Term<'a>,
    key: Term<'a>,
) -> Term<'a> {
    do_get_versioned(env, &res, snap, key, true, true)
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
