//! The engine's ceiling: raw RocksDB from Rust, opened with the options strata uses
//! (`strata_core::store::db_options`), under the workloads `make bench` runs from Erlang.
//!
//! Usage: `strata_bench OPS SYNC_OPS RUNS` — prints CSV rows
//! `raw,<op>,<value bytes>,<threads>,<durability>,<ops/s>,<p50 us>,<p99 us>` with the median
//! of RUNS runs, and a progress line per step on stderr.

use rocksdb::{WriteOptions, DB};
use std::sync::Arc;
use std::time::Instant;
use strata_core::store::{db_options, Config};

struct Sample {
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// A deterministic permutation-ish key order (xorshift), so runs are comparable.
fn key(i: u64) -> Vec<u8> {
    let mut k = b"key".to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `op` over `keys` split across `threads`, timing each call.
fn run(
    db: &Arc<DB>,
    keys: &[u64],
    threads: usize,
    op: impl Fn(&DB, u64) + Send + Sync + 'static,
) -> Sample {
    let op = Arc::new(op);
    let chunks: Vec<Vec<u64>> = keys
        .chunks(keys.len().div_ceil(threads))
        .map(<[u64]>::to_vec)
        .collect();
    let start = Instant::now();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let db = db.clone();
            let op = op.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(chunk.len());
                for k in chunk {
                    let t = Instant::now();
                    op(&db, k);
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<f64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("bench thread"))
        .collect();
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Sample {
        ops_per_s: keys.len() as f64 / secs,
        p50_us: percentile(&lat, 0.5),
        p99_us: percentile(&lat, 0.99),
    }
}

fn median(mut samples: Vec<Sample>) -> Sample {
    samples.sort_by(|a, b| a.ops_per_s.partial_cmp(&b.ops_per_s).unwrap());
    samples.swap_remove(samples.len() / 2)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("usage: strata_bench OPS SYNC_OPS RUNS"))
        .collect();
    let (ops, sync_ops, runs) = match args[..] {
        [a, b, c] => (a, b, c.max(1)),
        _ => (200_000, 2_000, 3),
    };
    for value_len in [100usize, 1024] {
        for threads in [1usize, 2] {
            for sync in [false, true] {
                let n = if sync { sync_ops } else { ops };
                let durability = if sync { "sync" } else { "async" };
                let mut puts = Vec::new();
                let mut gets = Vec::new();
                for r in 0..runs {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let cfg = Config::new(dir.path());
                    let (opts, cfs) = db_options(&cfg);
                    let db = Arc::new(DB::open_cf_descriptors(&opts, dir.path(), cfs).unwrap());
                    let keys = shuffled(n, 0x9E37_79B9 + r);
                    let value = vec![0xABu8; value_len];
                    puts.push(run(&db, &keys, threads, move |db, k| {
                        let mut wo = WriteOptions::default();
                        wo.set_sync(sync);
                        let cf = db.cf_handle("data").unwrap();
                        db.put_cf_opt(cf, key(k), &value, &wo).unwrap();
                    }));
                    if !sync {
                        let keys = shuffled(n, 0x51ED + r);
                        gets.push(run(&db, &keys, threads, |db, k| {
                            let cf = db.cf_handle("data").unwrap();
                            assert!(db.get_pinned_cf(cf, key(k)).unwrap().is_some());
                        }));
                    }
                }
                let report = |op: &str, s: Sample| {
                    println!(
                        "raw,{op},{value_len},{threads},{durability},{:.0},{:.2},{:.2}",
                        s.ops_per_s, s.p50_us, s.p99_us
                    );
                    eprintln!(
                        "  raw rocksdb {op:3} {value_len:4} B {threads} thread(s) {durability:5}: {:>9.0} ops/s",
                        s.ops_per_s
                    );
                };
                report("put", median(puts));
                if !gets.is_empty() {
                    report("get", median(gets));
                }
            }
        }
    }
}
