//! `/hearth/blob/2`: the blob protocol in batches, on a direct QUIC
//! connection between two members (`spec/blob.md` §Batches on a direct
//! connection).
//!
//! `/hearth/blob/1` asks for one range per libp2p substream: every chunk of a
//! large file costs a substream, a protocol negotiation and two CBOR frames
//! with the whole chunk inside. A batch asks for up to [`MAX_GETS`] ranges on
//! one QUIC stream, and the answer is a plain byte sequence: per range a
//! small header and, for data, the raw bytes, which a receiver reads straight
//! into place. The meaning of each answer is exactly that of
//! [`Response`](super::Response); only the encoding differs.
//!
//! Everything here is pure: the node reads and writes the bytes.

use serde::{Deserialize, Serialize};

use super::{Get, Response, MAX_PART};
use crate::frame::{self, FrameError};

/// ALPN of the direct connection (TLS 1.3 with libp2p certificates).
pub const ALPN: &[u8] = b"hearth-blob/2";
/// Protocol name, for logs and the spec.
pub const PROTOCOL: &str = "/hearth/blob/2";
/// Most ranges in one batch.
pub const MAX_GETS: usize = 64;
/// Most bytes one batch may ask for, all ranges together: what a server
/// holds in memory for one stream.
pub const MAX_BATCH_BYTES: u64 = 4 * 1024 * 1024;
/// Largest request frame body (64 ranges of about 45 bytes of CBOR each fit
/// with room to spare).
pub const MAX_REQUEST: usize = 8 * 1024;
/// Longest refusal message on the wire, in bytes.
pub const MAX_MESSAGE: usize = super::MAX_REFUSAL;

/// Answer header tag: `len` bytes of data follow.
pub const TAG_DATA: u8 = 0;
/// Answer header tag: the server lacks this blob.
pub const TAG_MISSING: u8 = 1;
/// Answer header tag: this range is refused; a message follows.
pub const TAG_REFUSED: u8 = 2;
/// Answer header tag, only as the first byte of a stream: the whole batch is
/// refused (malformed request, or the requester may not read); a message
/// follows and the stream ends.
pub const TAG_BATCH_REFUSED: u8 = 3;

/// One request: the ranges wanted, answered in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The ranges.
    pub gets: Vec<Get>,
}

/// Why a batch request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The frame itself is bad.
    #[error("malformed batch: {0}")]
    Frame(#[from] FrameError),
    /// No range at all.
    #[error("a batch must ask for at least one range")]
    Empty,
    /// Too many ranges.
    #[error("a batch may ask for at most {MAX_GETS} ranges, not {0}")]
    TooManyGets(usize),
    /// A range of a forbidden length.
    #[error("a range must be 1 to {MAX_PART} bytes long, not {0}")]
    BadLength(u32),
    /// Too many bytes in all.
    #[error("a batch may ask for at most {MAX_BATCH_BYTES} bytes, not {0}")]
    TooManyBytes(u64),
}

impl Batch {
    /// Checks the limits every server enforces.
    pub fn check(&self) -> Result<(), BatchError> {
        if self.gets.is_empty() {
            return Err(BatchError::Empty);
        }
        if self.gets.len() > MAX_GETS {
            return Err(BatchError::TooManyGets(self.gets.len()));
        }
        if let Some(bad) = self.gets.iter().find(|g| g.len == 0 || g.len > MAX_PART) {
            return Err(BatchError::BadLength(bad.len));
        }
        let total: u64 = self.gets.iter().map(|g| u64::from(g.len)).sum();
        if total > MAX_BATCH_BYTES {
            return Err(BatchError::TooManyBytes(total));
        }
        Ok(())
    }

    /// The request frame (length prefix included).
    pub fn encode(&self) -> Result<Vec<u8>, BatchError> {
        self.check()?;
        Ok(frame::encode(self, MAX_REQUEST)?)
    }

    /// Decodes and checks a request frame body (without its prefix).
    pub fn decode(body: &[u8]) -> Result<Self, BatchError> {
        let batch: Batch = frame::from_cbor(body)?;
        batch.check()?;
        Ok(batch)
    }
}

fn message_bytes(message: &str) -> &[u8] {
    let mut cut = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    &message.as_bytes()[..cut]
}

/// The header of one answer; for [`Response::Data`] the bytes follow it and
/// are not copied here.
pub fn encode_header(response: &Response, out: &mut Vec<u8>) {
    match response {
        Response::Data { bytes } => {
            out.push(TAG_DATA);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        }
        Response::Missing => out.push(TAG_MISSING),
        Response::Refused { message } => encode_message(TAG_REFUSED, message, out),
    }
}

/// The whole answer to a refused batch.
pub fn encode_batch_refusal(message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_message(TAG_BATCH_REFUSED, message, &mut out);
    out
}

fn encode_message(tag: u8, message: &str, out: &mut Vec<u8>) {
    let bytes = message_bytes(message);
    out.push(tag);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// What a header announces, once its tag is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A 4-byte big-endian length follows, then that many bytes of data.
    Data,
    /// Nothing follows.
    Missing,
    /// A 2-byte big-endian length follows, then a UTF-8 message.
    Refused,
    /// Like `Refused`, for the whole batch; nothing follows the message.
    BatchRefused,
}

impl Header {
    /// The meaning of a tag byte; `None` for an unknown tag (the server is
    /// broken or hostile: the receiver drops the stream).
    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            TAG_DATA => Some(Self::Data),
            TAG_MISSING => Some(Self::Missing),
            TAG_REFUSED => Some(Self::Refused),
            TAG_BATCH_REFUSED => Some(Self::BatchRefused),
            _ => None,
        }
    }
}

/// Checks a data length announced for `get`: it must be exactly the range's
/// length (a server that announces another is broken or hostile, and the
/// receiver stops reading that stream, since it cannot know where the next
/// answer starts if it does not read these bytes).
pub fn check_data_len(get: &Get, len: u32) -> Result<(), String> {
    if len == get.len {
        Ok(())
    } else {
        Err(format!("announced {len} bytes for a range of {} bytes of {}", get.len, get.hash))
    }
}

/// A refusal message from its wire bytes (lossy UTF-8: it is only logged).
pub fn decode_message(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::ChunkHash;

    fn get(n: u8, len: u32) -> Get {
        Get { hash: ChunkHash([n; 32]), offset: 0, len }
    }

    #[test]
    fn requests_round_trip_and_limits_hold() {
        let batch = Batch { gets: vec![get(1, 10), get(2, MAX_PART)] };
        let frame = batch.encode().expect("encode");
        assert_eq!(Batch::decode(&frame[4..]), Ok(batch));
        assert_eq!(Batch { gets: vec![] }.check(), Err(BatchError::Empty));
        assert_eq!(Batch { gets: vec![get(1, 0)] }.check(), Err(BatchError::BadLength(0)));
        assert_eq!(Batch { gets: vec![get(1, MAX_PART + 1)] }.check(), Err(BatchError::BadLength(MAX_PART + 1)));
        assert_eq!(Batch { gets: vec![get(1, 1); MAX_GETS + 1] }.check(), Err(BatchError::TooManyGets(MAX_GETS + 1)));
        assert_eq!(Batch { gets: vec![get(1, MAX_PART); 5] }.check(), Err(BatchError::TooManyBytes(5 * 1024 * 1024)));
        // The largest legal batch fits the request frame limit.
        let biggest = Batch {
            gets: (0..MAX_GETS)
                .map(|i| Get { hash: ChunkHash([0xff; 32]), offset: u32::MAX, len: i as u32 + 1 })
                .collect(),
        };
        assert!(biggest.encode().is_ok());
        assert!(matches!(Batch::decode(b"\xff\x00"), Err(BatchError::Frame(_))));
    }

    #[test]
    fn headers_are_as_the_spec_says() {
        let mut out = Vec::new();
        encode_header(&Response::Data { bytes: vec![7; 300] }, &mut out);
        assert_eq!(out, [0, 0, 0, 1, 44]);
        out.clear();
        encode_header(&Response::Missing, &mut out);
        assert_eq!(out, [1]);
        out.clear();
        encode_header(&Response::Refused { message: "no".into() }, &mut out);
        assert_eq!(out, [2, 0, 2, b'n', b'o']);
        assert_eq!(encode_batch_refusal("x"), [3, 0, 1, b'x']);
        // Messages are cut at a character boundary within the limit.
        let long = "é".repeat(MAX_MESSAGE);
        let refusal = encode_batch_refusal(&long);
        let len = u16::from_be_bytes([refusal[1], refusal[2]]) as usize;
        assert!(len <= MAX_MESSAGE && len.is_multiple_of(2));
        assert!(std::str::from_utf8(&refusal[3..]).is_ok());
        assert_eq!(Header::from_tag(4), None);
        assert!(check_data_len(&get(1, 5), 5).is_ok());
        assert!(check_data_len(&get(1, 5), 6).is_err());
    }
}
