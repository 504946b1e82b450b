//! The request-response codec for every Hearth application protocol: one
//! request frame, one response frame, framed as `spec/framing.md` says
//! (4-byte big-endian length, CBOR body, per-protocol size limit).
//!
//! An oversized frame is refused from its length prefix alone, before its
//! body is read. A bad request frame (oversized, empty, cut, not the expected
//! CBOR) is handed to the event loop as [`Wire::Bad`] rather than as a read
//! error, because libp2p drops failed reads silently: this way the refusal is
//! logged with the peer's id and answered with an error message. A bad
//! response frame is an `InvalidData` error, reported as an outbound failure.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use hearth_protocol::frame::{self, FrameError, LEN_PREFIX};
use libp2p::StreamProtocol;
use serde::{de::DeserializeOwned, Serialize};

/// A request as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire<T> {
    /// A well-formed message.
    Msg(T),
    /// A frame that was refused, and why.
    Bad(FrameError),
}

/// Codec for requests `Req` and responses `Resp`, with bodies of at most
/// `limit` bytes.
pub struct FrameCodec<Req, Resp> {
    limit: usize,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> FrameCodec<Req, Resp> {
    /// A codec refusing bodies larger than `limit`.
    pub fn new(limit: usize) -> Self {
        Self { limit, _types: PhantomData }
    }
}

impl<Req, Resp> Clone for FrameCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.limit)
    }
}

fn invalid(err: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// Reads one frame body, enforcing `limit` before allocating. `Ok(Err(_))`
/// is a frame refused for its content; `Err(_)` an IO failure (or a stream
/// closed before its first byte).
pub async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> io::Result<Result<Vec<u8>, FrameError>> {
    let mut prefix = Vec::with_capacity(LEN_PREFIX);
    (&mut *io).take(LEN_PREFIX as u64).read_to_end(&mut prefix).await?;
    if prefix.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream closed before any frame"));
    }
    if prefix.len() < LEN_PREFIX {
        return Ok(Err(FrameError::Truncated { got: prefix.len(), want: LEN_PREFIX }));
    }
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if let Err(err) = frame::check_len(len, limit) {
        return Ok(Err(err));
    }
    let mut body = Vec::with_capacity(len);
    (&mut *io).take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Ok(Err(FrameError::Truncated { got: LEN_PREFIX + body.len(), want: LEN_PREFIX + len }));
    }
    Ok(Ok(body))
}

async fn read_msg<T, M>(io: &mut T, limit: usize) -> io::Result<Result<M, FrameError>>
where
    T: AsyncRead + Unpin + Send,
    M: DeserializeOwned,
{
    Ok(read_frame(io, limit).await?.and_then(|body| frame::from_cbor(&body)))
}

async fn write_msg<T, M>(io: &mut T, msg: &M, limit: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: Serialize,
{
    let bytes = frame::encode(msg, limit).map_err(invalid)?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl<Req, Resp> libp2p::request_response::Codec for FrameCodec<Req, Resp>
where
    Req: Serialize + DeserializeOwned + Send + Sync + 'static,
    Resp: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Wire<Req>;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Wire<Req>>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(match read_msg(io, self.limit).await? {
            Ok(msg) => Wire::Msg(msg),
            Err(err) => Wire::Bad(err),
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_msg(io, self.limit).await?.map_err(invalid)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Wire<Req>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            Wire::Msg(msg) => write_msg(io, &msg, self.limit).await,
            Wire::Bad(err) => Err(io::Error::new(io::ErrorKind::InvalidInput, err)),
        }
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, resp: Resp) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_msg(io, &resp, self.limit).await
    }
}
