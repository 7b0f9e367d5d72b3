//! The benchmark's keys and the orders it loads and reads them in, shared by `main` and the
//! `get_layout` example; the Erlang side (`bench/strata_bench.erl`) computes the same.

/// The key of index `i`, as the Erlang side writes it: `<<"key", I:64>>`.
pub fn key(i: u64) -> Vec<u8> {
    let mut k = b"key".to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// Every index below `n` once, in the scrambled order the Erlang side uses
/// (`I * 2654435761 rem N`; the multiplier is coprime with the benchmark's sizes).
pub fn order(n: u64) -> Vec<u64> {
    (0..n).map(|i| i * 2_654_435_761 % n).collect()
}

/// Every index below `n` once, in the order the databases are loaded: sorted by a 64-bit
/// hash of the index (splitmix64), as YCSB loads its keys in hashed order. The Erlang side
/// loads strata in the same order. Loaded in index order, raw RocksDB's memtable would lay its
/// keys out in memory in key order, each node next to the one before, so that a get's last
/// steps through the skip list stay within a few pages; strata's keys, spread by their
/// partition prefix, never have that layout, and the get ratio would measure it instead of
/// the path from Erlang (`doc/engine.md`, "Benchmark load order").
pub fn load_order(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    v.sort_by_key(|&i| splitmix64(i));
    v
}

/// The splitmix64 finalizer: a bijection on `u64` that scatters consecutive inputs.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Erlang side computes the same values (`strata_bench:splitmix64/1`).
    #[test]
    fn splitmix64_is_the_reference_function() {
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(1), 0x910A_2DEC_8902_5CC1);
        assert_eq!(load_order(5).len(), 5);
    }
}
