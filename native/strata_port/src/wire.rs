//! The wire format: `{packet, 4}` frames holding one term in external term format.
//!
//! A request frame is `{ReqId, Request}` and its answer `{ReqId, Reply}`; `ReqId` is any term
//! and comes back unchanged, so the Erlang side can have many requests in flight and match
//! replies that come back out of order. Keys and values travel as binaries holding their own
//! external term format (`term_to_binary(Key)`), so the port never needs to understand user
//! terms: it hands those bytes to the same key codec and stores the same value bytes as the
//! NIF, and a data directory can move between the engines.
//!
//! Frames come from outside the process, so they are checked by [`check`] before `eetf` sees
//! them: `eetf` allocates what a length field claims, recurses once per nesting level and
//! panics on atom-cache references, and none of that may take the port down.

use eetf::{Atom, BigInteger, Binary, FixInteger, List, Term, Tuple};
use strata_core::etf::*;

/// Nesting depth a frame may have; requests are a few levels deep.
const MAX_DEPTH: usize = 32;

/// Checks that `frame` is one complete term of the kinds requests use (no atom cache, no
/// compression, no funs), that every length it declares fits in the bytes that remain, and
/// that it nests at most `MAX_DEPTH` deep. Iterative, so a hostile frame cannot overflow the
/// stack here either.
pub fn check(frame: &[u8]) -> Result<(), &'static str> {
    let mut r = Reader { buf: frame, pos: 0 };
    if r.u8()? != VERSION {
        return Err("not external term format");
    }
    // Terms still to read at each open nesting level.
    let mut pending: Vec<u64> = vec![1];
    while let Some(left) = pending.last_mut() {
        if *left == 0 {
            pending.pop();
            continue;
        }
        *left -= 1;
        let children = r.term_head()?;
        if children > 0 {
            if children > r.remaining() as u64 {
                return Err("length beyond the end of the frame");
            }
            if pending.len() >= MAX_DEPTH {
                return Err("nested too deeply");
            }
            pending.push(children);
        }
    }
    if r.remaining() != 0 {
        return Err("trailing bytes after the term");
    }
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn skip(&mut self, n: usize) -> Result<(), &'static str> {
        if n > self.remaining() {
            return Err("truncated term");
        }
        self.pos += n;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        let b = *self.buf.get(self.pos).ok_or("truncated term")?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self) -> Result<usize, &'static str> {
        Ok(((self.u8()? as usize) << 8) | self.u8()? as usize)
    }

    fn u32(&mut self) -> Result<usize, &'static str> {
        Ok((self.u16()? << 16) | self.u16()?)
    }

    /// Skips an atom (the node of a pid or reference).
    fn atom(&mut self) -> Result<(), &'static str> {
        match self.u8()? {
            ATOM_EXT | ATOM_UTF8_EXT => {
                let n = self.u16()?;
                self.skip(n)
            }
            SMALL_ATOM_EXT | SMALL_ATOM_UTF8_EXT => {
                let n = self.u8()? as usize;
                self.skip(n)
            }
            _ => Err("expected an atom"),
        }
    }

    /// Reads one term's own bytes and returns how many terms it contains.
    fn term_head(&mut self) -> Result<u64, &'static str> {
        let children = match self.u8()? {
            SMALL_INTEGER_EXT => self.skip(1).map(|()| 0)?,
            INTEGER_EXT => self.skip(4).map(|()| 0)?,
            NEW_FLOAT_EXT => self.skip(8).map(|()| 0)?,
            FLOAT_EXT => self.skip(31).map(|()| 0)?,
            ATOM_EXT | ATOM_UTF8_EXT => {
                let n = self.u16()?;
                self.skip(n).map(|()| 0)?
            }
            SMALL_ATOM_EXT | SMALL_ATOM_UTF8_EXT => {
                let n = self.u8()? as usize;
                self.skip(n).map(|()| 0)?
            }
            SMALL_TUPLE_EXT => self.u8()? as u64,
            LARGE_TUPLE_EXT => self.u32()? as u64,
            NIL_EXT => 0,
            STRING_EXT => {
                let n = self.u16()?;
                self.skip(n).map(|()| 0)?
            }
            // The elements and the tail.
            LIST_EXT => self.u32()? as u64 + 1,
            BINARY_EXT => {
                let n = self.u32()?;
                self.skip(n).map(|()| 0)?
            }
            BIT_BINARY_EXT => {
                let n = self.u32()?;
                self.skip(1 + n).map(|()| 0)?
            }
            SMALL_BIG_EXT => {
                let n = self.u8()? as usize;
                self.skip(1 + n).map(|()| 0)?
            }
            LARGE_BIG_EXT => {
                let n = self.u32()?;
                self.skip(1 + n).map(|()| 0)?
            }
            MAP_EXT => 2 * self.u32()? as u64,
            NEW_PID_EXT => {
                self.atom()?;
                self.skip(12).map(|()| 0)?
            }
            NEWER_REFERENCE_EXT => {
                let words = self.u16()?;
                self.atom()?;
                self.skip(4 + 4 * words).map(|()| 0)?
            }
            _ => return Err("unsupported term type"),
        };
        Ok(children)
    }
}

/// Decodes a checked frame into `(ReqId, Request)`. Errors carry what can be said about the
/// frame: its `ReqId` when it had one, and why it was refused.
pub fn decode(frame: &[u8]) -> Result<(Term, Term), (Term, String)> {
    let undefined = || atom("undefined");
    check(frame).map_err(|why| (undefined(), why.to_string()))?;
    let term = Term::decode(frame).map_err(|e| (undefined(), format!("not a term: {e}")))?;
    match term {
        Term::Tuple(t) if t.elements.len() == 2 => {
            let mut it = t.elements.into_iter();
            let id = it.next().expect("two elements");
            let req = it.next().expect("two elements");
            Ok((id, req))
        }
        _ => Err((undefined(), "a frame is {ReqId, Request}".to_string())),
    }
}

/// Encodes `{ReqId, Reply}` with its 4-byte length prefix.
pub fn encode_reply(id: Term, reply: Term) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0];
    let frame = tuple(vec![id, reply]);
    if frame.encode(&mut out).is_err() {
        // Only reachable with a term eetf cannot express; say so instead of going silent.
        out.truncate(4);
        let fallback = tuple(vec![
            atom("undefined"),
            error(tuple(vec![
                atom("bad_reply"),
                binary(b"unencodable".to_vec()),
            ])),
        ]);
        fallback.encode(&mut out).expect("plain terms encode");
    }
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

// ---- building terms ----

/// An atom.
pub fn atom(name: &str) -> Term {
    Term::Atom(Atom::from(name))
}

/// A tuple.
pub fn tuple(elements: Vec<Term>) -> Term {
    Term::Tuple(Tuple::from(elements))
}

/// A proper list.
pub fn list(elements: Vec<Term>) -> Term {
    Term::List(List::from(elements))
}

/// A binary.
pub fn binary(bytes: Vec<u8>) -> Term {
    Term::Binary(Binary::from(bytes))
}

/// A non-negative integer, small or big as its size needs.
pub fn uint(n: u64) -> Term {
    match i32::try_from(n) {
        Ok(small) => Term::FixInteger(FixInteger::from(small)),
        Err(_) => Term::BigInteger(BigInteger::from(n)),
    }
}

/// `{error, Reason}`.
pub fn error(reason: Term) -> Term {
    tuple(vec![atom("error"), reason])
}

// ---- reading terms ----

/// The name of an atom term.
pub fn as_atom(t: &Term) -> Option<&str> {
    match t {
        Term::Atom(a) => Some(a.name.as_str()),
        _ => None,
    }
}

/// A non-negative integer term that fits in a u64.
pub fn as_u64(t: &Term) -> Option<u64> {
    match t {
        Term::FixInteger(i) => u64::try_from(i.value).ok(),
        Term::BigInteger(b) => u64::try_from(&b.value).ok(),
        _ => None,
    }
}

/// The bytes of a binary term.
pub fn as_bytes(t: &Term) -> Option<&[u8]> {
    match t {
        Term::Binary(b) => Some(&b.bytes),
        _ => None,
    }
}

/// The elements of a proper list (a charlist-looking `STRING_EXT` included).
pub fn as_list(t: &Term) -> Option<Vec<Term>> {
    match t {
        Term::List(l) => Some(l.elements.clone()),
        Term::ByteList(b) => Some(
            b.bytes
                .iter()
                .map(|&x| Term::FixInteger(FixInteger::from(x)))
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etf(t: &Term) -> Vec<u8> {
        let mut out = Vec::new();
        t.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn accepts_request_shapes() {
        let req = tuple(vec![
            uint(7),
            tuple(vec![
                atom("commit"),
                list(vec![tuple(vec![binary(vec![131, 97, 1]), uint(u64::MAX)])]),
                list(vec![]),
                atom("sync"),
            ]),
        ]);
        let bytes = etf(&req);
        assert_eq!(check(&bytes), Ok(()));
        let (id, _) = decode(&bytes).unwrap();
        assert_eq!(id, uint(7));
    }

    #[test]
    fn refuses_hostile_frames() {
        // A list claiming four billion elements in a few bytes.
        assert!(check(&[131, LIST_EXT, 255, 255, 255, 255, NIL_EXT]).is_err());
        // A binary longer than the frame.
        assert!(check(&[131, BINARY_EXT, 0, 0, 1, 0, 1, 2]).is_err());
        // An atom cache reference (eetf would panic on it).
        assert!(check(&[131, 82, 0]).is_err());
        // Compressed terms claim their inflated size.
        assert!(check(&[131, 80, 255, 255, 255, 255]).is_err());
        // Deep nesting.
        let mut deep = vec![131];
        for _ in 0..10_000 {
            deep.extend_from_slice(&[SMALL_TUPLE_EXT, 1]);
        }
        deep.push(NIL_EXT);
        assert!(check(&deep).is_err());
        // Trailing bytes, empty and non-ETF frames.
        assert!(check(&[131, NIL_EXT, 0]).is_err());
        assert!(check(&[]).is_err());
        assert!(check(b"hello").is_err());
    }

    #[test]
    fn every_prefix_of_a_frame_is_refused_without_panic() {
        let req = etf(&tuple(vec![
            uint(1),
            tuple(vec![atom("put"), binary(vec![1; 40]), binary(vec![2; 40])]),
        ]));
        for n in 0..req.len() {
            assert!(decode(&req[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn reply_has_length_prefix() {
        let out = encode_reply(uint(1), atom("ok"));
        let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        assert_eq!(len, out.len() - 4);
        assert_eq!(
            Term::decode(&out[4..]).unwrap(),
            tuple(vec![uint(1), atom("ok")])
        );
    }
}
