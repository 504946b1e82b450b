//! Pairing: turning an invitation into two mutual contacts (`/hearth/pair/1`).
//!
//! The joiner has decoded a token ([`Invitation`]) and is connected to the
//! inviter over an authenticated channel (Noise or TLS: each side knows the
//! other's peer id). It sends one [`PairRequest`]; the inviter answers one
//! [`PairResponse`]. Both sides prove they know the invitation's secret with a
//! keyed BLAKE3 MAC over their role and both peer ids, so a proof cannot be
//! replayed by another peer nor reflected back. The secret itself never
//! travels. See `spec/pairing.md` for the normative description.
//!
//! The inviter side is a pure decision ([`handle_request`]) over the stored
//! [`InvitationRecord`]: the node looks the record up, asks for a decision,
//! then commits the updated record and the new contact in one transaction
//! before sending the response. A joiner whose response was lost may retry
//! with the same token and gets the same acceptance, even after the expiry;
//! any other peer gets `already_used`, and so does the same joiner once the
//! contact made with the token was removed (the record is `revoked`).

use serde::{Deserialize, Serialize};

use crate::names::{validate_name, NameError};
use crate::token::{Invitation, TokenError, SECRET_LEN, TOKEN_ID_LEN};
use crate::PeerBytes;

/// Protocol name negotiated by multistream-select.
pub const PROTOCOL: &str = "/hearth/pair/1";
/// Largest pairing frame body either side accepts.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Default validity of a new invitation: 24 hours.
pub const DEFAULT_TTL_SECS: u64 = 24 * 60 * 60;
/// Length of a proof.
pub const PROOF_LEN: usize = 32;
const PROOF_CONTEXT: &str = "hearth 2026-11 pairing proof v1";

/// Which side computes a proof; part of the MAC input so that the inviter's
/// proof can never be mistaken for the joiner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The node that received the token and dials.
    Joiner,
    /// The node that created the token.
    Inviter,
}

impl Role {
    fn tag(self) -> u8 {
        match self {
            Role::Joiner => b'J',
            Role::Inviter => b'I',
        }
    }
}

/// The joiner's only message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRequest {
    /// [`Invitation::token_id`] of the token being redeemed (16 bytes).
    #[serde(with = "serde_bytes")]
    pub token_id: Vec<u8>,
    /// The joiner's display name, suggested to the inviter.
    pub name: String,
    /// `proof(secret, Joiner, inviter, joiner)` (32 bytes).
    #[serde(with = "serde_bytes")]
    pub proof: Vec<u8>,
}

/// The inviter's only message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PairResponse {
    /// The joiner is now a contact of the inviter.
    Accepted {
        /// The inviter's display name.
        name: String,
        /// `proof(secret, Inviter, inviter, joiner)` (32 bytes).
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
    },
    /// Nothing changed on the inviter.
    Rejected {
        /// Machine-readable reason.
        reason: RejectReason,
        /// Sentence for the person who ran `hearth join`.
        message: String,
    },
}

/// Why an inviter refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// No invitation with this id exists (never made, or made by another node).
    UnknownInvitation,
    /// The invitation was already redeemed by another node.
    AlreadyUsed,
    /// The invitation's expiry has passed.
    Expired,
    /// The proof does not match: the requester does not hold the secret.
    BadProof,
    /// The request is malformed (field sizes, name).
    BadRequest,
    /// A node tried to redeem its own invitation.
    OwnInvitation,
}

impl RejectReason {
    /// The sentence sent along with the reason.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownInvitation => "this node has no such invitation; ask for a new one with `hearth invite`",
            Self::AlreadyUsed => "this invitation was already used; invitations work once: ask for a new one",
            Self::Expired => "this invitation has expired; ask for a new one with `hearth invite`",
            Self::BadProof => "the invitation's secret does not match; copy the token again exactly as printed",
            Self::BadRequest => "the pairing request is malformed",
            Self::OwnInvitation => "a node cannot accept its own invitation",
        }
    }

    fn reject(self) -> PairResponse {
        PairResponse::Rejected { reason: self, message: self.message().to_owned() }
    }
}

/// What the inviter keeps about an invitation it issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRecord {
    /// The single-use secret.
    #[serde(with = "serde_bytes")]
    pub secret: Vec<u8>,
    /// Unix seconds when it was made.
    pub created_at: u64,
    /// Unix seconds after which it is refused.
    pub expires_at: u64,
    /// Who redeemed it, once redeemed.
    pub used_by: Option<Redemption>,
    /// Set when the contact made with it was removed: a later retry by the
    /// same joiner must not bring it back.
    #[serde(default)]
    pub revoked: bool,
}

/// The redemption of an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    /// The joiner's peer id.
    #[serde(with = "serde_bytes")]
    pub peer: PeerBytes,
    /// The name the joiner gave.
    pub name: String,
    /// Unix seconds of the redemption.
    pub at: u64,
}

/// The inviter's decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviterDecision {
    /// Store `record` and the contact (`joiner`, `joiner_name`) in one
    /// transaction, then send `response`.
    Accept {
        /// The response to send once the state is durable.
        response: PairResponse,
        /// The joiner's peer id.
        joiner: PeerBytes,
        /// The joiner's display name (validated).
        joiner_name: String,
        /// The invitation, now marked used.
        record: InvitationRecord,
        /// False when this is a retry by the same joiner (contact exists).
        first_time: bool,
    },
    /// Send `response`; change nothing.
    Reject {
        /// The response to send.
        response: PairResponse,
        /// The reason, for the log.
        reason: RejectReason,
    },
}

/// The MAC each side sends to prove it holds the invitation's secret.
pub fn proof(secret: &[u8; SECRET_LEN], role: Role, inviter: &[u8], joiner: &[u8]) -> [u8; PROOF_LEN] {
    let key = blake3::derive_key(PROOF_CONTEXT, secret);
    let mut mac = blake3::Hasher::new_keyed(&key);
    mac.update(&[role.tag()]);
    for peer in [inviter, joiner] {
        mac.update(&(peer.len() as u32).to_be_bytes());
        mac.update(peer);
    }
    *mac.finalize().as_bytes()
}

fn proof_matches(expected: [u8; PROOF_LEN], got: &[u8]) -> bool {
    // blake3::Hash compares in constant time.
    match <[u8; PROOF_LEN]>::try_from(got) {
        Ok(got) => blake3::Hash::from(expected) == blake3::Hash::from(got),
        Err(_) => false,
    }
}

/// Decides on a pairing request received by the inviter `local` from the
/// authenticated peer `remote`. `record` is the stored invitation whose id is
/// `request.token_id`, if any. Pure: the caller persists an acceptance.
pub fn handle_request(
    now: u64,
    local: &[u8],
    local_name: &str,
    remote: &[u8],
    record: Option<&InvitationRecord>,
    request: &PairRequest,
) -> InviterDecision {
    let reject = |reason: RejectReason| InviterDecision::Reject { response: reason.reject(), reason };
    if request.token_id.len() != TOKEN_ID_LEN || request.proof.len() != PROOF_LEN {
        return reject(RejectReason::BadRequest);
    }
    let Ok(joiner_name) = validate_name(&request.name) else {
        return reject(RejectReason::BadRequest);
    };
    if remote == local {
        return reject(RejectReason::OwnInvitation);
    }
    let Some(record) = record else {
        return reject(RejectReason::UnknownInvitation);
    };
    let Ok(secret) = <[u8; SECRET_LEN]>::try_from(record.secret.as_slice()) else {
        return reject(RejectReason::UnknownInvitation);
    };
    // The proof is checked before anything that would tell a peer without the
    // secret whether the invitation is used or expired.
    if !proof_matches(proof(&secret, Role::Joiner, local, remote), &request.proof) {
        return reject(RejectReason::BadProof);
    }
    let first_time = match &record.used_by {
        Some(r) if r.peer != remote || record.revoked => return reject(RejectReason::AlreadyUsed),
        // A retry by the joiner whose answer was lost: accepted even past the
        // expiry, since the pairing already happened on this side.
        Some(_) => false,
        None if now > record.expires_at => return reject(RejectReason::Expired),
        None => true,
    };
    let mut record = record.clone();
    if first_time {
        record.used_by = Some(Redemption { peer: remote.to_vec(), name: joiner_name.clone(), at: now });
    }
    InviterDecision::Accept {
        response: PairResponse::Accepted {
            name: local_name.to_owned(),
            proof: proof(&secret, Role::Inviter, local, remote).to_vec(),
        },
        joiner: remote.to_vec(),
        joiner_name,
        record,
        first_time,
    }
}

/// Why joining failed on the joiner's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The token itself is unusable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token was made by this very node.
    #[error("this invitation was made by this node; give it to the person you want to pair with")]
    OwnInvitation,
    /// The local name is unusable.
    #[error("invalid name: {0}")]
    Name(#[from] NameError),
    /// The inviter refused.
    #[error("the inviter refused: {message}")]
    Rejected {
        /// Machine-readable reason.
        reason: RejectReason,
        /// The inviter's sentence.
        message: String,
    },
    /// A response came from a peer other than the inviter.
    #[error("the answer came from a node other than the inviter")]
    WrongPeer,
    /// The inviter's proof does not match: it does not hold the secret.
    #[error("the inviter could not prove it made this invitation; do not trust this token")]
    BadInviterProof,
    /// The inviter named itself with an unusable name.
    #[error("the inviter sent an invalid name")]
    BadInviterName,
    /// A response arrived before any request was sent, or after the end.
    #[error("unexpected pairing response")]
    Unexpected,
}

/// The joiner's result: the inviter, now a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    /// The inviter's peer id.
    pub peer: PeerBytes,
    /// The inviter's own display name.
    pub name: String,
}

/// Where a [`Joiner`] stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinState {
    /// Created; no request sent yet.
    Ready,
    /// A request is out; `attempts` requests were sent so far.
    Waiting {
        /// Requests sent.
        attempts: u32,
    },
    /// Accepted by the inviter.
    Paired(Paired),
    /// Refused or failed; final.
    Failed(JoinError),
}

/// The joiner's side of pairing.
#[derive(Debug, Clone)]
pub struct Joiner {
    invitation: Invitation,
    local: PeerBytes,
    local_name: String,
    state: JoinState,
    expired: bool,
}

impl Joiner {
    /// Starts redeeming `invitation` as node `local` named `local_name`.
    ///
    /// An expired token is not refused here: if this joiner already redeemed
    /// it and only lost the answer (a crash, a cut connection), the inviter
    /// has recorded the pairing and accepts the retry past the expiry, while
    /// a local refusal would leave the pairing one-sided forever. The inviter
    /// refuses an expired token that was never redeemed; see
    /// [`Joiner::expired`] to say so when the inviter cannot be reached.
    pub fn new(now: u64, invitation: Invitation, local: &[u8], local_name: &str) -> Result<Self, JoinError> {
        let expired = invitation.check_fresh(now).is_err();
        if invitation.inviter == local {
            return Err(JoinError::OwnInvitation);
        }
        let local_name = validate_name(local_name)?;
        Ok(Self { invitation, local: local.to_vec(), local_name, state: JoinState::Ready, expired })
    }

    /// Whether the token had expired when the join started.
    pub fn expired(&self) -> bool {
        self.expired
    }

    /// The invitation being redeemed.
    pub fn invitation(&self) -> &Invitation {
        &self.invitation
    }

    /// Current state.
    pub fn state(&self) -> &JoinState {
        &self.state
    }

    /// The request to send to the inviter. Calling it again (after a lost
    /// response or a broken connection) yields the same request: the inviter
    /// accepts a retry by the same joiner. `None` once finished.
    pub fn poll_request(&mut self) -> Option<PairRequest> {
        let attempts = match &self.state {
            JoinState::Ready => 1,
            JoinState::Waiting { attempts } => attempts + 1,
            JoinState::Paired(_) | JoinState::Failed(_) => return None,
        };
        self.state = JoinState::Waiting { attempts };
        Some(PairRequest {
            token_id: self.invitation.token_id().to_vec(),
            name: self.local_name.clone(),
            proof: proof(&self.invitation.secret, Role::Joiner, &self.invitation.inviter, &self.local).to_vec(),
        })
    }

    /// Handles the response received from the authenticated peer `remote`.
    pub fn handle_response(&mut self, remote: &[u8], response: PairResponse) -> Result<Paired, JoinError> {
        if !matches!(self.state, JoinState::Waiting { .. }) {
            return Err(JoinError::Unexpected);
        }
        if remote != self.invitation.inviter {
            // Not final: the real inviter may still answer.
            return Err(JoinError::WrongPeer);
        }
        let outcome = match response {
            PairResponse::Rejected { reason, message } => Err(JoinError::Rejected { reason, message }),
            PairResponse::Accepted { name, proof: got } => {
                let expected = proof(&self.invitation.secret, Role::Inviter, &self.invitation.inviter, &self.local);
                if !proof_matches(expected, &got) {
                    Err(JoinError::BadInviterProof)
                } else {
                    validate_name(&name)
                        .map(|name| Paired { peer: remote.to_vec(), name })
                        .map_err(|_| JoinError::BadInviterName)
                }
            }
        };
        self.state = match &outcome {
            Ok(paired) => JoinState::Paired(paired.clone()),
            Err(err) => JoinState::Failed(err.clone()),
        };
        outcome
    }
}
