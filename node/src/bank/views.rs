//! Read-only bank views: the owner's side (share an account with a contact,
//! append every later import, revoke) and the viewer's side (receive,
//! verify, show, drop on revocation), over `/hearth/bank/1`.
//!
//! [`Views`] owns every view record and log (`bank-views-1`,
//! `bank-view-log-1`) and turns API calls and requests into responses plus
//! [`Outgoing`] messages; it does no network IO. Every received entry goes
//! through `ViewLog::receive`, which accepts only the owner's signed
//! entries in order, so whoever pushes, a node stores nothing else.
//!
//! Privacy: a view carries only its account, only operations dated on or
//! after `since`, and of each operation neither the owner's note nor a
//! category marked private. Nothing else of the owner's node is ever put
//! in an entry.

use std::collections::BTreeMap;
use std::sync::Arc;

use hearth_crdt::bank::{Body, Entry, ViewAccount, ViewLog, ViewOp};
use hearth_protocol::bank::{self as wire, BankRequest, BankResponse, Pusher};
use libp2p::identity::Keypair;
use libp2p::PeerId;
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::alerts::AlertOp;
use super::model::{Date, Operation};
use super::store::AccountRecord;
use super::OperationView;
use crate::api::ApiError;
use crate::share::keys::{NodeSigner, PeerVerifier};
use crate::store::tables::{BANK_VIEWS, BANK_VIEW_LOG};
use crate::store::{decode, encode, Store};

/// A view as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewRecord {
    /// `owner` (this node writes it) or `viewer` (this node receives it).
    pub role: String,
    /// Owner side: the account id shown.
    pub account: Option<String>,
    /// The owner's peer id bytes.
    pub owner: Vec<u8>,
    /// The viewer's peer id bytes.
    pub viewer: Vec<u8>,
    /// The account's name when shared.
    pub name: String,
    /// First day shown.
    pub since: Option<String>,
    /// `active` or `revoked`.
    pub state: String,
    /// Owner side: entries the viewer acknowledged.
    pub acked: u64,
    /// Entries held (kept after a revocation drops them on a viewer).
    pub held: u64,
    /// Entries refused from other nodes (forged, out of order).
    pub rejected: u64,
    /// Owner side: the balance last sent.
    pub last_balance: Option<(String, String)>,
    /// Unix seconds.
    pub created_at: u64,
}

/// `hearth bank views` items (and the answer of share / unshare).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewInfo {
    /// View id, hex.
    pub id: String,
    /// The account's name.
    pub name: String,
    /// `owner` or `viewer`.
    pub role: String,
    /// The other side's peer id (the viewer for the owner, and the reverse).
    pub peer: String,
    /// The other side's contact name, if known.
    pub contact: Option<String>,
    /// `active`, `revoked` (or `waiting` before the first entries arrive).
    pub state: String,
    /// Balance (exact decimal text), if shown.
    pub balance: Option<String>,
    /// Day of the balance.
    pub balance_date: Option<String>,
    /// ISO 4217.
    pub currency: Option<String>,
    /// Operations shown.
    pub operations: u64,
    /// First day shown.
    pub since: Option<String>,
    /// Entries refused from other nodes.
    pub rejected: u64,
}

/// What changed in a received view (see [`Views::change_since`]).
pub struct ViewChange {
    /// Account name.
    pub name: String,
    /// Currency code.
    pub currency: String,
    /// Operations known before.
    pub history: Vec<AlertOp>,
    /// Operations added.
    pub added: Vec<AlertOp>,
    /// Balance now.
    pub balance: Option<super::Amount>,
    /// Still active.
    pub shown: bool,
}

/// A message for the event loop to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// To whom.
    pub peer: PeerId,
    /// What.
    pub request: BankRequest,
}

/// See the module documentation.
pub struct Views {
    store: Arc<Store>,
    key: Keypair,
    local: Vec<u8>,
    views: BTreeMap<Vec<u8>, (ViewRecord, ViewLog)>,
    pushers: BTreeMap<Vec<u8>, Pusher>,
    /// Received views that grew: (view, entries held before), for alerts.
    updates: Vec<(Vec<u8>, u64)>,
}

fn log_key(view: &[u8], seq: u64) -> Vec<u8> {
    let mut k = view.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// What a viewer may see of an operation.
pub fn view_op(op: &Operation) -> ViewOp {
    ViewOp {
        key: op.key.clone(),
        date: op.date.to_string(),
        amount: op.amount.to_string(),
        currency: op.currency.code().into(),
        label: op.label.clone(),
        kind: op.kind.clone(),
        original: op.original.map(|(c, a)| (c.code().to_owned(), a.to_string())),
        category: if op.category_private { None } else { op.category.clone() },
    }
}

fn peer_text(bytes: &[u8]) -> String {
    PeerId::from_bytes(bytes).map(|p| p.to_string()).unwrap_or_else(|_| hex::encode(bytes))
}

impl Views {
    /// Loads every view from the store.
    pub fn load(store: Arc<Store>, key: Keypair) -> anyhow::Result<Self> {
        let local = key.public().to_peer_id().to_bytes();
        let mut views = BTreeMap::new();
        let mut pushers = BTreeMap::new();
        {
            let txn = store.db().begin_read()?;
            let records = txn.open_table(BANK_VIEWS)?;
            let log = txn.open_table(BANK_VIEW_LOG)?;
            for row in records.iter()? {
                let (k, v) = row?;
                let id = k.value().to_vec();
                let record: ViewRecord = decode(v.value(), "bank view")?;
                let mut entries = Vec::new();
                for row in log.range(log_key(&id, 0).as_slice()..=log_key(&id, u64::MAX).as_slice())? {
                    let (_, v) = row?;
                    entries
                        .push(Entry::from_bytes(v.value()).map_err(|e| anyhow::anyhow!("a stored view entry: {e}"))?);
                }
                let view_log = ViewLog::load(&id, &record.owner, &record.viewer, entries);
                if record.role == "owner" {
                    pushers.insert(id.clone(), Pusher::new(record.acked));
                }
                views.insert(id, (record, view_log));
            }
        }
        Ok(Self { store, key, local, views, pushers, updates: Vec::new() })
    }

    /// Writes a view's record and its entries from `from` on, in one
    /// transaction; with `drop_log`, deletes its entries instead.
    fn persist(&self, id: &[u8], from: u64, drop_log: bool) -> anyhow::Result<()> {
        let Some((record, log)) = self.views.get(id) else { return Ok(()) };
        let txn = self.store.db().begin_write()?;
        {
            txn.open_table(BANK_VIEWS)?.insert(id, encode(record)?.as_slice())?;
            let mut table = txn.open_table(BANK_VIEW_LOG)?;
            if drop_log {
                let keys: Vec<Vec<u8>> = table
                    .range(log_key(id, 0).as_slice()..=log_key(id, u64::MAX).as_slice())?
                    .map(|r| r.map(|(k, _)| k.value().to_vec()))
                    .collect::<Result<_, _>>()?;
                for k in keys {
                    table.remove(k.as_slice())?;
                }
            } else {
                for e in log.entries_from(from) {
                    table.insert(log_key(id, e.seq).as_slice(), e.to_bytes().as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn info(&self, id: &[u8], names: &dyn Fn(&[u8]) -> Option<String>) -> Option<ViewInfo> {
        let (record, log) = self.views.get(id)?;
        let (account, count, balance) = log.summary();
        let peer = if record.role == "owner" { &record.viewer } else { &record.owner };
        let shown = record.state == "active";
        Some(ViewInfo {
            id: hex::encode(id),
            name: account.map(|a| a.name.clone()).unwrap_or_else(|| record.name.clone()),
            role: record.role.clone(),
            peer: peer_text(peer),
            contact: names(peer),
            state: if record.state == "active" && log.is_empty() { "waiting".into() } else { record.state.clone() },
            balance: balance.filter(|_| shown).map(|b| b.0.to_owned()),
            balance_date: balance.filter(|_| shown).map(|b| b.1.to_owned()),
            currency: account.map(|a| a.currency.clone()),
            operations: if shown { count as u64 } else { 0 },
            since: record.since.clone(),
            rejected: record.rejected,
        })
    }

    /// The views this node receives.
    pub fn received(&self, names: &dyn Fn(&[u8]) -> Option<String>) -> Vec<ViewInfo> {
        self.views.iter().filter(|(_, (r, _))| r.role == "viewer").filter_map(|(id, _)| self.info(id, names)).collect()
    }

    /// The views this node writes.
    pub fn written(&self, names: &dyn Fn(&[u8]) -> Option<String>) -> Vec<ViewInfo> {
        self.views.iter().filter(|(_, (r, _))| r.role == "owner").filter_map(|(id, _)| self.info(id, names)).collect()
    }

    /// Peer ids an account is actively shown to.
    pub fn viewers_of(&self, account: &str) -> Vec<Vec<u8>> {
        self.views
            .values()
            .filter(|(r, _)| r.role == "owner" && r.state == "active" && r.account.as_deref() == Some(account))
            .map(|(r, _)| r.viewer.clone())
            .collect()
    }

    /// A received view by id (hex) or account name; by name, an active
    /// view wins over revoked ones (an account shared again after an
    /// unshare is a new view with the same name).
    fn find_received(&self, name_or_id: &str) -> Option<&Vec<u8>> {
        let matching = |active: bool| {
            self.views.iter().find_map(|(id, (r, log))| {
                let name = log.summary().0.map(|a| a.name.clone()).unwrap_or_else(|| r.name.clone());
                let hit = hex::encode(id) == name_or_id || name == name_or_id;
                (r.role == "viewer" && hit && (!active || r.state == "active")).then_some(id)
            })
        };
        matching(true).or_else(|| matching(false))
    }

    /// The operations of a received view (`None` if there is no such view).
    pub fn operations(&self, name_or_id: &str, since: Option<Date>) -> Option<Result<Vec<OperationView>, ApiError>> {
        let id = self.find_received(name_or_id)?;
        let (record, log) = self.views.get(id)?;
        if record.state != "active" {
            return Some(Err(ApiError::conflict(format!(
                "the owner stopped sharing {name_or_id:?} with you; its data was removed from this node"
            ))));
        }
        let since = since.map(|d| d.to_string());
        let mut ops: Vec<OperationView> = log
            .state()
            .ops
            .into_values()
            .filter(|o| since.as_ref().is_none_or(|s| o.date >= *s))
            .map(|o| OperationView {
                date: o.date,
                amount: o.amount,
                currency: o.currency,
                label: o.label,
                kind: o.kind,
                bank_id: None,
                key: o.key,
                original: o.original.map(|(c, a)| format!("{a} {c}")),
                note: None,
                category: o.category,
            })
            .collect();
        ops.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.key.cmp(&b.key)));
        Some(Ok(ops))
    }

    /// Starts showing `account` (with `ops`, all its operations) to
    /// `viewer`, from `since` on.
    pub fn share(
        &mut self,
        account: &AccountRecord,
        ops: &[Operation],
        viewer: &PeerId,
        since: Option<Date>,
        now: u64,
    ) -> Result<Vec<u8>, ApiError> {
        let viewer_bytes = viewer.to_bytes();
        if viewer_bytes == self.local {
            return Err(ApiError::bad_request("you cannot share an account with yourself"));
        }
        if self.viewers_of(&account.account.id).contains(&viewer_bytes) {
            return Err(ApiError::conflict(format!(
                "{:?} is already shown to this contact; `hearth bank unshare` first to change --since",
                account.account.label
            )));
        }
        let id: [u8; wire::VIEW_ID_LEN] = rand::random();
        let signer = NodeSigner(&self.key);
        let a = &account.account;
        let mut log = ViewLog::create(
            &id,
            &signer,
            &viewer_bytes,
            ViewAccount {
                name: a.label.clone(),
                currency: a.currency.code().into(),
                kind: a.kind.clone(),
                since: since.map(|d| d.to_string()),
            },
        );
        let shown: Vec<ViewOp> = ops.iter().filter(|o| since.is_none_or(|s| o.date >= s)).map(view_op).collect();
        log.append_ops(&signer, shown).map_err(ApiError::internal)?;
        let view = account.view();
        let last_balance = view.balance.clone().map(|b| (b, view.balance_date.clone().unwrap_or_default()));
        if let Some((amount, date)) = &last_balance {
            log.append(&signer, Body::Balance { amount: amount.clone(), date: date.clone() })
                .map_err(ApiError::internal)?;
        }
        let record = ViewRecord {
            role: "owner".into(),
            account: Some(a.id.clone()),
            owner: self.local.clone(),
            viewer: viewer_bytes,
            name: a.label.clone(),
            since: since.map(|d| d.to_string()),
            state: "active".into(),
            acked: 0,
            held: log.len(),
            rejected: 0,
            last_balance,
            created_at: now,
        };
        self.views.insert(id.to_vec(), (record, log));
        self.pushers.insert(id.to_vec(), Pusher::new(0));
        self.persist(&id, 0, false).map_err(ApiError::internal)?;
        info!(view = %hex::encode(id), %viewer, "showing account {:?} read-only", a.label);
        Ok(id.to_vec())
    }

    /// Appends what an import added (and the new balance) to the views of
    /// the accounts concerned.
    pub fn on_import(&mut self, added: &[(String, Operation)], accounts: &[AccountRecord]) {
        let signer = NodeSigner(&self.key);
        let ids: Vec<Vec<u8>> = self
            .views
            .iter()
            .filter(|(_, (r, _))| r.role == "owner" && r.state == "active")
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some((record, log)) = self.views.get_mut(&id) else { continue };
            let Some(account) = accounts.iter().find(|a| Some(&a.account.id) == record.account.as_ref()) else {
                continue;
            };
            let since: Option<String> = record.since.clone();
            let from = log.len();
            let ops: Vec<ViewOp> = added
                .iter()
                .filter(|(acct, op)| {
                    *acct == account.account.id && since.as_ref().is_none_or(|s| op.date.to_string() >= *s)
                })
                .map(|(_, op)| view_op(op))
                .collect();
            if let Err(e) = log.append_ops(&signer, ops) {
                warn!("cannot extend a bank view: {e}");
                continue;
            }
            let view = account.view();
            let balance = view.balance.clone().map(|b| (b, view.balance_date.clone().unwrap_or_default()));
            if balance.is_some() && balance != record.last_balance {
                if let Some((amount, date)) = &balance {
                    let _ = log.append(&signer, Body::Balance { amount: amount.clone(), date: date.clone() });
                }
                record.last_balance = balance;
            }
            record.held = log.len();
            if log.len() > from {
                if let Err(e) = self.persist(&id, from, false) {
                    warn!("cannot store a bank view: {e:#}");
                }
            }
        }
    }

    /// An operation's category changed: the views of its account that show
    /// it get the operation again as viewers may see it (a category made
    /// private is replaced by none; notes never go).
    pub fn on_annotate(&mut self, account: &str, op: &Operation) {
        let signer = NodeSigner(&self.key);
        let ids: Vec<Vec<u8>> = self
            .views
            .iter()
            .filter(|(_, (r, _))| {
                r.role == "owner"
                    && r.state == "active"
                    && r.account.as_deref() == Some(account)
                    && r.since.as_ref().is_none_or(|s| op.date.to_string() >= *s)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some((record, log)) = self.views.get_mut(&id) else { continue };
            let from = log.len();
            if log.append(&signer, Body::Operations { ops: vec![view_op(op)] }).is_ok() {
                record.held = log.len();
                if let Err(e) = self.persist(&id, from, false) {
                    warn!("cannot store a bank view: {e:#}");
                }
            }
        }
    }

    /// Stops showing `account` to `viewer`: a last, revoking entry.
    pub fn unshare(&mut self, account: &str, viewer: &PeerId) -> Result<Vec<u8>, ApiError> {
        let viewer_bytes = viewer.to_bytes();
        let id = self
            .views
            .iter()
            .find(|(_, (r, _))| {
                r.role == "owner"
                    && r.state == "active"
                    && r.account.as_deref() == Some(account)
                    && r.viewer == viewer_bytes
            })
            .map(|(id, _)| id.clone())
            .ok_or_else(|| ApiError::not_found("this account is not shown to this contact"))?;
        let signer = NodeSigner(&self.key);
        let Some((record, log)) = self.views.get_mut(&id) else {
            return Err(ApiError::not_found("no such view"));
        };
        let from = log.len();
        log.append(&signer, Body::Revoked).map_err(ApiError::internal)?;
        record.state = "revoked".into();
        record.held = log.len();
        self.persist(&id, from, false).map_err(ApiError::internal)?;
        info!(view = %hex::encode(&id), %viewer, "stopped showing account {account}");
        Ok(id)
    }

    /// Pushes due to online viewers (one in flight per view).
    pub fn poll_pushes(&mut self, online: &dyn Fn(&PeerId) -> bool) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for (id, (record, log)) in &self.views {
            if record.role != "owner" {
                continue;
            }
            let Ok(viewer) = PeerId::from_bytes(&record.viewer) else { continue };
            if !online(&viewer) {
                continue;
            }
            let Some(pusher) = self.pushers.get_mut(id) else { continue };
            if let Some(from) = pusher.poll_push(log.len()) {
                let bytes: Vec<Vec<u8>> = log.entries_from(from).iter().map(Entry::to_bytes).collect();
                let (entries, _more) = wire::bounded(&bytes);
                out.push(Outgoing { peer: viewer, request: BankRequest::Push { view: id.clone(), from, entries } });
            }
        }
        out
    }

    /// A viewer answered a push.
    pub fn on_response(&mut self, view: &[u8], response: BankResponse) {
        match response {
            BankResponse::Have { have, rejected } => {
                if rejected > 0 {
                    warn!(view = %hex::encode(view), "the viewer refused {rejected} of our entries");
                }
                if let (Some(p), Some((record, _))) = (self.pushers.get_mut(view), self.views.get_mut(view)) {
                    p.on_have(have);
                    if record.acked != have {
                        record.acked = have;
                        let _ = self.persist(view, u64::MAX, false);
                    }
                }
            }
            BankResponse::Entries { .. } => {}
            BankResponse::Refused { message } => {
                warn!(view = %hex::encode(view), "the viewer refused the view: {message}");
                if let Some(p) = self.pushers.get_mut(view) {
                    p.on_failure();
                }
            }
        }
    }

    /// A push was not delivered.
    pub fn on_failure(&mut self, view: &[u8]) {
        if let Some(p) = self.pushers.get_mut(view) {
            p.on_failure();
        }
    }

    /// A request from contact `peer`.
    pub fn on_request(&mut self, peer: &PeerId, request: BankRequest) -> BankResponse {
        match request {
            BankRequest::Pull { view, from } => {
                let Some((record, log)) = self.views.get(&view) else {
                    return BankResponse::Refused { message: "unknown view".into() };
                };
                if record.role != "owner" || record.viewer != peer.to_bytes() {
                    warn!(%peer, view = %hex::encode(&view), "refused a pull of a view by a node that is not its viewer");
                    return BankResponse::Refused { message: "you are not this view's viewer".into() };
                }
                let bytes: Vec<Vec<u8>> = log.entries_from(from).iter().map(Entry::to_bytes).collect();
                let (entries, more) = wire::bounded(&bytes);
                BankResponse::Entries { from, entries, more }
            }
            BankRequest::Push { view, from, entries } => self.receive(peer, &view, from, entries),
        }
    }

    /// Applies pushed entries. `from` is advisory: each entry carries its
    /// own sequence number, which is what is checked.
    fn receive(&mut self, peer: &PeerId, view: &[u8], _from: u64, raw: Vec<serde_bytes::ByteBuf>) -> BankResponse {
        let mut entries = Vec::with_capacity(raw.len());
        for bytes in &raw {
            match Entry::from_bytes(bytes) {
                Ok(e) => entries.push(e),
                Err(e) => {
                    warn!(%peer, "refused a bank view push: {e}");
                    return BankResponse::Refused { message: format!("malformed entry: {e}") };
                }
            }
        }
        if !self.views.contains_key(view) {
            // A new view: only its owner may offer it, to its viewer.
            let genesis_ok = matches!(
                entries.first().map(|e| &e.body),
                Some(Body::Genesis { owner, viewer, view: v, .. })
                    if *owner == peer.to_bytes() && *viewer == self.local && v.as_slice() == view
            );
            if !genesis_ok || view.len() != wire::VIEW_ID_LEN {
                warn!(%peer, view = %hex::encode(view), "refused entries of an unknown bank view that is not offered to us by its owner");
                return BankResponse::Refused { message: "unknown view".into() };
            }
            let name = match entries.first().map(|e| &e.body) {
                Some(Body::Genesis { account, .. }) => account.name.clone(),
                _ => String::new(),
            };
            let since = match entries.first().map(|e| &e.body) {
                Some(Body::Genesis { account, .. }) => account.since.clone(),
                _ => None,
            };
            let record = ViewRecord {
                role: "viewer".into(),
                account: None,
                owner: peer.to_bytes(),
                viewer: self.local.clone(),
                name,
                since,
                state: "active".into(),
                acked: 0,
                held: 0,
                rejected: 0,
                last_balance: None,
                created_at: crate::now_unix(),
            };
            self.views.insert(view.to_vec(), (record, ViewLog::empty(view, &peer.to_bytes(), &self.local)));
        }
        let Some((record, log)) = self.views.get_mut(view) else {
            return BankResponse::Refused { message: "unknown view".into() };
        };
        if record.state == "revoked" {
            return BankResponse::Have { have: record.held, rejected: 0 };
        }
        let before = log.len();
        let report = log.receive(entries, &PeerVerifier);
        for (seq, reason) in &report.rejected {
            warn!(%peer, view = %hex::encode(view), seq, "refused a bank view entry: {reason}");
        }
        record.rejected += report.rejected.len() as u64;
        record.held = log.len();
        let revoked = log.is_revoked() && record.role == "viewer";
        if revoked {
            record.state = "revoked".into();
            info!(view = %hex::encode(view), "the owner stopped sharing {:?}; its data is dropped", record.name);
        }
        let have = log.len();
        let rejected = report.rejected.len() as u32;
        if revoked {
            // Keep only the record: the operations and balance go.
            let (r, _) = self.views.remove(view).expect("present");
            self.views.insert(view.to_vec(), (r.clone(), ViewLog::empty(view, &r.owner, &r.viewer)));
            if let Err(e) = self.persist(view, 0, true) {
                warn!("cannot drop a revoked view: {e:#}");
            }
        } else if have > before || rejected > 0 {
            if have > before && record.role == "viewer" {
                self.updates.push((view.to_vec(), before));
            }
            if let Err(e) = self.persist(view, before, false) {
                warn!("cannot store a bank view: {e:#}");
            }
        }
        BankResponse::Have { have, rejected }
    }

    /// Received views that grew since the last call.
    pub fn take_updates(&mut self) -> Vec<(Vec<u8>, u64)> {
        std::mem::take(&mut self.updates)
    }

    /// The id of a received view by id (hex) or name, for alert rules.
    pub fn resolve_received(&self, name_or_id: &str) -> Option<Vec<u8>> {
        self.find_received(name_or_id).cloned()
    }

    /// What changed in a received view since it held `before` entries:
    /// (name, currency, operations known before, operations added, balance).
    pub fn change_since(&self, view: &[u8], before: u64) -> Option<ViewChange> {
        let (record, log) = self.views.get(view)?;
        let state = log.state();
        let account = state.account.as_ref()?;
        let alert_op = |o: &ViewOp| {
            Some(AlertOp {
                key: o.key.clone(),
                date: o.date.parse().ok()?,
                amount: o.amount.parse().ok()?,
                label: o.label.clone(),
                foreign: o.original.as_ref().map(|(c, _)| c.clone()).filter(|c| *c != o.currency),
            })
        };
        // Operations re-sent with a new category are not new.
        let mut known = std::collections::BTreeSet::new();
        let held_before = usize::try_from(before).unwrap_or(usize::MAX).min(log.entries_from(0).len());
        for e in &log.entries_from(0)[..held_before] {
            if let Body::Operations { ops } = &e.body {
                known.extend(ops.iter().map(|o| o.key.as_str()));
            }
        }
        let mut added = Vec::new();
        for e in log.entries_from(before) {
            if let Body::Operations { ops } = &e.body {
                added.extend(ops.iter().filter(|o| !known.contains(o.key.as_str())).filter_map(alert_op));
            }
        }
        let new_keys: std::collections::BTreeSet<&str> = added.iter().map(|o| o.key.as_str()).collect();
        let history = state.ops.values().filter(|o| !new_keys.contains(o.key.as_str())).filter_map(alert_op).collect();
        Some(ViewChange {
            name: account.name.clone(),
            currency: account.currency.clone(),
            history,
            added,
            balance: state.balance.as_ref().and_then(|(a, _)| a.parse().ok()),
            shown: record.state == "active",
        })
    }

    /// A contact came online: as a viewer, ask its owner for what we lack.
    pub fn on_contact_online(&self, peer: &PeerId) -> Vec<Outgoing> {
        let bytes = peer.to_bytes();
        self.views
            .iter()
            .filter(|(_, (r, _))| r.role == "viewer" && r.state == "active" && r.owner == bytes)
            .map(|(id, (_, log))| Outgoing {
                peer: *peer,
                request: BankRequest::Pull { view: id.clone(), from: log.len() },
            })
            .collect()
    }

    /// Entries answered to our pull.
    pub fn on_entries(&mut self, peer: &PeerId, view: &[u8], from: u64, entries: Vec<serde_bytes::ByteBuf>) {
        if self.views.get(view).is_some_and(|(r, _)| r.role == "viewer") {
            let _ = self.receive(peer, view, from, entries);
        }
    }
}
