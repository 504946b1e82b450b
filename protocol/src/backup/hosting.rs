//! The host's side, as pure decisions: hosting agreements and uploads.
//!
//! An agreement goes `pending` (request received) -> `accepted { quota }`
//! or `declined`, by the host person's decision; only an accepted agreement
//! lets an owner store. An upload piece is accepted only at the offset
//! where the partial object ends (so an interrupted upload resumes, and
//! replays or gaps are refused), only while the finished object fits in
//! the quota, and a finished shard must hash to its id.

use serde::{Deserialize, Serialize};

use super::wire::{Refusal, MAX_PIECE};

/// A hosting agreement, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Agreement {
    /// Asked, not answered yet.
    Pending {
        /// What the owner offers in return.
        offer: u64,
    },
    /// Accepted with a quota.
    Accepted {
        /// Bytes granted.
        quota: u64,
    },
    /// Declined.
    Declined,
}

impl Agreement {
    /// Name of the state on the wire and in views.
    pub fn name(&self) -> &'static str {
        match self {
            Agreement::Pending { .. } => "pending",
            Agreement::Accepted { .. } => "accepted",
            Agreement::Declined => "declined",
        }
    }

    /// Granted bytes (0 unless accepted).
    pub fn quota(&self) -> u64 {
        match self {
            Agreement::Accepted { quota } => *quota,
            _ => 0,
        }
    }
}

/// What to do with an upload piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutAction {
    /// Append; the object is then complete iff `complete`.
    Append {
        /// The piece ends the object.
        complete: bool,
    },
    /// Already complete: answer with the length held.
    AlreadyHave,
}

/// Decides on a piece `[offset, offset + len)` of an object of `total`
/// bytes, of which `have` are held (`complete` if the object is finished),
/// with `used` bytes used by this owner in total (partials included) under
/// `agreement`. `replaces` is the length of a complete object this one
/// would replace (metadata objects are rewritten).
#[allow(clippy::too_many_arguments)]
pub fn decide_put(
    agreement: Option<&Agreement>,
    used: u64,
    have: u64,
    complete: bool,
    replaces: u64,
    offset: u64,
    total: u64,
    len: usize,
) -> Result<PutAction, (Refusal, String)> {
    decide_put_limit(agreement, used, have, complete, replaces, offset, total, len, MAX_PIECE)
}

/// [`decide_put`] with pieces of at most `max_piece` bytes (the rest of a
/// shard in one piece on `/hearth/backup/2`: [`super::wire::MAX_SHARD`]).
#[allow(clippy::too_many_arguments)]
pub fn decide_put_limit(
    agreement: Option<&Agreement>,
    used: u64,
    have: u64,
    complete: bool,
    replaces: u64,
    offset: u64,
    total: u64,
    len: usize,
    max_piece: usize,
) -> Result<PutAction, (Refusal, String)> {
    let quota = match agreement {
        Some(Agreement::Accepted { quota }) => *quota,
        _ => return Err((Refusal::NotAFriend, "you have no hosting agreement with this node".into())),
    };
    if complete && have == total && replaces == 0 {
        return Ok(PutAction::AlreadyHave);
    }
    if len > max_piece || len == 0 || offset + len as u64 > total {
        return Err((Refusal::BadRequest, format!("a piece of {len} bytes at {offset} does not fit in {total}")));
    }
    if offset != have {
        return Err((Refusal::BadRequest, format!("expected the piece at offset {have}, got {offset}")));
    }
    if offset == 0 {
        let after = used.saturating_sub(replaces).saturating_sub(have) + total;
        if after > quota {
            return Err((
                Refusal::OverQuota,
                format!(
                    "over quota: {total} more bytes would make {after} of the {quota} granted; ask for a larger quota"
                ),
            ));
        }
    }
    Ok(PutAction::Append { complete: offset + len as u64 == total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_need_an_agreement_and_quota_and_go_in_order() {
        let ok = Agreement::Accepted { quota: 100 };
        assert_eq!(decide_put(None, 0, 0, false, 0, 0, 10, 10).map_err(|e| e.0), Err(Refusal::NotAFriend));
        let pending = Agreement::Pending { offer: 5 };
        assert_eq!(decide_put(Some(&pending), 0, 0, false, 0, 0, 10, 10).map_err(|e| e.0), Err(Refusal::NotAFriend));
        assert_eq!(decide_put(Some(&ok), 0, 0, false, 0, 0, 10, 10), Ok(PutAction::Append { complete: true }));
        assert_eq!(decide_put(Some(&ok), 0, 0, false, 0, 0, 10, 4), Ok(PutAction::Append { complete: false }));
        assert_eq!(decide_put(Some(&ok), 95, 0, false, 0, 0, 10, 10).map_err(|e| e.0), Err(Refusal::OverQuota));
        assert_eq!(decide_put(Some(&ok), 4, 4, false, 0, 2, 10, 4).map_err(|e| e.0), Err(Refusal::BadRequest));
        assert_eq!(decide_put(Some(&ok), 10, 10, true, 0, 0, 10, 10), Ok(PutAction::AlreadyHave));
        // A rewritten metadata object only counts its growth.
        assert_eq!(decide_put(Some(&ok), 95, 0, false, 50, 0, 50, 50), Ok(PutAction::Append { complete: true }));
    }
}
