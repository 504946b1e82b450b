//! Chunks: content-defined cuts (FastCDC), keyed ids, compressed and sealed
//! bodies.
//!
//! A chunk id is `BLAKE3::keyed_hash(chunk_id_key, plaintext)`. Because the
//! key is secret, the same file held by two owners gets unrelated ids, and a
//! host cannot test whether an owner holds a known file (the leak of
//! convergent encryption). A sealed chunk is
//! `nonce (24) || XChaCha20-Poly1305(pack_key, nonce, zstd(plaintext), aad = id)`;
//! binding the id as associated data means a chunk moved to another index
//! entry fails to open.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use super::keys::Keys;

/// Smallest chunk FastCDC cuts (except a file's last).
pub const MIN_CHUNK: usize = 256 * 1024;
/// Average chunk size.
pub const AVG_CHUNK: usize = 1024 * 1024;
/// Largest chunk.
pub const MAX_CHUNK: usize = 4 * 1024 * 1024;
/// zstd level: fast, most of the gain of higher levels on mixed data.
pub const ZSTD_LEVEL: i32 = 3;
/// Nonce length of XChaCha20-Poly1305.
pub const NONCE_LEN: usize = 24;
/// Bytes a sealed chunk adds to the compressed body (nonce and tag).
pub const SEAL_OVERHEAD: usize = NONCE_LEN + 16;

/// A keyed chunk id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChunkId(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl ChunkId {
    /// Hex form, for logs.
    pub fn hex(&self) -> String {
        blake3::Hash::from(self.0).to_hex().to_string()
    }
}

/// Why a sealed chunk did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Shorter than a nonce and a tag.
    #[error("sealed chunk of {0} bytes is truncated")]
    Truncated(usize),
    /// Authentication failed: corrupted, or sealed under another key.
    #[error("chunk {0} failed authentication: corrupted, or not sealed with this recovery key")]
    Auth(String),
    /// zstd refused the body.
    #[error("chunk {0} does not decompress: {1}")]
    Decompress(String, String),
    /// The plaintext does not hash to its id.
    #[error("chunk {0} does not match its id")]
    Mismatch(String),
}

/// The id of `plain`.
pub fn chunk_id(keys: &Keys, plain: &[u8]) -> ChunkId {
    ChunkId(*blake3::keyed_hash(&keys.chunk_id, plain).as_bytes())
}

/// Cuts `data` into content-defined chunks: `(offset, len)` pairs.
pub fn cut(data: &[u8]) -> Vec<(usize, usize)> {
    fastcdc::v2020::FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK).map(|c| (c.offset, c.length)).collect()
}

/// The nonce of chunk `id`: the first 24 bytes of
/// `BLAKE3-keyed(derive_key, "chunk" || id)`. Deterministic, so that a
/// re-run seals a chunk to the same bytes (and rebuilds the same packs,
/// which hosts may already hold). A nonce repeats only for the same id,
/// hence the same plaintext: the ciphertext then repeats too, which tells
/// nobody anything the keyed id would not.
pub fn nonce_for(keys: &Keys, id: &ChunkId) -> [u8; NONCE_LEN] {
    let mut h = blake3::Hasher::new_keyed(&keys.derive);
    h.update(b"chunk");
    h.update(&id.0);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&h.finalize().as_bytes()[..NONCE_LEN]);
    nonce
}

/// A zstd compression context, kept by [`seal_into`]'s callers.
pub type Compressor = zstd::bulk::Compressor<'static>;

/// Compresses and seals `plain` (whose id is `id`) with `nonce` (see
/// [`nonce_for`]), with this thread's zstd context.
pub fn seal(keys: &Keys, id: &ChunkId, plain: &[u8], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
    let mut out = Vec::new();
    COMPRESSOR.with(|cell| seal_into(keys, id, plain, nonce, &mut cell.borrow_mut(), &mut out));
    out
}

/// [`seal`], appending the sealed chunk to `out` and compressing with
/// `compressor` (made on first use). Both are the caller's to keep from
/// chunk to chunk: a fresh zstd context per chunk (what
/// `zstd::bulk::compress` makes) and a fresh output buffer were megabytes
/// of new memory to fault in for every chunk, the largest single cost of a
/// backup run's reading side.
pub fn seal_into(
    keys: &Keys,
    id: &ChunkId,
    plain: &[u8],
    nonce: [u8; NONCE_LEN],
    compressor: &mut Option<Compressor>,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let body = start + NONCE_LEN;
    let bound = zstd::zstd_safe::compress_bound(plain.len());
    out.reserve(NONCE_LEN + bound + 16);
    out.extend_from_slice(&nonce);
    out.resize(body + bound, 0);
    if compressor.is_none() {
        *compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
    }
    match compressor.as_mut().and_then(|c| c.compress_to_buffer(plain, &mut out[body..]).ok()) {
        Some(n) => out.truncate(body + n),
        None => {
            // zstd only fails on allocation failure: a fresh context, as before.
            let compressed = zstd::bulk::compress(plain, ZSTD_LEVEL).unwrap_or_else(|_| plain.to_vec());
            out.truncate(body);
            out.extend_from_slice(&compressed);
        }
    }
    // In place. Encryption of an in-memory buffer cannot fail below
    // XChaCha20's 256 GiB message limit.
    match XChaCha20Poly1305::new(&keys.pack.into()).encrypt_in_place_detached(
        XNonce::from_slice(&nonce),
        &id.0,
        &mut out[body..],
    ) {
        Ok(tag) => out.extend_from_slice(&tag),
        // Never a plaintext body: a nonce alone fails to open.
        Err(_) => out.truncate(body),
    }
}

thread_local! {
    /// The zstd context [`seal`] uses on this thread, kept from chunk to
    /// chunk (the output does not depend on it: same level, one frame each).
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
}

/// Opens a sealed chunk and checks that it is the chunk `id`.
pub fn open(keys: &Keys, id: &ChunkId, sealed: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let mut plain = Vec::new();
    open_in_place(keys, id, &mut sealed.to_vec(), &mut plain)?;
    Ok(plain)
}

/// [`open`], decrypting `sealed` in place (it is garbage afterwards) into
/// `plain` (cleared first, the caller's to keep from chunk to chunk), with a
/// zstd context this thread keeps: a restore then neither copies every
/// chunk nor faults in new memory for it.
pub fn open_in_place(keys: &Keys, id: &ChunkId, sealed: &mut [u8], plain: &mut Vec<u8>) -> Result<(), ChunkError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(ChunkError::Truncated(sealed.len()));
    }
    let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
    let (body, tag) = rest.split_at_mut(rest.len() - 16);
    XChaCha20Poly1305::new(&keys.pack.into())
        .decrypt_in_place_detached(XNonce::from_slice(nonce), &id.0, body, (&*tag).into())
        .map_err(|_| ChunkError::Auth(id.hex()))?;
    let body = &*body;
    plain.clear();
    DECOMPRESSOR.with(|cell| {
        let mut decompressor = cell.borrow_mut();
        if decompressor.is_none() {
            *decompressor = zstd::bulk::Decompressor::new().ok();
        }
        let size = zstd::zstd_safe::get_frame_content_size(body).ok().flatten();
        let bulk = match (size, decompressor.as_mut()) {
            (Some(n), Some(d)) if n <= MAX_CHUNK as u64 => {
                plain.reserve(n as usize);
                d.decompress_to_buffer(body, plain).is_ok()
            }
            _ => false,
        };
        if !bulk {
            // No size in the frame, or no context: the streaming decoder.
            *plain = zstd::stream::decode_all(body).map_err(|e| ChunkError::Decompress(id.hex(), e.to_string()))?;
        }
        Ok::<(), ChunkError>(())
    })?;
    if chunk_id(keys, plain) != *id {
        return Err(ChunkError::Mismatch(id.hex()));
    }
    Ok(())
}

thread_local! {
    /// The zstd context [`open_in_place`] uses on this thread.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::keys::RootSecret;

    #[test]
    fn chunks_seal_and_open_under_their_id_only() {
        let keys = RootSecret([3; 32]).keys();
        let plain = b"hello hello hello hello".repeat(100);
        let id = chunk_id(&keys, &plain);
        let sealed = seal(&keys, &id, &plain, [5; NONCE_LEN]);
        assert!(sealed.len() < plain.len(), "compressed");
        assert_eq!(open(&keys, &id, &sealed).expect("open"), plain);
        let other = chunk_id(&keys, b"other");
        assert!(matches!(open(&keys, &other, &sealed), Err(ChunkError::Auth(_))));
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert!(matches!(open(&keys, &id, &bad), Err(ChunkError::Auth(_))));
        assert!(matches!(open(&keys, &id, &sealed[..10]), Err(ChunkError::Truncated(10))));
        let other_keys = RootSecret([4; 32]).keys();
        assert_ne!(chunk_id(&other_keys, &plain), id, "ids are keyed");
        // In place, with one output buffer kept from chunk to chunk (as a
        // restore does), the first use and the later ones alike.
        let mut out = Vec::new();
        for text in [&b"first chunk ".repeat(50)[..], &plain, b"x"] {
            let cid = chunk_id(&keys, text);
            let mut sealed = seal(&keys, &cid, text, nonce_for(&keys, &cid));
            open_in_place(&keys, &cid, &mut sealed, &mut out).expect("open in place");
            assert_eq!(out, text);
        }
    }

    #[test]
    fn cuts_cover_the_data() {
        let data: Vec<u8> =
            (0..12_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 ^ (i >> 7) as u8).collect();
        let cuts = cut(&data);
        assert!(cuts.len() > 1);
        assert_eq!(cuts.iter().map(|c| c.1).sum::<usize>(), data.len());
        assert!(cut(&[]).is_empty());
    }
}
