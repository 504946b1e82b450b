//! Bank views: an owner imports operations into its bank store and shows
//! an account read-only to viewers through `hearth_crdt::bank::ViewLog`,
//! pushed over `/hearth/bank/1` by `hearth_protocol::bank::Pusher`, as
//! `node/src/bank/views.rs` does. Shares with a window (`since`), imports
//! (the store's commit and the view's append are two transactions: the
//! owner may crash between them), unshares, crashes, lost and duplicated
//! pushes, and a stranger pushing forged entries to viewers.
//!
//! Invariants: after every event, every entry a viewer holds verifies
//! against the owner's key and every operation it shows is one the owner
//! imported, in the shared window (`foreign_entry`, `outside_window`).
//! After settling: each active view shows exactly the owner's operations
//! of its window (`view_incomplete`), an unshared one is revoked.

use std::collections::BTreeMap;

use hearth_crdt::bank::{Body, Entry, ViewAccount, ViewLog, ViewOp};
use hearth_crdt::doc::{Signer, Verifier};
use hearth_protocol::bank::{self as wire, BankRequest, BankResponse, Pusher};
use hearth_protocol::frame;
use rand::Rng;

use super::{Run, Sim, SimKey, SimVerifier};
use crate::invariants::Violation;
use crate::world::Config;

const PUSH_TIMEOUT_MS: u64 = 3_000;

#[derive(Debug)]
enum Ev {
    Tick,
    Deliver { from: usize, to: usize, to_inc: u64, bytes: Vec<u8>, response: bool },
    Timeout { view: usize, inc: u64, attempt: u64 },
    Restart(usize),
    Heal(usize, usize),
}

/// One view as its owner holds it (durable: the log and the record).
struct OwnerView {
    id: Vec<u8>,
    viewer: usize,
    since: String,
    log: ViewLog,
    pusher: Pusher,
    attempt: u64,
    revoked: bool,
}

struct Bank {
    sim: Sim<Ev>,
    ids: Vec<Vec<u8>>,
    up: Vec<bool>,
    inc: Vec<u64>,
    /// The owner's bank store: operations by key (durable).
    store: BTreeMap<String, ViewOp>,
    /// Every version of every operation ever imported.
    ever: BTreeMap<String, Vec<ViewOp>>,
    views: Vec<OwnerView>,
    /// What each viewer holds, by view id (durable).
    held: Vec<BTreeMap<Vec<u8>, ViewLog>>,
    next_op: u64,
    settling: bool,
}

fn date(day: u64) -> String {
    format!("2027-{:02}-{:02}", 1 + (day / 28) % 12, 1 + day % 28)
}

/// Runs the bank scenario of `cfg`.
pub fn run(cfg: &Config) -> Run {
    let mut sim = Sim::new(cfg, 3);
    let n = cfg.nodes.max(2) + 1; // the last one is the stranger
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut id = vec![0u8; 38];
        sim.rng.fill(&mut id[..]);
        ids.push(id);
    }
    let mut bank = Bank {
        sim,
        ids,
        up: vec![true; n],
        inc: vec![0; n],
        store: BTreeMap::new(),
        ever: BTreeMap::new(),
        views: Vec::new(),
        held: (0..n).map(|_| BTreeMap::new()).collect(),
        next_op: 0,
        settling: false,
    };
    bank.sim.bump("sim.runs.bank");
    bank.sim.after(0, Ev::Tick);
    for _ in 0..cfg.events {
        let Some(ev) = bank.sim.pop() else { break };
        bank.handle(ev);
        if bank.sim.failure.is_some() {
            return bank.sim.into();
        }
    }
    bank.settle();
    bank.sim.into()
}

impl Bank {
    fn stranger(&self) -> usize {
        self.ids.len() - 1
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick => {
                if !self.settling {
                    self.workload();
                    let next = self.sim.rng.gen_range(20..=300);
                    self.sim.after(next, Ev::Tick);
                }
            }
            Ev::Deliver { from, to, to_inc, bytes, response } => {
                if self.sim.net.is_cut(from, to) {
                    self.sim.bump("net.cut");
                    return self.sim.log(format!("drop n{from}->n{to}: link cut"));
                }
                if !self.up[to] || self.inc[to] != to_inc {
                    self.sim.bump("net.connection_lost");
                    return self.sim.log(format!("drop n{from}->n{to}: receiver crashed"));
                }
                self.sim.bump("net.delivered");
                if response && to != 0 {
                    self.sim.log(format!("n{to} ignores an answer from n{from}"));
                } else if response {
                    self.on_response(&bytes);
                } else {
                    self.on_request(to, from, &bytes);
                }
            }
            Ev::Timeout { view, inc, attempt } => {
                if self.up[0] && self.inc[0] == inc && self.views[view].attempt == attempt {
                    self.views[view].pusher.on_failure();
                    self.sim.log(format!("n0 push of view {view} timed out"));
                    self.push(view);
                }
            }
            Ev::Restart(i) => {
                if !self.up[i] {
                    self.restart(i);
                }
            }
            Ev::Heal(a, b) => {
                self.sim.net.heal(a, b);
                self.sim.log(format!("heal n{a}<->n{b}"));
                self.push_all();
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>, response: bool, what: &str) {
        let (up, to_inc) = (self.up[to], self.inc[to]);
        for d in self.sim.transmit(from, to, up, what) {
            self.sim.after(d, Ev::Deliver { from, to, to_inc, bytes: bytes.clone(), response });
        }
    }

    fn workload(&mut self) {
        let n = self.ids.len();
        match self.sim.rng.gen_range(0..100) {
            0..=39 => self.import(),
            40..=49 => self.share(),
            50..=53 => self.unshare(),
            54..=63 => self.forge(),
            64..=73 if self.sim.cfg.faults != crate::world::Faults::None => self.sim.partition(n, Ev::Heal),
            74..=79 if self.sim.node_faults() => {
                let i = self.sim.rng.gen_range(0..n - 1);
                if self.up[i] {
                    self.crash(i);
                }
            }
            _ => self.push_all(),
        }
    }

    /// A bank import: new operations (and some replaced) committed to the
    /// store, then appended to the views; a crash may fall in between.
    fn import(&mut self) {
        if !self.up[0] {
            return;
        }
        let count = self.sim.rng.gen_range(1..=5);
        let mut added = Vec::new();
        for _ in 0..count {
            // Sometimes an operation again, corrected (same day).
            let again = if self.next_op > 0 && self.sim.rng.gen_bool(0.1) {
                let k = format!("op-{}", self.sim.rng.gen_range(0..self.next_op));
                self.store.get(&k).map(|o| (k, o.date.clone()))
            } else {
                None
            };
            let (key, day) = match again {
                Some(k) => k,
                None => {
                    self.next_op += 1;
                    (format!("op-{}", self.next_op - 1), date(self.sim.rng.gen_range(0..200)))
                }
            };
            let op = ViewOp {
                key: key.clone(),
                date: day,
                amount: format!("-{}.{:02}", self.sim.rng.gen_range(1..500), self.sim.rng.gen_range(0..100)),
                currency: "EUR".into(),
                label: format!("shop {}", self.sim.rng.gen_range(0..20)),
                kind: "card".into(),
                original: None,
                category: None,
            };
            self.store.insert(key.clone(), op.clone());
            self.ever.entry(key).or_default().push(op.clone());
            added.push(op);
        }
        self.sim.bump("bank.import");
        self.sim.log(format!("n0 imports {} operation(s) (committed)", added.len()));
        if self.sim.node_faults() && self.sim.rng.gen_bool(0.1) {
            self.sim.bump("fault.crash_during_import");
            return self.crash(0);
        }
        let key = SimKey(self.ids[0].clone());
        for v in 0..self.views.len() {
            if self.views[v].revoked {
                continue;
            }
            let since = self.views[v].since.clone();
            let ops: Vec<ViewOp> = added.iter().filter(|o| o.date >= since).cloned().collect();
            if let Err(e) = self.views[v].log.append_ops(&key, ops) {
                self.sim.log(format!("n0 cannot extend view {v}: {e}"));
            }
        }
        self.push_all();
    }

    fn share(&mut self) {
        if !self.up[0] {
            return;
        }
        let viewer = self.sim.rng.gen_range(1..self.ids.len() - 1);
        if self.views.iter().any(|v| v.viewer == viewer && !v.revoked) {
            return;
        }
        let mut id = vec![0u8; wire::VIEW_ID_LEN];
        self.sim.rng.fill(&mut id[..]);
        let since = date(self.sim.rng.gen_range(0..150));
        let key = SimKey(self.ids[0].clone());
        let account = ViewAccount {
            name: "joint".into(),
            currency: "EUR".into(),
            kind: "checking".into(),
            since: Some(since.clone()),
        };
        let mut log = ViewLog::create(&id, &key, &self.ids[viewer], account);
        let ops: Vec<ViewOp> = self.store.values().filter(|o| o.date >= since).cloned().collect();
        let _ = log.append_ops(&key, ops);
        let _ = log.append(&key, Body::Balance { amount: "100.00".into(), date: since.clone() });
        self.sim.bump("bank.share");
        self.sim.log(format!("n0 shows the account to n{viewer} since {since} (view {})", self.views.len()));
        self.views.push(OwnerView { id, viewer, since, log, pusher: Pusher::new(0), attempt: 0, revoked: false });
        self.push_all();
    }

    fn unshare(&mut self) {
        let active: Vec<usize> = (0..self.views.len()).filter(|&v| !self.views[v].revoked).collect();
        if active.is_empty() || !self.up[0] {
            return;
        }
        let v = active[self.sim.rng.gen_range(0..active.len())];
        let key = SimKey(self.ids[0].clone());
        let _ = self.views[v].log.append(&key, Body::Revoked);
        self.views[v].revoked = true;
        self.sim.bump("bank.unshare");
        self.sim.log(format!("n0 stops showing view {v}"));
        self.push(v);
    }

    fn push_all(&mut self) {
        for v in 0..self.views.len() {
            self.push(v);
        }
    }

    fn push(&mut self, v: usize) {
        if !self.up[0] {
            return;
        }
        let len = self.views[v].log.len();
        let Some(from) = self.views[v].pusher.poll_push(len) else { return };
        let raw: Vec<Vec<u8>> = self.views[v].log.entries_from(from).iter().map(Entry::to_bytes).collect();
        let (entries, _) = wire::bounded(&raw);
        let n = entries.len();
        let request = BankRequest::Push { view: self.views[v].id.clone(), from, entries };
        let bytes = frame::encode(&request, wire::MAX_MESSAGE).expect("encode push");
        self.views[v].attempt += 1;
        let (attempt, inc, viewer) = (self.views[v].attempt, self.inc[0], self.views[v].viewer);
        self.sim.after(PUSH_TIMEOUT_MS, Ev::Timeout { view: v, inc, attempt });
        self.send(0, viewer, bytes, false, &format!("push view {v} {n} entries from {from}"));
    }

    /// A stranger pushes entries it signed itself, as if it owned a view a
    /// viewer holds (or a new one).
    fn forge(&mut self) {
        let s = self.stranger();
        let targets: Vec<usize> = (0..self.views.len()).collect();
        let (view, viewer, from, prev) = if targets.is_empty() || self.sim.rng.gen_bool(0.3) {
            let mut id = vec![0u8; wire::VIEW_ID_LEN];
            self.sim.rng.fill(&mut id[..]);
            (id, self.sim.rng.gen_range(1..s), 0, vec![0u8; 32])
        } else {
            let v = &self.views[targets[self.sim.rng.gen_range(0..targets.len())]];
            let held = self.held[v.viewer].get(&v.id);
            let have = held.map(ViewLog::len).unwrap_or(0);
            let prev = match held.and_then(|l| l.entries_from(have.saturating_sub(1)).first()) {
                Some(e) => Entry::hash(&v.id, e.seq, &e.prev, &e.body).to_vec(),
                None => vec![0u8; 32],
            };
            (v.id.clone(), v.viewer, have, prev)
        };
        let body = Body::Operations {
            ops: vec![ViewOp {
                key: "forged".into(),
                date: date(199),
                amount: "-9999.00".into(),
                currency: "EUR".into(),
                label: "wire to mallory".into(),
                kind: "transfer".into(),
                original: None,
                category: None,
            }],
        };
        let key = SimKey(self.ids[s].clone());
        let signature = key.sign(&Entry::signing_message(&view, from, &prev, &body));
        let entry = Entry { seq: from, prev, body, signature };
        let request = BankRequest::Push { view, from, entries: vec![serde_bytes::ByteBuf::from(entry.to_bytes())] };
        let bytes = frame::encode(&request, wire::MAX_MESSAGE).expect("encode");
        self.sim.bump("hostile.forged_view_entry");
        self.sim.log(format!("mallory (n{s}) pushes a forged entry {from} to n{viewer}"));
        self.send(s, viewer, bytes, false, "forged push");
    }

    /// A viewer (`views.rs` `receive`): a new view is taken only when its
    /// genesis is offered by its owner to us; entries of a view already
    /// held are checked by the log alone (signature against the owner's
    /// key, sequence, chain), whoever pushes them, as in the node.
    fn on_request(&mut self, i: usize, from: usize, bytes: &[u8]) {
        let Ok(BankRequest::Push { view, from: start, entries }) =
            frame::decode::<BankRequest>(bytes, wire::MAX_MESSAGE)
        else {
            return self.sim.log(format!("n{i} ignores a frame from n{from}"));
        };
        let pusher = self.ids[from].clone();
        let me = self.ids[i].clone();
        let parsed: Vec<Entry> = entries.iter().filter_map(|b| Entry::from_bytes(b).ok()).collect();
        if !self.held[i].contains_key(&view) {
            let genesis_ok = matches!(
                parsed.first().map(|e| &e.body),
                Some(Body::Genesis { owner, viewer, view: v, .. })
                    if *owner == pusher && *viewer == me && *v == view
            );
            if !genesis_ok || view.len() != wire::VIEW_ID_LEN {
                self.sim.bump("bank.push_refused");
                return self.sim.log(format!("n{i} refuses entries of an unknown view from n{from}"));
            }
            self.held[i].insert(view.clone(), ViewLog::empty(&view, &pusher, &me));
        }
        let log = self.held[i].get_mut(&view).expect("held");
        let report = log.receive(parsed, &SimVerifier);
        let have = log.len();
        if log.is_empty() {
            self.held[i].remove(&view);
        }
        for (seq, why) in &report.rejected {
            self.sim.bump("bank.entry_rejected");
            self.sim.log(format!("n{i} refuses entry {seq} of n{from}: {why}"));
        }
        self.sim.log(format!("n{i} holds {have} entries of a view of n{from} (from {start}, +{})", report.applied));
        self.check_viewer(i);
        let response = BankResponse::Have { have, rejected: report.rejected.len() as u32 };
        let bytes = frame::encode(&response, wire::MAX_MESSAGE).expect("encode");
        let key = view;
        self.send(i, from, [key, bytes].concat(), true, "have");
    }

    fn on_response(&mut self, bytes: &[u8]) {
        let (view, body) = bytes.split_at(wire::VIEW_ID_LEN.min(bytes.len()));
        let Ok(BankResponse::Have { have, .. }) = frame::decode::<BankResponse>(body, wire::MAX_MESSAGE) else {
            return;
        };
        let Some(v) = self.views.iter().position(|v| v.id == view) else { return };
        self.views[v].pusher.on_have(have);
        self.views[v].attempt += 1;
        self.sim.log(format!("n0 learns view {v} holds {have}"));
        self.push(v);
    }

    fn crash(&mut self, i: usize) {
        self.up[i] = false;
        self.inc[i] += 1;
        self.sim.bump("fault.crash");
        self.sim.log(format!("crash n{i}"));
        let at = self.sim.rng.gen_range(200..=8_000);
        self.sim.after(at, Ev::Restart(i));
    }

    fn restart(&mut self, i: usize) {
        self.up[i] = true;
        self.sim.log(format!("restart n{i}"));
        if i == 0 {
            // Pushers restart from what was acknowledged (`record.acked`
            // in the node; here: nothing in flight), and the views catch up
            // with the store (`Views::catch_up`).
            let key = SimKey(self.ids[0].clone());
            for v in 0..self.views.len() {
                let acked = self.views[v].pusher.acked();
                self.views[v].pusher = Pusher::new(acked);
                if self.views[v].revoked {
                    continue;
                }
                let since = self.views[v].since.clone();
                let wanted: Vec<ViewOp> = self.store.values().filter(|o| o.date >= since).cloned().collect();
                let missing = self.views[v].log.missing_ops(&wanted);
                if !missing.is_empty() {
                    self.sim.bump("bank.caught_up");
                    self.sim.log(format!("n0 view {v} catches up {} operation(s)", missing.len()));
                    let _ = self.views[v].log.append_ops(&key, missing);
                }
            }
        }
        self.push_all();
    }

    fn check_viewer(&mut self, i: usize) {
        self.sim.bump("invariants.checks");
        for (id, log) in &self.held[i] {
            let owner_view = self.views.iter().find(|v| v.id == *id && v.viewer == i);
            for e in log.entries_from(0) {
                let msg = Entry::signing_message(id, e.seq, &e.prev, &e.body);
                if !SimVerifier.verify(&self.ids[0], &msg, &e.signature) {
                    let v =
                        Violation::new("foreign_entry", format!("n{i} holds entry {} not signed by the owner", e.seq));
                    return self.sim.fail(v);
                }
            }
            let Some(ov) = owner_view else {
                return self
                    .sim
                    .fail(Violation::new("foreign_entry", format!("n{i} holds a view the owner never made")));
            };
            for op in log.state().ops.values() {
                if op.date < ov.since || !self.ever.get(&op.key).is_some_and(|e| e.contains(op)) {
                    return self.sim.fail(Violation::new(
                        "outside_window",
                        format!("n{i} shows {} of {}, not the owner's data since {}", op.key, op.date, ov.since),
                    ));
                }
            }
        }
    }

    fn settle(&mut self) {
        self.settling = true;
        self.sim.net.heal_all();
        self.sim.net.set_faults(crate::net::NetFaults::NONE);
        self.sim.log("settle: heal all links, restart all nodes, no more faults");
        for i in 0..self.ids.len() {
            if !self.up[i] {
                self.restart(i);
            }
        }
        self.push_all();
        let mut budget = 100_000;
        while let Some(ev) = self.sim.pop() {
            self.handle(ev);
            if self.sim.failure.is_some() {
                return;
            }
            budget -= 1;
            if budget == 0 {
                return self.sim.fail(Violation::new("no_quiescence", "bank pushes never stop"));
            }
        }
        self.sim.bump("invariants.final_checks");
        for v in 0..self.views.len() {
            let ov = &self.views[v];
            let held = self.held[ov.viewer].get(&ov.id).map(|l| l.state()).unwrap_or_default();
            let wanted: BTreeMap<String, ViewOp> =
                self.store.iter().filter(|(_, o)| o.date >= ov.since).map(|(k, o)| (k.clone(), o.clone())).collect();
            if ov.revoked {
                if !held.revoked {
                    let d = format!("view {v}: n{} was never told the view ended", ov.viewer);
                    return self.sim.fail(Violation::new("not_revoked", d));
                }
            } else if held.ops != wanted {
                let d = format!(
                    "view {v} on n{} shows {} operation(s), the owner has {} in its window",
                    ov.viewer,
                    held.ops.len(),
                    wanted.len()
                );
                return self.sim.fail(Violation::new("view_incomplete", d));
            }
        }
        self.sim.log(format!("final: {} view(s) equal their owner's data", self.views.len()));
    }
}
