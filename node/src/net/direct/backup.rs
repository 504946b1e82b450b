//! `/hearth/backup/2`: whole shards on a direct connection (ALPN
//! `hearth-backup/2`, `spec/backup.md` §Direct connections).
//!
//! `/hearth/backup/1` moves a shard in 2 MiB request/response pieces, each
//! a libp2p substream with its protocol negotiation and two CBOR frames,
//! with one piece in flight per shard. Here one QUIC stream carries a whole
//! shard: a control frame, the host's answer (where to resume), the bytes
//! raw, a final answer. The host applies exactly the rules of
//! `/hearth/backup/1` ([`Host`]: the owner writes, the owner and its
//! restore identity read, nobody reaches another owner's objects), checked
//! when the connection arrives and again on every stream.

use anyhow::Context;
use hearth_protocol::backup::erasure::ShardId;
use hearth_protocol::backup::wire::{
    BackupResponse, DirectRequest, Refusal, DIRECT_PROTOCOL, MAX_DIRECT_FRAME, MAX_SHARD,
};
use hearth_protocol::frame::{self, LEN_PREFIX};
use libp2p::PeerId;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::backup::host::Host;

/// Shards held in memory at once by the host's streams (each at most
/// [`MAX_SHARD`]).
static IN_MEMORY: Semaphore = Semaphore::const_new(6);

/// Reads one control frame (`limit` bytes of body at most).
async fn read_frame<T: serde::de::DeserializeOwned>(recv: &mut quinn::RecvStream, limit: usize) -> Result<T, String> {
    let mut prefix = [0u8; LEN_PREFIX];
    recv.read_exact(&mut prefix).await.map_err(|e| format!("the frame is cut short ({e})"))?;
    let len = u32::from_be_bytes(prefix) as usize;
    frame::check_len(len, limit).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(|e| format!("the frame is cut short ({e})"))?;
    frame::from_cbor(&body).map_err(|e| e.to_string())
}

async fn write_frame<T: serde::Serialize>(send: &mut quinn::SendStream, msg: &T) -> anyhow::Result<()> {
    let bytes = frame::encode(msg, MAX_DIRECT_FRAME)?;
    send.write_all(&bytes).await?;
    Ok(())
}

/// Serves the streams of a `/hearth/backup/2` connection from `peer`
/// (already checked with [`Host::may_connect`]).
pub(super) async fn serve(conn: quinn::Connection, peer: PeerId, slot: super::HostSlot) {
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                debug!(%peer, "{DIRECT_PROTOCOL} connection closed: {e}");
                return;
            }
        };
        let Some(host) = super::host_of(&slot) else {
            conn.close(quinn::VarInt::from_u32(super::CLOSE_STOPPING), b"the node is stopping");
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = serve_stream(peer, send, recv, host).await {
                debug!(%peer, "a {DIRECT_PROTOCOL} stream was not answered: {e:#}");
            }
        });
    }
}

async fn refuse(peer: PeerId, send: &mut quinn::SendStream, code: Refusal, message: String) -> anyhow::Result<()> {
    warn!(%peer, "refused a {DIRECT_PROTOCOL} request: {message}");
    write_frame(send, &BackupResponse::refused(code, message)).await?;
    send.finish()?;
    Ok(())
}

async fn serve_stream(
    peer: PeerId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    host: Host,
) -> anyhow::Result<()> {
    let request: DirectRequest = match read_frame(&mut recv, MAX_DIRECT_FRAME).await {
        Ok(r) => r,
        Err(e) => return refuse(peer, &mut send, Refusal::BadRequest, format!("malformed request: {e}")).await,
    };
    let who = peer.to_bytes();
    {
        let (h, who) = (host.clone(), who.clone());
        if !tokio::task::spawn_blocking(move || h.may_connect(&who)).await? {
            return refuse(peer, &mut send, Refusal::NotAFriend, "this node hosts no backup for you".into()).await;
        }
    }
    match request {
        DirectRequest::PutShard { shard, total } => {
            let (h, w) = (host.clone(), who.clone());
            let first = tokio::task::spawn_blocking(move || h.direct_put_start(&w, shard, total)).await?;
            let have = match &first {
                BackupResponse::Stored { have } => *have,
                BackupResponse::Refused { message, .. } => {
                    warn!(%peer, "refused a shard upload: {message}");
                    write_frame(&mut send, &first).await?;
                    send.finish()?;
                    return Ok(());
                }
                _ => 0,
            };
            write_frame(&mut send, &first).await?;
            if have >= total {
                send.finish()?;
                return Ok(());
            }
            let _permit = IN_MEMORY.acquire().await?;
            let rest = (total - have) as usize;
            let mut data = vec![0u8; rest];
            if let Err(e) = recv.read_exact(&mut data).await {
                // What arrived is not kept: the owner resumes from `have`.
                info!(%peer, shard = %shard.hex(), "a shard upload stopped after the start ({e}); it resumes at {have}");
                return Ok(());
            }
            match recv.read_to_end(0).await {
                Ok(_) => {}
                Err(e) => {
                    return refuse(peer, &mut send, Refusal::BadRequest, format!("more bytes than announced ({e})"))
                        .await;
                }
            }
            let h = host.clone();
            let answer = tokio::task::spawn_blocking(move || h.direct_put(&who, shard, have, total, &data)).await?;
            if let BackupResponse::Refused { message, .. } = &answer {
                warn!(%peer, "refused a shard upload: {message}");
            }
            write_frame(&mut send, &answer).await?;
            send.finish()?;
        }
        DirectRequest::GetShard { shard, offset } => {
            let _permit = IN_MEMORY.acquire().await?;
            let h = host.clone();
            let read = tokio::task::spawn_blocking(move || {
                h.direct_get(&who, shard, offset).map(|(file, total)| {
                    crate::blobs::uncached::read_rest(&file, offset, total).map(|bytes| (bytes, total))
                })
            })
            .await?;
            match read {
                Err(answer) => {
                    if let BackupResponse::Refused { message, .. } = &answer {
                        warn!(%peer, "refused a shard download: {message}");
                    }
                    write_frame(&mut send, &answer).await?;
                }
                Ok(Err(e)) => {
                    let answer = BackupResponse::refused(Refusal::Internal, format!("the host failed: {e}"));
                    write_frame(&mut send, &answer).await?;
                }
                Ok(Ok((bytes, total))) => {
                    write_frame(&mut send, &BackupResponse::Data { total, data: Vec::new() }).await?;
                    send.write_chunk(bytes).await?;
                }
            }
            send.finish()?;
        }
    }
    Ok(())
}

/// Why a shard did not move over `/hearth/backup/2`.
#[derive(Debug)]
pub enum DirectFailure {
    /// The connection or stream failed: try `/hearth/backup/1`.
    Transport(String),
    /// The host answered with a refusal (or broke the format): the swarm
    /// would get the same answer.
    Refused(String),
}

impl std::fmt::Display for DirectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectFailure::Transport(e) => write!(f, "{e}"),
            DirectFailure::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

fn transport(conn: &quinn::Connection, e: &dyn std::fmt::Display) -> DirectFailure {
    DirectFailure::Transport(conn.close_reason().map_or_else(|| e.to_string(), |r| r.to_string()))
}

async fn answer(conn: &quinn::Connection, recv: &mut quinn::RecvStream) -> Result<BackupResponse, DirectFailure> {
    read_frame(recv, MAX_DIRECT_FRAME).await.map_err(|e| transport(conn, &e))
}

/// Uploads `bytes` as shard `shard`; returns the bytes actually sent (the
/// host may hold the shard, or its beginning, already).
/// The shard's bytes go to QUIC as they are (`write_chunk`), not copied.
pub async fn put_shard(conn: &quinn::Connection, shard: ShardId, bytes: bytes::Bytes) -> Result<u64, DirectFailure> {
    let total = bytes.len() as u64;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| transport(conn, &e))?;
    let request = frame::encode(&DirectRequest::PutShard { shard, total }, MAX_DIRECT_FRAME)
        .map_err(|e| DirectFailure::Refused(e.to_string()))?;
    send.write_all(&request).await.map_err(|e| transport(conn, &e))?;
    let from = match answer(conn, &mut recv).await? {
        BackupResponse::Stored { have } if have >= total => {
            let _ = send.finish();
            return Ok(0);
        }
        BackupResponse::Stored { have } => have,
        BackupResponse::Refused { message, .. } => return Err(DirectFailure::Refused(message)),
        other => return Err(DirectFailure::Refused(format!("answered an upload with {other:?}"))),
    };
    send.write_chunk(bytes.slice(from as usize..)).await.map_err(|e| transport(conn, &e))?;
    send.finish().map_err(|e| transport(conn, &e))?;
    match answer(conn, &mut recv).await? {
        BackupResponse::Stored { have } if have >= total => Ok(total - from),
        BackupResponse::Refused { message, .. } => Err(DirectFailure::Refused(message)),
        other => Err(DirectFailure::Refused(format!("answered an upload with {other:?}"))),
    }
}

/// Downloads shard `shard` of at most `limit` bytes (not yet checked
/// against its id: the caller does).
pub async fn get_shard(conn: &quinn::Connection, shard: ShardId, limit: u64) -> Result<Vec<u8>, DirectFailure> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| transport(conn, &e))?;
    let request = frame::encode(&DirectRequest::GetShard { shard, offset: 0 }, MAX_DIRECT_FRAME)
        .map_err(|e| DirectFailure::Refused(e.to_string()))?;
    send.write_all(&request).await.map_err(|e| transport(conn, &e))?;
    send.finish().map_err(|e| transport(conn, &e))?;
    let total = match answer(conn, &mut recv).await? {
        BackupResponse::Data { total, .. } if total <= limit.min(MAX_SHARD) => total,
        BackupResponse::Data { total, .. } => {
            return Err(DirectFailure::Refused(format!(
                "offers a shard of {total} bytes, more than the {limit} expected"
            )))
        }
        BackupResponse::Refused { message, .. } => return Err(DirectFailure::Refused(message)),
        other => return Err(DirectFailure::Refused(format!("answered a download with {other:?}"))),
    };
    let mut bytes = vec![0u8; total as usize];
    recv.read_exact(&mut bytes).await.map_err(|e| transport(conn, &e))?;
    Ok(bytes)
}

/// Opens a `/hearth/backup/2` connection to `peer` at `addr` from `direct`.
pub async fn connect(
    direct: &super::Direct,
    peer: PeerId,
    addr: std::net::SocketAddr,
) -> anyhow::Result<quinn::Connection> {
    direct
        .connect_alpn(peer, addr, hearth_protocol::backup::wire::DIRECT_ALPN)
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .with_context(|| format!("no {DIRECT_PROTOCOL} connection to {peer}"))
}
