//! The scenarios beyond pairing: shared folders ([`share`]), bank views
//! ([`bank`]) and backups ([`backup`]). Each drives the real cores
//! (`hearth_crdt::doc`/`folder`/`bank`, `hearth_protocol::share`/`bank`/
//! `backup`) over the simulated [`Network`] with the same determinism
//! rules as the pairing world: one `ChaCha8Rng`, a virtual clock, events in
//! a `BTreeMap` keyed by (time, sequence), one trace line per event.
//!
//! [`Sim`] is the part they share: clock, queue, RNG, trace, counters,
//! network and the first violation.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::invariants::Violation;
use crate::net::{NetFaults, Network};
use crate::world::{Config, Faults, Stats, EPOCH_SECS};

pub mod backup;
pub mod bank;
pub mod share;

/// Signs and verifies as the simulated nodes' keys: a keyed BLAKE3 of the
/// message under a key only the simulator knows per peer. The hostile
/// nodes can only sign as themselves, like with ed25519.
pub struct SimKey(pub Vec<u8>);

fn key_of(peer: &[u8]) -> [u8; 32] {
    blake3::derive_key("hearth-simulator signing key v1", peer)
}

impl hearth_crdt::doc::Signer for SimKey {
    fn peer(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        blake3::keyed_hash(&key_of(&self.0), message).as_bytes().to_vec()
    }
}

/// Verifies [`SimKey`] signatures.
pub struct SimVerifier;

impl hearth_crdt::doc::Verifier for SimVerifier {
    fn verify(&self, peer: &[u8], message: &[u8], signature: &[u8]) -> bool {
        blake3::keyed_hash(&key_of(peer), message).as_bytes().as_slice() == signature
    }
}

/// The machinery every scenario shares.
pub struct Sim<E> {
    /// The run's parameters.
    pub cfg: Config,
    /// The only randomness.
    pub rng: ChaCha8Rng,
    /// Virtual milliseconds.
    pub now_ms: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), E>,
    /// One line per event at least.
    pub trace: Vec<String>,
    /// Counters.
    pub stats: Stats,
    /// Links and fault probabilities.
    pub net: Network,
    /// The first violation (the run stops there).
    pub failure: Option<Violation>,
    next_msg: u64,
}

impl<E> Sim<E> {
    /// A simulation for `cfg`; `salt` separates the scenarios' streams of
    /// one seed.
    pub fn new(cfg: &Config, salt: u64) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let faults = if cfg.faults == Faults::None { NetFaults::NONE } else { NetFaults::LOSSY };
        Self {
            cfg: cfg.clone(),
            rng,
            now_ms: 0,
            seq: 0,
            queue: BTreeMap::new(),
            trace: Vec::new(),
            stats: Stats::default(),
            net: Network::new(faults),
            failure: None,
            next_msg: 0,
        }
    }

    /// Unix seconds now, as the cores see them.
    pub fn now_secs(&self) -> u64 {
        EPOCH_SECS + self.now_ms / 1000
    }

    /// Appends a trace line stamped with the virtual time.
    pub fn log(&mut self, line: impl AsRef<str>) {
        self.trace.push(format!("{:>8} {}", self.now_ms, line.as_ref()));
    }

    /// Adds one to a counter.
    pub fn bump(&mut self, key: impl Into<String>) {
        self.stats.bump(key);
    }

    /// Schedules `ev` `delay` ms from now.
    pub fn after(&mut self, delay: u64, ev: E) {
        self.queue.insert((self.now_ms + delay, self.seq), ev);
        self.seq += 1;
    }

    /// The next event, advancing the clock to it.
    pub fn pop(&mut self) -> Option<E> {
        let ((at, _), ev) = self.queue.pop_first()?;
        self.now_ms = at;
        self.stats.bump("sim.events");
        Some(ev)
    }

    /// Events waiting.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Records the first violation.
    pub fn fail(&mut self, v: Violation) {
        if self.failure.is_none() {
            self.log(format!("VIOLATION {v}"));
            self.failure = Some(v);
        }
    }

    /// Whether faults of kind "all" (crashes, disk loss) are on.
    pub fn node_faults(&self) -> bool {
        self.cfg.faults == Faults::All
    }

    /// Sends a message `from -> to` whose receiver is up (`to_up`): the
    /// delays of its copies (none: lost or cut), logged and counted.
    pub fn transmit(&mut self, from: usize, to: usize, to_up: bool, what: &str) -> Vec<u64> {
        self.next_msg += 1;
        let id = self.next_msg;
        self.stats.bump("net.sent");
        if !to_up {
            self.stats.bump("net.unreachable");
            self.log(format!("send #{id} n{from}->n{to} {what}: n{to} is down"));
            return Vec::new();
        }
        if self.net.is_cut(from, to) {
            self.stats.bump("net.cut");
            self.log(format!("send #{id} n{from}->n{to} {what}: link cut"));
            return Vec::new();
        }
        let delays = self.net.fate(&mut self.rng);
        match delays.len() {
            0 => self.stats.bump("net.lost"),
            2 => self.stats.bump("net.duplicated"),
            _ => {}
        }
        self.log(format!("send #{id} n{from}->n{to} {what}: delays {delays:?}"));
        delays
    }

    /// A random partition (one or both directions) between two of `n`
    /// nodes, healed after a while by `heal`.
    pub fn partition(&mut self, n: usize, heal: impl FnOnce(usize, usize) -> E) {
        let a = self.rng.gen_range(0..n);
        let b = self.rng.gen_range(0..n);
        if a == b {
            return;
        }
        let both = self.rng.gen_bool(0.5);
        self.net.cut(a, b);
        if both {
            self.net.cut(b, a);
        }
        self.bump(if both { "fault.partition" } else { "fault.partition_one_way" });
        self.log(format!("partition n{a}{}n{b}", if both { "<->" } else { "->" }));
        let at = self.rng.gen_range(500..=20_000);
        self.after(at, heal(a, b));
    }
}

/// The result of one scenario run.
pub struct Run {
    /// Trace lines.
    pub trace: Vec<String>,
    /// Counters.
    pub stats: Stats,
    /// The first violation.
    pub failure: Option<Violation>,
}

impl<E> From<Sim<E>> for Run {
    fn from(sim: Sim<E>) -> Self {
        Run { trace: sim.trace, stats: sim.stats, failure: sim.failure }
    }
}
