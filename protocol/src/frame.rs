//! Framing of application messages (see `spec/framing.md`).
//!
//! Every message on a Hearth stream is one frame: a 4-byte big-endian length
//! `N`, then `N` bytes of CBOR (RFC 8949). `N` is at least 1 and at most the
//! limit of the protocol the stream was opened for; a receiver reads the
//! length first and refuses an oversized frame before reading its body, so a
//! hostile peer cannot make a node buffer more than the limit.
//!
//! Version negotiation happens one level down: each protocol has a versioned
//! name (`/hearth/pair/1`) that multistream-select agrees on before the first
//! frame. Within a version, messages may only gain optional fields, which
//! older receivers ignore.

use serde::{de::DeserializeOwned, Serialize};

/// Size of the length prefix.
pub const LEN_PREFIX: usize = 4;
/// Absolute ceiling on any frame of any protocol.
pub const MAX_FRAME: usize = 4 * 1024 * 1024;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The announced length exceeds the protocol's limit.
    #[error("frame of {len} bytes exceeds the {limit}-byte limit of this protocol")]
    TooLarge {
        /// Announced body length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A zero-length frame.
    #[error("empty frame")]
    Empty,
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame ({got} of {want} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes announced (prefix included).
        want: usize,
    },
    /// The body is not the expected CBOR message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The message could not be serialised (a bug, or a value over the limit).
    #[error("cannot encode message: {0}")]
    Encode(String),
}

impl FrameError {
    /// The stable snake_case name of the error, as used by the test vectors
    /// of `spec/framing.md`: `too_large`, `empty`, `truncated`, `malformed`,
    /// and `encode` (a local failure to serialise, never caused by a peer).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Empty => "empty",
            Self::Truncated { .. } => "truncated",
            Self::Malformed(_) => "malformed",
            Self::Encode(_) => "encode",
        }
    }
}

/// Checks an announced body length against `limit`.
pub fn check_len(len: usize, limit: usize) -> Result<(), FrameError> {
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > limit.min(MAX_FRAME) {
        return Err(FrameError::TooLarge { len, limit: limit.min(MAX_FRAME) });
    }
    Ok(())
}

/// Serialises `msg` as CBOR without the length prefix.
pub fn to_cbor<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut body = Vec::new();
    ciborium::into_writer(msg, &mut body).map_err(|e| FrameError::Encode(e.to_string()))?;
    Ok(body)
}

/// Parses a CBOR body (no length prefix): exactly one CBOR item, nothing after it.
pub fn from_cbor<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let mut rest = body;
    let value = ciborium::from_reader(&mut rest).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!("{} bytes after the message", rest.len())));
    }
    Ok(value)
}

/// Encodes `msg` as one complete frame (prefix + CBOR), checking `limit`.
pub fn encode<T: Serialize>(msg: &T, limit: usize) -> Result<Vec<u8>, FrameError> {
    let body = to_cbor(msg)?;
    check_len(body.len(), limit)?;
    let mut frame = Vec::with_capacity(LEN_PREFIX + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decodes exactly one complete frame held in `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, FrameError> {
    let mut decoder = Decoder::new(limit);
    decoder.push(bytes);
    match decoder.next_frame()? {
        Some(body) if decoder.buffered() == 0 => from_cbor(&body),
        Some(_) => Err(FrameError::Malformed("bytes after the frame".into())),
        None => Err(decoder.finish().err().unwrap_or(FrameError::Empty)),
    }
}

/// Incremental frame decoder: push bytes as they arrive, pull whole bodies.
///
/// An error is final: the stream must be closed, since its framing is lost.
#[derive(Debug)]
pub struct Decoder {
    limit: usize,
    buf: Vec<u8>,
}

impl Decoder {
    /// A decoder refusing bodies longer than `limit` (capped at [`MAX_FRAME`]).
    pub fn new(limit: usize) -> Self {
        Self { limit: limit.min(MAX_FRAME), buf: Vec::new() }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete body, `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.buf.len() < LEN_PREFIX {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        check_len(len, self.limit)?;
        if self.buf.len() < LEN_PREFIX + len {
            return Ok(None);
        }
        let body = self.buf[LEN_PREFIX..LEN_PREFIX + len].to_vec();
        self.buf.drain(..LEN_PREFIX + len);
        Ok(Some(body))
    }

    /// Called at end of stream: fails if a partial frame is left.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let want = if self.buf.len() < LEN_PREFIX {
            LEN_PREFIX
        } else {
            LEN_PREFIX + u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize
        };
        Err(FrameError::Truncated { got: self.buf.len(), want })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_reassemble() {
        let frame = encode(&("hello", 42u32), 1024).expect("encode");
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        for split in 0..two.len() {
            let mut d = Decoder::new(1024);
            d.push(&two[..split]);
            let mut got = Vec::new();
            while let Some(b) = d.next_frame().expect("valid") {
                got.push(b);
            }
            d.push(&two[split..]);
            while let Some(b) = d.next_frame().expect("valid") {
                got.push(b);
            }
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(d.finish(), Ok(()));
        }
    }

    #[test]
    fn oversized_frames_are_refused_from_the_prefix_alone() {
        let mut d = Decoder::new(100);
        d.push(&1_000_000u32.to_be_bytes());
        assert_eq!(d.next_frame(), Err(FrameError::TooLarge { len: 1_000_000, limit: 100 }));
        assert!(matches!(encode(&vec![0u8; 200], 100), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn empty_truncated_and_garbage_frames_are_errors() {
        let mut d = Decoder::new(100);
        d.push(&0u32.to_be_bytes());
        assert_eq!(d.next_frame(), Err(FrameError::Empty));
        let mut d = Decoder::new(100);
        d.push(&[0, 0, 0, 9, 1, 2]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.finish(), Err(FrameError::Truncated { got: 6, want: 13 }));
        let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        assert!(matches!(decode::<(String, u32)>(&garbage, 100), Err(FrameError::Malformed(_))));
    }
}
