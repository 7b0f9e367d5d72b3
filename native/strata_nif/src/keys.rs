//! Pure functions without a store: the key codec and the ring.

use super::*;

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
