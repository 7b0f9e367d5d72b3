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
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use rocksdb::{
    checkpoint::Checkpoint, BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor,
    DBCompressionType, Direction, IteratorMode, Options, ReadOptions, ReadTier,
    SnapshotWithThreadMode, DB,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

/// Largest value accepted, in bytes of external term format.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;
/// Bytes before the value in a stored record: flag and version.
pub const HEADER: usize = 9;
pub(crate) const FLAG_LIVE: u8 = 0;
pub(crate) const FLAG_TOMBSTONE: u8 = 1;
pub(crate) const OP_PUT: u8 = 0;
pub(crate) const OP_DELETE: u8 = 1;
/// A log entry of several writes.
const OP_MANY: u8 = 2;

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
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
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

/// One commit-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The partition sequence number, which is also the version the write gave its key.
    pub seq: u64,
    /// True for a delete.
    pub delete: bool,
    /// The key's encoding (without the partition prefix).
    pub key: Vec<u8>,
}

/// The log entry of one commit in one partition, built as its writes take their sequence
/// numbers (consecutive: the commit holds the partition's write lock). One entry per commit
/// rather than per key: the log costs a commit one memtable insert per partition it writes.
pub(crate) struct LogRecord {
    pub(crate) partition: u16,
    /// The sequence of its last write: the entry's key.
    pub(crate) last: u64,
    count: u32,
    value: Vec<u8>,
}

impl LogRecord {
    pub(crate) fn new(partition: u16, seq: u64, delete: bool, key: &[u8]) -> Self {
        let mut value = Vec::with_capacity(1 + key.len());
        value.push(op(delete));
        value.extend_from_slice(key);
        LogRecord {
            partition,
            last: seq,
            count: 1,
            value,
        }
    }

    /// Adds the commit's next write in this partition, whose sequence is `last + 1`.
    pub(crate) fn add(&mut self, seq: u64, delete: bool, key: &[u8]) {
        debug_assert_eq!(seq, self.last + 1);
        if self.count == 1 {
            let single = std::mem::take(&mut self.value);
            self.value = Vec::with_capacity(2 * (single.len() + 5) + 5);
            self.value.push(OP_MANY);
            self.value.extend_from_slice(&[0; 4]);
            push_write(&mut self.value, single[0], &single[1..]);
        }
        push_write(&mut self.value, op(delete), key);
        self.count += 1;
        self.last = seq;
        self.value[1..5].copy_from_slice(&self.count.to_be_bytes());
    }

    pub(crate) fn key(&self) -> [u8; 10] {
        log_key(self.partition, self.last)
    }

    pub(crate) fn value(&self) -> &[u8] {
        &self.value
    }
}

fn op(delete: bool) -> u8 {
    if delete {
        OP_DELETE
    } else {
        OP_PUT
    }
}

fn push_write(value: &mut Vec<u8>, op: u8, key: &[u8]) {
    value.push(op);
    value.extend_from_slice(&(key.len() as u32).to_be_bytes());
    value.extend_from_slice(key);
}

/// Appends the writes of the log entry `(last, value)` with a sequence above `after` to `out`,
/// until it holds `limit`.
fn read_log_entry(
    last: u64,
    value: &[u8],
    after: u64,
    limit: usize,
    out: &mut Vec<LogEntry>,
) -> Result<(), Error> {
    let bad = || Error::Corrupt("log entry");
    match value {
        [op @ (OP_PUT | OP_DELETE), key @ ..] => {
            if last > after && out.len() < limit {
                out.push(LogEntry {
                    seq: last,
                    delete: *op == OP_DELETE,
                    key: key.to_vec(),
                });
            }
            Ok(())
        }
        [OP_MANY, a, b, c, d, writes @ ..] => {
            let mut rest: &[u8] = writes;
            let count = u32::from_be_bytes([*a, *b, *c, *d]) as u64;
            if count < 2 || count > last {
                return Err(bad());
            }
            for seq in last + 1 - count..=last {
                let [op @ (OP_PUT | OP_DELETE), a, b, c, d, tail @ ..] = rest else {
                    return Err(bad());
                };
                let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
                let key = tail.get(..len).ok_or_else(bad)?;
                if seq > after && out.len() < limit {
                    out.push(LogEntry {
                        seq,
                        delete: *op == OP_DELETE,
                        key: key.to_vec(),
                    });
                }
                rest = &tail[len..];
            }
            if rest.is_empty() {
                Ok(())
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

pub(crate) struct Inner {
    pub(crate) db: DB,
    /// Per partition: the last sequence number given out. The mutex is the partition's write
    /// lock: it is held from validation to the end of the RocksDB write.
    pub(crate) seqs: Vec<Mutex<u64>>,
    /// Per partition: a RocksDB sequence number at or after the last write to it, set under
    /// the write gate. A snapshot taken at or after it reads the partition as it is now, so a
    /// commit need not look up again what it read there (see `Commit::snapshot`).
    pub(crate) written: Vec<AtomicU64>,
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
    snapshots: Registry,
}

type Registry = Arc<Mutex<Snapshots>>;

/// The snapshots handed out and not yet released, by id: taking and releasing one costs the
/// same however many are open.
#[derive(Default)]
struct Snapshots {
    next: u64,
    live: HashMap<u64, Weak<SnapCell>>,
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
            seqs.push(Mutex::new(last_logged(&db, log, p)?));
        }
        // Writes before the open are older than any snapshot taken from now on.
        let opened = db.latest_sequence_number();
        let inner = Arc::new(Inner {
            written: (0..cfg.partitions)
                .map(|_| AtomicU64::new(opened))
                .collect(),
            db,
            seqs,
            gate: Mutex::new(()),
            pending: crate::write::Pending::new(crate::write::QUEUE),
            partitions: cfg.partitions,
            snapshots: Registry::default(),
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

    /// A consistent view of the whole store at this moment. It stays usable until it is
    /// released (`Snapshot::release`, or when its last clone is dropped) or the store is
    /// closed; reads through it afterwards answer `Error::NoSnapshot` or `Error::Closed`.
    pub fn snapshot(&self) -> Snapshot {
        let inner = &self.inner;
        // Read before the snapshot is taken, so at most the snapshot's own sequence number.
        let seq = inner.db.latest_sequence_number();
        let snap = inner.db.snapshot();
        // SAFETY: the snapshot borrows `inner.db`. `close_snapshots` releases every registered
        // snapshot before the database can be dropped, and a cell releases its own snapshot
        // only while holding the registry lock, so no snapshot outlives the database.
        let snap =
            unsafe { std::mem::transmute::<SnapshotWithThreadMode<'_, DB>, RocksSnapshot>(snap) };
        let mut registry = inner.snapshots.lock();
        let id = registry.next;
        registry.next += 1;
        let cell = Arc::new(SnapCell {
            snap: RwLock::new(Some(snap)),
            seq,
            id,
            registry: inner.snapshots.clone(),
        });
        registry.live.insert(id, Arc::downgrade(&cell));
        Snapshot(cell)
    }

    /// For `Commit::snapshot`: a RocksDB sequence number every write of which the snapshot
    /// shows, if it was taken from this store. A snapshot of another store (one closed and
    /// opened again while a transaction ran) says nothing about this store's writes.
    pub fn seq_of(&self, snap: &Snapshot) -> Option<u64> {
        Arc::ptr_eq(&snap.0.registry, &self.inner.snapshots).then_some(snap.seq())
    }

    /// The last sequence number of a partition (0 if it was never written).
    pub fn last_seq(&self, partition: u16) -> Result<u64, Error> {
        let lock = self
            .inner
            .seqs
            .get(partition as usize)
            .ok_or_else(|| Error::Invalid("no such partition".into()))?;
        Ok(*lock.lock())
    }

    /// Up to `limit` writes of `partition` with a sequence above `after` from the log, oldest
    /// first.
    pub fn log_since(
        &self,
        partition: u16,
        after: u64,
        limit: usize,
        blocking: bool,
    ) -> Result<Vec<LogEntry>, Error> {
        if partition >= self.inner.partitions {
            return Err(Error::Invalid("no such partition".into()));
        }
        let inner = &self.inner;
        let mut ro = read_opts(blocking, None);
        ro.set_iterate_upper_bound((partition + 1).to_be_bytes().to_vec());
        let start = log_key(partition, after.saturating_add(1));
        let mut it = inner.db.raw_iterator_cf_opt(inner.cf(CF_LOG), ro);
        it.seek(start);
        let mut out = Vec::new();
        while it.valid() && out.len() < limit {
            let (k, v) = (it.key().unwrap(), it.value().unwrap());
            if k.len() != 10 {
                return Err(Error::Corrupt("log key"));
            }
            let last = u64::from_be_bytes(k[2..10].try_into().unwrap());
            read_log_entry(last, v, after, limit, &mut out)?;
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Drops log entries so that each partition keeps its last `keep` writes (at least 1):
    /// every entry that holds one of them, so an entry of several writes may keep some older.
    /// Returns how many partitions were truncated.
    pub fn truncate_log(&self, keep: u64) -> Result<usize, Error> {
        let keep = keep.max(1);
        let inner = &self.inner;
        let mut truncated = 0;
        for p in 0..inner.partitions {
            let last = *inner.seqs[p as usize].lock();
            if last > keep {
                inner.db.delete_range_cf(
                    inner.cf(CF_LOG),
                    log_key(p, 0),
                    log_key(p, last - keep + 1),
                )?;
                truncated += 1;
            }
        }
        Ok(truncated)
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
        let live: Vec<Arc<SnapCell>> = {
            let registry = self.inner.snapshots.lock();
            let live: Vec<_> = registry.live.values().filter_map(Weak::upgrade).collect();
            for cell in &live {
                cell.snap.write().take();
            }
            live
        };
        // Dropped outside the registry lock: a cell's own drop takes that lock.
        drop(live);
    }
}

fn log_key(partition: u16, seq: u64) -> [u8; 10] {
    let mut k = [0; 10];
    k[..2].copy_from_slice(&partition.to_be_bytes());
    k[2..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn last_logged(db: &DB, log: &ColumnFamily, p: u16) -> Result<u64, Error> {
    let end = log_key(p, u64::MAX);
    let mut it = db.iterator_cf(log, IteratorMode::From(&end, Direction::Reverse));
    match it.next() {
        Some(Ok((k, _))) if k.len() == 10 && k[..2] == p.to_be_bytes() => {
            Ok(u64::from_be_bytes(k[2..10].try_into().unwrap()))
        }
        Some(Err(e)) => Err(e.into()),
        _ => Ok(0),
    }
}

type RocksSnapshot = SnapshotWithThreadMode<'static, DB>;

/// A consistent read view of the store.
#[derive(Clone)]
pub struct Snapshot(Arc<SnapCell>);

struct SnapCell {
    /// `None` once released or the store was closed.
    snap: RwLock<Option<RocksSnapshot>>,
    /// A RocksDB sequence number at most the snapshot's: every write up to it is visible.
    seq: u64,
    /// Its key in the registry.
    id: u64,
    registry: Registry,
}

impl Snapshot {
    /// A RocksDB sequence number every write of which the snapshot shows (see `Store::seq_of`).
    pub(crate) fn seq(&self) -> u64 {
        self.0.seq
    }

    /// Releases the snapshot now rather than when its last clone is dropped: RocksDB need no
    /// longer keep what only it shows. Reads through it (and its clones) then answer
    /// `Error::NoSnapshot`. Releasing twice is harmless.
    pub fn release(&self) {
        // Under the registry lock, as in `SnapCell::drop`.
        let mut registry = self.0.registry.lock();
        self.0.snap.write().take();
        registry.live.remove(&self.0.id);
    }

    /// The RocksDB snapshot, held for the duration of a read; `Error::NoSnapshot` once
    /// released (it left the registry), `Error::Closed` after close (it is still there).
    pub(crate) fn view(&self) -> Result<RwLockReadGuard<'_, Option<RocksSnapshot>>, Error> {
        let guard = self.0.snap.read();
        if guard.is_some() {
            return Ok(guard);
        }
        // Released first: `release` takes the registry lock before this lock.
        drop(guard);
        if self.0.registry.lock().live.contains_key(&self.0.id) {
            Err(Error::Closed)
        } else {
            Err(Error::NoSnapshot)
        }
    }

    pub(crate) fn read_opts(view: &Option<RocksSnapshot>, blocking: bool) -> ReadOptions {
        read_opts(blocking, view.as_ref())
    }
}

impl Drop for SnapCell {
    fn drop(&mut self) {
        // Under the registry lock, so that closing the store waits for this release.
        let mut registry = self.registry.lock();
        self.snap.get_mut().take();
        registry.live.remove(&self.id);
    }
}

// SAFETY: a RocksDB snapshot is an immutable handle that may be used and released from any
// thread; it is released before its database (see `SnapCell::drop` and `Store::drop`).
unsafe impl Send for SnapCell {}
unsafe impl Sync for SnapCell {}

#[cfg(test)]
mod tests;
