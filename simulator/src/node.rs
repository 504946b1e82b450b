//! A simulated Hearth node: the pairing half of `node/src/net/event_loop.rs`
//! with the swarm and redb replaced by plain maps.
//!
//! It drives the sans-IO core exactly as the real node does. The joiner
//! decodes the token text, refuses locally what the node refuses (already a
//! contact, expired, own token), builds a [`Joiner`] and sends its request as
//! an encoded frame. The inviter decodes the frame, looks the invitation up,
//! asks [`pairing::handle_request`] for a decision, commits the updated
//! record and the contact together (one "transaction": both or neither), and
//! only then hands the response back to the world to send. The world may
//! crash the node between the commit and the send, which loses only the
//! response.
//!
//! State is split the way a crash splits it: [`Durable`] (the redb tables:
//! invitations and contacts) survives a crash; pending joins and their
//! request ids are volatile and vanish with it.

use std::collections::BTreeMap;

use hearth_protocol::frame::{self, FrameError};
use hearth_protocol::pairing::{
    self, InvitationRecord, InviterDecision, JoinError, JoinState, Joiner, PairRequest, PairResponse, RejectReason,
};
use hearth_protocol::token::{Invitation, TokenError, SECRET_LEN, TOKEN_ID_LEN};
use hearth_protocol::PeerBytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How a contact came to be, as the node's store records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The contact redeemed one of our invitations.
    Invited,
    /// We redeemed one of the contact's invitations.
    Joined,
}

/// A stored contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Local name of the contact.
    pub name: String,
    /// How it was added (overwritten by each pairing, as the node does).
    pub origin: Origin,
    /// Unix seconds of the first pairing.
    pub added_at: u64,
}

/// What survives a crash: the node's redb tables.
#[derive(Debug, Clone, Default)]
pub struct Durable {
    /// Invitations by token id.
    pub invitations: BTreeMap<Vec<u8>, InvitationRecord>,
    /// Contacts by peer id.
    pub contacts: BTreeMap<PeerBytes, Contact>,
}

#[derive(Debug)]
struct PendingJoin {
    joiner: Joiner,
    /// The world's record of the person's `hearth join` command.
    intent: usize,
}

/// What a crash loses.
#[derive(Debug, Default)]
struct Volatile {
    joins: BTreeMap<u64, PendingJoin>,
    /// Request attempt (conv) -> join it belongs to.
    convs: BTreeMap<u64, u64>,
    next_join: u64,
}

/// Why the joiner's node refused a `hearth join` before sending anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token text does not decode.
    Token(TokenError),
    /// The inviter is already a contact (the node answers 409).
    AlreadyContact,
    /// [`Joiner::new`] refused (expired token, own token, bad name).
    Join(JoinError),
}

impl Refusal {
    /// Short label for the statistics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Token(TokenError::Expired(_)) | Refusal::Join(JoinError::Token(TokenError::Expired(_))) => {
                "expired"
            }
            Refusal::Token(_) | Refusal::Join(JoinError::Token(_)) => "bad_token",
            Refusal::AlreadyContact => "already_contact",
            Refusal::Join(JoinError::OwnInvitation) => "own_invitation",
            Refusal::Join(_) => "other",
        }
    }
}

/// A join that sent its first request.
#[derive(Debug)]
pub struct Started {
    /// The inviter named by the token.
    pub inviter: PeerBytes,
    /// The request frame to send.
    pub frame: Vec<u8>,
    /// Local id of the pending join.
    pub join: u64,
}

/// The inviter's answer to one request frame.
#[derive(Debug)]
pub struct Answer {
    /// The response frame, to send once the commit (if any) is done.
    pub frame: Vec<u8>,
    /// What was decided.
    pub verdict: Verdict,
}

/// The inviter's decision as seen by the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted and committed.
    Accepted {
        /// The redeemed token.
        token_id: Vec<u8>,
        /// False for a retry by the same joiner.
        first_time: bool,
        /// A retry that re-created a contact the node no longer had.
        readded: bool,
    },
    /// Refused; nothing changed.
    Rejected(RejectReason),
}

/// What a timeout does to a pending join.
#[derive(Debug)]
pub enum Retry {
    /// The join already ended (or was lost in a crash).
    Finished,
    /// Out of attempts: the person is told the inviter did not answer.
    GaveUp {
        /// The person's command.
        intent: usize,
    },
    /// Send the same request again.
    Resend {
        /// The inviter.
        inviter: PeerBytes,
        /// The request frame.
        frame: Vec<u8>,
        /// Attempt number of this request.
        attempt: u32,
    },
}

/// What a response did to the joiner.
#[derive(Debug)]
pub enum Finish {
    /// No pending join for it (answered already, or lost in a crash).
    Stale,
    /// The inviter is now a contact.
    Paired {
        /// The person's command.
        intent: usize,
    },
    /// The join ended without pairing.
    Failed {
        /// The person's command.
        intent: usize,
        /// The inviter's reason, or `None` for a failure an honest inviter
        /// never causes (bad proof, bad name, malformed frame).
        reason: Option<RejectReason>,
        /// Description for the trace.
        detail: String,
    },
}

/// One simulated node.
#[derive(Debug)]
pub struct SimNode {
    /// Peer id bytes (random, opaque to the core).
    pub id: PeerBytes,
    /// Display name.
    pub name: String,
    /// The attacker: never invites, never holds a token, forges requests.
    pub hostile: bool,
    /// Running or crashed.
    pub up: bool,
    /// Bumped by each crash; connections belong to one incarnation.
    pub incarnation: u64,
    /// Survives crashes.
    pub durable: Durable,
    volatile: Volatile,
}

impl SimNode {
    /// A fresh node.
    pub fn new(id: PeerBytes, name: String, hostile: bool) -> Self {
        Self { id, name, hostile, up: true, incarnation: 0, durable: Durable::default(), volatile: Volatile::default() }
    }

    /// Loses the volatile state; the node stays down until [`SimNode::restart`].
    pub fn crash(&mut self) {
        self.up = false;
        self.incarnation += 1;
        self.volatile = Volatile::default();
    }

    /// Comes back from the durable state alone.
    pub fn restart(&mut self) {
        self.up = true;
    }

    /// Whether the person's command `intent` is still being worked on.
    pub fn is_pending(&self, intent: usize) -> bool {
        self.volatile.joins.values().any(|j| j.intent == intent)
    }

    /// Number of joins in progress.
    pub fn pending_joins(&self) -> usize {
        self.volatile.joins.len()
    }

    /// `hearth invite --ttl`: stores a fresh invitation, returns its text.
    pub fn invite(&mut self, now: u64, ttl: u64, rng: &mut ChaCha8Rng) -> (String, Invitation) {
        let secret: [u8; SECRET_LEN] = rng.gen();
        let invitation = Invitation {
            inviter: self.id.clone(),
            inviter_name: self.name.clone(),
            addrs: vec![vec![4, 10, 0, 0, self.id[0], 6, 0x1f, 0x90]],
            secret,
            expires_at: now + ttl,
        };
        let text = invitation.encode().expect("a simulated invitation always encodes");
        let record = InvitationRecord {
            secret: secret.to_vec(),
            created_at: now,
            expires_at: now + ttl,
            used_by: None,
            revoked: false,
        };
        self.durable.invitations.insert(invitation.token_id().to_vec(), record);
        (text, invitation)
    }

    /// `hearth join TOKEN` (event_loop.rs `join`): refuses locally or starts
    /// a join and returns its first request, to be sent as attempt `conv`.
    pub fn join(&mut self, now: u64, text: &str, intent: usize, conv: u64) -> Result<Started, Refusal> {
        let invitation = Invitation::decode(text).map_err(Refusal::Token)?;
        if self.durable.contacts.contains_key(&invitation.inviter) {
            return Err(Refusal::AlreadyContact);
        }
        let mut joiner = Joiner::new(now, invitation, &self.id, &self.name).map_err(Refusal::Join)?;
        let request = joiner.poll_request().expect("a new joiner always has a request");
        let inviter = joiner.invitation().inviter.clone();
        let join = self.volatile.next_join;
        self.volatile.next_join += 1;
        self.volatile.joins.insert(join, PendingJoin { joiner, intent });
        self.volatile.convs.insert(conv, join);
        Ok(Started { inviter, frame: encode(&request), join })
    }

    /// A request timed out: resend it (same [`Joiner`], which the core
    /// allows) or give up after `max_attempts`.
    pub fn retry(&mut self, join: u64, conv: u64, max_attempts: u32) -> Retry {
        let Some(pending) = self.volatile.joins.get_mut(&join) else {
            return Retry::Finished;
        };
        let JoinState::Waiting { attempts } = *pending.joiner.state() else {
            return Retry::Finished;
        };
        if attempts >= max_attempts {
            let intent = pending.intent;
            self.forget(join);
            return Retry::GaveUp { intent };
        }
        let request = pending.joiner.poll_request().expect("a waiting joiner always has a request");
        let inviter = pending.joiner.invitation().inviter.clone();
        self.volatile.convs.insert(conv, join);
        Retry::Resend { inviter, frame: encode(&request), attempt: attempts + 1 }
    }

    fn forget(&mut self, join: u64) {
        self.volatile.joins.remove(&join);
        self.volatile.convs.retain(|_, j| *j != join);
    }

    /// `hearth contacts remove` (event_loop.rs `remove_contact`): deletes
    /// the contact and revokes the invitations it redeemed, atomically.
    pub fn remove_contact(&mut self, peer: &[u8]) -> bool {
        for record in self.durable.invitations.values_mut() {
            if record.used_by.as_ref().is_some_and(|u| u.peer == peer) {
                record.revoked = true;
            }
        }
        self.durable.contacts.remove(peer).is_some()
    }

    /// The inviter's side (event_loop.rs `answer_pairing`): decode, look up,
    /// decide, commit, and return the response to send. A frame that does
    /// not decode is refused with no answer, as the codec does.
    pub fn answer_pairing(&mut self, now: u64, remote: &[u8], bytes: &[u8]) -> Result<Answer, FrameError> {
        let request: PairRequest = frame::decode(bytes, pairing::MAX_MESSAGE)?;
        let record =
            if request.token_id.len() == TOKEN_ID_LEN { self.durable.invitations.get(&request.token_id) } else { None };
        let decision = pairing::handle_request(now, &self.id, &self.name, remote, record, &request);
        let (response, verdict) = match decision {
            InviterDecision::Reject { response, reason } => (response, Verdict::Rejected(reason)),
            InviterDecision::Accept { response, joiner, joiner_name, record, first_time } => {
                let existing = self.durable.contacts.get(&joiner);
                let readded = !first_time && existing.is_none();
                // As `Store::commit_pairing`: keep an existing contact's name
                // and date, and write invitation and contact together.
                let contact = match existing {
                    Some(c) => Contact { origin: Origin::Invited, ..c.clone() },
                    None => Contact { name: joiner_name, origin: Origin::Invited, added_at: now },
                };
                self.durable.invitations.insert(request.token_id.clone(), record);
                self.durable.contacts.insert(joiner, contact);
                (response, Verdict::Accepted { token_id: request.token_id, first_time, readded })
            }
        };
        Ok(Answer { frame: encode(&response), verdict })
    }

    /// The joiner's side (event_loop.rs `finish_join`): a response to
    /// request attempt `conv` arrived from the authenticated peer `remote`.
    pub fn finish_join(&mut self, now: u64, remote: &[u8], conv: u64, bytes: &[u8]) -> Finish {
        let Some(join) = self.volatile.convs.remove(&conv) else {
            return Finish::Stale;
        };
        let Some(pending) = self.volatile.joins.get_mut(&join) else {
            return Finish::Stale;
        };
        let intent = pending.intent;
        let outcome = match frame::decode::<PairResponse>(bytes, pairing::MAX_MESSAGE) {
            Ok(response) => pending.joiner.handle_response(remote, response),
            Err(err) => {
                self.forget(join);
                return Finish::Failed { intent, reason: None, detail: format!("malformed response: {err}") };
            }
        };
        self.forget(join);
        match outcome {
            Ok(paired) => {
                let contact = match self.durable.contacts.get(&paired.peer) {
                    Some(c) => Contact { origin: Origin::Joined, ..c.clone() },
                    None => Contact { name: paired.name, origin: Origin::Joined, added_at: now },
                };
                self.durable.contacts.insert(paired.peer, contact);
                Finish::Paired { intent }
            }
            Err(JoinError::Rejected { reason, .. }) => {
                Finish::Failed { intent, reason: Some(reason), detail: reason_label(reason).into() }
            }
            Err(err) => Finish::Failed { intent, reason: None, detail: err.to_string() },
        }
    }
}

/// The wire name of a rejection reason.
pub fn reason_label(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::UnknownInvitation => "unknown_invitation",
        RejectReason::AlreadyUsed => "already_used",
        RejectReason::Expired => "expired",
        RejectReason::BadProof => "bad_proof",
        RejectReason::BadRequest => "bad_request",
        RejectReason::OwnInvitation => "own_invitation",
    }
}

/// Encodes a pairing message as one frame; the core's messages are far
/// below the limit, so a failure is a bug worth a panic.
pub fn encode<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    frame::encode(msg, pairing::MAX_MESSAGE).expect("pairing messages fit in a frame")
}
