//! Decoding: encoded keys back to external term format.

use super::*;

/// Decodes an encoded key back into external term format (with the version byte).
pub fn decode(key: &[u8]) -> Result<Vec<u8>, Error> {
    let main_end = Decoder::skip_main(key, 0, false, 0)?;
    let mut dec = Decoder {
        key,
        trailer: &key[main_end..],
        next_trailer: 0,
    };
    let mut out = Vec::with_capacity(key.len() + 32);
    out.push(VERSION);
    let end = dec.term(0, false, &mut out, 0)?;
    if end != main_end || dec.next_trailer != dec.trailer.len() {
        return Err(Error::Corrupt("key trailer mismatch"));
    }
    Ok(out)
}

struct Decoder<'a> {
    key: &'a [u8],
    trailer: &'a [u8],
    next_trailer: usize,
}

fn corrupt() -> Error {
    Error::Corrupt("malformed encoded key")
}

fn at(k: &[u8], pos: usize) -> Result<u8, Error> {
    k.get(pos).copied().ok_or_else(corrupt)
}

fn get_len(k: &[u8], pos: usize) -> Result<(u64, usize), Error> {
    let n = at(k, pos)? as usize;
    if n == 0 || n > 8 {
        return Err(corrupt());
    }
    let bytes = k.get(pos + 1..pos + 1 + n).ok_or_else(corrupt)?;
    Ok((
        bytes.iter().fold(0u64, |acc, &c| (acc << 8) | c as u64),
        pos + 1 + n,
    ))
}

/// Walks escaped bytes up to their terminator, handing each byte to `byte`; returns (partial
/// bits, position after).
fn unescape(k: &[u8], mut pos: usize, mut byte: impl FnMut(u8)) -> Result<(u8, usize), Error> {
    loop {
        let c = at(k, pos)?;
        if c != 0 {
            byte(c);
            if at(k, pos + 1).ok() == Some(0) && at(k, pos + 2).ok() == Some(1) {
                return Ok((at(k, pos + 3)?, pos + 4));
            }
            pos += 1;
            continue;
        }
        match at(k, pos + 1)? {
            0xFF => {
                byte(0);
                pos += 2;
            }
            0x02 => return Ok((8, pos + 2)),
            0x03 => {
                byte(0);
                return Ok((at(k, pos + 2)?, pos + 3));
            }
            _ => return Err(corrupt()),
        }
    }
}

/// Reads escaped bytes up to their terminator, appending them to `out`; returns (partial bits,
/// position after).
fn unescape_into(k: &[u8], pos: usize, out: &mut Vec<u8>) -> Result<(u8, usize), Error> {
    unescape(k, pos, |c| out.push(c))
}

/// Reads a number body's exponent (after its tag); returns it and the mantissa's position.
fn exponent(k: &[u8], pos: usize, negative: bool) -> Result<(i64, usize), Error> {
    let flip = |c: u8| if negative { !c } else { c };
    let n = flip(at(k, pos)?) as usize;
    if n == 0 || n > 8 {
        return Err(corrupt());
    }
    let mut biased = 0u64;
    for i in 0..n {
        biased = (biased << 8) | flip(at(k, pos + 1 + i)?) as u64;
    }
    Ok(((biased as i64).wrapping_sub(EXP_BIAS), pos + 1 + n))
}

/// Walks a mantissa, handing each bit to `bit`, top bit first; returns the position after it.
fn mantissa(
    k: &[u8],
    mut pos: usize,
    negative: bool,
    mut bit: impl FnMut(u8),
) -> Result<usize, Error> {
    let flip = |c: u8| if negative { !c } else { c };
    loop {
        let c = flip(at(k, pos)?);
        pos += 1;
        if c == 0 {
            return Ok(pos);
        }
        if c & 0x80 == 0 {
            return Err(corrupt());
        }
        for j in (0..7).rev() {
            bit((c >> j) & 1);
        }
    }
}

/// Reads a number body: exponent and mantissa bits (without trailing zeros).
fn number_body(k: &[u8], pos: usize, negative: bool) -> Result<(i64, Vec<u8>, usize), Error> {
    let (e, q) = exponent(k, pos, negative)?;
    let mut bits = Vec::new();
    let q = mantissa(k, q, negative, |b| bits.push(b))?;
    while bits.last() == Some(&0) {
        bits.pop();
    }
    Ok((e, bits, q))
}

/// Reads a number body that is an integer of at most 63 bits of magnitude: `Some((magnitude,
/// position after))`, or `None` for any other body (which `number_body` then reads).
fn small_integer(k: &[u8], pos: usize, negative: bool) -> Result<Option<(u64, usize)>, Error> {
    let (e, q) = exponent(k, pos, negative)?;
    if !(0..63).contains(&e) {
        return Ok(None);
    }
    let (mut v, mut i, mut fits) = (1u64 << e, 0, true);
    let q = mantissa(k, q, negative, |b| {
        // Bit i (from the top, after the leading one) weighs 2^(e - 1 - i).
        if b == 1 {
            match e - 1 - i {
                w if w >= 0 => v |= 1 << w,
                _ => fits = false,
            }
        }
        i += 1;
    })?;
    Ok(fits.then_some((v, q)))
}

impl Decoder<'_> {
    fn skip_main(k: &[u8], pos: usize, exact: bool, depth: usize) -> Result<usize, Error> {
        if depth > MAX_DEPTH + 2 {
            return Err(corrupt());
        }
        let tag = at(k, pos)?;
        let p = pos + 1;
        Ok(match tag {
            T_NUM_NEG | T_NUM_POS | T_FLT_NEG | T_FLT_POS => {
                let negative = tag == T_NUM_NEG || tag == T_FLT_NEG;
                mantissa(k, exponent(k, p, negative)?.1, negative, |_| {})?
            }
            T_NUM_ZERO => p,
            T_FLT_ZERO if exact => p + 1,
            T_ATOM | T_BITS | T_REF | T_FUN | T_PORT | T_PID => unescape(k, p, |_| {})?.1,
            T_TUPLE => {
                let (n, mut q) = get_len(k, p)?;
                for _ in 0..n {
                    q = Self::skip_main(k, q, exact, depth + 1)?;
                }
                q
            }
            T_MAP => {
                let (n, mut q) = get_len(k, p)?;
                for _ in 0..n {
                    q = Self::skip_main(k, q, true, depth + 1)?;
                }
                for _ in 0..n {
                    q = Self::skip_main(k, q, exact, depth + 1)?;
                }
                q
            }
            T_NIL => p,
            T_CONS => {
                let mut q = pos;
                while at(k, q)? == T_CONS {
                    q = Self::skip_main(k, q + 1, exact, depth + 1)?;
                }
                Self::skip_main(k, q, exact, depth + 1)?
            }
            _ => return Err(corrupt()),
        })
    }

    fn next_mark(&mut self) -> Result<u8, Error> {
        let m = *self.trailer.get(self.next_trailer).ok_or_else(corrupt)?;
        self.next_trailer += 1;
        Ok(m)
    }

    fn term(
        &mut self,
        pos: usize,
        exact: bool,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<usize, Error> {
        if depth > MAX_DEPTH + 2 {
            return Err(corrupt());
        }
        let k = self.key;
        let tag = at(k, pos)?;
        let p = pos + 1;
        match tag {
            T_NUM_ZERO => {
                let mark = if exact { TR_INT } else { self.next_mark()? };
                match mark {
                    TR_INT => out.extend_from_slice(&[SMALL_INTEGER_EXT, 0]),
                    TR_FLOAT => put_float(out, 0.0),
                    TR_NEG_ZERO => put_float(out, -0.0),
                    _ => return Err(corrupt()),
                }
                Ok(p)
            }
            T_FLT_ZERO if exact => {
                put_float(out, if at(k, p)? == TR_NEG_ZERO { -0.0 } else { 0.0 });
                Ok(p + 1)
            }
            T_NUM_NEG | T_NUM_POS | T_FLT_NEG | T_FLT_POS => {
                let negative = tag == T_NUM_NEG || tag == T_FLT_NEG;
                let is_float = if exact {
                    tag == T_FLT_NEG || tag == T_FLT_POS
                } else {
                    self.next_mark()? == TR_FLOAT
                };
                if !is_float {
                    if let Some((v, q)) = small_integer(k, p, negative)? {
                        put_small_integer(out, if negative { -(v as i64) } else { v as i64 });
                        return Ok(q);
                    }
                }
                let (e, bits, q) = number_body(k, p, negative)?;
                if is_float {
                    put_float(out, float_from(negative, e, &bits)?);
                } else {
                    put_integer(out, negative, e, &bits)?;
                }
                Ok(q)
            }
            T_ATOM => {
                // The name goes straight after a header whose length is filled in after.
                let start = out.len();
                out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, 0]);
                let (bits, q) = unescape_into(k, p, out)?;
                let len = out.len() - start - 2;
                if bits != 8 || len > 255 * 4 {
                    return Err(corrupt());
                }
                if len < 256 {
                    out[start + 1] = len as u8;
                } else {
                    out[start] = ATOM_UTF8_EXT;
                    out[start + 1] = (len >> 8) as u8;
                    out.insert(start + 2, len as u8);
                }
                Ok(q)
            }
            T_BITS => {
                let start = out.len();
                out.extend_from_slice(&[BINARY_EXT, 0, 0, 0, 0]);
                let (bits, q) = unescape_into(k, p, out)?;
                let len = (out.len() - start - 5) as u32;
                out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
                if bits != 8 {
                    out[start] = BIT_BINARY_EXT;
                    out.insert(start + 5, bits);
                }
                Ok(q)
            }
            T_REF | T_FUN | T_PORT | T_PID => Ok(unescape_into(k, p, out)?.1),
            T_TUPLE => {
                let (n, mut q) = get_len(k, p)?;
                if n < 256 {
                    out.extend_from_slice(&[SMALL_TUPLE_EXT, n as u8]);
                } else {
                    out.push(LARGE_TUPLE_EXT);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                }
                for _ in 0..n {
                    q = self.term(q, exact, out, depth + 1)?;
                }
                Ok(q)
            }
            T_MAP => {
                let (n, mut q) = get_len(k, p)?;
                let mut keys = Vec::new();
                for _ in 0..n {
                    let mut buf = Vec::new();
                    q = self.term(q, true, &mut buf, depth + 1)?;
                    keys.push(buf);
                }
                out.push(MAP_EXT);
                out.extend_from_slice(&(n as u32).to_be_bytes());
                for key in keys {
                    out.extend_from_slice(&key);
                    q = self.term(q, exact, out, depth + 1)?;
                }
                Ok(q)
            }
            T_NIL => {
                out.push(NIL_EXT);
                Ok(p)
            }
            T_CONS => {
                let mut elems = Vec::new();
                let mut q = pos;
                let mut count: u32 = 0;
                while at(k, q)? == T_CONS {
                    q = self.term(q + 1, exact, &mut elems, depth + 1)?;
                    count += 1;
                }
                out.push(LIST_EXT);
                out.extend_from_slice(&count.to_be_bytes());
                out.extend_from_slice(&elems);
                self.term(q, exact, out, depth + 1)
            }
            _ => Err(corrupt()),
        }
    }
}

pub(super) fn put_float(out: &mut Vec<u8>, v: f64) {
    out.push(NEW_FLOAT_EXT);
    out.extend_from_slice(&v.to_bits().to_be_bytes());
}

fn float_from(negative: bool, e: i64, bits: &[u8]) -> Result<f64, Error> {
    let mant = bits.iter().fold(0u64, |acc, &b| (acc << 1) | b as u64);
    if bits.len() > 52 {
        return Err(corrupt());
    }
    let frac = mant << (52 - bits.len());
    let raw = if e >= -1022 {
        if e > 1023 {
            return Err(corrupt());
        }
        (((e + 1023) as u64) << 52) | frac
    } else {
        // Subnormal: the explicit leading one moves into the fraction field.
        let shift = -1022 - e;
        if shift > 52 {
            return Err(corrupt());
        }
        ((1u64 << 52) | frac) >> shift
    };
    let sign = if negative { 1u64 << 63 } else { 0 };
    Ok(f64::from_bits(sign | raw))
}

/// An integer of at most 63 bits of magnitude in external term format: the smallest of the
/// three encodings that holds it, as `term_to_binary` writes it.
fn put_small_integer(out: &mut Vec<u8>, v: i64) {
    if (0..256).contains(&v) {
        out.extend_from_slice(&[SMALL_INTEGER_EXT, v as u8]);
    } else if let Ok(small) = i32::try_from(v) {
        out.push(INTEGER_EXT);
        out.extend_from_slice(&small.to_be_bytes());
    } else {
        let negative = v < 0;
        let mag = v.unsigned_abs().to_le_bytes();
        let nbytes = 8 - mag.iter().rev().take_while(|&&b| b == 0).count();
        out.extend_from_slice(&[SMALL_BIG_EXT, nbytes as u8, negative as u8]);
        out.extend_from_slice(&mag[..nbytes]);
    }
}

/// An integer of at least 2^63 in magnitude, as a bignum; smaller ones are read by
/// `small_integer`, so a smaller body here is a fraction, which is corrupt.
fn put_integer(out: &mut Vec<u8>, negative: bool, e: i64, bits: &[u8]) -> Result<(), Error> {
    if !(63..=(MAX_KEY_BYTES as i64 * 8)).contains(&e) || bits.len() as i64 > e {
        return Err(corrupt());
    }
    let nbits = e as usize + 1;
    let nbytes = nbits.div_ceil(8);
    // Little-endian magnitude.
    let mut le = vec![0u8; nbytes];
    let set = |le: &mut Vec<u8>, i: usize| le[i / 8] |= 1 << (i % 8);
    set(&mut le, e as usize);
    for (i, &b) in bits.iter().enumerate() {
        if b == 1 {
            set(&mut le, e as usize - 1 - i);
        }
    }
    if nbytes < 256 {
        out.extend_from_slice(&[SMALL_BIG_EXT, nbytes as u8]);
    } else {
        out.push(LARGE_BIG_EXT);
        out.extend_from_slice(&(nbytes as u32).to_be_bytes());
    }
    out.push(negative as u8);
    out.extend_from_slice(&le);
    Ok(())
}
