//! Why `make bench` loads its databases in hashed order: gets of 100,000 keys of 100 B from
//! memtables laid out four ways, in one process, alternating, medians of 15 rounds.
//!
//! - raw RocksDB, keys `<<"key", I:64>>` loaded in index order (= key order);
//! - the same keys loaded in hashed order (`load_order` of the benchmark);
//! - raw RocksDB on strata's data keys (partition prefix and key encoding), hashed order;
//! - strata's core (`Store::get`, computing the data key from the key), hashed order.
//!
//! Run: `cargo run --release -p strata_bench --example get_layout`.

use rocksdb::DB;
use std::time::Instant;
use strata_core::store::{db_options, Config};
use strata_core::{keycodec, Commit, Store, Write};
use workload::{key, load_order, order};

#[path = "../src/workload.rs"]
mod workload;

const N: u64 = 100_000;

fn raw(dir: &tempfile::TempDir) -> DB {
    let (opts, cfs) = db_options(&Config::new(dir.path()));
    DB::open_cf_descriptors(&opts, dir.path(), cfs).expect("open")
}

fn main() {
    let read = order(N);
    let hashed = load_order(N);
    let value = vec![0xABu8; 100];
    let dirs: Vec<_> = (0..4)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let store = Store::open(Config::new(dirs[3].path())).expect("open store");
    let data_key = |k: u64| store.data_key(keycodec::encode_binary(&key(k)).expect("key"));
    let plain_seq = raw(&dirs[0]);
    let plain_hashed = raw(&dirs[1]);
    let layout_hashed = raw(&dirs[2]);
    let put = |db: &DB, k: Vec<u8>| db.put_cf(db.cf_handle("data").unwrap(), k, &value).unwrap();
    for k in 0..N {
        put(&plain_seq, key(k));
    }
    for &k in &hashed {
        put(&plain_hashed, key(k));
        put(&layout_hashed, data_key(k));
        let write = Write::put_binary(data_key(k), &value).expect("write");
        let mut c = Commit {
            reads: vec![],
            writes: vec![write],
            snapshot: None,
        };
        store.commit(&mut c, true).expect("commit");
    }
    let get = |db: &DB, k: Vec<u8>| {
        let cf = db.cf_handle("data").unwrap();
        assert!(db.get_pinned_cf(cf, k).unwrap().is_some());
    };
    let cases: [(&str, &dyn Fn(u64)); 4] = [
        ("raw, plain keys, loaded in key order", &|k| {
            get(&plain_seq, key(k))
        }),
        ("raw, plain keys, loaded hashed", &|k| {
            get(&plain_hashed, key(k))
        }),
        ("raw, strata's data keys, loaded hashed", &|k| {
            get(&layout_hashed, data_key(k))
        }),
        ("strata core Store::get, loaded hashed", &|k| {
            let found = store.get(&data_key(k), false, None, |s| s.value.is_some());
            assert!(found.expect("get"));
        }),
    ];
    let mut rates: Vec<Vec<f64>> = vec![vec![]; cases.len()];
    for _ in 0..15 {
        for (i, (_, f)) in cases.iter().enumerate() {
            let t = Instant::now();
            read.iter().for_each(|&k| f(k));
            rates[i].push(N as f64 / t.elapsed().as_secs_f64());
        }
    }
    for ((name, _), mut r) in cases.iter().zip(rates) {
        r.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{name:40} median {:>9.0} gets/s (min {:.0}, max {:.0})",
            r[7], r[0], r[14]
        );
    }
}
