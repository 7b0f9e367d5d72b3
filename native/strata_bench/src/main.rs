//! The engine's ceiling: raw RocksDB from Rust, opened with the options strata uses
//! (`strata_core::store::db_options`), under the workloads `make bench` runs from Erlang; and
//! strata's core (`Store::commit`, with key encoding and the commit log) from Rust, which
//! separates what the core adds to raw RocksDB from what the Erlang side adds.
//!
//! Usage: `strata_bench OPS SYNC_OPS RUNS` — prints CSV rows
//! `<raw|core>,<op>,<value bytes>,<threads>,<durability>,<ops/s>,<p50 us>,<p99 us>` with the
//! median of RUNS runs, and a progress line per step on stderr.
//!
//! `strata_bench pair OPS` serves single rounds for the benchmark's paired target
//! measurements (`pair`).

use rocksdb::{WriteOptions, DB};
use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;
use strata_core::store::{db_options, Config};
use strata_core::{keycodec, Commit, Store, Write};
use workload::{key, load_order, order};

mod workload;

struct Sample {
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `op` over `keys` split across `threads`, timing each call.
fn run<D: Send + Sync + 'static>(
    db: &Arc<D>,
    keys: &[u64],
    threads: usize,
    op: impl Fn(&D, u64) + Send + Sync + 'static,
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

fn report(system: &str, op: &str, value_len: usize, threads: usize, durability: &str, s: Sample) {
    println!(
        "{system},{op},{value_len},{threads},{durability},{:.0},{:.2},{:.2}",
        s.ops_per_s, s.p50_us, s.p99_us
    );
    eprintln!(
        "  {system:4} {op:3} {value_len:4} B {threads} thread(s) {durability:5}: {:>9.0} ops/s",
        s.ops_per_s
    );
}

/// Async puts through strata's core as the NIF makes them: the key encoded as the Erlang
/// binary `<<"key", I:64>>`, the value as a binary, one validated commit each; on the workload
/// of `main`'s 100 B puts.
fn core_puts(ops: u64, runs: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::open(Config::new(dir.path())).expect("open store"));
    let put = |s: &Store, k: u64, value: &[u8]| {
        let key = s.data_key(keycodec::encode_binary(&key(k)).unwrap());
        let mut c = Commit {
            reads: vec![],
            writes: vec![Write::put_binary(key, value).unwrap()],
            snapshot: None,
        };
        s.commit(&mut c, true).unwrap();
    };
    let value = vec![0xABu8; 100];
    for k in load_order(ops) {
        put(&store, k, &value);
    }
    let keys = order(ops);
    for threads in [1usize, 2] {
        let samples = (0..runs)
            .map(|_| {
                let value = value.clone();
                run(&store, &keys, threads, move |s: &Store, k| {
                    put(s, k, &value)
                })
            })
            .collect();
        report("core", "put", 100, threads, "async", median(samples));
    }
}

/// Raw RocksDB on the workload the Erlang side runs: per value size one database, loaded
/// with every key once in `load_order`; then, from 1 and from 2 threads, `RUNS` rounds of
/// gets of every key in the scrambled order, the same for async puts, then sync puts of the
/// first `SYNC_OPS` keys of that order.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, ops] = &args[..] {
        if mode == "pair" {
            pair(ops.parse().expect("usage: strata_bench pair OPS"));
            return;
        }
    }
    let args: Vec<u64> = args
        .iter()
        .map(|a| {
            a.parse()
                .expect("usage: strata_bench OPS SYNC_OPS RUNS | pair OPS")
        })
        .collect();
    let (ops, sync_ops, runs) = match args[..] {
        [a, b, c] => (a, b, c.max(1)),
        _ => (100_000, 2_000, 3),
    };
    let keys = order(ops);
    for value_len in [100usize, 1024] {
        let dir = tempfile::tempdir().expect("temp dir");
        let value = vec![0xABu8; value_len];
        let db = loaded(&dir, ops, &value);
        let puts = |keys: &[u64], durability: &str| {
            for threads in [1usize, 2] {
                let samples = (0..runs)
                    .map(|_| raw_puts(&db, keys, threads, &value, durability == "sync"))
                    .collect();
                report(
                    "raw",
                    "put",
                    value_len,
                    threads,
                    durability,
                    median(samples),
                );
            }
        };
        // Gets first, on the database as loaded, as the Erlang side measures them: after more
        // rounds of puts, a get searches a memtable holding what came since its last flush,
        // and the two sides' flushes fall at different points (strata's entries are larger).
        for threads in [1usize, 2] {
            let samples = (0..runs).map(|_| raw_gets(&db, &keys, threads)).collect();
            report("raw", "get", value_len, threads, "async", median(samples));
        }
        puts(&keys, "async");
        puts(&keys[..(sync_ops.min(ops) as usize)], "sync");
    }
    core_puts(ops, runs);
}

/// Raw RocksDB in `dir` with strata's options, holding the keys of every index below `ops`
/// with `value`, loaded in `load_order`.
fn loaded(dir: &tempfile::TempDir, ops: u64, value: &[u8]) -> Arc<DB> {
    let (opts, cfs) = db_options(&Config::new(dir.path()));
    let db = Arc::new(DB::open_cf_descriptors(&opts, dir.path(), cfs).unwrap());
    let cf = db.cf_handle("data").unwrap();
    for k in load_order(ops) {
        db.put_cf(cf, key(k), value).unwrap();
    }
    db
}

/// A round of raw gets of `keys` from `threads` threads; every key must be there.
fn raw_gets(db: &Arc<DB>, keys: &[u64], threads: usize) -> Sample {
    run(db, keys, threads, |db: &DB, k| {
        let cf = db.cf_handle("data").unwrap();
        assert!(db.get_pinned_cf(cf, key(k)).unwrap().is_some());
    })
}

/// A round of raw puts of `value` under `keys` from `threads` threads.
fn raw_puts(db: &Arc<DB>, keys: &[u64], threads: usize, value: &[u8], sync: bool) -> Sample {
    let value = value.to_vec();
    run(db, keys, threads, move |db: &DB, k| {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        let cf = db.cf_handle("data").unwrap();
        db.put_cf_opt(cf, key(k), &value, &wo).unwrap();
    })
}

/// Paired rounds: raw RocksDB with strata's options, one database of `ops` keys with 100 B
/// values loaded in `load_order`, then one round per request read from standard input, so
/// that the Erlang side can alternate raw's rounds with strata's and compare each pair, taken
/// seconds apart, instead of figures taken minutes apart on a machine whose speed drifts.
/// A request is a line `get THREADS` or `put THREADS` (async puts); the answer is a line
/// `OPS_PER_S P50_US P99_US` for a round over every key in the scrambled order. Ends at the
/// end of its input.
fn pair(ops: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let value = vec![0xABu8; 100];
    let db = loaded(&dir, ops, &value);
    let keys = order(ops);
    println!("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("standard input");
        let s = match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["get", t] => raw_gets(&db, &keys, t.parse().expect("a thread count")),
            ["put", t] => raw_puts(
                &db,
                &keys,
                t.parse().expect("a thread count"),
                &value,
                false,
            ),
            _ => panic!("unknown request {line:?}: expected `get N` or `put N`"),
        };
        println!("{:.0} {:.2} {:.2}", s.ops_per_s, s.p50_us, s.p99_us);
    }
}
