//! Direct connections: a QUIC endpoint of the node's own (quinn), beside the
//! libp2p swarm, that carries file contents in batches (`/hearth/blob/2`,
//! `spec/blob.md` §Batches on a direct connection).
//!
//! Why a second endpoint: libp2p opens a substream, negotiates the protocol
//! and exchanges two CBOR frames per chunk, and its QUIC transport is pinned
//! to ChaCha20-Poly1305. Here one QUIC stream carries up to
//! [`batch::MAX_GETS`] ranges, the data travels raw after a 5-byte header,
//! and TLS prefers AES-GCM (see [`tls`]). Both ends are authenticated as
//! peer ids with libp2p certificates, so the same rule as on the swarm
//! applies: contents go only to members of a share held here
//! ([`Readers`]), checked when a connection arrives and again on every
//! batch. A connection from anyone else is closed with a reason.
//!
//! The same endpoint carries `/hearth/backup/2` (ALPN `hearth-backup/2`,
//! see [`backup`]): whole backup shards between an owner and the friends
//! hosting them, refused to anyone the backup host serves nothing.
//!
//! The swarm stays the control plane and the fallback: the port is
//! announced in the contact greeting, the dialer uses the address of its
//! libp2p connection to the peer, and while there is no direct connection
//! (not announced, unreachable behind a NAT, failed) contents move over
//! `/hearth/blob/1` as before.

pub mod backup;
pub mod tls;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use hearth_protocol::blob::batch::{self, Batch, Header};
use hearth_protocol::blob::{Get, Response};
use hearth_protocol::frame::{self, LEN_PREFIX};
use libp2p::identity::Keypair;
use libp2p::PeerId;
use tracing::{debug, info, warn};

use crate::blobs::BlobStore;

/// Longest wait for a direct connection's handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Application close code: the peer may not use this endpoint.
const CLOSE_REFUSED: u32 = 1;
/// Application close code: the node is stopping.
const CLOSE_STOPPING: u32 = 2;
/// Batches a peer may have open on one connection at once (each holds at
/// most [`batch::MAX_BATCH_BYTES`] in memory while it is answered).
const MAX_STREAMS: u32 = 16;

/// The peers allowed to read contents here (members of a share this node
/// holds), kept up to date by the event loop.
pub type Readers = Arc<RwLock<HashSet<PeerId>>>;

fn may_read(readers: &Readers, peer: &PeerId) -> bool {
    readers.read().unwrap_or_else(|e| e.into_inner()).contains(peer)
}

/// The backup host served on `/hearth/backup/2`; emptied when the node
/// stops, so that no stream outlives the node's database.
pub type HostSlot = Arc<RwLock<Option<crate::backup::host::Host>>>;

fn host_of(slot: &HostSlot) -> Option<crate::backup::host::Host> {
    slot.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The endpoint: serves batches to readers, dials members for ours.
#[derive(Clone)]
pub struct Direct {
    host: HostSlot,
    endpoint: quinn::Endpoint,
    keypair: Keypair,
    transport: Arc<quinn::TransportConfig>,
}

fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // Windows sized for bulk transfer (quinn's defaults suit ~100 Mbit/s at
    // 100 ms); memory per connection stays bounded by them.
    t.stream_receive_window(quinn::VarInt::from_u32(8 * 1024 * 1024));
    t.receive_window(quinn::VarInt::from_u32(32 * 1024 * 1024));
    t.send_window(32 * 1024 * 1024);
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_STREAMS));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    t.keep_alive_interval(Some(Duration::from_secs(15)));
    t.max_idle_timeout(Some(quinn::VarInt::from_u32(60_000).into()));
    t
}

impl Direct {
    /// Binds the endpoint on `addr` (port 0: any free port) and starts
    /// serving `blobs` to `readers`.
    /// With `host`, also serves `/hearth/backup/2` to the owners it hosts.
    pub fn bind(
        keypair: &Keypair,
        addr: SocketAddr,
        blobs: Arc<BlobStore>,
        readers: Readers,
        host: Option<crate::backup::host::Host>,
    ) -> anyhow::Result<Self> {
        let transport = Arc::new(transport());
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls::server_config(keypair)?)
            .context("cannot set up TLS for direct connections")?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(transport.clone());
        let endpoint = quinn::Endpoint::server(server, addr)
            .with_context(|| format!("cannot open the direct-connection port on {addr}"))?;
        if let (Some(h), Ok(local)) = (&host, endpoint.local_addr()) {
            h.direct_port.store(local.port(), std::sync::atomic::Ordering::Relaxed);
        }
        let slot: HostSlot = Arc::new(RwLock::new(host));
        let accepting = endpoint.clone();
        let serving = slot.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                let (blobs, readers, host) = (blobs.clone(), readers.clone(), serving.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(incoming, blobs, readers, host).await {
                        debug!("direct connection ended: {e}");
                    }
                });
            }
        });
        Ok(Self { host: slot, endpoint, keypair: keypair.clone(), transport })
    }

    /// An endpoint that only dials (a restoring node's, under its restore
    /// identity): nothing to serve.
    pub fn client_only(keypair: &Keypair) -> anyhow::Result<Self> {
        let endpoint = quinn::Endpoint::client(SocketAddr::from(([0, 0, 0, 0], 0)))
            .context("cannot open a UDP port for direct connections")?;
        Ok(Self { host: Default::default(), endpoint, keypair: keypair.clone(), transport: Arc::new(transport()) })
    }

    /// The local UDP port.
    pub fn port(&self) -> Option<u16> {
        self.endpoint.local_addr().ok().map(|a| a.port())
    }

    /// Connects to `peer` at `addr`; fails unless the server proves to be
    /// `peer`.
    pub fn connect(
        &self,
        peer: PeerId,
        addr: SocketAddr,
    ) -> impl std::future::Future<Output = Result<quinn::Connection, String>> + Send + 'static {
        self.connect_alpn(peer, addr, batch::ALPN)
    }

    /// [`Self::connect`] for the protocol `alpn`.
    pub fn connect_alpn(
        &self,
        peer: PeerId,
        addr: SocketAddr,
        alpn: &[u8],
    ) -> impl std::future::Future<Output = Result<quinn::Connection, String>> + Send + 'static {
        let setup = (|| {
            let crypto =
                quinn::crypto::rustls::QuicClientConfig::try_from(tls::client_config(&self.keypair, peer, alpn)?)?;
            let mut config = quinn::ClientConfig::new(Arc::new(crypto));
            config.transport_config(self.transport.clone());
            let connecting = self.endpoint.connect_with(config, addr, tls::SERVER_NAME)?;
            anyhow::Ok(connecting)
        })();
        async move {
            let connecting = setup.map_err(|e| format!("cannot connect to {addr}: {e:#}"))?;
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(e)) => Err(format!("direct connection to {addr} failed: {e}")),
                Err(_) => Err(format!("no answer from {addr} within {} s", CONNECT_TIMEOUT.as_secs())),
            }
        }
    }

    /// Closes every connection (at shutdown).
    pub fn close(&self) {
        self.host.write().unwrap_or_else(|e| e.into_inner()).take();
        self.endpoint.close(quinn::VarInt::from_u32(CLOSE_STOPPING), b"the node is stopping");
    }
}

async fn serve_connection(
    incoming: quinn::Incoming,
    blobs: Arc<BlobStore>,
    readers: Readers,
    slot: HostSlot,
) -> anyhow::Result<()> {
    let remote = incoming.remote_address();
    let conn = incoming.await.with_context(|| format!("handshake with {remote}"))?;
    let peer = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok())
        .and_then(|certs| tls::peer_of(&certs));
    let Some(peer) = peer else {
        conn.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"no libp2p certificate");
        anyhow::bail!("{remote} presented no usable certificate");
    };
    let alpn = conn
        .handshake_data()
        .and_then(|any| any.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol);
    if alpn.as_deref() == Some(hearth_protocol::backup::wire::DIRECT_ALPN) {
        let host = host_of(&slot);
        let allowed = match &host {
            Some(h) => {
                let (h2, who) = (h.clone(), peer.to_bytes());
                tokio::task::spawn_blocking(move || h2.may_connect(&who)).await.unwrap_or(false)
            }
            None => false,
        };
        let Some(host) = host.filter(|_| allowed) else {
            warn!(%peer, "refused a {} connection from {remote}: this node hosts no backup for it", hearth_protocol::backup::wire::DIRECT_PROTOCOL);
            conn.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"this node hosts no backup for you");
            return Ok(());
        };
        debug!(%peer, "{} connection from {remote}", hearth_protocol::backup::wire::DIRECT_PROTOCOL);
        drop(host);
        backup::serve(conn, peer, slot).await;
        return Ok(());
    }
    if !may_read(&readers, &peer) {
        warn!(%peer, "refused a direct connection from {remote}: not a member of any share here");
        conn.close(quinn::VarInt::from_u32(CLOSE_REFUSED), b"you are not a member of a share on this node");
        return Ok(());
    }
    debug!(%peer, "direct connection from {remote}");
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                debug!(%peer, "direct connection closed: {e}");
                return Ok(());
            }
        };
        let (blobs, readers) = (blobs.clone(), readers.clone());
        tokio::spawn(async move {
            if let Err(e) = serve_batch(peer, send, recv, blobs, readers).await {
                debug!(%peer, "a batch was not answered: {e}");
            }
        });
    }
}

/// Reads one batch request and answers it on the same stream.
async fn serve_batch(
    peer: PeerId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    blobs: Arc<BlobStore>,
    readers: Readers,
) -> anyhow::Result<()> {
    let request = match recv.read_to_end(LEN_PREFIX + batch::MAX_REQUEST).await {
        Ok(bytes) => decode_request(&bytes),
        Err(e) => Err(format!("cannot read the request: {e}")),
    };
    let request = request.and_then(|b| {
        if may_read(&readers, &peer) {
            Ok(b)
        } else {
            Err("you are not a member of a share on this node".to_string())
        }
    });
    let gets = match request {
        Ok(b) => b.gets,
        Err(message) => {
            warn!(%peer, "refused a {} batch: {message}", batch::PROTOCOL);
            send.write_all(&batch::encode_batch_refusal(&message)).await?;
            send.finish()?;
            return Ok(());
        }
    };
    // Reading and verifying the blobs is disk and CPU work.
    let answers = tokio::task::spawn_blocking(move || gets.iter().map(|g| blobs.answer(g)).collect::<Vec<_>>()).await?;
    let mut chunks = Vec::with_capacity(answers.len() * 2);
    for answer in answers {
        let mut header = Vec::with_capacity(8);
        batch::encode_header(&answer, &mut header);
        chunks.push(bytes::Bytes::from(header));
        if let Response::Data { bytes } = answer {
            chunks.push(bytes::Bytes::from(bytes));
        }
    }
    send.write_all_chunks(&mut chunks).await?;
    send.finish()?;
    Ok(())
}

fn decode_request(bytes: &[u8]) -> Result<Batch, String> {
    let body = match bytes.split_first_chunk::<LEN_PREFIX>() {
        Some((prefix, body)) => {
            let len = u32::from_be_bytes(*prefix) as usize;
            frame::check_len(len, batch::MAX_REQUEST).map_err(|e| e.to_string())?;
            if body.len() != len {
                return Err(format!("the request frame announces {len} bytes but carries {}", body.len()));
            }
            body
        }
        None => return Err("the request is cut short".into()),
    };
    Batch::decode(body).map_err(|e| e.to_string())
}

/// Why a batch did not come back whole.
#[derive(Debug)]
pub enum BatchFailure {
    /// The connection or stream failed: the answers read so far are kept,
    /// the rest should be asked again (elsewhere or later).
    Transport(String),
    /// The server refused the whole batch.
    Refused(String),
    /// The server broke the format (unknown tag, wrong length): it is not to
    /// be trusted with this content.
    Malformed(String),
}

/// Asks `peer`'s server for `gets` on a new stream of `conn`. Returns the
/// answers in order; on failure, those read before it and why.
pub async fn fetch(conn: quinn::Connection, gets: Vec<Get>) -> (Vec<Response>, Option<BatchFailure>) {
    let mut answers = Vec::with_capacity(gets.len());
    let failure = read_batch(&conn, &gets, &mut answers).await.err();
    (answers, failure)
}

async fn read_batch(conn: &quinn::Connection, gets: &[Get], answers: &mut Vec<Response>) -> Result<(), BatchFailure> {
    // A stream error only says "connection lost"; the connection's close
    // reason says why (e.g. the server's refusal).
    let transport = |e: &dyn std::fmt::Display| {
        BatchFailure::Transport(conn.close_reason().map_or_else(|| e.to_string(), |reason| reason.to_string()))
    };
    let request = Batch { gets: gets.to_vec() }.encode().map_err(|e| BatchFailure::Malformed(e.to_string()))?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| transport(&e))?;
    send.write_all(&request).await.map_err(|e| transport(&e))?;
    send.finish().map_err(|e| transport(&e))?;
    for (i, get) in gets.iter().enumerate() {
        let mut tag = [0u8; 1];
        recv.read_exact(&mut tag).await.map_err(|e| transport(&e))?;
        match Header::from_tag(tag[0]) {
            Some(Header::Data) => {
                let mut len = [0u8; 4];
                recv.read_exact(&mut len).await.map_err(|e| transport(&e))?;
                batch::check_data_len(get, u32::from_be_bytes(len)).map_err(BatchFailure::Malformed)?;
                let mut bytes = vec![0u8; get.len as usize];
                recv.read_exact(&mut bytes).await.map_err(|e| transport(&e))?;
                answers.push(Response::Data { bytes });
            }
            Some(Header::Missing) => answers.push(Response::Missing),
            Some(header @ (Header::Refused | Header::BatchRefused)) => {
                let mut len = [0u8; 2];
                recv.read_exact(&mut len).await.map_err(|e| transport(&e))?;
                let len = usize::from(u16::from_be_bytes(len));
                if len > batch::MAX_MESSAGE {
                    return Err(BatchFailure::Malformed(format!("a refusal of {len} bytes")));
                }
                let mut message = vec![0u8; len];
                recv.read_exact(&mut message).await.map_err(|e| transport(&e))?;
                let message = batch::decode_message(&message);
                if header == Header::BatchRefused {
                    if i > 0 {
                        return Err(BatchFailure::Malformed("a batch refusal after answers".into()));
                    }
                    return Err(BatchFailure::Refused(message));
                }
                answers.push(Response::Refused { message });
            }
            None => return Err(BatchFailure::Malformed(format!("unknown answer tag {}", tag[0]))),
        }
    }
    Ok(())
}

/// Logs the outcome of a connection attempt once per state change.
pub fn log_connected(peer: &PeerId, addr: SocketAddr, result: &Result<quinn::Connection, String>) {
    match result {
        Ok(_) => info!(%peer, "direct connection to {addr} for file contents"),
        Err(e) => info!(%peer, "no direct connection ({e}); contents go over the swarm"),
    }
}
