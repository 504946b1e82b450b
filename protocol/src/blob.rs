//! Content-addressed file contents: chunk hashes, manifests, the blob
//! transfer protocol (`/hearth/blob/1`) and the sans-IO fetch planner.
//!
//! A file's contents are cut into content-defined chunks (FastCDC, see
//! [`CHUNK_MIN`], [`CHUNK_AVG`], [`CHUNK_MAX`]); each chunk is named by the
//! BLAKE3 hash of its bytes ([`ChunkHash`]). The ordered list of chunks is the
//! file's [`Manifest`], whose canonical encoding is itself stored and moved
//! like any other blob; its hash ([`Manifest::id`]) is the file's content id
//! recorded in the share document. Because boundaries depend on content, an
//! edit in the middle of a large file changes only the chunks around it, and
//! only those move.
//!
//! Transfers are pull-only and verified: a node asks a peer for a byte range
//! of a blob ([`Get`]) and gets [`Response::Data`], [`Response::Missing`] or
//! [`Response::Refused`]. Bytes are trusted only once the whole chunk they
//! belong to hashes to the name it was asked by. The [`Fetcher`] plans a
//! download across any number of peers that may have the chunks; it performs
//! no IO and reads no clock (time arrives as `now_ms`), so the node and the
//! simulator drive the same code.
//!
//! This module is everything two nodes must agree on byte for byte about
//! contents; the on-disk store and the chunker live in `hearth-node`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PeerBytes;

pub mod batch;

/// Protocol name negotiated by multistream-select.
pub const PROTOCOL: &str = "/hearth/blob/1";
/// Longest range one [`Get`] may ask for (and so the most bytes in one
/// [`Response::Data`]).
pub const MAX_PART: u32 = 1024 * 1024;
/// Largest blob frame body either side accepts: a full [`MAX_PART`] of data
/// plus room for the CBOR envelope.
pub const MAX_MESSAGE: usize = MAX_PART as usize + 4 * 1024;
/// Longest [`Response::Refused`] message a sender should produce (in bytes);
/// [`Response::refused`] truncates to it.
pub const MAX_REFUSAL: usize = 1024;

/// FastCDC (2020 variant, normalisation level 1, gear seed 0) minimum chunk
/// size. Every chunk of a file but the last is at least this long.
///
/// The three chunking parameters are part of the format although a receiver
/// never checks cut points: two nodes that chunk the same bytes the same way
/// get the same manifest id, so identical files deduplicate across members.
pub const CHUNK_MIN: u32 = 16 * 1024;
/// FastCDC target average chunk size.
pub const CHUNK_AVG: u32 = 64 * 1024;
/// FastCDC maximum chunk size, and the largest chunk a [`Manifest`] may list.
pub const CHUNK_MAX: u32 = 256 * 1024;
/// Alias of [`CHUNK_MAX`] for readers of the manifest rules.
pub const MAX_CHUNK_SIZE: u32 = CHUNK_MAX;

/// Most chunks in one manifest. With chunks of at least [`CHUNK_MIN`] this
/// admits any file up to 64 GiB (about 256 GiB at the average chunk size),
/// while bounding an encoded manifest to about 151 MB.
pub const MAX_MANIFEST_CHUNKS: u32 = 1 << 22;
/// Current manifest encoding version (first byte of the encoding).
pub const MANIFEST_VERSION: u8 = 1;
/// Bytes before the first chunk entry: version (1), size (8), count (4).
pub const MANIFEST_HEADER_LEN: usize = 13;
/// Bytes per chunk entry: hash (32), length (4).
pub const MANIFEST_ENTRY_LEN: usize = 36;

// ----- hashes --------------------------------------------------------------

/// The BLAKE3 hash of a blob's bytes: the name of a chunk, or of an encoded
/// manifest. Displayed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkHash(pub [u8; 32]);

impl ChunkHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<blake3::Hash> for ChunkHash {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

impl fmt::Display for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkHash({self})")
    }
}

/// A string that is not a chunk hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a blob hash: expected 64 hex digits, got {0:?}")]
pub struct ParseHashError(pub String);

impl FromStr for ChunkHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseHashError(s.chars().take(80).collect());
        let digits = s.as_bytes();
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Self(out))
    }
}

impl Serialize for ChunkHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChunkHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let buf = serde_bytes::ByteBuf::deserialize(d)?;
        let bytes: [u8; 32] = buf
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(buf.len(), &"a 32-byte BLAKE3 hash"))?;
        Ok(Self(bytes))
    }
}

// ----- manifests -----------------------------------------------------------

/// One chunk of a file, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkRef {
    /// BLAKE3 of the chunk's bytes.
    pub hash: ChunkHash,
    /// The chunk's length in bytes.
    pub len: u32,
}

/// The ordered chunks of one file.
///
/// Invariant (enforced by [`Manifest::from_chunks`] and [`Manifest::decode`],
/// the only constructors): at most [`MAX_MANIFEST_CHUNKS`] chunks, each
/// 1..=[`MAX_CHUNK_SIZE`] bytes long, and `size` is their sum. An empty file
/// has no chunks.
///
/// Canonical encoding (version 1), all integers big-endian:
///
/// ```text
/// offset  len  field
/// 0       1    version = 1
/// 1       8    size: u64, the file's length
/// 9       4    count: u32, the number of chunks
/// 13      36n  count entries: hash (32 bytes) then len: u32
/// ```
///
/// Nothing follows the last entry. The encoding of a given list of chunks is
/// unique, so [`Manifest::id`] names the contents.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Manifest {
    size: u64,
    chunks: Vec<ChunkRef>,
}

/// Why bytes or a chunk list are not a valid manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Fewer bytes than the header or the announced entries need.
    #[error("the file manifest is cut short: {got} bytes where {expected} were expected")]
    Truncated {
        /// Bytes needed.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
    /// Bytes after the last entry.
    #[error("the file manifest has {extra} unexpected bytes after its last chunk")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A version this code does not know (written by a newer Hearth).
    #[error("the file manifest has version {0}, which this Hearth does not know; upgrade this node")]
    UnknownVersion(u8),
    /// More chunks than [`MAX_MANIFEST_CHUNKS`].
    #[error("the file has {count} chunks, more than the {max} a manifest may list (file too large to share)")]
    TooManyChunks {
        /// Chunks announced or given.
        count: u64,
        /// The limit.
        max: u32,
    },
    /// A zero-length chunk.
    #[error("chunk {index} of the file manifest is empty")]
    EmptyChunk {
        /// Position in the manifest.
        index: usize,
    },
    /// A chunk longer than [`MAX_CHUNK_SIZE`].
    #[error("chunk {index} of the file manifest is {len} bytes, more than the {max}-byte maximum")]
    ChunkTooLarge {
        /// Position in the manifest.
        index: usize,
        /// Its length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The announced size is not the sum of the chunk lengths.
    #[error("the file manifest announces {declared} bytes but its chunks add up to {sum}")]
    SizeMismatch {
        /// The size field.
        declared: u64,
        /// The sum of chunk lengths.
        sum: u64,
    },
}

impl Manifest {
    /// A manifest listing `chunks` in file order; the size is their sum.
    pub fn from_chunks(chunks: Vec<ChunkRef>) -> Result<Self, ManifestError> {
        if chunks.len() as u64 > u64::from(MAX_MANIFEST_CHUNKS) {
            return Err(ManifestError::TooManyChunks { count: chunks.len() as u64, max: MAX_MANIFEST_CHUNKS });
        }
        let mut size = 0u64;
        for (index, c) in chunks.iter().enumerate() {
            check_chunk_len(index, c.len)?;
            size += u64::from(c.len);
        }
        Ok(Self { size, chunks })
    }

    /// The manifest of the empty file.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The file's length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The chunks, in file order (a hash may appear more than once).
    pub fn chunks(&self) -> &[ChunkRef] {
        &self.chunks
    }

    /// Length of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        MANIFEST_HEADER_LEN + MANIFEST_ENTRY_LEN * self.chunks.len()
    }

    /// The canonical encoding (see the type's documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(MANIFEST_VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        // Fits: the constructors bound the count by MAX_MANIFEST_CHUNKS.
        out.extend_from_slice(&(self.chunks.len() as u32).to_be_bytes());
        for c in &self.chunks {
            out.extend_from_slice(&c.hash.0);
            out.extend_from_slice(&c.len.to_be_bytes());
        }
        out
    }

    /// The file's content id: the BLAKE3 hash of [`Manifest::encode`]. The
    /// encoded manifest is stored and transferred as the blob of that name.
    pub fn id(&self) -> ChunkHash {
        ChunkHash::of(&self.encode())
    }

    /// Parses and validates a canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let total = Self::encoded_len_from_header(bytes)?;
        if bytes.len() < total {
            return Err(ManifestError::Truncated { expected: total, got: bytes.len() });
        }
        if bytes.len() > total {
            return Err(ManifestError::TrailingBytes { extra: bytes.len() - total });
        }
        let mut size = [0u8; 8];
        size.copy_from_slice(&bytes[1..9]);
        let declared = u64::from_be_bytes(size);
        let mut chunks = Vec::with_capacity((total - MANIFEST_HEADER_LEN) / MANIFEST_ENTRY_LEN);
        let mut sum = 0u64;
        for (index, entry) in bytes[MANIFEST_HEADER_LEN..].chunks_exact(MANIFEST_ENTRY_LEN).enumerate() {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&entry[..32]);
            let len = u32::from_be_bytes([entry[32], entry[33], entry[34], entry[35]]);
            check_chunk_len(index, len)?;
            sum += u64::from(len);
            chunks.push(ChunkRef { hash: ChunkHash(hash), len });
        }
        if sum != declared {
            return Err(ManifestError::SizeMismatch { declared, sum });
        }
        Ok(Self { size: declared, chunks })
    }

    /// The full encoded length announced by the first [`MANIFEST_HEADER_LEN`]
    /// bytes of an encoding (more bytes may follow). Lets a node that knows
    /// only a manifest's id fetch its header first, then the rest; the answer
    /// is unverified until the whole blob hashes to the id.
    pub fn encoded_len_from_header(header: &[u8]) -> Result<usize, ManifestError> {
        if header.len() < MANIFEST_HEADER_LEN {
            return Err(ManifestError::Truncated { expected: MANIFEST_HEADER_LEN, got: header.len() });
        }
        if header[0] != MANIFEST_VERSION {
            return Err(ManifestError::UnknownVersion(header[0]));
        }
        let count = u32::from_be_bytes([header[9], header[10], header[11], header[12]]);
        if count > MAX_MANIFEST_CHUNKS {
            return Err(ManifestError::TooManyChunks { count: u64::from(count), max: MAX_MANIFEST_CHUNKS });
        }
        Ok(MANIFEST_HEADER_LEN + MANIFEST_ENTRY_LEN * count as usize)
    }
}

fn check_chunk_len(index: usize, len: u32) -> Result<(), ManifestError> {
    if len == 0 {
        return Err(ManifestError::EmptyChunk { index });
    }
    if len > MAX_CHUNK_SIZE {
        return Err(ManifestError::ChunkTooLarge { index, len, max: MAX_CHUNK_SIZE });
    }
    Ok(())
}

// ----- wire messages -------------------------------------------------------

/// The only request: bytes `offset..offset + len` of the blob named `hash`.
///
/// Ranges let a blob longer than [`MAX_PART`] (a large manifest) or a chunk
/// interrupted halfway be fetched in parts. `len` is 1..=[`MAX_PART`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Get {
    /// The blob.
    pub hash: ChunkHash,
    /// First byte wanted.
    pub offset: u32,
    /// Number of bytes wanted.
    pub len: u32,
}

/// The answer to a [`Get`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// Exactly the `len` bytes asked for. A server sends only bytes it has
    /// itself verified against the hash.
    Data {
        /// The range's bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// The server does not hold this blob (never had it, or found its copy
    /// corrupted and dropped it).
    Missing,
    /// The server will not answer this request: malformed range, range past
    /// the end of the blob, or the requester may not read it.
    Refused {
        /// Sentence for the requester's log.
        message: String,
    },
}

impl Response {
    /// A refusal, its message truncated to [`MAX_REFUSAL`] bytes.
    pub fn refused(message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_REFUSAL {
            let mut cut = MAX_REFUSAL;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        Self::Refused { message }
    }
}

/// The server side: the answer to `get` given the blob's verified bytes
/// (`None` when the server does not hold it). Pure; the node looks the blob up
/// and decides beforehand whether the requester may read it at all.
pub fn answer(get: &Get, blob: Option<&[u8]>) -> Response {
    if get.len == 0 || get.len > MAX_PART {
        return Response::refused(format!("a request must ask for 1 to {MAX_PART} bytes, not {}", get.len));
    }
    let Some(blob) = blob else {
        return Response::Missing;
    };
    let start = get.offset as usize;
    let end = start + get.len as usize;
    if end > blob.len() {
        return Response::refused(format!(
            "bytes {start}..{end} lie past the end of blob {} ({} bytes)",
            get.hash,
            blob.len()
        ));
    }
    Response::Data { bytes: blob[start..end].to_vec() }
}

// ----- the fetch planner ---------------------------------------------------

/// Tuning of a [`Fetcher`]. The defaults suit a LAN or a home uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// Requests outstanding at one peer at a time (at least 1).
    pub max_in_flight_per_peer: usize,
    /// Longest range asked in one request, 1..=[`MAX_PART`]. The default,
    /// [`CHUNK_MAX`], fetches every chunk in one request, so one peer supplies
    /// each chunk and a bad one is blamed exactly; smaller parts let a large
    /// blob come from several peers at once.
    pub part_size: u32,
    /// A request unanswered for this long is given to another peer, and its
    /// peer backs off.
    pub request_timeout_ms: u64,
    /// First back-off after a timeout or failure; doubles per consecutive
    /// failure up to `backoff_max_ms`, reset by a good answer.
    pub backoff_initial_ms: u64,
    /// Longest back-off.
    pub backoff_max_ms: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            max_in_flight_per_peer: 32,
            part_size: CHUNK_MAX,
            request_timeout_ms: 30_000,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 60_000,
        }
    }
}

/// Something the driver should know about; pulled with
/// [`Fetcher::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// A chunk arrived whole and hashes to its name: store it. Emitted once
    /// per distinct hash.
    Verified {
        /// The chunk.
        hash: ChunkHash,
        /// Its verified bytes.
        bytes: Vec<u8>,
    },
    /// `peer` supplied bytes that are not the chunk it was asked for (wrong
    /// length, or a whole chunk from it hashing wrong). The peer is banned
    /// from this fetch; its work went back to the queue.
    Corrupt {
        /// The offender.
        peer: PeerBytes,
        /// The chunk it was serving.
        hash: ChunkHash,
    },
    /// A chunk assembled from parts sent by several peers hashed wrong; nobody
    /// can be blamed yet, so the chunk is fetched again entirely from one peer
    /// (whose answer then settles it).
    Mismatch {
        /// The chunk.
        hash: ChunkHash,
        /// Everyone who contributed a part.
        peers: Vec<PeerBytes>,
    },
    /// `peer` refused to serve `hash`; it is not asked for it again (unless
    /// re-added with [`Fetcher::add_peer`]).
    Refused {
        /// The peer.
        peer: PeerBytes,
        /// The chunk.
        hash: ChunkHash,
        /// Its reason.
        message: String,
    },
}

/// What became of one answer given to the [`Fetcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Part kept; its chunk is not complete yet.
    Stored,
    /// The part completed its chunk, which verified
    /// ([`FetchEvent::Verified`] is queued).
    Verified,
    /// The peer sent wrong bytes and is banned ([`FetchEvent::Corrupt`]).
    Rejected,
    /// The completed chunk hashed wrong with several contributors
    /// ([`FetchEvent::Mismatch`]).
    Mismatch,
    /// The peer does not have or will not serve the chunk; asked elsewhere.
    Declined,
    /// Not an answer to a request this fetcher has in flight at that peer (it
    /// timed out, the peer was removed or banned, or the chunk is already
    /// done): dropped unread.
    Ignored,
}

/// A part of a pending chunk: `(chunk, part index)`.
type PartKey = (ChunkHash, u32);

/// Where one part is. Invariant: a `Queued` part is in `Fetcher::queue`
/// exactly once, a `Parked` part is in `Fetcher::parked`, an `InFlight(p)`
/// part is in `peers[p].in_flight`, and no part is in two of those.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Queued,
    Parked,
    InFlight(PeerBytes),
    Have { from: PeerBytes, bytes: Vec<u8> },
}

#[derive(Debug)]
struct Pending {
    len: u32,
    /// Occurrences in the manifest (for progress in file bytes).
    count: u64,
    parts: Vec<Part>,
    /// Set after a mixed-source mismatch: every part must then come from one
    /// peer, `pin`, chosen at the first assignment.
    single_source: bool,
    pin: Option<PeerBytes>,
}

#[derive(Debug, Default)]
struct PeerState {
    /// Requests out at this peer and their deadlines.
    in_flight: BTreeMap<PartKey, u64>,
    /// Chunks this peer said it lacks or refused.
    missing: BTreeSet<ChunkHash>,
    /// No new request before this time.
    backoff_until: u64,
    /// Consecutive timeouts or failures.
    failures: u32,
    /// Requests ever handed to this peer (spreads ties).
    sent: u64,
}

/// Sans-IO planner of one download: which part to ask which peer for, what to
/// do with each answer, when to give up on a peer.
///
/// Drive it like a quinn connection: feed inputs with the current time
/// (`add_peer`, `on_response`/`on_data`/`on_missing`/`on_refused`,
/// `on_failure`, `handle_timeout`), then pull outputs until they return
/// `None`: [`poll_request`](Self::poll_request) (send these),
/// [`poll_event`](Self::poll_event) (store verified chunks, log offenders),
/// [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout`).
///
/// Guarantees: bytes leave the fetcher only inside
/// [`FetchEvent::Verified`], after the whole chunk hashed to its name; a
/// peer that sends a wrong chunk on its own is banned; a peer's failure,
/// removal or timeout puts its outstanding work back in the queue, so a
/// download resumes from the chunks already verified. Every collection is
/// ordered, so the same inputs give the same outputs.
#[derive(Debug)]
pub struct Fetcher {
    config: FetchConfig,
    pending: BTreeMap<ChunkHash, Pending>,
    queue: VecDeque<PartKey>,
    /// Parts no current peer can serve (all said missing); back in the queue
    /// when a peer is added.
    parked: BTreeSet<PartKey>,
    peers: BTreeMap<PeerBytes, PeerState>,
    banned: BTreeSet<PeerBytes>,
    events: VecDeque<FetchEvent>,
    bytes_total: u64,
    bytes_done: u64,
    now: u64,
}

enum Choice {
    Peer(PeerBytes),
    /// Some peer could serve it later (busy or backing off).
    Wait,
    /// No current peer can ever serve it.
    Never,
}

impl Fetcher {
    /// A download of the chunks of `manifest` for which `is_present` is
    /// false (the driver asks its store; it is asked once per distinct chunk,
    /// with the length the manifest gives it).
    pub fn new(manifest: &Manifest, is_present: impl FnMut(&ChunkRef) -> bool, config: FetchConfig) -> Self {
        Self::from_refs(manifest.chunks().iter().copied(), manifest.size(), is_present, config)
    }

    /// A download of one blob of known length, e.g. an encoded manifest
    /// (whose length the share document records or
    /// [`Manifest::encoded_len_from_header`] announces). A blob longer than
    /// [`FetchConfig::part_size`] is fetched in parts, possibly from several
    /// peers at once.
    pub fn for_blob(hash: ChunkHash, len: u32, config: FetchConfig) -> Self {
        Self::from_refs(std::iter::once(ChunkRef { hash, len }), u64::from(len), |_| false, config)
    }

    fn from_refs(
        refs: impl Iterator<Item = ChunkRef>,
        bytes_total: u64,
        mut is_present: impl FnMut(&ChunkRef) -> bool,
        mut config: FetchConfig,
    ) -> Self {
        config.part_size = config.part_size.clamp(1, MAX_PART);
        config.max_in_flight_per_peer = config.max_in_flight_per_peer.max(1);
        let mut counts: BTreeMap<ChunkHash, (u32, u64)> = BTreeMap::new();
        for r in refs {
            counts.entry(r.hash).or_insert((r.len, 0)).1 += 1;
        }
        let mut me = Self {
            config,
            pending: BTreeMap::new(),
            queue: VecDeque::new(),
            parked: BTreeSet::new(),
            peers: BTreeMap::new(),
            banned: BTreeSet::new(),
            events: VecDeque::new(),
            bytes_total,
            bytes_done: 0,
            now: 0,
        };
        let mut empty = Vec::new();
        for (hash, (len, count)) in counts {
            if is_present(&ChunkRef { hash, len }) {
                me.bytes_done += u64::from(len) * count;
                continue;
            }
            let n = me.parts_of(len);
            me.pending.insert(
                hash,
                Pending { len, count, parts: vec![Part::Queued; n as usize], single_source: false, pin: None },
            );
            me.queue.extend((0..n).map(|i| (hash, i)));
            if n == 0 {
                empty.push(hash);
            }
        }
        // A zero-length blob needs no request: it verifies now, or never (no
        // empty input hashes to another name), in which case it stays pending
        // and is listed by `unavailable`.
        for hash in empty {
            me.try_complete(hash);
        }
        me
    }

    fn parts_of(&self, len: u32) -> u32 {
        len.div_ceil(self.config.part_size)
    }

    fn part_range(&self, len: u32, index: u32) -> (u32, u32) {
        let offset = index * self.config.part_size;
        (offset, (len - offset).min(self.config.part_size))
    }

    fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    // ----- peers -----------------------------------------------------------

    /// Makes `peer` a candidate. For a peer already known this is a fresh
    /// start: its back-off and its list of chunks it said it lacks are
    /// forgotten (call it when the peer reconnects or announces new content).
    /// Returns false, and does nothing, for a banned peer.
    pub fn add_peer(&mut self, peer: PeerBytes) -> bool {
        if self.banned.contains(&peer) {
            return false;
        }
        let state = self.peers.entry(peer).or_default();
        state.missing.clear();
        state.backoff_until = 0;
        state.failures = 0;
        // Parked parts may be servable again.
        for key in std::mem::take(&mut self.parked) {
            if let Some(p) = self.part_mut(key) {
                *p = Part::Queued;
                self.queue.push_back(key);
            }
        }
        true
    }

    /// Forgets `peer`: its outstanding requests go back to the queue and any
    /// answer it still sends is ignored. A no-op for an unknown peer.
    pub fn remove_peer(&mut self, peer: &[u8]) {
        if self.peers.contains_key(peer) {
            self.release(peer, false);
            self.peers.remove(peer);
        }
    }

    /// The peer's connection failed (or a request to it failed below this
    /// protocol): its outstanding requests go back to the queue and it backs
    /// off before being asked again. It stays a candidate. A burst of
    /// failures (every request of a dropped connection reports one) counts
    /// once: a call while nothing is outstanding at the peer is a no-op.
    pub fn on_failure(&mut self, now: u64, peer: &[u8]) {
        self.advance(now);
        if self.peers.get(peer).is_some_and(|p| !p.in_flight.is_empty()) {
            self.release(peer, false);
            self.back_off(peer);
        }
    }

    /// Whether `peer` was banned for sending wrong bytes.
    pub fn is_banned(&self, peer: &[u8]) -> bool {
        self.banned.contains(peer)
    }

    /// Current candidate peers.
    pub fn peers(&self) -> impl Iterator<Item = &PeerBytes> {
        self.peers.keys()
    }

    // ----- requests --------------------------------------------------------

    /// The next request to send, if any peer has room for one. Call until it
    /// returns `None` after every input. Load is spread to the peer with the
    /// fewest requests outstanding (then the fewest ever sent, then the lowest
    /// id), never beyond [`FetchConfig::max_in_flight_per_peer`].
    pub fn poll_request(&mut self, now: u64) -> Option<(PeerBytes, Get)> {
        self.advance(now);
        let now = self.now;
        let max = self.config.max_in_flight_per_peer;
        if self.queue.is_empty() || !self.peers.values().any(|p| p.ready(now, max)) {
            return None;
        }
        let mut i = 0;
        while i < self.queue.len() {
            let key = self.queue[i];
            match self.choose(key.0) {
                Choice::Peer(peer) => {
                    self.queue.remove(i);
                    return Some(self.assign(key, peer));
                }
                Choice::Wait => i += 1,
                Choice::Never => {
                    self.queue.remove(i);
                    if let Some(p) = self.part_mut(key) {
                        *p = Part::Parked;
                    }
                    self.parked.insert(key);
                }
            }
        }
        None
    }

    fn choose(&self, hash: ChunkHash) -> Choice {
        let now = self.now;
        let max = self.config.max_in_flight_per_peer;
        let Some(chunk) = self.pending.get(&hash) else { return Choice::Never };
        if let Some(pin) = &chunk.pin {
            return match self.peers.get(pin) {
                Some(p) if p.ready(now, max) => Choice::Peer(pin.clone()),
                Some(_) => Choice::Wait,
                // Unreachable by the invariants (release unpins); be safe.
                None => Choice::Never,
            };
        }
        let mut best: Option<((usize, u64), &PeerBytes)> = None;
        let mut any = false;
        for (id, p) in &self.peers {
            if p.missing.contains(&hash) {
                continue;
            }
            any = true;
            if !p.ready(now, max) {
                continue;
            }
            let rank = (p.in_flight.len(), p.sent);
            if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                best = Some((rank, id));
            }
        }
        match best {
            Some((_, id)) => Choice::Peer(id.clone()),
            None if any => Choice::Wait,
            None => Choice::Never,
        }
    }

    fn assign(&mut self, key: PartKey, peer: PeerBytes) -> (PeerBytes, Get) {
        let deadline = self.now.saturating_add(self.config.request_timeout_ms);
        let mut range = (0, 0);
        if let Some(chunk) = self.pending.get(&key.0) {
            range = self.part_range(chunk.len, key.1);
        }
        if let Some(chunk) = self.pending.get_mut(&key.0) {
            if chunk.single_source && chunk.pin.is_none() {
                chunk.pin = Some(peer.clone());
            }
            chunk.parts[key.1 as usize] = Part::InFlight(peer.clone());
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight.insert(key, deadline);
            p.sent += 1;
        }
        (peer, Get { hash: key.0, offset: range.0, len: range.1 })
    }

    // ----- answers ---------------------------------------------------------

    /// Feeds the answer `response` that `peer` gave to `get`.
    pub fn on_response(&mut self, now: u64, peer: &[u8], get: &Get, response: Response) -> Outcome {
        match response {
            Response::Data { bytes } => self.on_data(now, peer, get, bytes),
            Response::Missing => self.on_missing(now, peer, get.hash),
            Response::Refused { message } => self.on_refused(now, peer, get.hash, message),
        }
    }

    /// `peer` answered `get` with `bytes`. Accepted only if that exact request
    /// is in flight at that peer; a wrong length bans the peer at once, and a
    /// completed chunk is verified before anything leaves the fetcher.
    pub fn on_data(&mut self, now: u64, peer: &[u8], get: &Get, bytes: Vec<u8>) -> Outcome {
        self.advance(now);
        let Some(chunk) = self.pending.get(&get.hash) else { return Outcome::Ignored };
        if !get.offset.is_multiple_of(self.config.part_size) {
            return Outcome::Ignored;
        }
        let key = (get.hash, get.offset / self.config.part_size);
        if key.1 >= self.parts_of(chunk.len) || self.part_range(chunk.len, key.1) != (get.offset, get.len) {
            return Outcome::Ignored;
        }
        let Some(state) = self.peers.get_mut(peer) else { return Outcome::Ignored };
        if state.in_flight.remove(&key).is_none() {
            return Outcome::Ignored;
        }
        if bytes.len() != get.len as usize {
            self.requeue_front([key]);
            self.ban(peer, get.hash);
            return Outcome::Rejected;
        }
        state.failures = 0;
        state.backoff_until = 0;
        if let Some(p) = self.part_mut(key) {
            *p = Part::Have { from: peer.to_vec(), bytes };
        }
        self.try_complete(get.hash)
    }

    /// `peer` does not hold `hash`: its requests for it go elsewhere and it is
    /// not asked for it again (until re-added).
    pub fn on_missing(&mut self, now: u64, peer: &[u8], hash: ChunkHash) -> Outcome {
        self.advance(now);
        if !self.peers.contains_key(peer) {
            return Outcome::Ignored;
        }
        self.decline(peer, hash);
        Outcome::Declined
    }

    /// `peer` refused to serve `hash`; handled like [`Self::on_missing`], and
    /// reported as [`FetchEvent::Refused`].
    pub fn on_refused(&mut self, now: u64, peer: &[u8], hash: ChunkHash, message: String) -> Outcome {
        self.advance(now);
        if !self.peers.contains_key(peer) {
            return Outcome::Ignored;
        }
        self.decline(peer, hash);
        self.events.push_back(FetchEvent::Refused { peer: peer.to_vec(), hash, message });
        Outcome::Declined
    }

    fn decline(&mut self, peer: &[u8], hash: ChunkHash) {
        let Some(state) = self.peers.get_mut(peer) else { return };
        state.missing.insert(hash);
        let keys: Vec<PartKey> = state.in_flight.keys().filter(|k| k.0 == hash).copied().collect();
        for k in &keys {
            state.in_flight.remove(k);
        }
        self.requeue_front(keys);
        if self.pending.get(&hash).is_some_and(|c| c.pin.as_deref() == Some(peer)) {
            self.discard_from(peer, hash);
        }
    }

    /// The chunk became available locally by other means (another download
    /// fetched it): stop fetching it. Answers still in flight are ignored.
    pub fn mark_present(&mut self, hash: ChunkHash) {
        let Some(chunk) = self.pending.remove(&hash) else { return };
        self.bytes_done += u64::from(chunk.len) * chunk.count;
        self.queue.retain(|k| k.0 != hash);
        self.parked.retain(|k| k.0 != hash);
        for p in self.peers.values_mut() {
            p.in_flight.retain(|k, _| k.0 != hash);
        }
    }

    // ----- time ------------------------------------------------------------

    /// When [`Self::handle_timeout`] should next be called: the earliest
    /// request deadline, or the end of a back-off while work is waiting.
    pub fn poll_timeout(&self) -> Option<u64> {
        let deadlines = self.peers.values().flat_map(|p| p.in_flight.values().copied());
        let backoffs =
            self.peers.values().filter(|_| !self.queue.is_empty()).map(|p| p.backoff_until).filter(|&t| t > self.now);
        deadlines.chain(backoffs).min()
    }

    /// Expires requests whose deadline has passed: each goes back to the
    /// queue and its peer backs off. Spurious calls are harmless; afterwards
    /// drain [`Self::poll_request`] (a back-off may have ended).
    pub fn handle_timeout(&mut self, now: u64) {
        self.advance(now);
        let now = self.now;
        let mut late: Vec<(PeerBytes, Vec<PartKey>)> = Vec::new();
        for (id, p) in &mut self.peers {
            let expired: Vec<PartKey> = p.in_flight.iter().filter(|(_, &d)| d <= now).map(|(k, _)| *k).collect();
            if !expired.is_empty() {
                for k in &expired {
                    p.in_flight.remove(k);
                }
                late.push((id.clone(), expired));
            }
        }
        for (peer, keys) in late {
            self.requeue_front(keys);
            self.back_off(&peer);
        }
    }

    // ----- outputs and progress -------------------------------------------

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<FetchEvent> {
        self.events.pop_front()
    }

    /// File bytes verified or already present (a chunk listed twice counts
    /// twice).
    pub fn bytes_done(&self) -> u64 {
        self.bytes_done
    }

    /// The file's size.
    pub fn bytes_total(&self) -> u64 {
        self.bytes_total
    }

    /// Whether every chunk is verified or present. The last
    /// [`FetchEvent::Verified`] may still wait in [`Self::poll_event`].
    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// Distinct chunks still to fetch.
    pub fn chunks_left(&self) -> usize {
        self.pending.len()
    }

    /// Requests outstanding, all peers together.
    pub fn in_flight(&self) -> usize {
        self.peers.values().map(|p| p.in_flight.len()).sum()
    }

    /// Chunks that no current candidate can serve (every peer said it lacks
    /// them, or was banned): the download cannot finish until a peer that has
    /// them is added. Sorted.
    pub fn unavailable(&self) -> Vec<ChunkHash> {
        self.pending
            .iter()
            .filter(|(hash, c)| {
                c.parts.is_empty() || (c.pin.is_none() && self.peers.values().all(|p| p.missing.contains(hash)))
            })
            .map(|(hash, _)| *hash)
            .collect()
    }

    // ----- internals -------------------------------------------------------

    fn part_mut(&mut self, key: PartKey) -> Option<&mut Part> {
        self.pending.get_mut(&key.0).and_then(|c| c.parts.get_mut(key.1 as usize))
    }

    /// Puts parts back at the head of the queue, keeping their order.
    fn requeue_front(&mut self, keys: impl IntoIterator<Item = PartKey>) {
        let keys: Vec<PartKey> = keys.into_iter().collect();
        for key in keys.into_iter().rev() {
            if let Some(p) = self.part_mut(key) {
                *p = Part::Queued;
                self.queue.push_front(key);
            }
        }
    }

    /// Takes back everything outstanding at `peer`; with `all_data`, also every
    /// part it supplied, else only parts of chunks pinned to it.
    fn release(&mut self, peer: &[u8], all_data: bool) {
        let keys: Vec<PartKey> = match self.peers.get_mut(peer) {
            Some(p) => std::mem::take(&mut p.in_flight).into_keys().collect(),
            None => Vec::new(),
        };
        self.requeue_front(keys);
        let affected: Vec<ChunkHash> = self
            .pending
            .iter()
            .filter(|(_, c)| {
                c.pin.as_deref() == Some(peer)
                    || (all_data && c.parts.iter().any(|p| matches!(p, Part::Have { from, .. } if from == peer)))
            })
            .map(|(h, _)| *h)
            .collect();
        for hash in affected {
            self.discard_from(peer, hash);
        }
    }

    /// Drops the parts of `hash` that `peer` supplied and unpins it from them.
    fn discard_from(&mut self, peer: &[u8], hash: ChunkHash) {
        let Some(chunk) = self.pending.get_mut(&hash) else { return };
        let mut keys = Vec::new();
        for (i, p) in chunk.parts.iter().enumerate() {
            if matches!(p, Part::Have { from, .. } if from == peer) {
                keys.push((hash, i as u32));
            }
        }
        if chunk.pin.as_deref() == Some(peer) {
            chunk.pin = None;
        }
        self.requeue_front(keys);
    }

    fn back_off(&mut self, peer: &[u8]) {
        let (initial, max, now) = (self.config.backoff_initial_ms, self.config.backoff_max_ms, self.now);
        if let Some(p) = self.peers.get_mut(peer) {
            p.failures = p.failures.saturating_add(1);
            let delay = initial.saturating_mul(1u64 << (p.failures - 1).min(32)).min(max);
            p.backoff_until = now.saturating_add(delay);
        }
    }

    /// Bans `peer` for sending wrong bytes of `hash`: nothing it sent or will
    /// send is used.
    fn ban(&mut self, peer: &[u8], hash: ChunkHash) {
        self.release(peer, true);
        self.peers.remove(peer);
        self.banned.insert(peer.to_vec());
        self.events.push_back(FetchEvent::Corrupt { peer: peer.to_vec(), hash });
    }

    /// Verifies `hash` if all its parts are in.
    fn try_complete(&mut self, hash: ChunkHash) -> Outcome {
        let Some(chunk) = self.pending.get_mut(&hash) else { return Outcome::Ignored };
        if !chunk.parts.iter().all(|p| matches!(p, Part::Have { .. })) {
            return Outcome::Stored;
        }
        let contributors: BTreeSet<PeerBytes> = chunk
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Have { from, .. } => Some(from.clone()),
                _ => None,
            })
            .collect();
        let data = match chunk.parts.as_mut_slice() {
            // One part, the usual case: its bytes are moved, not copied (on a
            // mismatch every part is fetched again anyway).
            [Part::Have { bytes, .. }] => std::mem::take(bytes),
            parts => {
                let mut data = Vec::with_capacity(chunk.len as usize);
                for p in parts.iter() {
                    if let Part::Have { bytes, .. } = p {
                        data.extend_from_slice(bytes);
                    }
                }
                data
            }
        };
        if ChunkHash::of(&data) == hash || crate::mutant::active(crate::mutant::Mutant::UnverifiedChunks) {
            self.bytes_done += u64::from(chunk.len) * chunk.count;
            self.pending.remove(&hash);
            self.events.push_back(FetchEvent::Verified { hash, bytes: data });
            return Outcome::Verified;
        }
        if chunk.parts.is_empty() {
            // A zero-length blob that does not hash to its name: impossible to
            // satisfy; leave it pending (reported by `unavailable`).
            return Outcome::Rejected;
        }
        chunk.pin = None;
        let keys: Vec<PartKey> = (0..chunk.parts.len() as u32).map(|i| (hash, i)).collect();
        let contributors: Vec<PeerBytes> = contributors.into_iter().collect();
        if contributors.len() > 1 {
            chunk.single_source = true;
        }
        self.requeue_front(keys);
        if let [culprit] = contributors.as_slice() {
            self.ban(culprit, hash);
            Outcome::Rejected
        } else {
            self.events.push_back(FetchEvent::Mismatch { hash, peers: contributors });
            Outcome::Mismatch
        }
    }

    /// Checks the internal bookkeeping (for tests and the simulator): every
    /// part is in exactly one place, and the counters add up.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut queued = BTreeSet::new();
        for key in &self.queue {
            if !queued.insert(*key) {
                return Err(format!("{key:?} queued twice"));
            }
        }
        for (hash, c) in &self.pending {
            if c.parts.len() as u32 != self.parts_of(c.len) {
                return Err(format!("{hash} has {} parts", c.parts.len()));
            }
            for (i, p) in c.parts.iter().enumerate() {
                let key = (*hash, i as u32);
                let ok = match p {
                    Part::Queued => queued.remove(&key) && !self.parked.contains(&key),
                    Part::Parked => self.parked.contains(&key) && !queued.contains(&key),
                    Part::InFlight(peer) => {
                        self.peers.get(peer).is_some_and(|s| s.in_flight.contains_key(&key))
                            && self.peers.iter().filter(|(_, s)| s.in_flight.contains_key(&key)).count() == 1
                    }
                    Part::Have { from, bytes } => {
                        !self.banned.contains(from) && bytes.len() as u32 == self.part_range(c.len, i as u32).1
                    }
                };
                if !ok {
                    return Err(format!("part {key:?} is {p:?} but the books disagree"));
                }
            }
            if let Some(pin) = &c.pin {
                if !c.single_source || !self.peers.contains_key(pin) {
                    return Err(format!("{hash} pinned to an absent peer or without need"));
                }
            }
        }
        if let Some(k) = queued.into_iter().next() {
            return Err(format!("{k:?} queued but not pending"));
        }
        for (peer, s) in &self.peers {
            if self.banned.contains(peer) {
                return Err("a banned peer is still a candidate".into());
            }
            for key in s.in_flight.keys() {
                if self.pending.get(&key.0).and_then(|c| c.parts.get(key.1 as usize))
                    != Some(&Part::InFlight(peer.clone()))
                {
                    return Err(format!("{key:?} in flight at a peer but not marked so"));
                }
            }
        }
        if self.bytes_done > self.bytes_total {
            return Err("more bytes done than the total".into());
        }
        Ok(())
    }
}

impl PeerState {
    fn ready(&self, now: u64, max: usize) -> bool {
        self.in_flight.len() < max && self.backoff_until <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    fn chunk(seed: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    fn manifest_of(chunks: &[Vec<u8>]) -> Manifest {
        Manifest::from_chunks(chunks.iter().map(|c| ChunkRef { hash: ChunkHash::of(c), len: c.len() as u32 }).collect())
            .expect("valid")
    }

    fn blobs(chunks: &[Vec<u8>]) -> BTreeMap<ChunkHash, Vec<u8>> {
        chunks.iter().map(|c| (ChunkHash::of(c), c.clone())).collect()
    }

    /// Answers every outstanding request from `store` at once, as `peer`.
    fn serve_all(f: &mut Fetcher, now: u64, store: &BTreeMap<ChunkHash, Vec<u8>>) -> Vec<Outcome> {
        let mut out = Vec::new();
        while let Some((peer, get)) = f.poll_request(now) {
            let resp = answer(&get, store.get(&get.hash).map(Vec::as_slice));
            out.push(f.on_response(now, &peer, &get, resp));
            f.check_invariants().expect("invariants");
        }
        out
    }

    fn verified(f: &mut Fetcher) -> BTreeMap<ChunkHash, Vec<u8>> {
        let mut got = BTreeMap::new();
        while let Some(e) = f.poll_event() {
            if let FetchEvent::Verified { hash, bytes } = e {
                assert_eq!(ChunkHash::of(&bytes), hash);
                assert!(got.insert(hash, bytes).is_none(), "verified twice");
            }
        }
        got
    }

    #[test]
    fn hash_hex_round_trips() {
        let h = ChunkHash::of(b"hello");
        let s = h.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s, blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(s.parse::<ChunkHash>(), Ok(h));
        assert!("zz".parse::<ChunkHash>().is_err());
        assert!(format!("g{}", &s[1..]).parse::<ChunkHash>().is_err());
    }

    #[test]
    fn manifest_encoding_is_canonical_and_round_trips() {
        let chunks = [chunk(1, 1000), chunk(2, 5), chunk(1, 1000)];
        let m = manifest_of(&chunks);
        assert_eq!(m.size(), 2005);
        let enc = m.encode();
        assert_eq!(enc.len(), m.encoded_len());
        assert_eq!(enc.len(), 13 + 3 * 36);
        assert_eq!(enc[0], 1);
        assert_eq!(&enc[1..9], &2005u64.to_be_bytes());
        assert_eq!(&enc[9..13], &3u32.to_be_bytes());
        assert_eq!(&enc[13..45], ChunkHash::of(&chunks[0]).as_bytes());
        assert_eq!(&enc[45..49], &1000u32.to_be_bytes());
        assert_eq!(Manifest::decode(&enc), Ok(m.clone()));
        assert_eq!(m.id(), ChunkHash::of(&enc));
        assert_eq!(Manifest::encoded_len_from_header(&enc[..13]), Ok(enc.len()));

        let empty = Manifest::empty();
        assert_eq!(empty.encode(), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Manifest::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn bad_manifests_are_refused_with_a_reason() {
        let m = manifest_of(&[chunk(1, 10), chunk(2, 20)]);
        let enc = m.encode();
        assert_eq!(Manifest::decode(&enc[..5]), Err(ManifestError::Truncated { expected: 13, got: 5 }));
        assert_eq!(
            Manifest::decode(&enc[..enc.len() - 1]),
            Err(ManifestError::Truncated { expected: enc.len(), got: enc.len() - 1 })
        );
        let mut long = enc.clone();
        long.push(0);
        assert_eq!(Manifest::decode(&long), Err(ManifestError::TrailingBytes { extra: 1 }));
        let mut v = enc.clone();
        v[0] = 2;
        assert_eq!(Manifest::decode(&v), Err(ManifestError::UnknownVersion(2)));
        let mut size = enc.clone();
        size[8] = 31;
        assert_eq!(Manifest::decode(&size), Err(ManifestError::SizeMismatch { declared: 31, sum: 30 }));
        let mut count = enc.clone();
        count[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(Manifest::decode(&count), Err(ManifestError::TooManyChunks { .. })));
        let mut zero = enc.clone();
        zero[45..49].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(Manifest::decode(&zero), Err(ManifestError::EmptyChunk { index: 0 }));
        let mut big = enc.clone();
        big[81..85].copy_from_slice(&(MAX_CHUNK_SIZE + 1).to_be_bytes());
        assert!(matches!(Manifest::decode(&big), Err(ManifestError::ChunkTooLarge { index: 1, .. })));
        // Messages name the problem in words.
        let msg = ManifestError::SizeMismatch { declared: 31, sum: 30 }.to_string();
        assert!(msg.contains("31") && msg.contains("add up"), "{msg}");
        assert!(Manifest::from_chunks(vec![ChunkRef { hash: ChunkHash([0; 32]), len: 0 }]).is_err());
    }

    #[test]
    fn wire_messages_round_trip_within_the_limit() {
        let get = Get { hash: ChunkHash::of(b"x"), offset: 7, len: 9 };
        let f = frame::encode(&get, MAX_MESSAGE).expect("encode");
        assert_eq!(frame::decode::<Get>(&f, MAX_MESSAGE), Ok(get));
        let full = Response::Data { bytes: vec![0xab; MAX_PART as usize] };
        let f = frame::encode(&full, MAX_MESSAGE).expect("a full part fits one frame");
        assert_eq!(frame::decode::<Response>(&f, MAX_MESSAGE), Ok(full));
        for r in [Response::Missing, Response::refused("no")] {
            let f = frame::encode(&r, MAX_MESSAGE).expect("encode");
            assert_eq!(frame::decode::<Response>(&f, MAX_MESSAGE), Ok(r));
        }
        // A hash of the wrong length is malformed.
        #[derive(Serialize)]
        struct BadGet {
            #[serde(with = "serde_bytes")]
            hash: Vec<u8>,
            offset: u32,
            len: u32,
        }
        let f = frame::encode(&BadGet { hash: vec![1; 31], offset: 0, len: 1 }, MAX_MESSAGE).expect("encode");
        assert!(matches!(frame::decode::<Get>(&f, MAX_MESSAGE), Err(frame::FrameError::Malformed(_))));
        assert_eq!(Response::refused("é".repeat(MAX_REFUSAL)), Response::Refused { message: "é".repeat(512) });
    }

    #[test]
    fn answer_serves_exact_ranges_only() {
        let blob = chunk(3, 100);
        let h = ChunkHash::of(&blob);
        let get = |offset, len| Get { hash: h, offset, len };
        assert_eq!(answer(&get(10, 5), Some(&blob)), Response::Data { bytes: blob[10..15].to_vec() });
        assert_eq!(answer(&get(0, 100), Some(&blob)), Response::Data { bytes: blob.clone() });
        assert_eq!(answer(&get(0, 5), None), Response::Missing);
        assert!(matches!(answer(&get(99, 2), Some(&blob)), Response::Refused { .. }));
        assert!(matches!(answer(&get(0, 0), Some(&blob)), Response::Refused { .. }));
        assert!(matches!(answer(&get(0, MAX_PART + 1), None), Response::Refused { .. }));
    }

    #[test]
    fn fetches_everything_from_one_peer_skipping_present_chunks() {
        let chunks: Vec<Vec<u8>> = (0..10).map(|i| chunk(i, 100 + i as usize)).collect();
        let m = manifest_of(&chunks);
        let present = ChunkHash::of(&chunks[0]);
        let mut f = Fetcher::new(&m, |c| c.hash == present, FetchConfig::default());
        assert_eq!(f.bytes_done(), 100);
        assert_eq!(f.bytes_total(), m.size());
        assert_eq!(f.poll_request(0), None, "no peer yet");
        f.add_peer(b"a".to_vec());
        let store = blobs(&chunks);
        while !f.is_done() {
            let outs = serve_all(&mut f, 0, &store);
            assert!(outs.iter().all(|o| *o == Outcome::Verified));
        }
        assert_eq!(verified(&mut f).len(), 9);
        assert_eq!(f.bytes_done(), m.size());
        assert_eq!(f.poll_timeout(), None);
    }

    #[test]
    fn load_is_spread_and_bounded_per_peer() {
        let chunks: Vec<Vec<u8>> = (0..40).map(|i| chunk(i, 50)).collect();
        let m = manifest_of(&chunks);
        let config = FetchConfig { max_in_flight_per_peer: 3, ..FetchConfig::default() };
        let mut f = Fetcher::new(&m, |_| false, config);
        for p in [b"a", b"b", b"c"] {
            f.add_peer(p.to_vec());
        }
        let mut per_peer: BTreeMap<PeerBytes, usize> = BTreeMap::new();
        while let Some((p, _)) = f.poll_request(0) {
            *per_peer.entry(p).or_default() += 1;
        }
        assert_eq!(per_peer.values().copied().collect::<Vec<_>>(), vec![3, 3, 3]);
        assert_eq!(f.in_flight(), 9);
        f.check_invariants().expect("invariants");
    }

    #[test]
    fn corrupt_peer_is_banned_and_never_trusted() {
        let chunks: Vec<Vec<u8>> = (0..6).map(|i| chunk(i, 64)).collect();
        let m = manifest_of(&chunks);
        let store = blobs(&chunks);
        let mut f = Fetcher::new(&m, |_| false, FetchConfig::default());
        f.add_peer(b"bad".to_vec());
        let (peer, get) = f.poll_request(0).expect("request");
        let mut wrong = store[&get.hash].clone();
        wrong[0] ^= 1;
        assert_eq!(f.on_data(0, &peer, &get, wrong), Outcome::Rejected);
        assert!(f.is_banned(b"bad"));
        assert!(matches!(f.poll_event(), Some(FetchEvent::Corrupt { .. })));
        assert!(!f.add_peer(b"bad".to_vec()), "a banned peer stays banned");
        assert_eq!(f.poll_request(0), None);
        assert_eq!(f.unavailable().len(), 6);
        f.add_peer(b"good".to_vec());
        while !f.is_done() {
            serve_all(&mut f, 0, &store);
        }
        assert_eq!(verified(&mut f), store);
    }

    #[test]
    fn wrong_length_is_corruption() {
        let chunks = [chunk(1, 64)];
        let mut f = Fetcher::new(&manifest_of(&chunks), |_| false, FetchConfig::default());
        f.add_peer(b"short".to_vec());
        let (peer, get) = f.poll_request(0).expect("request");
        assert_eq!(f.on_data(0, &peer, &get, chunks[0][..63].to_vec()), Outcome::Rejected);
        assert!(f.is_banned(&peer));
        f.check_invariants().expect("invariants");
    }

    #[test]
    fn failure_requeues_and_backs_off_then_resumes() {
        let chunks: Vec<Vec<u8>> = (0..4).map(|i| chunk(i, 64)).collect();
        let store = blobs(&chunks);
        let config = FetchConfig { backoff_initial_ms: 100, ..FetchConfig::default() };
        let mut f = Fetcher::new(&manifest_of(&chunks), |_| false, config);
        f.add_peer(b"a".to_vec());
        let (p, g) = f.poll_request(0).expect("first");
        assert_eq!(f.on_data(0, &p, &g, store[&g.hash].clone()), Outcome::Verified);
        while f.poll_request(0).is_some() {}
        assert_eq!(f.in_flight(), 3);
        f.on_failure(10, b"a");
        assert_eq!(f.in_flight(), 0);
        assert_eq!(f.poll_request(50), None, "backing off");
        assert_eq!(f.poll_timeout(), Some(110));
        f.handle_timeout(110);
        while !f.is_done() {
            serve_all(&mut f, 110, &store);
        }
        assert_eq!(verified(&mut f).len(), 4);
    }

    #[test]
    fn timeouts_move_work_to_another_peer_and_late_answers_are_ignored() {
        let chunks = [chunk(1, 64)];
        let store = blobs(&chunks);
        let config = FetchConfig { request_timeout_ms: 1000, ..FetchConfig::default() };
        let mut f = Fetcher::new(&manifest_of(&chunks), |_| false, config);
        f.add_peer(b"slow".to_vec());
        let (p, g) = f.poll_request(0).expect("request");
        assert_eq!(p, b"slow");
        assert_eq!(f.poll_timeout(), Some(1000));
        f.handle_timeout(999);
        assert_eq!(f.in_flight(), 1);
        f.handle_timeout(1000);
        assert_eq!(f.in_flight(), 0);
        f.add_peer(b"fast".to_vec());
        let (p2, g2) = f.poll_request(1000).expect("re-request");
        assert_eq!(p2, b"fast", "the slow peer backs off");
        assert_eq!(f.on_data(1001, b"slow", &g, store[&g.hash].clone()), Outcome::Ignored);
        assert_eq!(f.on_data(1002, &p2, &g2, store[&g2.hash].clone()), Outcome::Verified);
        assert!(f.is_done());
    }

    #[test]
    fn missing_chunks_go_to_peers_that_have_them_or_are_reported() {
        let chunks: Vec<Vec<u8>> = (0..3).map(|i| chunk(i, 64)).collect();
        let all = blobs(&chunks);
        let mut f = Fetcher::new(&manifest_of(&chunks), |_| false, FetchConfig::default());
        f.add_peer(b"a".to_vec());
        // "a" has none of them.
        serve_all(&mut f, 0, &BTreeMap::new());
        assert_eq!(f.unavailable().len(), 3);
        assert!(!f.is_done());
        assert_eq!(f.poll_request(0), None);
        f.add_peer(b"b".to_vec());
        let partial: BTreeMap<_, _> = all.iter().take(2).map(|(k, v)| (*k, v.clone())).collect();
        // Only b is asked (a said missing); b has two of three.
        serve_all(&mut f, 0, &partial);
        assert_eq!(f.chunks_left(), 1);
        assert_eq!(f.unavailable().len(), 1);
        f.add_peer(b"c".to_vec());
        serve_all(&mut f, 0, &all);
        assert!(f.is_done());
        assert_eq!(verified(&mut f), all);
    }

    #[test]
    fn refusals_are_reported_as_events() {
        let chunks = [chunk(1, 64)];
        let mut f = Fetcher::new(&manifest_of(&chunks), |_| false, FetchConfig::default());
        f.add_peer(b"a".to_vec());
        let (p, g) = f.poll_request(0).expect("request");
        assert_eq!(f.on_response(0, &p, &g, Response::refused("not a member")), Outcome::Declined);
        assert!(matches!(f.poll_event(), Some(FetchEvent::Refused { message, .. }) if message == "not a member"));
        assert_eq!(f.unavailable(), vec![g.hash]);
    }

    #[test]
    fn parts_from_several_peers_then_single_source_after_a_mismatch() {
        let blob = chunk(9, 10_000);
        let hash = ChunkHash::of(&blob);
        let config = FetchConfig { part_size: 1000, max_in_flight_per_peer: 2, ..FetchConfig::default() };
        let mut f = Fetcher::for_blob(hash, blob.len() as u32, config);
        f.add_peer(b"good".to_vec());
        f.add_peer(b"liar".to_vec());
        let mut mismatches = 0;
        let mut rounds = 0;
        while !f.is_done() {
            rounds += 1;
            assert!(rounds < 100, "no progress");
            while let Some((peer, get)) = f.poll_request(0) {
                let mut bytes = blob[get.offset as usize..(get.offset + get.len) as usize].to_vec();
                if peer == b"liar" {
                    bytes[0] ^= 0xff;
                }
                match f.on_data(0, &peer, &get, bytes) {
                    Outcome::Mismatch => mismatches += 1,
                    Outcome::Verified => assert!(!f.is_banned(b"good")),
                    _ => {}
                }
                f.check_invariants().expect("invariants");
            }
        }
        assert_eq!(mismatches, 1, "one mixed mismatch, then single-source");
        assert!(!f.is_banned(b"good"), "an honest contributor is never blamed for a mixed mismatch");
        assert_eq!(verified(&mut f).get(&hash), Some(&blob));
    }

    #[test]
    fn duplicate_chunks_are_fetched_once_and_counted_twice() {
        let a = chunk(1, 64);
        let chunks = [a.clone(), chunk(2, 10), a];
        let m = manifest_of(&chunks);
        let mut f = Fetcher::new(&m, |_| false, FetchConfig::default());
        f.add_peer(b"p".to_vec());
        let outs = serve_all(&mut f, 0, &blobs(&chunks));
        assert_eq!(outs.len(), 2);
        assert_eq!(f.bytes_done(), 138);
        assert!(f.is_done());
    }

    #[test]
    fn mark_present_cancels_work() {
        let chunks: Vec<Vec<u8>> = (0..3).map(|i| chunk(i, 64)).collect();
        let mut f = Fetcher::new(&manifest_of(&chunks), |_| false, FetchConfig::default());
        f.add_peer(b"p".to_vec());
        let (p, g) = f.poll_request(0).expect("request");
        f.mark_present(g.hash);
        f.check_invariants().expect("invariants");
        assert_eq!(f.on_data(0, &p, &g, chunks[0].clone()), Outcome::Ignored);
        assert_eq!(f.chunks_left(), 2);
        assert_eq!(f.bytes_done(), 64);
    }

    #[test]
    fn empty_blob_and_empty_file_are_done_at_once() {
        let f = Fetcher::new(&Manifest::empty(), |_| false, FetchConfig::default());
        assert!(f.is_done());
        let mut f = Fetcher::for_blob(ChunkHash::of(b""), 0, FetchConfig::default());
        assert!(f.is_done());
        assert!(matches!(f.poll_event(), Some(FetchEvent::Verified { .. })));
        let f = Fetcher::for_blob(ChunkHash::of(b"x"), 0, FetchConfig::default());
        assert_eq!(f.unavailable(), vec![ChunkHash::of(b"x")]);
    }
}
