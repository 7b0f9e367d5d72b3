//! strata's storage core: the order-preserving key codec, the RocksDB store with its commit
//! log, and the consistent-hash ring. Pure Rust, no Erlang runtime: the NIF and the port
//! program are thin adapters over this crate.

pub mod etf;
pub mod keycodec;
pub mod ring;
pub mod store;

mod error;
mod scan;
mod write;

pub use error::Error;
pub use scan::{Bound, ScanPage};
pub use store::{Config, LogEntry, Snapshot, Store, Stored};
pub use write::{Applied, Commit, CommitReply, ReadCheck, Write};
