//! Snapshots: consistent read views of the store, kept in a registry so that closing the
//! store releases every one of them before the database goes.

use super::{read_opts, Store};
use crate::Error;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use rocksdb::{ReadOptions, SnapshotWithThreadMode, DB};
use std::collections::HashMap;
use std::sync::{Arc, Weak};

pub(super) type Registry = Arc<Mutex<Snapshots>>;

/// The snapshots handed out and not yet released, by id: taking and releasing one costs the
/// same however many are open.
#[derive(Default)]
pub(super) struct Snapshots {
    next: u64,
    live: HashMap<u64, Weak<SnapCell>>,
}

impl Snapshots {
    /// How many are registered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.live.len()
    }
}

impl Store {
    /// A consistent view of the whole store at this moment. It stays usable until it is
    /// released (`Snapshot::release`, or when its last clone is dropped) or the store is
    /// closed; reads through it afterwards answer `Error::NoSnapshot` or `Error::Closed`.
    pub fn snapshot(&self) -> Snapshot {
        let inner = &self.inner;
        // Read before the snapshot is taken, so at most the snapshot's own sequence number.
        let seq = inner.db.latest_sequence_number();
        let snap = inner.db.snapshot();
        // SAFETY: the snapshot borrows `inner.db`. `close` releases every registered
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
}

/// Releases every registered snapshot: reads through them then answer `Error::Closed`. Called
/// before the database is dropped.
pub(super) fn close(registry: &Registry) {
    let live: Vec<Arc<SnapCell>> = {
        let registry = registry.lock();
        let live: Vec<_> = registry.live.values().filter_map(Weak::upgrade).collect();
        for cell in &live {
            cell.snap.write().take();
        }
        live
    };
    // Dropped outside the registry lock: a cell's own drop takes that lock.
    drop(live);
}

pub(crate) type RocksSnapshot = SnapshotWithThreadMode<'static, DB>;

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
