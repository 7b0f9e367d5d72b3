//! Order-preserving encoding of Erlang terms.
//!
//! `encode(etf)` turns the external term format of any term into bytes whose lexicographic
//! order is Erlang's term order, and `decode` turns them back into external term format.
//!
//! Layout: a *main* part, which orders terms exactly as Erlang's `<` / `==` do, followed by a
//! *trailer* with one byte per number met in the main part (integer, float, or negative-zero
//! float). Terms that compare equal but are not identical (`1` and `1.0`, `{1}` and `{1.0}`)
//! therefore share the main part and differ only in the trailer, which sorts integers first.
//!
//! Main part, by type (tags ascend in term order: number < atom < reference < fun < port < pid
//! < tuple < map < nil < list < bitstring):
//! - numbers: sign tag, then |x| = 1.m * 2^e as a length-prefixed big-endian biased exponent
//!   and the bits of m in 7-bit groups (`0x80 | g`) closed by `0x00`; negatives are the
//!   bitwise complement, so larger magnitudes sort first. Inside map keys ("exact" mode, the
//!   order Erlang uses for map keys) integers sort before all floats and carry their own tags.
//! - atoms, binaries: the bytes with `0x00` escaped as `0x00 0xFF`, closed by `0x00 0x02`;
//!   a trailing partial byte of a bitstring is `p 0x00 0x01 n` (or `0x00 0x03 n` when `p` is 0).
//! - tuples: arity, then the elements; maps: size, the keys (exact mode, sorted), the values.
//! - lists: `CONS elem` per cell, then `NIL` or the improper tail.
//! - references, funs, ports, pids: their external format, escaped. They round-trip; within
//!   each of these types the order is that of their external format, not Erlang's.

use crate::Error;

/// Largest encoded key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
const MAX_DEPTH: usize = 256;

const T_NUM_NEG: u8 = 0x10;
const T_NUM_ZERO: u8 = 0x11;
const T_NUM_POS: u8 = 0x12;
// Exact mode (map keys): integers before floats.
const T_FLT_NEG: u8 = 0x13;
const T_FLT_ZERO: u8 = 0x14;
const T_FLT_POS: u8 = 0x15;
const T_ATOM: u8 = 0x20;
const T_REF: u8 = 0x30;
const T_FUN: u8 = 0x38;
const T_PORT: u8 = 0x40;
const T_PID: u8 = 0x48;
const T_TUPLE: u8 = 0x50;
const T_MAP: u8 = 0x60;
const T_NIL: u8 = 0x70;
const T_CONS: u8 = 0x78;
const T_BITS: u8 = 0x80;

const TR_INT: u8 = 0;
const TR_FLOAT: u8 = 1;
const TR_NEG_ZERO: u8 = 2;

const EXP_BIAS: i64 = 1100;

use crate::etf::*;

/// An encoded key and, when the key is a hash-tagged `{'$tag', Tag, Rest}`, the byte range of
/// `Tag`'s encoding inside it (partitioning hashes that range instead of the whole key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedKey {
    /// The order-preserving bytes.
    pub bytes: Vec<u8>,
    /// Range of the hash tag's encoding within `bytes`, if the key has one.
    pub tag: Option<(usize, usize)>,
}

impl EncodedKey {
    /// The bytes that decide the key's partition: the tag's encoding or the whole key.
    pub fn hash_bytes(&self) -> &[u8] {
        match self.tag {
            Some((from, to)) => &self.bytes[from..to],
            None => &self.bytes,
        }
    }
}

/// Encodes a term given in external term format (with its leading version byte).
pub fn encode(etf: &[u8]) -> Result<EncodedKey, Error> {
    let body = match etf.split_first() {
        Some((&VERSION, body)) => body,
        _ => return Err(Error::BadKey("not external term format")),
    };
    // Room for about the whole encoding and a partition prefix (`Store::data_key`).
    let mut enc = Encoder {
        out: Vec::with_capacity(etf.len() + 8),
        ..Encoder::default()
    };
    let end = enc.term(body, 0, false, 0, true)?;
    if end != body.len() {
        return Err(Error::BadKey("trailing bytes after term"));
    }
    let mut bytes = enc.out;
    bytes.extend_from_slice(&enc.trailer);
    if bytes.len() > MAX_KEY_BYTES {
        return Err(Error::KeyTooLarge);
    }
    Ok(EncodedKey {
        bytes,
        tag: enc.tag,
    })
}

/// Encodes a binary key without going through external term format (the common case).
pub fn encode_binary(bin: &[u8]) -> Result<EncodedKey, Error> {
    // Room for the escaped bytes, the tag, the terminator and a partition prefix
    // (`Store::data_key`), so that neither the escaping nor the prefix reallocates.
    let zeros = bin.iter().filter(|&&c| c == 0).count();
    let mut out = Vec::with_capacity(bin.len() + zeros + 5);
    out.push(T_BITS);
    escape_into(&mut out, bin);
    out.extend_from_slice(&[0x00, 0x02]);
    if out.len() > MAX_KEY_BYTES {
        return Err(Error::KeyTooLarge);
    }
    Ok(EncodedKey {
        bytes: out,
        tag: None,
    })
}

#[derive(Default)]
struct Encoder {
    out: Vec<u8>,
    trailer: Vec<u8>,
    tag: Option<(usize, usize)>,
}

fn need(b: &[u8], pos: usize, n: usize) -> Result<(), Error> {
    if pos.checked_add(n).is_some_and(|end| end <= b.len()) {
        Ok(())
    } else {
        Err(Error::BadKey("truncated term"))
    }
}

fn u16_at(b: &[u8], pos: usize) -> Result<usize, Error> {
    need(b, pos, 2)?;
    Ok(u16::from_be_bytes([b[pos], b[pos + 1]]) as usize)
}

fn u32_at(b: &[u8], pos: usize) -> Result<usize, Error> {
    need(b, pos, 4)?;
    Ok(u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]) as usize)
}

fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for &c in bytes {
        if c == 0 {
            out.extend_from_slice(&[0x00, 0xFF]);
        } else {
            out.push(c);
        }
    }
}

/// Appends an order-preserving unsigned integer: a length byte, then minimal big-endian bytes.
fn put_len(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8).min(7) as usize;
    out.push((8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// A positive magnitude as `1.m * 2^e`: `e` and the bits of `m`, most significant first.
struct Magnitude<'a> {
    e: i64,
    /// Big-endian bytes holding the value; `m` is the `mbits` bits after the leading one,
    /// which sits at bit `lead` (counted from the most significant bit of `be[0]`).
    be: &'a [u8],
    lead: usize,
    mbits: usize,
}

impl Encoder {
    fn term(
        &mut self,
        b: &[u8],
        pos: usize,
        exact: bool,
        depth: usize,
        top: bool,
    ) -> Result<usize, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::BadKey("term nested too deeply"));
        }
        need(b, pos, 1)?;
        let p = pos + 1;
        match b[pos] {
            SMALL_INTEGER_EXT => {
                need(b, p, 1)?;
                self.integer(false, &[b[p]], exact);
                Ok(p + 1)
            }
            INTEGER_EXT => {
                need(b, p, 4)?;
                let v = i32::from_be_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]);
                self.integer(v < 0, &v.unsigned_abs().to_be_bytes(), exact);
                Ok(p + 4)
            }
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let (n, q) = if b[pos] == SMALL_BIG_EXT {
                    need(b, p, 1)?;
                    (b[p] as usize, p + 1)
                } else {
                    (u32_at(b, p)?, p + 4)
                };
                need(b, q, n + 1)?;
                let mut be: Vec<u8> = b[q + 1..q + 1 + n].to_vec();
                be.reverse();
                self.integer(b[q] != 0, &be, exact);
                Ok(q + 1 + n)
            }
            NEW_FLOAT_EXT => {
                need(b, p, 8)?;
                let bits = u64::from_be_bytes(b[p..p + 8].try_into().unwrap());
                self.float(f64::from_bits(bits), exact);
                Ok(p + 8)
            }
            FLOAT_EXT => {
                need(b, p, 31)?;
                let text =
                    std::str::from_utf8(&b[p..p + 31]).map_err(|_| Error::BadKey("bad float"))?;
                let v: f64 = text
                    .trim_end_matches('\0')
                    .trim()
                    .parse()
                    .map_err(|_| Error::BadKey("bad float"))?;
                self.float(v, exact);
                Ok(p + 31)
            }
            ATOM_EXT | ATOM_UTF8_EXT => {
                let n = u16_at(b, p)?;
                need(b, p + 2, n)?;
                self.atom(&b[p + 2..p + 2 + n], b[pos] == ATOM_EXT);
                Ok(p + 2 + n)
            }
            SMALL_ATOM_EXT | SMALL_ATOM_UTF8_EXT => {
                need(b, p, 1)?;
                let n = b[p] as usize;
                need(b, p + 1, n)?;
                self.atom(&b[p + 1..p + 1 + n], b[pos] == SMALL_ATOM_EXT);
                Ok(p + 1 + n)
            }
            SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => {
                let (n, mut q) = if b[pos] == SMALL_TUPLE_EXT {
                    need(b, p, 1)?;
                    (b[p] as usize, p + 1)
                } else {
                    (u32_at(b, p)?, p + 4)
                };
                self.out.push(T_TUPLE);
                put_len(&mut self.out, n as u64);
                let tagged = top && n == 3 && is_tag_atom(b, q);
                for i in 0..n {
                    let start = self.out.len();
                    q = self.term(b, q, exact, depth + 1, false)?;
                    if tagged && i == 1 {
                        self.tag = Some((start, self.out.len()));
                    }
                }
                Ok(q)
            }
            NIL_EXT => {
                self.out.push(T_NIL);
                Ok(p)
            }
            STRING_EXT => {
                let n = u16_at(b, p)?;
                need(b, p + 2, n)?;
                for i in 0..n {
                    self.out.push(T_CONS);
                    self.integer(false, &[b[p + 2 + i]], exact);
                }
                self.out.push(T_NIL);
                Ok(p + 2 + n)
            }
            LIST_EXT => {
                let n = u32_at(b, p)?;
                let mut q = p + 4;
                for _ in 0..n {
                    self.out.push(T_CONS);
                    q = self.term(b, q, exact, depth + 1, false)?;
                }
                // The tail: NIL for a proper list, any other term for an improper one.
                self.term(b, q, exact, depth + 1, false)
            }
            BINARY_EXT => {
                let n = u32_at(b, p)?;
                need(b, p + 4, n)?;
                self.out.push(T_BITS);
                escape_into(&mut self.out, &b[p + 4..p + 4 + n]);
                self.out.extend_from_slice(&[0x00, 0x02]);
                Ok(p + 4 + n)
            }
            BIT_BINARY_EXT => {
                let n = u32_at(b, p)?;
                need(b, p + 4, n + 1)?;
                let bits = b[p + 4] as usize;
                let data = &b[p + 5..p + 5 + n];
                if n == 0 || bits == 0 || bits > 8 {
                    return Err(Error::BadKey("bad bitstring"));
                }
                self.out.push(T_BITS);
                if bits == 8 {
                    escape_into(&mut self.out, data);
                    self.out.extend_from_slice(&[0x00, 0x02]);
                } else {
                    escape_into(&mut self.out, &data[..n - 1]);
                    let last = data[n - 1] & (0xFFu8 << (8 - bits));
                    if last == 0 {
                        self.out.extend_from_slice(&[0x00, 0x03, bits as u8]);
                    } else {
                        self.out.extend_from_slice(&[last, 0x00, 0x01, bits as u8]);
                    }
                }
                Ok(p + 5 + n)
            }
            MAP_EXT => {
                let n = u32_at(b, p)?;
                let mut q = p + 4;
                let mut pairs = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let mut key_enc = Encoder::default();
                    let value_at = key_enc.term(b, q, true, depth + 1, false)?;
                    q = skip(b, value_at, depth + 1)?;
                    pairs.push((key_enc.out, value_at));
                }
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                self.out.push(T_MAP);
                put_len(&mut self.out, n as u64);
                for (key, _) in &pairs {
                    self.out.extend_from_slice(key);
                }
                for (_, value_at) in &pairs {
                    self.term(b, *value_at, exact, depth + 1, false)?;
                }
                Ok(q)
            }
            t @ (NEW_PID_EXT | PID_EXT | NEW_PORT_EXT | PORT_EXT | V4_PORT_EXT
            | NEWER_REFERENCE_EXT | NEW_REFERENCE_EXT | REFERENCE_EXT | NEW_FUN_EXT
            | EXPORT_EXT) => {
                let end = skip(b, pos, depth)?;
                self.out.push(match t {
                    NEW_PID_EXT | PID_EXT => T_PID,
                    NEW_PORT_EXT | PORT_EXT | V4_PORT_EXT => T_PORT,
                    NEW_FUN_EXT | EXPORT_EXT => T_FUN,
                    _ => T_REF,
                });
                escape_into(&mut self.out, &b[pos..end]);
                self.out.extend_from_slice(&[0x00, 0x02]);
                Ok(end)
            }
            _ => Err(Error::BadKey("unsupported term")),
        }
    }

    fn atom(&mut self, name: &[u8], latin1: bool) {
        self.out.push(T_ATOM);
        if latin1 && name.iter().any(|&c| c >= 0x80) {
            let utf8: String = name.iter().map(|&c| c as char).collect();
            escape_into(&mut self.out, utf8.as_bytes());
        } else {
            escape_into(&mut self.out, name);
        }
        self.out.extend_from_slice(&[0x00, 0x02]);
    }

    /// An integer from its sign and big-endian magnitude bytes.
    fn integer(&mut self, negative: bool, be: &[u8], exact: bool) {
        let first = be.iter().position(|&c| c != 0);
        let Some(first) = first else {
            self.out.push(T_NUM_ZERO);
            if !exact {
                self.trailer.push(TR_INT);
            }
            return;
        };
        let be = &be[first..];
        let lead = be[0].leading_zeros() as usize;
        let total_bits = be.len() * 8 - lead;
        let mag = Magnitude {
            e: total_bits as i64 - 1,
            be,
            lead,
            mbits: total_bits - 1,
        };
        self.number(negative, &mag, T_NUM_NEG, T_NUM_POS);
        if !exact {
            self.trailer.push(TR_INT);
        }
    }

    fn float(&mut self, v: f64, exact: bool) {
        let bits = v.to_bits();
        let negative = bits >> 63 == 1;
        let exp = ((bits >> 52) & 0x7FF) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        if exp == 0 && frac == 0 {
            self.out.push(if exact { T_FLT_ZERO } else { T_NUM_ZERO });
            let mark = if negative { TR_NEG_ZERO } else { TR_FLOAT };
            if exact {
                self.out.push(mark);
            } else {
                self.trailer.push(mark);
            }
            return;
        }
        // The significand with its leading one made explicit, as 8 big-endian bytes.
        let (sig, e) = if exp == 0 {
            let h = 63 - frac.leading_zeros() as i64;
            (frac, h - 1074)
        } else {
            (frac | (1u64 << 52), exp - 1023)
        };
        let be = sig.to_be_bytes();
        let lead = sig.leading_zeros() as usize;
        let mag = Magnitude {
            e,
            be: &be,
            lead,
            mbits: 63 - lead,
        };
        let (neg_tag, pos_tag) = if exact {
            (T_FLT_NEG, T_FLT_POS)
        } else {
            (T_NUM_NEG, T_NUM_POS)
        };
        self.number(negative, &mag, neg_tag, pos_tag);
        if !exact {
            self.trailer.push(TR_FLOAT);
        }
    }

    fn number(&mut self, negative: bool, mag: &Magnitude, neg_tag: u8, pos_tag: u8) {
        self.out.push(if negative { neg_tag } else { pos_tag });
        let start = self.out.len();
        put_len(&mut self.out, (mag.e + EXP_BIAS) as u64);
        // Mantissa bits after the leading one, trailing zeros dropped, in 7-bit groups.
        let bit = |i: usize| {
            let at = mag.lead + 1 + i;
            (mag.be[at / 8] >> (7 - at % 8)) & 1
        };
        let mut len = mag.mbits;
        while len > 0 && bit(len - 1) == 0 {
            len -= 1;
        }
        let mut i = 0;
        while i < len {
            let mut group = 0u8;
            for j in 0..7 {
                group <<= 1;
                if i + j < len {
                    group |= bit(i + j);
                }
            }
            self.out.push(0x80 | group);
            i += 7;
        }
        self.out.push(0x00);
        if negative {
            for c in &mut self.out[start..] {
                *c = !*c;
            }
        }
    }
}

fn is_tag_atom(b: &[u8], pos: usize) -> bool {
    const TAG: &[u8] = b"$tag";
    match b.get(pos) {
        Some(&SMALL_ATOM_UTF8_EXT) | Some(&SMALL_ATOM_EXT) => {
            b.get(pos + 1) == Some(&4) && b.get(pos + 2..pos + 6) == Some(TAG)
        }
        Some(&ATOM_UTF8_EXT) | Some(&ATOM_EXT) => {
            b.get(pos + 1..pos + 3) == Some(&[0, 4]) && b.get(pos + 3..pos + 7) == Some(TAG)
        }
        _ => false,
    }
}

/// Returns the position just after the term starting at `pos`.
fn skip(b: &[u8], pos: usize, depth: usize) -> Result<usize, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::BadKey("term nested too deeply"));
    }
    need(b, pos, 1)?;
    let p = pos + 1;
    let end = match b[pos] {
        SMALL_INTEGER_EXT => p + 1,
        INTEGER_EXT => p + 4,
        NEW_FLOAT_EXT => p + 8,
        FLOAT_EXT => p + 31,
        SMALL_BIG_EXT => {
            need(b, p, 1)?;
            p + 2 + b[p] as usize
        }
        LARGE_BIG_EXT => p + 5 + u32_at(b, p)?,
        ATOM_EXT | ATOM_UTF8_EXT => p + 2 + u16_at(b, p)?,
        SMALL_ATOM_EXT | SMALL_ATOM_UTF8_EXT => {
            need(b, p, 1)?;
            p + 1 + b[p] as usize
        }
        NIL_EXT => p,
        STRING_EXT => p + 2 + u16_at(b, p)?,
        BINARY_EXT => p + 4 + u32_at(b, p)?,
        BIT_BINARY_EXT => p + 5 + u32_at(b, p)?,
        SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => {
            let (n, mut q) = if b[pos] == SMALL_TUPLE_EXT {
                need(b, p, 1)?;
                (b[p] as usize, p + 1)
            } else {
                (u32_at(b, p)?, p + 4)
            };
            for _ in 0..n {
                q = skip(b, q, depth + 1)?;
            }
            q
        }
        LIST_EXT => {
            let n = u32_at(b, p)?;
            let mut q = p + 4;
            for _ in 0..=n {
                q = skip(b, q, depth + 1)?;
            }
            q
        }
        MAP_EXT => {
            let n = u32_at(b, p)?;
            let mut q = p + 4;
            for _ in 0..2 * n {
                q = skip(b, q, depth + 1)?;
            }
            q
        }
        NEW_PID_EXT | PID_EXT => {
            let q = skip(b, p, depth + 1)?;
            q + if b[pos] == NEW_PID_EXT { 12 } else { 9 }
        }
        NEW_PORT_EXT | PORT_EXT | V4_PORT_EXT => {
            let q = skip(b, p, depth + 1)?;
            q + match b[pos] {
                NEW_PORT_EXT => 8,
                PORT_EXT => 5,
                _ => 12,
            }
        }
        REFERENCE_EXT => skip(b, p, depth + 1)? + 5,
        NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
            let n = u16_at(b, p)?;
            let q = skip(b, p + 2, depth + 1)?;
            q + if b[pos] == NEW_REFERENCE_EXT { 1 } else { 4 } + 4 * n
        }
        NEW_FUN_EXT => p + u32_at(b, p)?,
        EXPORT_EXT => {
            let mut q = p;
            for _ in 0..3 {
                q = skip(b, q, depth + 1)?;
            }
            q
        }
        _ => return Err(Error::BadKey("unsupported term")),
    };
    if end > b.len() {
        return Err(Error::BadKey("truncated term"));
    }
    Ok(end)
}

mod decode;
pub use decode::decode;

#[cfg(test)]
mod tests;
