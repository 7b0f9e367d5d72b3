//! The commit log: in the `log` column family, one entry per commit and partition it wrote,
//! written in the same batch as the data (the layout is in `store.rs`).

use super::{read_opts, Store, CF_LOG};
use crate::Error;
use rocksdb::{ColumnFamily, Direction, IteratorMode, DB};

const OP_PUT: u8 = 0;
const OP_DELETE: u8 = 1;
/// A log entry of several writes.
const OP_MANY: u8 = 2;

/// One write as the commit log lists it.
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
pub(super) fn read_log_entry(
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

impl Store {
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
}

fn log_key(partition: u16, seq: u64) -> [u8; 10] {
    let mut k = [0; 10];
    k[..2].copy_from_slice(&partition.to_be_bytes());
    k[2..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(super) fn last_logged(db: &DB, log: &ColumnFamily, p: u16) -> Result<u64, Error> {
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
