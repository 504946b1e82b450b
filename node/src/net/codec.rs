//! The request-response codec for every Hearth application protocol: one
//! request frame, one response frame, framed as `spec/framing.md` says
//! (4-byte big-endian length, CBOR body, per-protocol size limit).
//!
//! An oversized frame is refused from its length prefix alone, before its
//! body is read; a malformed body is an `InvalidData` error that the event
//! loop logs with the peer's id. Either way the stream is dropped and no
//! state changes.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use hearth_protocol::frame::{self, FrameError, LEN_PREFIX};
use libp2p::StreamProtocol;
use serde::{de::DeserializeOwned, Serialize};

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

/// Reads one frame body, enforcing `limit` before allocating.
pub async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
    let mut prefix = [0u8; LEN_PREFIX];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    frame::check_len(len, limit).map_err(invalid)?;
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            invalid(FrameError::Truncated { got: 0, want: LEN_PREFIX + len })
        } else {
            e
        }
    })?;
    Ok(body)
}

async fn read_msg<T, M>(io: &mut T, limit: usize) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: DeserializeOwned,
{
    let body = read_frame(io, limit).await?;
    frame::from_cbor(&body).map_err(invalid)
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
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_msg(io, self.limit).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_msg(io, self.limit).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_msg(io, &req, self.limit).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, resp: Resp) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_msg(io, &resp, self.limit).await
    }
}
