//! The node's one RocksDB: column families, versioned values, the commit log, snapshots and
//! backups.
//!
//! Layout:
//! - `data`: `partition (u16 BE) ++ keycodec(Key)` -> `flag (u8) ++ version (u64 BE) ++ ETF`,
//!   where flag 0 is a live value and 1 a tombstone (no ETF). A key's version is the partition
//!   sequence number of the write that produced it, so versions only grow.
//! - `log`: one entry per commit and partition it wrote, keyed `partition (u16 BE) ++ seq
//!   (u64 BE)` with the sequence of its last write (see [`LogRecord`]): `op (0 put, 1 delete)
//!   ++ keycodec(Key)` for a single write, `2 ++ count (u32 BE) ++ (op ++ len (u32 BE) ++
//!   keycodec(Key))*` for several, whose sequences are the `count` up to the key's. Written in
//!   the same batch as the data, so the log is never ahead of or behind it. The last sequence of
//!   each partition is read back from the log on open.
//! - `meta`: the partition count and format version, and under `app/` the records of the
//!   layers above (the cluster membership), read and written through [`Store::meta_get`] and
//!   [`Store::meta_put`].
//! - `txn`: reserved for transaction records of the replicated commit protocol.

use crate::keycodec::EncodedKey;
use crate::ring;
use crate::write::GroupWriter;
use crate::Error;
use parking_lot::{Mutex, RwLock};
use rocksdb::{
    checkpoint::Checkpoint, BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor,
    DBCompressionType, Options, ReadOptions, ReadTier, DB,
};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

mod log;
mod snapshot;

pub use log::LogEntry;
pub(crate) use log::LogRecord;
pub(crate) use snapshot::RocksSnapshot;
pub use snapshot::Snapshot;

/// Largest value accepted, in bytes of external term format.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;
/// Bytes before the value in a stored record: flag and version.
pub const HEADER: usize = 9;
pub(crate) const FLAG_LIVE: u8 = 0;
pub(crate) const FLAG_TOMBSTONE: u8 = 1;

pub(crate) const CF_DATA: &str = "data";
pub(crate) const CF_LOG: &str = "log";
const CF_META: &str = "meta";
const CF_TXN: &str = "txn";
const FORMAT: u8 = 1;

/// The meta key of a record of the layers above: `app/` then its name.
fn meta_key(name: &[u8]) -> Result<Vec<u8>, Error> {
    if name.is_empty() || name.len() > 256 {
        return Err(Error::Invalid("meta names are 1 to 256 bytes".into()));
    }
    Ok([b"app/".as_slice(), name].concat())
}

/// Settings of an open store.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory.
    pub path: PathBuf,
    /// Partition count, a power of two from 2 to 4096, fixed when the directory is created.
    pub partitions: u16,
    /// Size of the block cache; size it to the working set so reads stay off the disk.
    pub block_cache_bytes: usize,
    /// Size of each memtable.
    pub write_buffer_bytes: usize,
}

impl Config {
    /// A configuration with the defaults for `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Config {
            path: path.into(),
            partitions: 64,
            block_cache_bytes: 256 << 20,
            write_buffer_bytes: 64 << 20,
        }
    }
}

/// The RocksDB options strata uses; the engine benchmark opens raw RocksDB with these too.
pub fn db_options(cfg: &Config) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let cache = Cache::new_lru_cache(cfg.block_cache_bytes);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    table.set_bloom_filter(10.0, false);
    // Filters and indexes are not put in the block cache: each open table keeps its own in
    // memory (RocksDB's default). In the cache, data blocks evicted them, and a read of an
    // absent key then answered "would block" until a dirty scheduler read them back (in the
    // feeds benchmark, 500 such reads of a new table's 5 MB index and 3 MB filter made appends
    // three times slower; the 256 MB cache is 64 shards of 4 MB).
    table.set_format_version(5);
    let mut cf = Options::default();
    cf.set_block_based_table_factory(&table);
    cf.set_write_buffer_size(cfg.write_buffer_bytes);
    cf.set_compression_type(DBCompressionType::Lz4);
    cf.set_level_compaction_dynamic_level_bytes(true);
    let mut db = cf.clone();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.set_max_background_jobs(2);
    db.set_bytes_per_sync(1 << 20);
    db.set_max_total_wal_size(256 << 20);
    // Log keys of a partition arrive in ascending order: a per-partition insert hint makes the
    // log's memtable insert start where the last one of its partition ended.
    let log = cf
        .clone()
        .get_options_from_string("memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.2")
        .expect("a valid options string");
    let cfs = vec![
        ColumnFamilyDescriptor::new(CF_DATA, cf.clone()),
        ColumnFamilyDescriptor::new(CF_LOG, log),
        ColumnFamilyDescriptor::new(CF_META, cf.clone()),
        ColumnFamilyDescriptor::new(CF_TXN, cf),
    ];
    (db, cfs)
}

/// A value as stored: its version (0 when the key never existed) and its external term format
/// (`None` when absent or deleted).
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    /// The version, the partition sequence of the last write; 0 for a key never written.
    pub version: u64,
    /// The value's external term format, or `None` for a missing or deleted key.
    pub value: Option<&'a [u8]>,
}

impl<'a> Stored<'a> {
    pub(crate) fn parse(record: &'a [u8]) -> Result<Self, Error> {
        if record.len() < HEADER {
            return Err(Error::Corrupt("short record"));
        }
        let version = u64::from_be_bytes(record[1..HEADER].try_into().unwrap());
        match record[0] {
            FLAG_LIVE => Ok(Stored {
                version,
                value: Some(&record[HEADER..]),
            }),
            FLAG_TOMBSTONE => Ok(Stored {
                version,
                value: None,
            }),
            _ => Err(Error::Corrupt("bad record flag")),
        }
    }

    const MISSING: Stored<'static> = Stored {
        version: 0,
        value: None,
    };
}

pub(crate) struct Inner {
    pub(crate) db: DB,
    /// Per partition: the last sequence number given out. The mutex is the partition's write
    /// lock: it is held from validation to the end of the RocksDB write.
    pub(crate) seqs: Vec<Mutex<u64>>,
    /// Per slot of keys (`written_slot`): a RocksDB sequence number at or after the last write
    /// to any key of the slot, set under the write gate. A snapshot taken at or after it reads
    /// those keys as they are now, so a commit need not look up again what it read there (see
    /// `Commit::snapshot`). Slots rather than partitions: keys that share a partition, such as
    /// two feeds, would otherwise make each other's reads be looked up again at every commit.
    pub(crate) written: Box<[AtomicU64]>,
    /// The write gate: held by whoever is applying a commit (a scheduler inline, a dirty
    /// caller or the writer thread), so at most one thread is inside a RocksDB write. An async
    /// commit that finds it taken does not wait, in RocksDB's writer queue (a waiting scheduler
    /// spins there) or here: it joins `pending`.
    pub(crate) gate: Mutex<()>,
    /// Async commits that found the gate taken: whoever releases the gate serves them, as
    /// one batch per round.
    pub(crate) pending: crate::write::Pending,
    pub(crate) partitions: u16,
    /// Every snapshot handed out, so that closing the store can release them first.
    snapshots: snapshot::Registry,
}

/// Slots of `Inner::written`, a power of two. Few enough to stay in the core's cache (8 KiB;
/// with 16,384 slots the misses made an append from one process about 2% slower), and many
/// enough that a read's slot is seldom written by another key while its transaction runs.
const WRITTEN_SLOTS: usize = 1 << 10;

/// The slot of `Inner::written` a data key belongs to. Not part of the storage format: it
/// lives in memory only, and a change of it needs no migration. Reads 8 bytes at a time, as
/// it is computed for every key a commit reads or writes; `ring::hash64`, which is part of
/// the format, takes one multiplication per byte.
pub(crate) fn written_slot(key: &[u8]) -> usize {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunks = key.chunks_exact(8);
    let mut h = key.len() as u64;
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(K);
        h = h.rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K);
    }
    (ring::fmix64(h) as usize) & (WRITTEN_SLOTS - 1)
}

impl Inner {
    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("column family exists")
    }
}

/// An open store.
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    pub(crate) writer: RwLock<Option<GroupWriter>>,
}

thread_local! {
    /// Read options without a snapshot, made once per thread: (memory only, may block).
    static READ_OPTS: (ReadOptions, ReadOptions) = (read_opts(false, None), read_opts(true, None));
}

/// Runs `f` with read options for `blocking` and `snap`, reusing this thread's options when
/// there is no snapshot (the hot path).
pub(crate) fn with_read_opts<R>(
    blocking: bool,
    snap: Option<&RocksSnapshot>,
    f: impl FnOnce(&ReadOptions) -> R,
) -> R {
    match snap {
        None => READ_OPTS.with(|(fast, slow)| f(if blocking { slow } else { fast })),
        Some(_) => f(&read_opts(blocking, snap)),
    }
}

fn read_opts(blocking: bool, snap: Option<&RocksSnapshot>) -> ReadOptions {
    let mut ro = ReadOptions::default();
    if !blocking {
        ro.set_read_tier(ReadTier::BlockCache);
    }
    if let Some(s) = snap {
        ro.set_snapshot(s);
    }
    ro
}

impl Store {
    /// Opens (creating if needed) the store in `cfg.path`. Blocks on the disk.
    pub fn open(cfg: Config) -> Result<Store, Error> {
        let p = cfg.partitions;
        if !p.is_power_of_two() || !(ring::MIN_PARTITIONS..=ring::MAX_PARTITIONS).contains(&p) {
            return Err(Error::Invalid(format!(
                "partitions must be a power of two from {} to {}",
                ring::MIN_PARTITIONS,
                ring::MAX_PARTITIONS
            )));
        }
        std::fs::create_dir_all(&cfg.path)
            .map_err(|e| Error::Rocks(format!("cannot create {}: {e}", cfg.path.display())))?;
        let (opts, cfs) = db_options(&cfg);
        let db = DB::open_cf_descriptors(&opts, &cfg.path, cfs)?;
        let meta = db.cf_handle(CF_META).expect("meta column family");
        match db.get_cf(meta, b"partitions")? {
            Some(v) if v.len() == 2 => {
                let stored = u16::from_be_bytes([v[0], v[1]]);
                if stored != cfg.partitions {
                    return Err(Error::PartitionsMismatch {
                        stored,
                        requested: cfg.partitions,
                    });
                }
            }
            Some(_) => return Err(Error::Corrupt("partition count")),
            None => {
                let mut wo = rocksdb::WriteOptions::default();
                wo.set_sync(true);
                let mut batch = rocksdb::WriteBatch::default();
                batch.put_cf(meta, b"partitions", cfg.partitions.to_be_bytes());
                batch.put_cf(meta, b"format", [FORMAT]);
                db.write_opt(batch, &wo)?;
            }
        }
        let log = db.cf_handle(CF_LOG).expect("log column family");
        let mut seqs = Vec::with_capacity(cfg.partitions as usize);
        for p in 0..cfg.partitions {
            seqs.push(Mutex::new(log::last_logged(&db, log, p)?));
        }
        // Writes before the open are older than any snapshot taken from now on.
        let opened = db.latest_sequence_number();
        let inner = Arc::new(Inner {
            written: (0..WRITTEN_SLOTS).map(|_| AtomicU64::new(opened)).collect(),
            db,
            seqs,
            gate: Mutex::new(()),
            pending: crate::write::Pending::new(crate::write::QUEUE),
            partitions: cfg.partitions,
            snapshots: snapshot::Registry::default(),
        });
        let writer = GroupWriter::start(inner.clone())?;
        Ok(Store {
            inner,
            writer: RwLock::new(Some(writer)),
        })
    }

    /// The partition count.
    pub fn partitions(&self) -> u16 {
        self.inner.partitions
    }

    /// The partition of an encoded key (of its hash tag when it has one).
    pub fn partition_of(&self, key: &EncodedKey) -> u16 {
        ring::partition_of(ring::hash64(key.hash_bytes()), self.inner.partitions)
    }

    /// The key under which `key` is stored: its partition, then its encoding. The encoding's
    /// buffer is reused (the prefix goes in front of it).
    pub fn data_key(&self, key: EncodedKey) -> Vec<u8> {
        let prefix = self.partition_of(&key).to_be_bytes();
        let mut k = key.bytes;
        k.splice(0..0, prefix);
        k
    }

    /// Reads a key and hands its stored form to `f`. With `blocking` false, only the memtable
    /// and block cache are consulted and `Error::WouldBlock` means the data is on disk.
    pub fn get<R>(
        &self,
        data_key: &[u8],
        blocking: bool,
        snap: Option<&Snapshot>,
        f: impl FnOnce(Stored) -> R,
    ) -> Result<R, Error> {
        let view = snap.map(Snapshot::view).transpose()?;
        let inner = &self.inner;
        let found = with_read_opts(blocking, view.as_deref().and_then(Option::as_ref), |ro| {
            inner.db.get_pinned_cf_opt(inner.cf(CF_DATA), data_key, ro)
        })?;
        match found {
            Some(rec) => Ok(f(Stored::parse(&rec)?)),
            None => Ok(f(Stored::MISSING)),
        }
    }

    /// A record of the layers above kept in the meta column family, if it was ever written.
    /// Blocks on the disk.
    pub fn meta_get(&self, name: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let inner = &self.inner;
        Ok(inner.db.get_cf(inner.cf(CF_META), meta_key(name)?)?)
    }

    /// Replaces a record in the meta column family, durably (fsynced before it returns).
    /// Names are at most 256 bytes and live apart from the store's own meta entries.
    pub fn meta_put(&self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(Error::ValueTooLarge);
        }
        let inner = &self.inner;
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        inner
            .db
            .put_cf_opt(inner.cf(CF_META), meta_key(name)?, value, &wo)?;
        Ok(())
    }

    /// Writes a consistent checkpoint of the store into `dir`, which must not exist. The
    /// checkpoint is itself a data directory that `Store::open` accepts.
    pub fn backup(&self, dir: &std::path::Path) -> Result<(), Error> {
        if dir.exists() {
            return Err(Error::Invalid(format!("{} already exists", dir.display())));
        }
        Checkpoint::new(&self.inner.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    /// Engine statistics for status reports.
    pub fn stats(&self) -> Vec<(&'static str, u64)> {
        let inner = &self.inner;
        let data = inner.cf(CF_DATA);
        let prop = |name: &str| {
            inner
                .db
                .property_int_value_cf(data, name)
                .ok()
                .flatten()
                .unwrap_or(0)
        };
        vec![
            ("estimate_keys", prop("rocksdb.estimate-num-keys")),
            ("sst_bytes", prop("rocksdb.total-sst-files-size")),
            ("memtable_bytes", prop("rocksdb.cur-size-all-mem-tables")),
            ("block_cache_bytes", prop("rocksdb.block-cache-usage")),
        ]
    }

    /// Stops the group-commit writer (it finishes what is queued), releases every snapshot
    /// and closes the database.
    pub fn close(self) {
        drop(self)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(w) = self.writer.write().take() {
            w.stop();
        }
        snapshot::close(&self.inner.snapshots);
    }
}

#[cfg(test)]
mod tests;
