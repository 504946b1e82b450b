//! File contents as content-addressed blobs, with real IO: the chunker that
//! cuts files into FastCDC chunks ([`chunker`]) and the on-disk store that
//! keeps chunks and manifests by BLAKE3 hash ([`store`]), the chunks of
//! large contents many to a file ([`packs`]), and writes that bypass the
//! page cache for bytes kept for others ([`uncached`]).
//!
//! The formats (hashes, manifests, chunking parameters, `/hearth/blob/1`) and
//! the sans-IO fetch planner live in [`hearth_protocol::blob`]; this module
//! gives them a disk. Every byte read back from the store is verified against
//! its name before it is returned, so a node never writes a corrupted file or
//! serves a corrupted chunk to a peer (which would get it banned by the
//! peer's fetcher).

pub mod chunker;
pub mod packs;
pub mod store;
pub mod uncached;

use std::io;
use std::path::PathBuf;

use hearth_protocol::blob::{ChunkHash, ManifestError};

pub use chunker::{manifest_of_file, Chunk, Chunker};
pub use store::{Assembly, BlobStore, Staged};

/// Why a blob operation failed. Every message says what happened to which
/// file, and what to do when there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The operating system refused a file operation.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("read chunk", "create temporary file in", ...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A stored blob no longer matches its hash. It has been deleted.
    #[error(
        "blob {hash} was corrupted on disk ({path}); it has been removed and will have to be fetched again \
         (check the disk if this repeats)"
    )]
    Corrupt {
        /// The blob.
        hash: ChunkHash,
        /// Where it was.
        path: PathBuf,
    },
    /// Bytes offered under a name they do not hash to.
    #[error("refusing to store bytes under {expected}: they hash to {actual}")]
    HashMismatch {
        /// The name given.
        expected: ChunkHash,
        /// Their real hash.
        actual: ChunkHash,
    },
    /// Some chunks of a file are not in the store.
    #[error(
        "cannot write {dest}: {missing} of its {total} chunks are not in the blob store yet (first missing: \
         {first}); they have to be fetched from a member first"
    )]
    MissingChunks {
        /// The file that was to be written.
        dest: PathBuf,
        /// Distinct chunks missing.
        missing: usize,
        /// Distinct chunks in the file.
        total: usize,
        /// One of them.
        first: ChunkHash,
    },
    /// A byte range beyond the end of a blob.
    #[error("bytes {offset}..{end} lie past the end of blob {hash} ({len} bytes)")]
    OutOfRange {
        /// The blob.
        hash: ChunkHash,
        /// Start of the range.
        offset: u64,
        /// End of the range (exclusive).
        end: u64,
        /// The blob's length.
        len: u64,
    },
    /// A stored manifest blob does not decode.
    #[error("blob {id} is not a valid file manifest: {source}")]
    BadManifest {
        /// The blob.
        id: ChunkHash,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// A file cannot be described by one manifest.
    #[error("{path} cannot be shared: {source}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// The bytes written for a file differ in length from its manifest (a
    /// store bug, or a chunk replaced underneath us).
    #[error("{path}: wrote {written} bytes where the manifest says {expected}; the file was not replaced")]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Manifest size.
        expected: u64,
        /// Bytes written.
        written: u64,
    },
}

impl BlobError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}
