//! The bank view: what a viewer sees of one of the owner's accounts, as an
//! **owner-signed, hash-chained append-only log** (not an Automerge
//! document; `spec/bank.md` gives the reasons: a view has exactly one
//! writer, so there is nothing to merge, while a CRDT history of 100,000
//! operations would cost every viewer its metadata and every change its own
//! signature check).
//!
//! Each [`Entry`] has a sequence number, the hash of the previous entry, a
//! [`Body`], and the owner's ed25519 signature over a domain-separated hash
//! of all three, made with the same [`Signer`] / [`Verifier`] as share
//! changes. [`ViewLog::receive`] accepts an entry only if
//!
//! 1. it is the next one (`seq` = entries held, `prev` = the last hash),
//! 2. its signature verifies against the view's owner key, and
//! 3. its body is allowed there: `Genesis` first and only first (naming
//!    the expected owner and viewer), nothing after `Revoked`.
//!
//! Anything else is rejected, never applied, and reported, so every node
//! holding the view (owner and viewer) holds exactly the owner's entries.
//! A viewer has no way to write: it holds no owner key, and its own
//! signature is refused by everyone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::doc::{Signer, Verifier};

/// Domain separation for view entry signatures.
pub const SIGNATURE_CONTEXT: &[u8] = b"hearth bank view entry v1\0";

/// Length of a view id.
pub const VIEW_ID_LEN: usize = 16;

/// Most operations in one entry (keeps an entry well under a frame).
pub const MAX_OPS_PER_ENTRY: usize = 2000;

/// An operation as a viewer sees it: no note, no private category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewOp {
    /// The owner's dedup key (stable id of the operation).
    pub key: String,
    /// Booking day, `YYYY-MM-DD`.
    pub date: String,
    /// Signed exact decimal text.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Label.
    pub label: String,
    /// Cozy operation type.
    pub kind: String,
    /// Original currency and amount of a foreign operation.
    pub original: Option<(String, String)>,
    /// A category the owner did not mark private.
    pub category: Option<String>,
}

/// What the viewer is shown of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewAccount {
    /// The account's name, as the owner calls it.
    pub name: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Cozy account type.
    pub kind: String,
    /// Operations before this day are not shown.
    pub since: Option<String>,
}

/// The content of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// The first entry: which view, whose, for whom.
    Genesis {
        /// View id.
        #[serde(with = "serde_bytes")]
        view: Vec<u8>,
        /// The owner's peer id bytes.
        #[serde(with = "serde_bytes")]
        owner: Vec<u8>,
        /// The viewer's peer id bytes.
        #[serde(with = "serde_bytes")]
        viewer: Vec<u8>,
        /// The account.
        account: ViewAccount,
    },
    /// Operations added (an existing key is replaced).
    Operations {
        /// The operations.
        ops: Vec<ViewOp>,
    },
    /// The account's balance.
    Balance {
        /// Exact decimal text.
        amount: String,
        /// As of this day.
        date: String,
    },
    /// The owner stopped sharing: the viewer drops the data.
    Revoked,
}

/// One signed entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Hash of the previous entry (zeros for the first).
    #[serde(with = "serde_bytes")]
    pub prev: Vec<u8>,
    /// Content.
    pub body: Body,
    /// The owner's signature over [`Entry::signing_message`].
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not the next entry of the log (a gap, a replay or a fork).
    #[error("entry {got} does not follow the {have} entries held (or its previous hash differs)")]
    OutOfOrder {
        /// Its sequence number.
        got: u64,
        /// Entries held.
        have: u64,
    },
    /// Not signed by the view's owner.
    #[error("bad signature: the entry was not written by the view's owner")]
    BadSignature,
    /// A genesis that is not first, or not for this owner and viewer.
    #[error("the view's first entry is missing, misplaced or names another owner or viewer")]
    BadGenesis,
    /// Anything after the revocation.
    #[error("the view was revoked; nothing may follow")]
    AfterRevocation,
    /// Undecodable.
    #[error("not a view entry: {0}")]
    Malformed(String),
}

/// Errors of local writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// Only the owner writes a view.
    #[error("only the owner of a bank view may write to it")]
    NotOwner,
    /// The view was revoked.
    #[error("the view was revoked")]
    Revoked,
}

/// What [`ViewLog::receive`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveReport {
    /// Entries applied.
    pub applied: u64,
    /// Entries refused, with their sequence number and reason.
    pub rejected: Vec<(u64, Rejection)>,
    /// Entries already held (identical), ignored.
    pub duplicates: u64,
}

/// The state a log folds to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewState {
    /// The account, once the genesis is held.
    pub account: Option<ViewAccount>,
    /// Operations by key.
    pub ops: BTreeMap<String, ViewOp>,
    /// Latest balance (amount, date).
    pub balance: Option<(String, String)>,
    /// The owner revoked the view.
    pub revoked: bool,
}

/// A view's log as held by its owner or a viewer.
#[derive(Debug, Clone)]
pub struct ViewLog {
    view: Vec<u8>,
    owner: Vec<u8>,
    viewer: Vec<u8>,
    entries: Vec<Entry>,
    head: [u8; 32],
    revoked: bool,
}

fn encode_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Serialising plain data into a Vec cannot fail.
    let _ = ciborium::ser::into_writer(value, &mut out);
    out
}

impl Entry {
    /// The hash that chains entries and that the owner signs.
    pub fn hash(view: &[u8], seq: u64, prev: &[u8], body: &Body) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(SIGNATURE_CONTEXT);
        h.update(&(view.len() as u64).to_le_bytes());
        h.update(view);
        h.update(&seq.to_le_bytes());
        h.update(&(prev.len() as u64).to_le_bytes());
        h.update(prev);
        h.update(&encode_cbor(body));
        *h.finalize().as_bytes()
    }

    /// The message signed: context + hash.
    pub fn signing_message(view: &[u8], seq: u64, prev: &[u8], body: &Body) -> Vec<u8> {
        let mut m = SIGNATURE_CONTEXT.to_vec();
        m.extend_from_slice(&Self::hash(view, seq, prev, body));
        m
    }

    /// CBOR bytes, as the entry travels and is stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_cbor(self)
    }

    /// Decodes [`Entry::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Rejection> {
        ciborium::de::from_reader(bytes).map_err(|e| Rejection::Malformed(e.to_string()))
    }
}

impl ViewLog {
    /// A new view of `account` written by `signer` for `viewer`; returns
    /// the log with its genesis entry.
    pub fn create(view: &[u8], signer: &dyn Signer, viewer: &[u8], account: ViewAccount) -> Self {
        let owner = signer.peer();
        let mut log = Self::empty(view, &owner, viewer);
        let genesis = Body::Genesis { view: view.to_vec(), owner: owner.clone(), viewer: viewer.to_vec(), account };
        // The signer is the owner and the log is empty: this cannot fail.
        let _ = log.append(signer, genesis);
        log
    }

    /// An empty log of view `view` by `owner` for `viewer`, to be filled by
    /// [`ViewLog::receive`] (or by [`ViewLog::load`]).
    pub fn empty(view: &[u8], owner: &[u8], viewer: &[u8]) -> Self {
        Self {
            view: view.to_vec(),
            owner: owner.to_vec(),
            viewer: viewer.to_vec(),
            entries: Vec::new(),
            head: [0; 32],
            revoked: false,
        }
    }

    /// The view id.
    pub fn id(&self) -> &[u8] {
        &self.view
    }

    /// The owner's peer id bytes.
    pub fn owner(&self) -> &[u8] {
        &self.owner
    }

    /// The viewer's peer id bytes.
    pub fn viewer(&self) -> &[u8] {
        &self.viewer
    }

    /// Entries held.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// True before the genesis arrived.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The owner revoked the view.
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// Entries from `seq` on.
    pub fn entries_from(&self, seq: u64) -> &[Entry] {
        let start = usize::try_from(seq).unwrap_or(usize::MAX).min(self.entries.len());
        &self.entries[start..]
    }

    /// Appends an entry written by the local owner.
    pub fn append(&mut self, signer: &dyn Signer, body: Body) -> Result<&Entry, ViewError> {
        if signer.peer() != self.owner {
            return Err(ViewError::NotOwner);
        }
        if self.revoked {
            return Err(ViewError::Revoked);
        }
        let seq = self.len();
        let prev = if seq == 0 { vec![0; 32] } else { self.head.to_vec() };
        let signature = signer.sign(&Entry::signing_message(&self.view, seq, &prev, &body));
        let entry = Entry { seq, prev, body, signature };
        self.push(entry);
        Ok(self.entries.last().expect("just pushed"))
    }

    /// Appends operations in entries of at most [`MAX_OPS_PER_ENTRY`].
    pub fn append_ops(&mut self, signer: &dyn Signer, ops: Vec<ViewOp>) -> Result<u64, ViewError> {
        let mut n = 0;
        for chunk in ops.chunks(MAX_OPS_PER_ENTRY) {
            self.append(signer, Body::Operations { ops: chunk.to_vec() })?;
            n += 1;
        }
        Ok(n)
    }

    fn push(&mut self, entry: Entry) {
        self.head = Entry::hash(&self.view, entry.seq, &entry.prev, &entry.body);
        if entry.body == Body::Revoked {
            self.revoked = true;
        }
        self.entries.push(entry);
    }

    /// Checks one entry against the log's current end, without applying it.
    pub fn check(&self, entry: &Entry, verifier: &dyn Verifier) -> Result<(), Rejection> {
        let have = self.len();
        let prev_ok = if have == 0 { entry.prev == [0; 32] } else { entry.prev == self.head };
        if entry.seq != have || !prev_ok {
            return Err(Rejection::OutOfOrder { got: entry.seq, have });
        }
        let message = Entry::signing_message(&self.view, entry.seq, &entry.prev, &entry.body);
        let unverified = crate::mutant::active(crate::mutant::Mutant::UnverifiedViews);
        if !unverified && !verifier.verify(&self.owner, &message, &entry.signature) {
            return Err(Rejection::BadSignature);
        }
        if self.revoked {
            return Err(Rejection::AfterRevocation);
        }
        let genesis_ok = match (&entry.body, have) {
            (Body::Genesis { view, owner, viewer, .. }, 0) => {
                *view == self.view && *owner == self.owner && *viewer == self.viewer
            }
            (Body::Genesis { .. }, _) | (_, 0) => false,
            _ => true,
        };
        if genesis_ok {
            Ok(())
        } else {
            Err(Rejection::BadGenesis)
        }
    }

    /// Verifies and applies remote entries in order. An entry already held
    /// (same seq, same content) is a harmless duplicate; the first refused
    /// entry stops the batch (those after it cannot follow).
    pub fn receive(&mut self, entries: Vec<Entry>, verifier: &dyn Verifier) -> ReceiveReport {
        let mut report = ReceiveReport::default();
        for entry in entries {
            if let Some(held) = self.entries.get(usize::try_from(entry.seq).unwrap_or(usize::MAX)) {
                if *held == entry {
                    report.duplicates += 1;
                    continue;
                }
            }
            match self.check(&entry, verifier) {
                Ok(()) => {
                    self.push(entry);
                    report.applied += 1;
                }
                Err(reason) => {
                    report.rejected.push((entry.seq, reason));
                    break;
                }
            }
        }
        report
    }

    /// Loads stored entries (they were verified when received or written).
    pub fn load(view: &[u8], owner: &[u8], viewer: &[u8], entries: Vec<Entry>) -> Self {
        let mut log = Self::empty(view, owner, viewer);
        for e in entries {
            log.push(e);
        }
        log
    }

    /// The account, the number of distinct operations and the latest
    /// balance, without copying the operations (for listings).
    pub fn summary(&self) -> (Option<&ViewAccount>, usize, Option<(&str, &str)>) {
        let mut account = None;
        let mut keys = std::collections::BTreeSet::new();
        let mut balance = None;
        for e in &self.entries {
            match &e.body {
                Body::Genesis { account: a, .. } => account = Some(a),
                Body::Operations { ops } => keys.extend(ops.iter().map(|o| o.key.as_str())),
                Body::Balance { amount, date } => balance = Some((amount.as_str(), date.as_str())),
                Body::Revoked => {}
            }
        }
        (account, keys.len(), balance)
    }

    /// The operations of `wanted` this log does not show as they are (absent,
    /// or with other content), in `wanted`'s order: what a crash between an
    /// import's commit and the view's append left out, to append at start.
    pub fn missing_ops(&self, wanted: &[ViewOp]) -> Vec<ViewOp> {
        let shown = self.state().ops;
        wanted.iter().filter(|op| shown.get(&op.key) != Some(*op)).cloned().collect()
    }

    /// The account, operations and balance the log describes.
    pub fn state(&self) -> ViewState {
        let mut state = ViewState::default();
        for e in &self.entries {
            match &e.body {
                Body::Genesis { account, .. } => state.account = Some(account.clone()),
                Body::Operations { ops } => {
                    for op in ops {
                        state.ops.insert(op.key.clone(), op.clone());
                    }
                }
                Body::Balance { amount, date } => state.balance = Some((amount.clone(), date.clone())),
                Body::Revoked => state.revoked = true,
            }
        }
        state
    }
}
