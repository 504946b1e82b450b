//! Shared folders on the wire (`/hearth/share/1`): invitations to a share and
//! the exchange of the share document's signed changes.
//!
//! Document sync is a push-pull of signed Automerge changes: a member sends
//! its heads and the changes it believes the other lacks (computed from the
//! other's last heads it knows); the receiver verifies and authorises every
//! change (see `hearth_crdt::doc`), applies what passes, and answers with its
//! own heads and the changes the sender lacks. Responses are bounded: when
//! more changes remain than fit in [`MAX_CHANGE_BYTES`], the answer says
//! `more` and the requester asks again with its new heads. File contents are
//! not part of this protocol (see `blob`).
//!
//! Only members of a share may sync it: a node answers [`ShareResponse::Refused`]
//! to anyone its copy of the membership does not list, and never sends a
//! share's changes to a non-member.

use serde::{Deserialize, Serialize};

/// Protocol name negotiated by multistream-select.
pub const PROTOCOL: &str = "/hearth/share/1";
/// Largest frame body either side accepts.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Changes carried by one message, in bytes (leaves room for framing).
pub const MAX_CHANGE_BYTES: usize = 3 * 1024 * 1024;
/// The refusal a node sends to a peer that is not (or no longer) a member;
/// from the owner, it tells a removed member that it was removed.
pub const NOT_A_MEMBER: &str = "you are not a member of this share";

/// Length of a share id.
pub const SHARE_ID_LEN: usize = 16;

/// A signed document change as it travels (see `hearth_crdt::doc::SignedChange`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChange {
    /// Automerge binary change.
    #[serde(with = "serde_bytes")]
    pub change: Vec<u8>,
    /// The author's ed25519 signature.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// A request on `/hearth/share/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShareRequest {
    /// The owner invites the receiver; it shows as pending until accepted.
    Invite {
        /// The share's id.
        #[serde(with = "serde_bytes")]
        share: Vec<u8>,
        /// The share's name.
        name: String,
        /// `read-write` or `read-only`.
        role: String,
    },
    /// The receiver of an invitation answers it.
    Answer {
        /// The share's id.
        #[serde(with = "serde_bytes")]
        share: Vec<u8>,
        /// True to accept, false to decline.
        accept: bool,
    },
    /// Document sync (see the module documentation).
    Sync {
        /// The share's id.
        #[serde(with = "serde_bytes")]
        share: Vec<u8>,
        /// The sender's heads (32-byte change hashes).
        heads: Vec<serde_bytes::ByteBuf>,
        /// Changes the receiver probably lacks.
        changes: Vec<WireChange>,
    },
}

/// A response on `/hearth/share/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShareResponse {
    /// Invitation or answer recorded.
    Ok,
    /// Sync answer.
    Sync {
        /// The responder's heads after applying the request's changes.
        heads: Vec<serde_bytes::ByteBuf>,
        /// Changes the requester lacks (bounded).
        changes: Vec<WireChange>,
        /// More changes remain: ask again.
        more: bool,
        /// How many of the request's changes were refused (for the log).
        rejected: u32,
    },
    /// Not allowed (not a member, unknown share, malformed).
    Refused {
        /// Sentence for the log of the refused node.
        message: String,
    },
}

impl ShareRequest {
    /// The share the request is about.
    pub fn share(&self) -> &[u8] {
        match self {
            ShareRequest::Invite { share, .. }
            | ShareRequest::Answer { share, .. }
            | ShareRequest::Sync { share, .. } => share,
        }
    }
}

/// Splits `changes` into a first batch of at most [`MAX_CHANGE_BYTES`] (at
/// least one change, so progress is always made) and whether more remain.
/// Takes changes from the iterator only up to the first one left out, so a
/// lazy iterator produces (copies) no more than that.
pub fn bounded(changes: impl IntoIterator<Item = WireChange>) -> (Vec<WireChange>, bool) {
    let mut size = 0usize;
    let mut batch = Vec::new();
    for change in changes {
        let len = change.change.len() + change.signature.len() + 16;
        if !batch.is_empty() && size + len > MAX_CHANGE_BYTES {
            return (batch, true);
        }
        size += len;
        batch.push(change);
    }
    (batch, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    #[test]
    fn messages_round_trip_through_frames() {
        let sync = ShareRequest::Sync {
            share: vec![1; SHARE_ID_LEN],
            heads: vec![serde_bytes::ByteBuf::from(vec![2; 32])],
            changes: vec![WireChange { change: vec![3; 100], signature: vec![4; 64] }],
        };
        let bytes = frame::encode(&sync, MAX_MESSAGE).expect("encode");
        assert_eq!(frame::decode::<ShareRequest>(&bytes, MAX_MESSAGE).expect("decode"), sync);
        assert_eq!(sync.share(), &[1; SHARE_ID_LEN]);
    }

    #[test]
    fn batches_are_bounded_but_always_progress() {
        let big = |n| WireChange { change: vec![0; n], signature: vec![0; 64] };
        let (batch, more) = bounded(vec![big(MAX_CHANGE_BYTES * 2), big(10)]);
        assert_eq!((batch.len(), more), (1, true));
        let (batch, more) = bounded(vec![big(1000), big(1000)]);
        assert_eq!((batch.len(), more), (2, false));
        let (batch, more) = bounded(vec![big(MAX_CHANGE_BYTES / 2); 3]);
        assert_eq!((batch.len(), more), (1, true));
    }
}
