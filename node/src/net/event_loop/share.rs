//! The event loop's side of shared folders: API share commands and the
//! `/hearth/share/1` messages, delegated to [`crate::share::Shares`], whose
//! outgoing messages are sent here. Only contacts reach `Shares`; anyone
//! else is refused and logged.

use hearth_protocol::share::{ShareRequest, ShareResponse};
use libp2p::request_response::{self, ResponseChannel};
use libp2p::PeerId;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::{blocking, EventLoop};
use crate::api::ApiError;
use crate::net::codec::Wire;
use crate::net::{ShareOp, ShareReply};
use crate::now_unix;
use crate::share::Outgoing;

fn json<T: serde::Serialize>(value: T) -> Result<ShareReply, ApiError> {
    serde_json::to_value(value).map(ShareReply::Json).map_err(ApiError::internal)
}

impl EventLoop {
    /// Scans every active share for local edits (and writes out what the
    /// document holds that the disk does not, e.g. after a restart).
    pub(super) fn scan_all(&mut self) {
        for (id, path) in self.shares.active_paths() {
            self.watch.ensure(&id, &path);
        }
        for id in self.shares.active() {
            self.scan_one(&id);
            blocking(|| self.shares.write_out(&id));
        }
    }

    /// Scans the shares whose directory changed and then stayed quiet for
    /// a moment (editors write a file in several steps).
    pub(super) fn scan_settled(&mut self) {
        for id in self.watch.take_settled() {
            self.scan_one(&id);
        }
    }

    /// Scans one share; files still being written make it scanned again soon.
    fn scan_one(&mut self, id: &[u8]) {
        let swarm = &self.swarm;
        match blocking(|| self.shares.scan(id, now_unix(), &|p| swarm.is_connected(p))) {
            Ok((report, out)) => {
                self.send_share(out);
                if report.unsettled > 0 {
                    self.watch.mark_dirty(id.to_vec());
                }
            }
            Err(e) => debug!("cannot scan a share: {}", e.message),
        }
    }

    pub(super) fn send_share(&mut self, messages: Vec<Outgoing>) {
        for message in messages {
            let share = message.request.share().to_vec();
            let id = self.swarm.behaviour_mut().share.send_request(&message.peer, Wire::Msg(message.request));
            self.share_requests.insert(id, share);
        }
    }

    /// A contact's peer id from its local name (or peer id text).
    pub(super) fn contact_peer(&self, name: &str) -> Result<PeerId, ApiError> {
        let contacts = self.store.contacts().map_err(ApiError::internal)?;
        contacts
            .iter()
            .find(|(p, c)| c.name == name || PeerId::from_bytes(p).is_ok_and(|id| id.to_string() == name))
            .and_then(|(p, _)| PeerId::from_bytes(p).ok())
            .ok_or_else(|| ApiError::not_found(format!("no contact named {name:?}; see `hearth contacts`")))
    }

    pub(super) fn on_share_command(&mut self, op: ShareOp, reply: oneshot::Sender<Result<ShareReply, ApiError>>) {
        let mut out = Vec::new();
        let result = self.share_command(op, &mut out);
        self.send_share(out);
        for (id, path) in self.shares.active_paths() {
            self.watch.ensure(&id, &path);
        }
        let _ = reply.send(result);
    }

    /// Runs one command; messages to send go to `out`.
    fn share_command(&mut self, op: ShareOp, out: &mut Vec<Outgoing>) -> Result<ShareReply, ApiError> {
        let now = now_unix();
        let swarm = &self.swarm;
        let online = |p: &PeerId| swarm.is_connected(p);
        match op {
            ShareOp::Create { path, name } => {
                let view = self.shares.create(&path, name.as_deref(), now)?;
                // The existing files are in the document from the start.
                let id = self.shares.resolve(&view.id)?;
                let (report, messages) = blocking(|| self.shares.scan(&id, now, &online))?;
                out.extend(messages);
                if report.unsettled > 0 {
                    self.watch.mark_dirty(id.clone());
                }
                info!(share = %view.id, files = report.created, "shared {} existing entries", report.created);
                json(view)
            }
            ShareOp::List => json(self.shares.list()),
            ShareOp::Status(share) => {
                let id = self.shares.resolve(&share)?;
                let contacts = self.store.contacts().map_err(ApiError::internal)?;
                let names = |p: &PeerId| {
                    let bytes = p.to_bytes();
                    contacts.iter().find(|(c, _)| *c == bytes).map(|(_, c)| (c.name.clone(), swarm.is_connected(p)))
                };
                let mut status = self.shares.status(&id, &names)?;
                status.bytes_pending_down_stored = self.bytes_stored_pending(&id).min(status.bytes_pending_down);
                json(status)
            }
            ShareOp::Invite { share, contact, read_only } => {
                let id = self.shares.resolve(&share)?;
                let peer = self.contact_peer(&contact)?;
                let role = if read_only { "read-only" } else { "read-write" };
                out.extend(self.shares.invite(&id, &peer, role, now, &online)?);
                json(self.shares.list().into_iter().find(|v| v.id == hex::encode(&id)))
            }
            ShareOp::Accept { share, path } => {
                let id = self.shares.resolve(&share)?;
                let (view, messages) = self.shares.accept(&id, &path)?;
                out.extend(messages);
                json(view)
            }
            ShareOp::Decline(share) => {
                let id = self.shares.resolve(&share)?;
                let (view, messages) = self.shares.decline(&id)?;
                out.extend(messages);
                json(view)
            }
            ShareOp::Leave(share) => {
                let id = self.shares.resolve(&share)?;
                json(self.shares.leave(&id)?)
            }
            ShareOp::SetRole { share, contact, role } => {
                let id = self.shares.resolve(&share)?;
                let peer = self.contact_peer(&contact)?;
                out.extend(self.shares.set_role(&id, &peer, role.as_deref(), now, &online)?);
                let contacts = self.store.contacts().map_err(ApiError::internal)?;
                let names = |p: &PeerId| {
                    let bytes = p.to_bytes();
                    contacts.iter().find(|(c, _)| *c == bytes).map(|(_, c)| (c.name.clone(), swarm.is_connected(p)))
                };
                json(self.shares.status(&id, &names)?)
            }
            ShareOp::Scan(share) => {
                let id = self.shares.resolve(&share)?;
                let (report, messages) = blocking(|| self.shares.scan(&id, now, &online))?;
                out.extend(messages);
                if report.unsettled > 0 {
                    self.watch.mark_dirty(id.clone());
                }
                let written = blocking(|| self.shares.write_out(&id));
                json(serde_json::json!({ "recorded": report, "written": written }))
            }
            ShareOp::Trash(share) => {
                let id = self.shares.resolve(&share)?;
                json(self.shares.trash(&id, now)?)
            }
            ShareOp::Files { share, limit } => {
                let id = self.shares.resolve(&share)?;
                json(self.shares.files(&id, limit)?)
            }
            ShareOp::Versions { share, path } => {
                let id = self.shares.resolve(&share)?;
                json(self.shares.versions(&id, &path, now)?)
            }
            ShareOp::Restore { share, path, version } => {
                let id = self.shares.resolve(&share)?;
                out.extend(self.shares.restore(&id, &path, version, now, &online)?);
                json(self.shares.versions(&id, &path, now)?)
            }
            ShareOp::Doc(share) => {
                let id = self.shares.resolve(&share)?;
                Ok(ShareReply::Bytes(self.shares.doc_bytes(&id)?))
            }
        }
    }

    pub(super) fn on_share_event(&mut self, event: request_response::Event<Wire<ShareRequest>, ShareResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.answer_share(peer, request, channel)
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                if let Some(share) = self.share_requests.remove(&request_id) {
                    let swarm = &self.swarm;
                    let out =
                        blocking(|| self.shares.on_sync_response(&peer, &share, response, &|p| swarm.is_connected(p)));
                    self.send_share(out);
                    // New versions may need content: ask for it now.
                    self.drive_fetches();
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                self.share_requests.remove(&request_id);
                debug!(%peer, "share message not delivered: {error}");
            }
            Event::InboundFailure { peer, error, .. } => warn!(%peer, "share request failed: {error}"),
            Event::ResponseSent { .. } => {}
        }
    }

    fn answer_share(&mut self, peer: PeerId, request: Wire<ShareRequest>, channel: ResponseChannel<ShareResponse>) {
        let (response, out) = match request {
            Wire::Bad(err) => {
                warn!(%peer, "refused a share request: malformed frame: {err}");
                (ShareResponse::Refused { message: format!("malformed request: {err}") }, Vec::new())
            }
            Wire::Msg(_) if self.contact(&peer).is_none() => {
                warn!(%peer, "refused /hearth/share/1 from a node that is not a contact");
                (ShareResponse::Refused { message: hearth_protocol::contact::NOT_A_CONTACT.into() }, Vec::new())
            }
            Wire::Msg(request) => {
                let swarm = &self.swarm;
                blocking(|| self.shares.on_request(&peer, request, now_unix(), &|p| swarm.is_connected(p)))
            }
        };
        let _ = self.swarm.behaviour_mut().share.send_response(channel, response);
        self.send_share(out);
        self.drive_fetches();
    }
}
