//! Scans: one page per call over a snapshot, in key term order.

use super::*;

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

/// What one scan page asks for: `{Lo, Hi, Reverse, Limit, Partition | undefined, Keys}`.
#[derive(rustler::NifTuple)]
struct PageReq<'a> {
    lo: Term<'a>,
    hi: Term<'a>,
    reverse: bool,
    limit: usize,
    partition: Term<'a>,
    keys: bool,
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
            req.partition.decode().ok(),
            blocking,
        )?;
        let mut items = Vec::with_capacity(page.items.len());
        for (k, v) in &page.items {
            let value = decode_value(env, v)?;
            items.push(match req.keys {
                true => (decode_value(env, &keycodec::decode(k)?)?, value).encode(env),
                false => value,
            });
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

/// One page of a scan over a snapshot: `{ok, [{Key, Value}], Next}` (`[Value]` when the
/// request's `Keys` is false), Next being `done` or a binary to pass back as the bound
/// `{after, Next}` (`{before, Next}` when reversed); or `would_block`. Bounds are
/// `unbounded | {incl, Key} | {excl, Key} | {after | before, Bin}`.
#[rustler::nif]
fn scan<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: ResourceArc<SnapRes>,
    req: PageReq<'a>,
) -> Term<'a> {
    do_scan(env, &res, &snap, req, false)
}

/// `scan/3` on a dirty IO scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn scan_dirty<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreRes>,
    snap: ResourceArc<SnapRes>,
    req: PageReq<'a>,
) -> Term<'a> {
    do_scan(env, &res, &snap, req, true)
}
