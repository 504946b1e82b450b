//! Bank views on the wire (`/hearth/bank/1`): the owner pushes the entries
//! of a view's signed log (see `hearth_crdt::bank`) to its viewer.
//!
//! The owner sends `Push { view, from, entries }` with the entries from
//! sequence `from` on (at most [`MAX_ENTRY_BYTES`] per message); the
//! receiver verifies every entry against the owner's key before storing
//! it, and answers `Have { have }`, the number of entries it now holds, so
//! the owner knows where to resume (after a restart, a lost message or a
//! refused entry). A viewer asks for what it lacks with `Pull { view, from }`
//! (answered with `Entries`), e.g. when it comes back online.
//!
//! Any node may receive a `Push`, but what it stores is only ever the
//! owner's entries: a viewer pushing its own writes is refused by all.
//! [`Pusher`] is the owner's sans-IO bookkeeping of one (view, viewer):
//! what was acknowledged, whether a push is in flight, what to send next.

use serde::{Deserialize, Serialize};

/// Protocol name negotiated by multistream-select.
pub const PROTOCOL: &str = "/hearth/bank/1";
/// Largest frame body either side accepts.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Entry bytes carried by one message (leaves room for framing).
pub const MAX_ENTRY_BYTES: usize = 3 * 1024 * 1024;
/// Length of a view id.
pub const VIEW_ID_LEN: usize = 16;

/// A request on `/hearth/bank/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BankRequest {
    /// Entries of a view's log, from sequence `from` on.
    Push {
        /// The view id.
        #[serde(with = "serde_bytes")]
        view: Vec<u8>,
        /// Sequence number of the first entry.
        from: u64,
        /// CBOR-encoded `hearth_crdt::bank::Entry`s, in order.
        entries: Vec<serde_bytes::ByteBuf>,
    },
    /// Ask the owner for the entries from `from` on.
    Pull {
        /// The view id.
        #[serde(with = "serde_bytes")]
        view: Vec<u8>,
        /// Entries held.
        from: u64,
    },
}

/// A response on `/hearth/bank/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BankResponse {
    /// Answer to a push: entries now held, and how many were refused.
    Have {
        /// Entries held.
        have: u64,
        /// Entries of the push refused (bad signature, out of order, ...).
        rejected: u32,
    },
    /// Answer to a pull.
    Entries {
        /// Sequence number of the first entry.
        from: u64,
        /// CBOR-encoded entries.
        entries: Vec<serde_bytes::ByteBuf>,
        /// More remain: pull again.
        more: bool,
    },
    /// Not allowed (unknown view, not its viewer, malformed).
    Refused {
        /// Sentence for the log of the refused node.
        message: String,
    },
}

impl BankRequest {
    /// The view the request is about.
    pub fn view(&self) -> &[u8] {
        match self {
            BankRequest::Push { view, .. } | BankRequest::Pull { view, .. } => view,
        }
    }
}

/// The first entries of `entries` that fit in [`MAX_ENTRY_BYTES`] (at least
/// one, so progress is always made), and whether more remain.
pub fn bounded(entries: &[Vec<u8>]) -> (Vec<serde_bytes::ByteBuf>, bool) {
    let mut size = 0usize;
    let mut batch = Vec::new();
    for e in entries {
        if !batch.is_empty() && size + e.len() + 8 > MAX_ENTRY_BYTES {
            break;
        }
        size += e.len() + 8;
        batch.push(serde_bytes::ByteBuf::from(e.clone()));
    }
    let more = batch.len() < entries.len();
    (batch, more)
}

/// The owner's state of pushing one view to its viewer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pusher {
    acked: u64,
    in_flight: bool,
}

impl Pusher {
    /// A pusher that believes the viewer holds `acked` entries.
    pub fn new(acked: u64) -> Self {
        Self { acked, in_flight: false }
    }

    /// Entries the viewer acknowledged holding.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// With `len` entries in the log: `Some(from)` if a push of the entries
    /// from `from` on should be sent now (none in flight, viewer behind).
    /// Marks the push in flight.
    pub fn poll_push(&mut self, len: u64) -> Option<u64> {
        if self.in_flight || self.acked >= len {
            return None;
        }
        self.in_flight = true;
        Some(self.acked)
    }

    /// The viewer answered that it holds `have` entries.
    pub fn on_have(&mut self, have: u64) {
        self.in_flight = false;
        self.acked = have;
    }

    /// The push failed (timeout, disconnection): retry on the next poll.
    pub fn on_failure(&mut self) {
        self.in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    #[test]
    fn messages_round_trip_through_frames() {
        let push = BankRequest::Push {
            view: vec![1; VIEW_ID_LEN],
            from: 3,
            entries: vec![serde_bytes::ByteBuf::from(vec![7; 100])],
        };
        let bytes = frame::encode(&push, MAX_MESSAGE).expect("encode");
        assert_eq!(frame::decode::<BankRequest>(&bytes, MAX_MESSAGE).expect("decode"), push);
        assert_eq!(push.view(), &[1; VIEW_ID_LEN]);
        let have = BankResponse::Have { have: 4, rejected: 0 };
        let bytes = frame::encode(&have, MAX_MESSAGE).expect("encode");
        assert_eq!(frame::decode::<BankResponse>(&bytes, MAX_MESSAGE).expect("decode"), have);
    }

    #[test]
    fn pushes_resume_where_the_viewer_is() {
        let mut p = Pusher::new(0);
        assert_eq!(p.poll_push(0), None);
        assert_eq!(p.poll_push(3), Some(0));
        assert_eq!(p.poll_push(3), None, "one push in flight at a time");
        p.on_have(2);
        assert_eq!(p.poll_push(3), Some(2));
        p.on_failure();
        assert_eq!(p.poll_push(4), Some(2));
        p.on_have(4);
        assert_eq!(p.poll_push(4), None);
        let (batch, more) = bounded(&[vec![0; MAX_ENTRY_BYTES], vec![0; 10]]);
        assert_eq!((batch.len(), more), (1, true));
    }
}
