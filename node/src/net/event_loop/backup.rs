//! The event loop's side of backups: API backup commands (handed to the
//! [`Engine`](crate::backup::Engine) on a task of their own, since a run or
//! a restore takes long), the engine's requests to friends (sent here, the
//! answers routed back), and `/hearth/backup/1` requests from others,
//! answered by [`Host`](crate::backup::host::Host) on a blocking thread
//! (shard writes and reads are disk work) and sent back when done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use hearth_protocol::backup::wire::{BackupRequest, BackupResponse, Refusal};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::EventLoop;
use crate::api::ApiError;
use crate::backup::host::Host;
use crate::backup::rpc::RpcMsg;
use crate::backup::{BackupOp, Engine};
use crate::net::codec::Wire;
use crate::now_unix;

/// How often deletes still pending are tried again.
const PENDING_DELETES_EVERY: Duration = Duration::from_secs(5);

type Answered = tokio::task::JoinHandle<(ResponseChannel<BackupResponse>, BackupResponse)>;

/// The backup parts of the event loop.
pub struct Backup {
    /// Owner side.
    pub engine: Arc<Engine>,
    /// Host side.
    pub host: Host,
    /// Requests of the engine.
    pub rpc: mpsc::Receiver<RpcMsg>,
    calls: std::collections::HashMap<OutboundRequestId, oneshot::Sender<Result<BackupResponse, String>>>,
    pub(super) answering: FuturesUnordered<Answered>,
    last_audit: Instant,
    last_run: Instant,
    last_pending: Instant,
}

impl Backup {
    /// Wraps the engine, the host and the engine's request channel.
    pub fn new(engine: Arc<Engine>, host: Host, rpc: mpsc::Receiver<RpcMsg>) -> Self {
        Self {
            engine,
            host,
            rpc,
            calls: Default::default(),
            answering: Default::default(),
            last_audit: Instant::now(),
            last_run: Instant::now(),
            last_pending: Instant::now(),
        }
    }
}

/// The next answered request (pending forever when none).
pub(super) async fn next_answer(
    answering: &mut FuturesUnordered<Answered>,
) -> Option<(ResponseChannel<BackupResponse>, BackupResponse)> {
    use futures::StreamExt;
    {
        if answering.is_empty() {
            return std::future::pending().await;
        }
        match answering.next().await {
            Some(Ok(done)) => Some(done),
            Some(Err(e)) => {
                warn!("a backup request handler failed: {e}");
                None
            }
            None => None,
        }
    }
}

async fn handle(engine: Arc<Engine>, op: BackupOp) -> Result<serde_json::Value, ApiError> {
    let bad = |e: anyhow::Error| ApiError::bad_request(format!("{e:#}"));
    match op {
        BackupOp::FriendsAdd { contact, offer } => engine.friends_add(&contact, offer).await.map_err(bad),
        BackupOp::Friends => engine.friends().await.map_err(ApiError::internal),
        BackupOp::HostingAnswer { contact, accept, quota } => {
            engine.hosting_answer(&contact, accept, quota).await.map_err(bad)
        }
        BackupOp::Hosting => engine.hosting().map_err(ApiError::internal),
        BackupOp::Add { path } => engine.add_path(&path).map_err(bad),
        BackupOp::Remove { path } => engine.remove_path(&path).map_err(bad),
        BackupOp::Run => engine
            .run()
            .await
            .map_err(|e| ApiError::unavailable(format!("{e:#}")))
            .and_then(|r| serde_json::to_value(r).map_err(ApiError::internal)),
        BackupOp::Progress => serde_json::to_value(engine.progress.lock().map(|p| p.clone()).unwrap_or_default())
            .map_err(ApiError::internal),
        BackupOp::Status => engine.status().await.map_err(ApiError::internal),
        BackupOp::Snapshots => engine.snapshots().map_err(ApiError::internal),
        BackupOp::RecoveryKey => engine.recovery_key().map_err(ApiError::internal),
        BackupOp::Audit => engine.audit().await.map_err(ApiError::internal),
        BackupOp::SplitKey { threshold, contacts } => engine.split_key(threshold, &contacts).await.map_err(bad),
        BackupOp::HostedShare { owner } => engine.hosted_share(&owner).map_err(bad),
        BackupOp::SetPassphrase { passphrase, m_kib, t } => {
            let d = hearth_protocol::backup::keys::KdfParams::DEFAULT;
            let params = hearth_protocol::backup::keys::KdfParams {
                m_kib: m_kib.unwrap_or(d.m_kib),
                t: t.unwrap_or(d.t),
                p: d.p,
            };
            engine.set_passphrase(&passphrase, params).await.map_err(bad)
        }
        BackupOp::Restore { snapshot, path, to } => engine
            .restore_to(snapshot.as_deref(), path.as_deref(), &to)
            .await
            .map_err(|e| ApiError::unavailable(format!("{e:#}")))
            .and_then(|r| serde_json::to_value(r).map_err(ApiError::internal)),
        BackupOp::Forget(policy) => engine.forget(&policy).await.map_err(|e| ApiError::unavailable(format!("{e:#}"))),
    }
}

impl EventLoop {
    pub(super) fn on_backup_command(
        &mut self,
        op: BackupOp,
        reply: oneshot::Sender<Result<serde_json::Value, ApiError>>,
    ) {
        let engine = self.backup.engine.clone();
        tokio::spawn(async move {
            let _ = reply.send(handle(engine, op).await);
        });
    }

    /// Whether `peer` is the restore identity of an owner we host.
    pub(super) fn is_restore_peer(&self, peer: &PeerId) -> bool {
        self.backup.host.is_restore_peer(&peer.to_bytes())
    }

    pub(super) fn on_backup_rpc(&mut self, msg: RpcMsg) {
        match msg {
            RpcMsg::Online(reply) => {
                let online = self.swarm.connected_peers().copied().filter(|p| self.online(p)).collect();
                let _ = reply.send(online);
            }
            RpcMsg::Call { peer, addrs, request, reply } => {
                for a in addrs {
                    self.swarm.add_peer_address(peer, a);
                }
                let id = self.swarm.behaviour_mut().backup.send_request(&peer, Wire::Msg(request));
                self.backup.calls.insert(id, reply);
            }
            RpcMsg::DirectTarget { peer, reply } => {
                let _ = reply.send(self.direct.backup_target(&peer));
            }
        }
    }

    pub(super) fn on_backup_answered(&mut self, done: Option<(ResponseChannel<BackupResponse>, BackupResponse)>) {
        if let Some((channel, response)) = done {
            if self.swarm.behaviour_mut().backup.send_response(channel, response).is_err() {
                debug!("a backup answer could not be sent: the asker left");
            }
        }
    }

    /// Starts the periodic audits and runs when due.
    pub(super) fn backup_timers(&mut self) {
        let now = Instant::now();
        let audit_every = Duration::from_secs(self.config.backup_audit_secs.max(1));
        if now.duration_since(self.backup.last_audit) >= audit_every {
            self.backup.last_audit = now;
            let engine = self.backup.engine.clone();
            tokio::spawn(async move {
                match engine.audit().await {
                    Ok(report) => debug!("backup audit round: {report}"),
                    Err(e) => warn!("backup audit round failed: {e:#}"),
                }
            });
        }
        // Deletes `forget` could not send reach a friend soon after it is back.
        if now.duration_since(self.backup.last_pending) >= PENDING_DELETES_EVERY {
            self.backup.last_pending = now;
            let engine = self.backup.engine.clone();
            tokio::spawn(async move {
                match engine.retry_pending_deletes().await {
                    Ok(0) => {}
                    Ok(freed) => info!(freed, "pruned shards deleted from friends that came back"),
                    Err(e) => warn!("pending shard deletes failed: {e:#}"),
                }
            });
        }
        if let Some(every) = self.config.backup_every_secs {
            if now.duration_since(self.backup.last_run) >= Duration::from_secs(every.max(60)) {
                self.backup.last_run = now;
                let engine = self.backup.engine.clone();
                tokio::spawn(async move {
                    if let Err(e) = engine.run().await {
                        warn!("scheduled backup failed: {e:#}");
                    }
                });
            }
        }
    }

    pub(super) fn on_backup_event(&mut self, event: request_response::Event<Wire<BackupRequest>, BackupResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                let request = match request {
                    Wire::Msg(r) => r,
                    Wire::Bad(err) => {
                        warn!(%peer, "refused a backup request: malformed frame: {err}");
                        let r = BackupResponse::refused(Refusal::BadRequest, format!("malformed request: {err}"));
                        let _ = self.swarm.behaviour_mut().backup.send_response(channel, r);
                        return;
                    }
                };
                let host = self.backup.host.clone();
                let peer_bytes = peer.to_bytes();
                self.backup.answering.push(tokio::task::spawn_blocking(move || {
                    let response = host.answer(&peer_bytes, request, now_unix());
                    if let BackupResponse::Refused { message, .. } = &response {
                        info!(%peer, "refused a backup request: {message}");
                    }
                    (channel, response)
                }));
            }
            Event::Message { message: Message::Response { request_id, response }, .. } => {
                if let Some(reply) = self.backup.calls.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                debug!(%peer, "backup request failed: {error}");
                if let Some(reply) = self.backup.calls.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            Event::InboundFailure { peer, error, .. } => warn!(%peer, "backup request failed: {error}"),
            Event::ResponseSent { .. } => {}
        }
    }
}
