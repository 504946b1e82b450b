//! The event loop's side of bank accounts and views: API bank commands (run
//! against the store; imports are disk work, run in `blocking`) and the
//! `/hearth/bank/1` messages, delegated to [`crate::bank::views::Views`],
//! whose outgoing messages are sent here. Only contacts reach `Views`.

use hearth_protocol::bank::{BankRequest, BankResponse};
use libp2p::request_response::{self, ResponseChannel};
use libp2p::PeerId;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::{blocking, EventLoop};
use crate::api::ApiError;
use crate::bank::views::Outgoing;
use crate::bank::{self, alerts, store as bank_store, ImportError, OperationView};
use crate::net::codec::Wire;
use crate::net::{BankOp, BankReply};
use crate::now_unix;

/// `meta-1` key of the alert hook (`Option<alerts::Hook>`).
const HOOK_KEY: &str = "bank_alert_hook";

fn json<T: serde::Serialize>(value: T) -> Result<BankReply, ApiError> {
    serde_json::to_value(value).map(BankReply::Json).map_err(ApiError::internal)
}

/// The API error of an import error: the person's file is at fault (400),
/// a conflicting id is a 409, the database a 500.
fn import_error(err: ImportError) -> ApiError {
    match err {
        ImportError::Store(_) => ApiError::internal(err),
        ImportError::Conflict { .. } => ApiError::conflict(err.to_string()),
        _ => ApiError::bad_request(err.to_string()),
    }
}

fn parse_since(since: Option<String>) -> Result<Option<bank::Date>, ApiError> {
    since.map(|s| s.parse::<bank::Date>().map_err(|e| ApiError::bad_request(format!("--since: {e}")))).transpose()
}

impl EventLoop {
    pub(super) fn on_bank_command(&mut self, op: BankOp, reply: oneshot::Sender<Result<BankReply, ApiError>>) {
        let result = self.bank_command(op);
        let _ = reply.send(result);
        self.push_bank_views();
    }

    fn account(&self, name: &str) -> Result<bank_store::AccountRecord, ApiError> {
        bank_store::find_account(&self.store, name)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("no bank account named {name:?}; see `hearth bank accounts`")))
    }

    /// Local contact name of a peer.
    fn contact_name(&self, peer: &[u8]) -> Option<String> {
        self.store.contact(peer).ok().flatten().map(|c| c.name)
    }

    fn bank_command(&mut self, op: BankOp) -> Result<BankReply, ApiError> {
        match op {
            BankOp::Import { bytes, options } => {
                let store = self.store.clone();
                let result = blocking(move || {
                    let started = std::time::Instant::now();
                    let parsed = bank::parse_file(&bytes, &options)?;
                    let parsed_in = started.elapsed();
                    let imported = bank_store::import(&store, parsed, options.account.as_deref());
                    debug!(?parsed_in, stored_in = ?started.elapsed() - parsed_in, bytes = bytes.len(), "bank import timing");
                    imported
                });
                match result {
                    Ok(imported) => {
                        for a in &imported.report.accounts {
                            info!(account = %a.id, "bank import: {} added, {} already known", a.added, a.duplicates);
                        }
                        let accounts = bank_store::accounts(&self.store).map_err(ApiError::internal)?;
                        blocking(|| self.bank_views.on_import(&imported.added, &accounts));
                        self.account_alerts(&imported.added, &accounts);
                        json(imported.report)
                    }
                    Err(err) => {
                        warn!("bank import refused: {err}");
                        Err(import_error(err))
                    }
                }
            }
            BankOp::Accounts => {
                let all = bank_store::accounts(&self.store).map_err(ApiError::internal)?;
                let views: Vec<bank::AccountView> = all
                    .iter()
                    .map(|a| {
                        let mut v = a.view();
                        v.shared_with = self
                            .bank_views
                            .viewers_of(&a.account.id)
                            .iter()
                            .map(|p| self.contact_name(p).unwrap_or_else(|| hex::encode(p)))
                            .collect();
                        v.shared_with.sort();
                        v
                    })
                    .collect();
                json(views)
            }
            BankOp::Operations { account, since } => {
                let since = parse_since(since)?;
                match bank_store::find_account(&self.store, &account).map_err(ApiError::internal)? {
                    Some(record) => {
                        let ops = blocking(|| bank_store::operations(&self.store, &record.account.id, since))
                            .map_err(ApiError::internal)?;
                        json(ops.iter().map(OperationView::of).collect::<Vec<_>>())
                    }
                    None => match self.bank_views.operations(&account, since) {
                        Some(ops) => json(ops?),
                        None => Err(ApiError::not_found(format!(
                            "no bank account or view named {account:?}; see `hearth bank accounts` and `hearth bank views`"
                        ))),
                    },
                }
            }
            BankOp::Export { account } => {
                let record = self.account(&account)?;
                let ops = blocking(|| bank_store::operations(&self.store, &record.account.id, None))
                    .map_err(ApiError::internal)?;
                let doc = bank::cozy::export(&record.account, &ops);
                serde_json::to_string_pretty(&doc).map(BankReply::JsonText).map_err(ApiError::internal)
            }
            BankOp::Share { account, contact, since } => {
                let since = parse_since(since)?;
                let record = self.account(&account)?;
                let peer = self.contact_peer(&contact)?;
                let ops = blocking(|| bank_store::operations(&self.store, &record.account.id, since))
                    .map_err(ApiError::internal)?;
                let id = blocking(|| self.bank_views.share(&record, &ops, &peer, since, now_unix()))?;
                self.view_info(&id)
            }
            BankOp::Unshare { account, contact } => {
                let record = self.account(&account)?;
                let peer = self.contact_peer(&contact)?;
                let id = self.bank_views.unshare(&record.account.id, &peer)?;
                self.view_info(&id)
            }
            BankOp::AlertAdd(req) => {
                let kind = alerts::RuleKind::parse(&req.rule, req.value.as_deref()).map_err(ApiError::bad_request)?;
                let from = match req.from {
                    Some(d) => d.parse().map_err(|e| ApiError::bad_request(format!("--from: {e}")))?,
                    None => bank::Date::from_unix(now_unix()),
                };
                let (target, balance) =
                    match bank_store::find_account(&self.store, &req.on).map_err(ApiError::internal)? {
                        Some(a) => (format!("account:{}", a.account.id), a.view().balance),
                        None => match self.bank_views.resolve_received(&req.on) {
                            Some(id) => {
                                let balance = self
                                    .bank_views
                                    .change_since(&id, u64::MAX)
                                    .and_then(|c| c.balance)
                                    .map(|b| b.to_string());
                                (format!("view:{}", hex::encode(&id)), balance)
                            }
                            None => {
                                return Err(ApiError::not_found(format!(
                            "no bank account or view named {:?}; see `hearth bank accounts` and `hearth bank views`",
                            req.on
                        )))
                            }
                        },
                    };
                let below = match (&kind, balance.and_then(|b| b.parse::<bank::Amount>().ok())) {
                    (alerts::RuleKind::LowBalance { amount }, Some(b)) => b < *amount,
                    _ => false,
                };
                let rule = alerts::Rule { id: 0, target, kind, hide_amounts: req.hide_amounts, from, below };
                let rule = alerts::add_rule(&self.store, rule).map_err(ApiError::internal)?;
                json(self.rule_views()?.into_iter().find(|r| r.id == rule.id))
            }
            BankOp::AlertList => json(self.rule_views()?),
            BankOp::Annotate { account, key, note, category, private } => {
                let record = self.account(&account)?;
                let category_changed = category.is_some() || private.is_some();
                let op = bank_store::annotate(&self.store, &record.account.id, &key, note, category, private)
                    .map_err(ApiError::internal)?
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "no operation {key:?} in {account:?}; keys are in `hearth bank operations {account} --json`"
                        ))
                    })?;
                if category_changed {
                    self.bank_views.on_annotate(&record.account.id, &op);
                }
                json(OperationView::of(&op))
            }
            BankOp::AlertRemove(id) => {
                if !alerts::remove_rule(&self.store, id).map_err(ApiError::internal)? {
                    return Err(ApiError::not_found(format!("no alert rule {id}; see `hearth bank alerts list`")));
                }
                json(serde_json::json!({ "removed": id }))
            }
            BankOp::SetHook(hook) => {
                if let Some(h) = &hook {
                    h.check().map_err(ApiError::bad_request)?;
                }
                self.store.set_meta(HOOK_KEY, &hook).map_err(ApiError::internal)?;
                json(hook)
            }
            BankOp::Notifications => json(alerts::notifications(&self.store).map_err(ApiError::internal)?),
            BankOp::Views => {
                let names = |p: &[u8]| self.contact_name(p);
                let mut all = self.bank_views.received(&names);
                all.extend(self.bank_views.written(&names));
                json(all)
            }
        }
    }

    fn rule_views(&self) -> Result<Vec<alerts::RuleView>, ApiError> {
        let rules = alerts::rules(&self.store).map_err(ApiError::internal)?;
        let accounts = bank_store::accounts(&self.store).map_err(ApiError::internal)?;
        let names = |p: &[u8]| self.contact_name(p);
        let views = self.bank_views.received(&names);
        Ok(rules
            .into_iter()
            .map(|r| {
                let (kind, id) = r.target.split_once(':').unwrap_or(("", ""));
                let on = match kind {
                    "account" => accounts.iter().find(|a| a.account.id == id).map(|a| a.account.label.clone()),
                    _ => views.iter().find(|v| v.id == id).map(|v| v.name.clone()),
                };
                alerts::RuleView {
                    id: r.id,
                    on: on.unwrap_or_else(|| id.to_owned()),
                    target_kind: kind.to_owned(),
                    rule: r.kind.describe(),
                    hide_amounts: r.hide_amounts,
                    from: r.from.to_string(),
                }
            })
            .collect())
    }

    /// Evaluates the rules of `target` on a change; records and hands on
    /// the new notifications.
    fn raise(&mut self, target: &str, change: &alerts::Change<'_>) {
        let Ok(all) = alerts::rules(&self.store) else { return };
        let mut rules: Vec<alerts::Rule> = all.into_iter().filter(|r| r.target == target).collect();
        if rules.is_empty() {
            return;
        }
        let now = now_unix();
        let mut raised = Vec::new();
        for rule in &mut rules {
            for r in alerts::evaluate(rule, change) {
                raised.push(alerts::Notification {
                    id: r.id,
                    rule: rule.id,
                    on: change.name.to_owned(),
                    message: r.message,
                    date: r.date,
                    at: now,
                    detail: Some(r.detail),
                });
            }
        }
        match alerts::record(&self.store, &rules, raised) {
            Ok(fresh) => {
                for n in &fresh {
                    info!(rule = n.rule, "bank alert: {}", n.message);
                }
                if let Ok(Some(Some(hook))) = self.store.meta::<Option<alerts::Hook>>(HOOK_KEY) {
                    alerts::run_hook(hook, fresh);
                }
            }
            Err(e) => warn!("cannot record bank alerts: {e:#}"),
        }
    }

    fn account_alerts(&mut self, added: &[(String, bank::Operation)], accounts: &[bank_store::AccountRecord]) {
        let to_alert = |o: &bank::Operation| alerts::AlertOp {
            key: o.key.clone(),
            date: o.date,
            amount: o.amount,
            label: o.label.clone(),
            foreign: o.original.map(|(c, _)| c.code().to_owned()).filter(|c| c != o.currency.code()),
        };
        for a in accounts {
            let target = format!("account:{}", a.account.id);
            let new: Vec<alerts::AlertOp> =
                added.iter().filter(|(id, _)| *id == a.account.id).map(|(_, o)| to_alert(o)).collect();
            if new.is_empty() || !alerts::rules(&self.store).is_ok_and(|r| r.iter().any(|r| r.target == target)) {
                continue;
            }
            let keys: std::collections::BTreeSet<&str> = new.iter().map(|o| o.key.as_str()).collect();
            let all = bank_store::operations(&self.store, &a.account.id, None).unwrap_or_default();
            let history: Vec<alerts::AlertOp> =
                all.iter().filter(|o| !keys.contains(o.key.as_str())).map(to_alert).collect();
            let balance = a.view().balance.and_then(|b| b.parse().ok());
            let change = alerts::Change {
                target: &target,
                name: &a.account.label,
                currency: a.account.currency.code(),
                history: &history,
                added: &new,
                balance,
            };
            self.raise(&target, &change);
        }
    }

    /// Alerts on the received views that grew.
    fn view_alerts(&mut self) {
        let updates = self.bank_views.take_updates();
        if updates.is_empty() {
            return;
        }
        let Ok(rules) = alerts::rules(&self.store) else { return };
        for (view, before) in updates {
            let target = format!("view:{}", hex::encode(&view));
            if !rules.iter().any(|r| r.target == target) {
                continue;
            }
            let Some(c) = self.bank_views.change_since(&view, before) else { continue };
            if !c.shown {
                continue;
            }
            let change = alerts::Change {
                target: &target,
                name: &c.name,
                currency: &c.currency,
                history: &c.history,
                added: &c.added,
                balance: c.balance,
            };
            self.raise(&target, &change);
        }
    }

    fn view_info(&self, id: &[u8]) -> Result<BankReply, ApiError> {
        let names = |p: &[u8]| self.contact_name(p);
        let info = self.bank_views.written(&names).into_iter().find(|v| v.id == hex::encode(id));
        json(info)
    }

    /// Sends the pushes that are due (new entries, unacknowledged ones).
    pub(super) fn push_bank_views(&mut self) {
        let swarm = &self.swarm;
        let refused = &self.refused_by;
        let out = self.bank_views.poll_pushes(&|p| swarm.is_connected(p) && !refused.contains(p));
        self.send_bank(out);
    }

    pub(super) fn bank_contact_online(&mut self, peer: &PeerId) {
        let out = self.bank_views.on_contact_online(peer);
        self.send_bank(out);
        self.push_bank_views();
    }

    fn send_bank(&mut self, messages: Vec<Outgoing>) {
        for m in messages {
            let view = m.request.view().to_vec();
            let id = self.swarm.behaviour_mut().bank.send_request(&m.peer, Wire::Msg(m.request));
            self.bank_requests.insert(id, view);
        }
    }

    pub(super) fn on_bank_event(&mut self, event: request_response::Event<Wire<BankRequest>, BankResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.answer_bank(peer, request, channel)
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                if let Some(view) = self.bank_requests.remove(&request_id) {
                    match response {
                        BankResponse::Entries { from, entries, more } => {
                            blocking(|| self.bank_views.on_entries(&peer, &view, from, entries));
                            self.view_alerts();
                            if more {
                                let out = self.bank_views.on_contact_online(&peer);
                                self.send_bank(out);
                            }
                        }
                        other => self.bank_views.on_response(&view, other),
                    }
                    self.push_bank_views();
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if let Some(view) = self.bank_requests.remove(&request_id) {
                    self.bank_views.on_failure(&view);
                }
                debug!(%peer, "bank message not delivered: {error}");
            }
            Event::InboundFailure { peer, error, .. } => warn!(%peer, "bank request failed: {error}"),
            Event::ResponseSent { .. } => {}
        }
    }

    fn answer_bank(&mut self, peer: PeerId, request: Wire<BankRequest>, channel: ResponseChannel<BankResponse>) {
        let response = match request {
            Wire::Bad(err) => {
                warn!(%peer, "refused a bank request: malformed frame: {err}");
                BankResponse::Refused { message: format!("malformed request: {err}") }
            }
            Wire::Msg(_) if self.contact(&peer).is_none() => {
                warn!(%peer, "refused /hearth/bank/1 from a node that is not a contact");
                BankResponse::Refused { message: hearth_protocol::contact::NOT_A_CONTACT.into() }
            }
            Wire::Msg(request) => blocking(|| self.bank_views.on_request(&peer, request)),
        };
        let _ = self.swarm.behaviour_mut().bank.send_response(channel, response);
        self.view_alerts();
    }
}
