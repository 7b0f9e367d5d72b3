//! The store's commit log, checkpoints and meta records; all on dirty IO.

use super::*;

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
