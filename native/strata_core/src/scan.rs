//! Paged range scans in key term order over a snapshot.
//!
//! Keys are spread over partitions by hash, so a range scan merges one iterator per partition
//! (or reads a single partition when the caller knows the range lies in one, as for hash-tagged
//! keys). A page holds at most `limit` live entries and examines a bounded number of entries
//! (tombstones included), so no call runs unbounded; `next` says where the following page starts.

use crate::store::{Stored, CF_DATA};
use crate::{Error, Snapshot, Store};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// One end of a key range, on encoded keys (without the partition prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// No bound.
    Unbounded,
    /// Keys from (or up to) this one, inclusive.
    Included(Vec<u8>),
    /// Keys strictly after (or before) this one.
    Excluded(Vec<u8>),
}

/// A page of a scan.
#[derive(Debug, Default)]
pub struct ScanPage {
    /// Encoded keys with their values' external term format, in scan order.
    pub items: Vec<(Vec<u8>, Vec<u8>)>,
    /// When more may follow: the last key examined; the next page continues after it.
    pub next: Option<Vec<u8>>,
}

/// Entries (live or not) one page may examine, as a multiple of its limit plus a constant.
const EXAMINE_FACTOR: usize = 8;
const EXAMINE_EXTRA: usize = 1024;

/// Encoded keys are prefix-free, so "after K" is "from K ++ [0]" and "up to K" is
/// "before K ++ [0]".
fn successor(k: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(k.len() + 1);
    s.extend_from_slice(k);
    s.push(0);
    s
}

fn prefixed(p: u16, k: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(k.len() + 2);
    v.extend_from_slice(&p.to_be_bytes());
    v.extend_from_slice(k);
    v
}

impl Store {
    /// Reads one page of the range `[lo, hi]` (as the bounds say), ascending or, with
    /// `reverse`, descending. `partition` restricts the scan to one partition. With `blocking`
    /// false only cached data is read and `Error::WouldBlock` means the page needs the disk.
    #[allow(clippy::too_many_arguments)]
    pub fn scan(
        &self,
        snap: &Snapshot,
        lo: &Bound,
        hi: &Bound,
        reverse: bool,
        limit: usize,
        partition: Option<u16>,
        blocking: bool,
    ) -> Result<ScanPage, Error> {
        let inner = &self.inner;
        let parts: Vec<u16> = match partition {
            Some(p) if p < inner.partitions => vec![p],
            Some(_) => return Err(Error::Invalid("no such partition".into())),
            None => (0..inner.partitions).collect(),
        };
        let lower = match lo {
            Bound::Unbounded => Vec::new(),
            Bound::Included(k) => k.clone(),
            Bound::Excluded(k) => successor(k),
        };
        let upper = match hi {
            Bound::Unbounded => None,
            Bound::Included(k) => Some(successor(k)),
            Bound::Excluded(k) => Some(k.clone()),
        };
        if limit == 0 || upper.as_ref().is_some_and(|u| *u <= lower) {
            return Ok(ScanPage::default());
        }
        let view = snap.view()?;
        let data = inner.cf(CF_DATA);
        // One iterator serves every partition: each partition keeps a small buffer of its next
        // entries, refilled by a seek when it runs dry, and a heap merges the buffer heads.
        // Keys are spread evenly over partitions, so a page reads about `limit / P` entries of
        // each and one seek per partition, instead of an iterator per partition.
        let mut it = inner
            .db
            .raw_iterator_cf_opt(data, Snapshot::read_opts(&view, blocking));
        let range = Range {
            lower: &lower,
            upper: upper.as_deref(),
            reverse,
        };
        let first_fill = (2 * limit / parts.len()).clamp(2, limit + 1);
        let mut cursors: Vec<Cursor> = parts.iter().map(|&p| Cursor::new(p, first_fill)).collect();
        let mut heap: BinaryHeap<(HeapKey, usize)> = BinaryHeap::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            if let Some(k) = c.head(&mut it, &range)? {
                heap.push((HeapKey::new(k, reverse), i));
            }
        }
        let budget = limit.saturating_mul(EXAMINE_FACTOR) + EXAMINE_EXTRA;
        let mut page = ScanPage::default();
        let mut examined = 0;
        while let Some((_, i)) = heap.pop() {
            let (key, record) = cursors[i].buf.pop_front().expect("head present");
            if let Some(v) = Stored::parse(&record)?.value {
                page.items.push((key.clone(), v.to_vec()));
            }
            examined += 1;
            if let Some(k) = cursors[i].head(&mut it, &range)? {
                heap.push((HeapKey::new(k, reverse), i));
            }
            if page.items.len() >= limit || examined >= budget {
                if !heap.is_empty() {
                    page.next = Some(key);
                }
                break;
            }
        }
        Ok(page)
    }
}

/// The bounds of a scan, on keys without their partition prefix.
struct Range<'a> {
    lower: &'a [u8],
    upper: Option<&'a [u8]>,
    reverse: bool,
}

/// Heap order: smallest key first going forward, largest first in reverse.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum HeapKey {
    Forward(Reverse<Vec<u8>>),
    Backward(Vec<u8>),
}

impl HeapKey {
    fn new(k: &[u8], reverse: bool) -> Self {
        if reverse {
            HeapKey::Backward(k.to_vec())
        } else {
            HeapKey::Forward(Reverse(k.to_vec()))
        }
    }
}

/// One partition's position in a scan.
struct Cursor {
    partition: u16,
    /// Entries read ahead: key without prefix, stored record.
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// The last key read, where the next fill resumes (exclusive).
    last: Option<Vec<u8>>,
    /// No more entries in range.
    done: bool,
    /// Entries to read on the next fill.
    fill: usize,
}

impl Cursor {
    fn new(partition: u16, fill: usize) -> Self {
        Cursor {
            partition,
            buf: VecDeque::new(),
            last: None,
            done: false,
            fill,
        }
    }

    /// The next key of this partition, reading ahead when the buffer is empty.
    fn head(
        &mut self,
        it: &mut rocksdb::DBRawIteratorWithThreadMode<rocksdb::DB>,
        r: &Range,
    ) -> Result<Option<&[u8]>, Error> {
        if self.buf.is_empty() && !self.done {
            self.read(it, r)?;
        }
        Ok(self.buf.front().map(|(k, _)| k.as_slice()))
    }

    fn read(
        &mut self,
        it: &mut rocksdb::DBRawIteratorWithThreadMode<rocksdb::DB>,
        r: &Range,
    ) -> Result<(), Error> {
        let p = self.partition;
        if r.reverse {
            let end = match (&self.last, r.upper) {
                (Some(last), _) => prefixed(p, last),
                (None, Some(u)) => prefixed(p, u),
                (None, None) => (p + 1).to_be_bytes().to_vec(),
            };
            // Position on the last key strictly below `end`.
            it.seek_for_prev(&end);
            if it.key().is_some_and(|k| k >= end.as_slice()) {
                it.prev();
            }
        } else {
            match &self.last {
                Some(last) => it.seek(prefixed(p, &successor(last))),
                None => it.seek(prefixed(p, r.lower)),
            }
        }
        let mut read = 0;
        while read < self.fill {
            let Some(k) = it.key() else { break };
            if k[..2] != p.to_be_bytes() {
                break;
            }
            let key = &k[2..];
            let inside = if r.reverse {
                key >= r.lower
            } else {
                r.upper.is_none_or(|u| key < u)
            };
            if !inside {
                break;
            }
            self.buf
                .push_back((key.to_vec(), it.value().expect("valid").to_vec()));
            read += 1;
            if r.reverse {
                it.prev();
            } else {
                it.next();
            }
        }
        it.status()?;
        if read < self.fill {
            self.done = true;
        } else {
            self.last = self.buf.back().map(|(k, _)| k.clone());
            self.fill = (self.fill * 2).min(1024);
        }
        Ok(())
    }
}
