//! The world: one seeded RNG, a virtual clock, an event queue, the nodes,
//! the network, the workload and the trace.
//!
//! Events are ordered by (virtual millisecond, sequence number) in a
//! `BTreeMap`, so ties break by scheduling order and a seed replays exactly.
//! Every random choice (workload, latency, faults, secrets, peer ids) is
//! drawn from the one `ChaCha8Rng`; the core sees Unix seconds
//! `EPOCH_SECS + now_ms / 1000`. Each event appends at least one trace line;
//! the invariants run after every event.
//!
//! A run has two phases. The workload phase processes `events` events:
//! periodic ticks pick random actions (module `workload`: invite, join with
//! a fresh, shared, reused, expired or mistyped token, re-run a join that
//! timed out, a hostile forgery, contact removal, crash, partition, heal)
//! while requests, responses and timeouts flow. Then the world settles: all
//! links heal, all nodes restart, faults stop, and every person whose join
//! never got an answer runs it again, until nothing is left to do. The final
//! invariants are checked on that quiet state.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};

use hearth_protocol::pairing::{self, PairResponse};
use hearth_protocol::{frame, PeerBytes};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::invariants::{self, GroundTruth, Violation};
use crate::net::{Kind, Msg, NetFaults, Network};
use crate::node::{reason_label, Finish, Retry, SimNode, Verdict};

mod workload;

/// Unix seconds at virtual time zero.
pub const EPOCH_SECS: u64 = 1_800_000_000;
/// How long a joiner waits for a response before resending.
const JOIN_TIMEOUT_MS: u64 = 2_000;
/// Requests per join before the joiner gives up.
const MAX_ATTEMPTS: u32 = 4;
/// Chance that an inviter crashes between its commit and its send.
const CRASH_BEFORE_SEND: f64 = 0.05;
/// Invitation lifetimes drawn by the workload; short ones expire mid-join.
const TTLS: [u64; 6] = [1, 2, 5, 20, 120, 86_400];
/// Rounds of "re-run the joins that got no answer" while settling.
const SETTLE_ROUNDS: usize = 4;
/// Events allowed while settling before the run counts as not quiescing.
const SETTLE_CAP: u64 = 100_000;

/// Which faults a run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Faults {
    /// Latency and jitter only.
    None,
    /// Loss, duplication, reordering, partitions.
    Net,
    /// Network faults plus crashes (including between commit and send).
    All,
}

/// What a run simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// Pairing with invitation tokens.
    Pairing,
    /// A shared folder: sync, edits, membership, hostile writers.
    Share,
    /// Bank views: imports, shares, unshares, forged entries.
    Bank,
    /// Backups: snapshots, shards on friends, hostile hosts, restores.
    Backup,
    /// Every scenario, one after the other, from the same seed.
    All,
}

impl Scenario {
    /// The scenarios `All` runs.
    pub const EACH: [Scenario; 4] = [Scenario::Pairing, Scenario::Share, Scenario::Bank, Scenario::Backup];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Pairing => "pairing",
            Scenario::Share => "share",
            Scenario::Bank => "bank",
            Scenario::Backup => "backup",
            Scenario::All => "all",
        }
    }
}

/// A deliberately broken rule of the cores, to show that the invariants
/// catch it (see `hearth_crdt::mutant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mutant {
    /// Share documents accept every change: no role checks.
    NoAuth,
    /// Concurrent edits keep only the winner: no conflict copy.
    LastWriterWins,
    /// Viewers accept bank view entries without the owner's signature.
    UnverifiedViews,
    /// Owners accept any answer to a backup audit without its block hash.
    UnverifiedAudits,
    /// Members accept a file's chunks without checking their hash.
    UnverifiedChunks,
    /// The node's repair as it is: it stops at the first pack it cannot
    /// rebuild (bug 4; simulator model only).
    RepairStopsEarly,
    /// The node's host as it is: an upload of a shard it holds a rotten
    /// copy of is answered "already have" (bug 5), with the owner keeping
    /// its garbage as the node does (bug 6); simulator model only.
    StaleShardKept,
    /// The node's owner as it is: shards moved away by a repair or left
    /// by a failed run are never deleted (bug 6; simulator model only).
    GarbageKept,
}

impl Mutant {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::NoAuth => "no-auth",
            Mutant::LastWriterWins => "last-writer-wins",
            Mutant::UnverifiedViews => "unverified-views",
            Mutant::UnverifiedAudits => "unverified-audits",
            Mutant::UnverifiedChunks => "unverified-chunks",
            Mutant::RepairStopsEarly => "repair-stops-early",
            Mutant::StaleShardKept => "stale-shard-kept",
            Mutant::GarbageKept => "garbage-kept",
        }
    }

    /// Every mutant, with the scenario whose invariants should catch it.
    pub const EACH: [(Mutant, Scenario); 8] = [
        (Mutant::NoAuth, Scenario::Share),
        (Mutant::LastWriterWins, Scenario::Share),
        (Mutant::UnverifiedViews, Scenario::Bank),
        (Mutant::UnverifiedAudits, Scenario::Backup),
        (Mutant::UnverifiedChunks, Scenario::Share),
        (Mutant::RepairStopsEarly, Scenario::Backup),
        (Mutant::StaleShardKept, Scenario::Backup),
        (Mutant::GarbageKept, Scenario::Backup),
    ];

    /// Turns `mutant` (or none) on in the cores, for this thread.
    fn set(mutant: Option<Mutant>) {
        use hearth_crdt::mutant::Mutant as C;
        use hearth_protocol::mutant::Mutant as P;
        hearth_crdt::mutant::set(match mutant {
            Some(Mutant::NoAuth) => Some(C::NoAuth),
            Some(Mutant::LastWriterWins) => Some(C::LastWriterWins),
            Some(Mutant::UnverifiedViews) => Some(C::UnverifiedViews),
            _ => None,
        });
        hearth_protocol::mutant::set(match mutant {
            Some(Mutant::UnverifiedAudits) => Some(P::UnverifiedAudits),
            Some(Mutant::UnverifiedChunks) => Some(P::UnverifiedChunks),
            _ => None,
        });
    }
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct Config {
    /// The seed of everything.
    pub seed: u64,
    /// Honest nodes (the hostile one comes on top).
    pub nodes: usize,
    /// Events of the workload phase.
    pub events: u64,
    /// Faults injected.
    pub faults: Faults,
    /// Treat known issues as failures too.
    pub strict: bool,
    /// What to simulate.
    pub scenario: Scenario,
    /// A broken rule to run with, if any.
    pub mutant: Option<Mutant>,
}

impl Config {
    /// Defaults: 5 nodes, 1000 events, all faults, known issues tolerated,
    /// pairing, no mutant.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            nodes: 5,
            events: 1_000,
            faults: Faults::All,
            strict: false,
            scenario: Scenario::Pairing,
            mutant: None,
        }
    }

    /// The same run with scenario `scenario`.
    pub fn with(mut self, scenario: Scenario) -> Self {
        self.scenario = scenario;
        self
    }
}

/// Named counters, merged across runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// `section.name` -> count.
    pub counters: BTreeMap<String, u64>,
}

impl Stats {
    /// Adds one to `key`.
    pub fn bump(&mut self, key: impl Into<String>) {
        *self.counters.entry(key.into()).or_default() += 1;
    }

    /// The count of `key`.
    pub fn get(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    /// Adds every counter of `other`.
    pub fn merge(&mut self, other: &Stats) {
        for (k, v) in &other.counters {
            *self.counters.entry(k.clone()).or_default() += v;
        }
    }
}

/// The result of one seed.
#[derive(Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// One line per event.
    pub trace: Vec<String>,
    /// BLAKE3 of the trace (lines joined by newlines).
    pub trace_hash: blake3::Hash,
    /// Counters of this run.
    pub stats: Stats,
    /// The first invariant broken, if any (the run stopped there).
    pub failure: Option<Violation>,
    /// Known issues met (tolerated because the run was not strict).
    pub known: Vec<Violation>,
}

/// Runs one seed to completion. Never panics: a panic in the core or the
/// simulator is reported as a `panic` failure with the trace so far.
pub fn run_seed(config: &Config) -> Outcome {
    Mutant::set(config.mutant);
    let outcome = match config.scenario {
        Scenario::All => {
            let mut all: Option<Outcome> = None;
            for scenario in Scenario::EACH {
                let one = run_one(&config.clone().with(scenario));
                let merged = match all.take() {
                    None => one,
                    Some(mut a) => {
                        a.trace.extend(one.trace);
                        a.stats.merge(&one.stats);
                        a.failure = a.failure.or(one.failure);
                        a.known.extend(one.known);
                        a
                    }
                };
                let failed = merged.failure.is_some();
                all = Some(merged);
                if failed {
                    break;
                }
            }
            let mut all = all.expect("at least one scenario");
            all.trace_hash = hash_trace(&all.trace);
            all
        }
        _ => run_one(config),
    };
    Mutant::set(None);
    outcome
}

fn hash_trace(trace: &[String]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    for line in trace {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize()
}

/// Runs one scenario (not `All`), catching panics.
fn run_one(config: &Config) -> Outcome {
    if config.scenario != Scenario::Pairing {
        let scenario = config.scenario;
        let run = panic::catch_unwind(AssertUnwindSafe(|| match scenario {
            Scenario::Share => crate::scenario::share::run(config),
            Scenario::Bank => crate::scenario::bank::run(config),
            _ => crate::scenario::backup::run(config),
        }));
        let mut run = run.unwrap_or_else(|payload| crate::scenario::Run {
            trace: vec![format!("PANIC {}", panic_text(&payload))],
            stats: Stats::default(),
            failure: Some(Violation::new("panic", panic_text(&payload))),
        });
        run.stats.bump("sim.runs");
        let mut trace = vec![format!("== {} seed {}", scenario.name(), config.seed)];
        trace.append(&mut run.trace);
        return Outcome {
            seed: config.seed,
            trace_hash: hash_trace(&trace),
            trace,
            stats: run.stats,
            failure: run.failure,
            known: Vec::new(),
        };
    }
    let mut world = World::new(config.clone());
    let run = panic::catch_unwind(AssertUnwindSafe(|| world.run()));
    if let Err(payload) = run {
        let msg = panic_text(&payload);
        world.log(format!("PANIC {msg}"));
        world.failure = Some(Violation::new("panic", msg));
    }
    let mut hasher = blake3::Hasher::new();
    for line in &world.trace {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    Outcome {
        seed: config.seed,
        trace_hash: hasher.finalize(),
        trace: world.trace,
        stats: world.stats,
        failure: world.failure,
        known: world.known,
    }
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

#[derive(Debug)]
enum Ev {
    Tick,
    Deliver(Msg),
    JoinTimeout { node: usize, incarnation: u64, join: u64 },
    Restart(usize),
    Heal(usize, usize),
}

/// A person's `hearth join TOKEN` command. It outlives crashes: the person
/// still has the token and knows whether the command ever answered.
#[derive(Debug)]
struct Intent {
    joiner: usize,
    inviter: usize,
    /// Index of the token in the ground truth.
    token: usize,
    /// The text as typed (maybe mistyped).
    text: String,
    answered: bool,
}

struct World {
    cfg: Config,
    rng: ChaCha8Rng,
    now_ms: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    nodes: Vec<SimNode>,
    index: BTreeMap<PeerBytes, usize>,
    hostile: usize,
    net: Network,
    truth: GroundTruth,
    intents: Vec<Intent>,
    /// Tokens already handed to someone, to hand again.
    handed: Vec<usize>,
    settling: bool,
    next_conv: u64,
    next_msg: u64,
    trace: Vec<String>,
    stats: Stats,
    failure: Option<Violation>,
    known: Vec<Violation>,
}

fn short(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

impl World {
    fn new(cfg: Config) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut nodes = Vec::new();
        let mut index = BTreeMap::new();
        for i in 0..=cfg.nodes {
            // Opaque 38-byte ids, like an encoded ed25519 PeerId.
            let mut id = vec![0u8; 38];
            rng.fill(&mut id[..]);
            index.insert(id.clone(), i);
            let hostile = i == cfg.nodes;
            let name = if hostile { "mallory".to_string() } else { format!("node-{i}") };
            nodes.push(SimNode::new(id, name, hostile));
        }
        let faults = if cfg.faults == Faults::None { NetFaults::NONE } else { NetFaults::LOSSY };
        Self {
            hostile: cfg.nodes,
            cfg,
            rng,
            now_ms: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            index,
            net: Network::new(faults),
            truth: GroundTruth::default(),
            intents: Vec::new(),
            handed: Vec::new(),
            settling: false,
            next_conv: 0,
            next_msg: 0,
            trace: Vec::new(),
            stats: Stats::default(),
            failure: None,
            known: Vec::new(),
        }
    }

    fn now_secs(&self) -> u64 {
        EPOCH_SECS + self.now_ms / 1000
    }

    fn log(&mut self, line: String) {
        self.trace.push(format!("{:>8} {line}", self.now_ms));
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.queue.insert((at, self.seq), ev);
        self.seq += 1;
    }

    fn conv(&mut self) -> u64 {
        self.next_conv += 1;
        self.next_conv
    }

    /// Records a violation: a known one is kept and the run goes on (unless
    /// strict), anything else stops the run.
    fn report(&mut self, v: Violation) {
        if !self.cfg.strict && invariants::is_known(v.kind) {
            self.log(format!("KNOWN ISSUE {v}"));
            self.stats.bump(format!("known_issue.{}", v.kind));
            self.known.push(v);
        } else if self.failure.is_none() {
            self.log(format!("VIOLATION {v}"));
            self.failure = Some(v);
        }
    }

    fn run(&mut self) {
        self.stats.bump("sim.runs");
        self.schedule(0, Ev::Tick);
        for _ in 0..self.cfg.events {
            if !self.step() {
                break;
            }
        }
        if self.failure.is_some() {
            return;
        }
        self.settle();
        if self.failure.is_some() {
            return;
        }
        for v in invariants::check_final(&self.truth, &self.nodes, &self.index) {
            self.report(v);
        }
        self.stats.bump("invariants.final_checks");
    }

    /// Processes the next event and checks the invariants. False when the
    /// queue is empty or an invariant broke.
    fn step(&mut self) -> bool {
        let Some(((at, _), ev)) = self.queue.pop_first() else {
            return false;
        };
        self.now_ms = at;
        self.stats.bump("sim.events");
        self.handle(ev);
        self.stats.bump("invariants.checks");
        if let Err(v) = invariants::check_state(&mut self.truth, &self.nodes, &self.index, self.hostile) {
            self.report(v);
        }
        self.failure.is_none()
    }

    fn settle(&mut self) {
        self.settling = true;
        self.net.heal_all();
        self.net.set_faults(NetFaults::NONE);
        self.log("settle: heal all links, restart all nodes, no more faults".into());
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up {
                self.restart(i);
            }
        }
        let mut budget = SETTLE_CAP;
        for round in 0..=SETTLE_ROUNDS {
            while budget > 0 && self.step() {
                budget -= 1;
            }
            if self.failure.is_some() {
                return;
            }
            if budget == 0 {
                self.report(Violation::new("no_quiescence", format!("still busy after {SETTLE_CAP} events")));
                return;
            }
            // The people whose `hearth join` never answered run it again.
            let unanswered: Vec<usize> = (0..self.intents.len())
                .filter(|&k| {
                    let it = &self.intents[k];
                    !it.answered
                        && !self.nodes[it.joiner].is_pending(k)
                        && !self.nodes[it.joiner].durable.contacts.contains_key(&self.nodes[it.inviter].id)
                })
                .collect();
            if unanswered.is_empty() {
                return;
            }
            if round == SETTLE_ROUNDS {
                self.report(Violation::new("no_quiescence", format!("{} joins still unanswered", unanswered.len())));
                return;
            }
            for k in unanswered {
                self.stats.bump("settle.rejoins");
                self.rejoin(k);
            }
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick => {
                if !self.settling {
                    self.workload();
                    let next = self.now_ms + self.rng.gen_range(20..=300);
                    self.schedule(next, Ev::Tick);
                }
            }
            Ev::Deliver(msg) => self.deliver(msg),
            Ev::JoinTimeout { node, incarnation, join } => self.timeout(node, incarnation, join),
            Ev::Restart(i) => {
                if !self.nodes[i].up {
                    self.restart(i);
                }
            }
            Ev::Heal(a, b) => {
                self.net.heal(a, b);
                self.log(format!("heal n{a}<->n{b}"));
            }
        }
    }

    // ----- network ---------------------------------------------------------

    fn send(&mut self, from: usize, to: usize, kind: Kind, conv: u64, bytes: Vec<u8>, to_incarnation: Option<u64>) {
        self.next_msg += 1;
        let id = self.next_msg;
        self.stats.bump("net.sent");
        let what = format!("#{id} n{from}->n{to} {kind:?} conv={conv} {}B", bytes.len());
        if !self.nodes[to].up {
            self.stats.bump("net.unreachable");
            return self.log(format!("send {what}: n{to} is down"));
        }
        if self.net.is_cut(from, to) {
            self.stats.bump("net.cut");
            return self.log(format!("send {what}: link cut"));
        }
        let delays = self.net.fate(&mut self.rng);
        match delays.len() {
            0 => self.stats.bump("net.lost"),
            2 => self.stats.bump("net.duplicated"),
            _ => {}
        }
        self.log(format!("send {what}: delays {delays:?}"));
        let msg = Msg {
            id,
            from,
            from_incarnation: self.nodes[from].incarnation,
            to,
            to_incarnation: to_incarnation.unwrap_or(self.nodes[to].incarnation),
            conv,
            kind,
            bytes,
        };
        for d in delays {
            self.schedule(self.now_ms + d, Ev::Deliver(msg.clone()));
        }
    }

    fn deliver(&mut self, msg: Msg) {
        let (from, to, id) = (msg.from, msg.to, msg.id);
        if self.net.is_cut(from, to) {
            self.stats.bump("net.cut");
            return self.log(format!("drop #{id} n{from}->n{to}: link cut"));
        }
        let dst = &self.nodes[to];
        if !dst.up || dst.incarnation != msg.to_incarnation {
            self.stats.bump("net.connection_lost");
            return self.log(format!("drop #{id} n{from}->n{to}: receiver crashed"));
        }
        self.stats.bump("net.delivered");
        match msg.kind {
            Kind::Request => self.on_request(msg),
            Kind::Response => self.on_response(msg),
        }
    }

    // ----- inviter side -----------------------------------------------------

    fn on_request(&mut self, msg: Msg) {
        let (from, to, id) = (msg.from, msg.to, msg.id);
        let now = self.now_secs();
        let remote = self.nodes[from].id.clone();
        let answer = match self.nodes[to].answer_pairing(now, &remote, &msg.bytes) {
            Ok(answer) => answer,
            Err(err) => {
                self.stats.bump("inviter.frame_refused");
                return self.log(format!("n{to} refused frame #{id} from n{from}: {err}"));
            }
        };
        match &answer.verdict {
            Verdict::Rejected(reason) => {
                let label = reason_label(*reason);
                self.stats.bump(format!("inviter.rejected.{label}"));
                self.log(format!("n{to} rejects #{id} from n{from}: {label}"));
            }
            Verdict::Accepted { token_id, first_time, readded } => {
                let tok = short(token_id);
                self.stats.bump(if *first_time { "inviter.accepted" } else { "inviter.accepted_retry" });
                self.log(format!("n{to} accepts #{id} from n{from} for {tok} (first time: {first_time}), committed"));
                if *readded {
                    self.report(Violation::new(
                        "resurrected_contact",
                        format!("n{to} removed n{from}, then took it back on a retry of its old token {tok}"),
                    ));
                }
                if self.cfg.faults == Faults::All && !self.settling && self.rng.gen_bool(CRASH_BEFORE_SEND) {
                    self.stats.bump("fault.crash_after_commit");
                    return self.crash(to, "after its commit, before sending the response");
                }
            }
        }
        self.send(to, from, Kind::Response, msg.conv, answer.frame, Some(msg.from_incarnation));
    }

    // ----- joiner side ------------------------------------------------------

    fn on_response(&mut self, msg: Msg) {
        let (from, to, id) = (msg.from, msg.to, msg.id);
        if to == self.hostile {
            let answer = frame::decode::<PairResponse>(&msg.bytes, pairing::MAX_MESSAGE);
            self.log(format!("hostile n{to} gets #{id} from n{from}: {answer:?}"));
            return match answer {
                Ok(PairResponse::Rejected { reason, .. }) => {
                    self.stats.bump(format!("hostile.rejected.{}", reason_label(reason)))
                }
                _ => self.report(Violation::new(
                    "hostile_accepted",
                    format!("n{from} answered the forgery #{id}: {answer:?}"),
                )),
            };
        }
        let now = self.now_secs();
        let remote = self.nodes[from].id.clone();
        match self.nodes[to].finish_join(now, &remote, msg.conv, &msg.bytes) {
            Finish::Stale => {
                self.stats.bump("joiner.stale_response");
                self.log(format!("n{to} ignores #{id} from n{from}: no pending join"));
            }
            Finish::Paired { intent } => {
                self.intents[intent].answered = true;
                self.stats.bump("joiner.paired");
                self.log(format!("n{to} paired with n{from} (#{id})"));
                // The inviter commits before it answers, so it already holds us.
                let holds = self.nodes[from].durable.contacts.contains_key(&self.nodes[to].id);
                if !holds && !self.truth.removed.contains(&(from, to)) {
                    self.report(Violation::new(
                        "joiner_ahead_of_inviter",
                        format!("n{to} recorded n{from} before n{from} recorded n{to}"),
                    ));
                }
            }
            Finish::Failed { intent, reason, detail } => {
                self.intents[intent].answered = true;
                self.log(format!("n{to} join of n{from} failed (#{id}): {detail}"));
                match reason {
                    Some(r) => self.stats.bump(format!("joiner.rejected.{}", reason_label(r))),
                    None => {
                        self.report(Violation::new("honest_inviter_refused", format!("n{to} on n{from}: {detail}")))
                    }
                }
            }
        }
    }

    fn timeout(&mut self, node: usize, incarnation: u64, join: u64) {
        if !self.nodes[node].up || self.nodes[node].incarnation != incarnation {
            return self.log(format!("n{node} timeout of join {join}: lost in a crash"));
        }
        let conv = self.conv();
        match self.nodes[node].retry(join, conv, MAX_ATTEMPTS) {
            Retry::Finished => self.log(format!("n{node} timeout of join {join}: already answered")),
            Retry::GaveUp { intent } => {
                self.stats.bump("joiner.gave_up");
                let inviter = self.intents[intent].inviter;
                self.log(format!("n{node} gives up joining n{inviter}: the inviter did not answer in time"));
            }
            Retry::Resend { inviter, frame, attempt } => {
                self.stats.bump("joiner.resent");
                let to = self.index[&inviter];
                self.log(format!("n{node} resends join {join} to n{to} (attempt {attempt})"));
                self.schedule(self.now_ms + JOIN_TIMEOUT_MS, Ev::JoinTimeout { node, incarnation, join });
                self.send(node, to, Kind::Request, conv, frame, None);
            }
        }
    }

    /// Node `j` runs `hearth join text`, where `text` is token `t` (maybe
    /// mistyped); `rejoin` when the person runs an unanswered join again.
    fn start_join(&mut self, j: usize, t: usize, text: String, rejoin: bool) {
        let now = self.now_secs();
        let conv = self.conv();
        let intent = self.intents.len();
        let (tok, inviter) = (short(&self.truth.tokens[t].id), self.truth.tokens[t].inviter);
        match self.nodes[j].join(now, &text, intent, conv) {
            Err(refusal) => {
                let label = refusal.label();
                self.stats.bump(format!("joiner.refused_locally.{label}"));
                self.log(format!("n{j} refuses locally to join n{inviter} with {tok}: {label}"));
                if rejoin && label == "expired" {
                    self.truth.retry_expired.insert((j, inviter));
                }
            }
            Ok(started) => {
                assert_eq!(self.index[&started.inviter], inviter, "the token names its inviter");
                self.intents.push(Intent { joiner: j, inviter, token: t, text, answered: false });
                self.stats.bump("joiner.started");
                self.log(format!("n{j} joins n{inviter} with {tok} (join {})", started.join));
                let incarnation = self.nodes[j].incarnation;
                self.schedule(
                    self.now_ms + JOIN_TIMEOUT_MS,
                    Ev::JoinTimeout { node: j, incarnation, join: started.join },
                );
                self.send(j, inviter, Kind::Request, conv, started.frame, None);
            }
        }
    }

    /// The person behind `intent` runs the same `hearth join` again.
    fn rejoin(&mut self, k: usize) {
        self.intents[k].answered = true; // superseded by the new command
        let (j, t, text) = (self.intents[k].joiner, self.intents[k].token, self.intents[k].text.clone());
        self.start_join(j, t, text, true);
    }

    // ----- faults -----------------------------------------------------------

    fn crash(&mut self, i: usize, why: &str) {
        self.nodes[i].crash();
        self.stats.bump("fault.crash");
        self.log(format!("crash n{i} {why}"));
        let at = self.now_ms + self.rng.gen_range(200..=5_000);
        self.schedule(at, Ev::Restart(i));
    }

    fn restart(&mut self, i: usize) {
        self.nodes[i].restart();
        self.log(format!("restart n{i} from its durable state"));
    }
}
