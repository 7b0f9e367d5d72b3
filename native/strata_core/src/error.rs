//! The error type every core call returns. Each variant maps to one reason atom on the Erlang
//! side, so callers can match on it.

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The call would have to wait (disk read, write stall, busy partition); repeat it on a
    /// thread that may block.
    #[error("would block")]
    WouldBlock,
    /// Another open store holds the data directory.
    #[error("data directory is locked by another open store")]
    Locked,
    /// The store was closed.
    #[error("store is closed")]
    Closed,
    /// The snapshot was released.
    #[error("snapshot was released")]
    NoSnapshot,
    /// Validation failed: the indexes (into the commit's reads) whose versions changed.
    #[error("conflict on {0:?}")]
    Conflict(Vec<usize>),
    /// A key that cannot be encoded.
    #[error("bad key: {0}")]
    BadKey(&'static str),
    /// An encoded key over `keycodec::MAX_KEY_BYTES`.
    #[error("key too large")]
    KeyTooLarge,
    /// A value over `store::MAX_VALUE_BYTES`.
    #[error("value too large")]
    ValueTooLarge,
    /// Bad configuration or argument.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The data directory was created with another partition count.
    #[error("data directory has {stored} partitions, configuration asks for {requested}")]
    PartitionsMismatch {
        /// The count stored in the data directory.
        stored: u16,
        /// The count asked for.
        requested: u16,
    },
    /// Stored bytes that do not parse.
    #[error("corrupt data: {0}")]
    Corrupt(&'static str),
    /// An error reported by RocksDB.
    #[error("rocksdb: {0}")]
    Rocks(String),
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        match e.kind() {
            rocksdb::ErrorKind::Incomplete
            | rocksdb::ErrorKind::Busy
            | rocksdb::ErrorKind::TryAgain => Error::WouldBlock,
            _ => {
                let text = e.into_string();
                if text.contains("LOCK") && (text.contains("lock") || text.contains("Lock")) {
                    Error::Locked
                } else {
                    Error::Rocks(text)
                }
            }
        }
    }
}
