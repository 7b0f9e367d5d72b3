//! Paged range scans in key term order over a snapshot.
//!
//! Keys are spread over partitions by hash, so a range scan merges one iterator per partition
//! (or reads a single partition when the caller knows the range lies in one, as for hash-tagged
//! keys). A page holds at most `limit` live entries and examines a bounded number of entries
//! (tombstones included), so no call runs unbounded; `next` says where the following page starts.

use crate::store::{Stored, CF_DATA};
use crate::{Error, Snapshot, Store};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

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
        let mut iters = Vec::with_capacity(parts.len());
        for &p in &parts {
            let mut ro = Snapshot::read_opts(&view, blocking);
            ro.set_iterate_lower_bound(prefixed(p, &lower));
            ro.set_iterate_upper_bound(match &upper {
                Some(u) => prefixed(p, u),
                None => (p + 1).to_be_bytes().to_vec(),
            });
            let mut it = inner.db.raw_iterator_cf_opt(data, ro);
            if reverse {
                it.seek_to_last();
            } else {
                it.seek_to_first();
            }
            it.status()?;
            iters.push(it);
        }
        // Merge by key (without the partition prefix); ties cannot happen across partitions.
        let mut heap: BinaryHeap<(Reverse<Vec<u8>>, usize)> = BinaryHeap::new();
        let mut heap_rev: BinaryHeap<(Vec<u8>, usize)> = BinaryHeap::new();
        let push = |i: usize,
                    it: &rocksdb::DBRawIteratorWithThreadMode<rocksdb::DB>,
                    heap: &mut BinaryHeap<(Reverse<Vec<u8>>, usize)>,
                    heap_rev: &mut BinaryHeap<(Vec<u8>, usize)>| {
            if let Some(k) = it.key() {
                if reverse {
                    heap_rev.push((k[2..].to_vec(), i));
                } else {
                    heap.push((Reverse(k[2..].to_vec()), i));
                }
            }
        };
        for (i, it) in iters.iter().enumerate() {
            push(i, it, &mut heap, &mut heap_rev);
        }
        let budget = limit.saturating_mul(EXAMINE_FACTOR) + EXAMINE_EXTRA;
        let mut page = ScanPage::default();
        let mut examined = 0;
        loop {
            let top = if reverse {
                heap_rev.pop()
            } else {
                heap.pop().map(|(Reverse(k), i)| (k, i))
            };
            let Some((key, i)) = top else {
                return Ok(page);
            };
            let it = &mut iters[i];
            let record = Stored::parse(it.value().expect("valid iterator"))?;
            if let Some(v) = record.value {
                page.items.push((key.clone(), v.to_vec()));
            }
            examined += 1;
            if reverse {
                it.prev();
            } else {
                it.next();
            }
            it.status()?;
            push(i, it, &mut heap, &mut heap_rev);
            if page.items.len() >= limit || examined >= budget {
                if !heap.is_empty() || !heap_rev.is_empty() {
                    page.next = Some(key);
                }
                return Ok(page);
            }
        }
    }
}
