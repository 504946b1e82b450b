//! Backups to friends: an owner (n0) backs a small, changing set of files up
//! to its friends with the sans-IO backup cores of
//! `hearth_protocol::backup` (FastCDC chunks with keyed ids, sealed, packed
//! and padded, Reed-Solomon k-of-n shards on distinct friends chosen least
//! loaded first, `default_coding`), as `node/src/backup/engine.rs` does;
//! the friends answer `/hearth/backup/1` requests as `host.rs` does
//! (`decide_put` with their quota, the shard's hash checked on upload);
//! the owner audits (`audit::challenge`/`verify`, one random block of one
//! random shard per friend and round) and repairs as `audit.rs` does: a
//! friend that failed, or stayed away past the grace period, has each of
//! its shards rebuilt from `k` others (checked by id on download, the pack
//! by its id) and uploaded to the least-loaded friend online holding no
//! shard of that pack.
//!
//! Faults: messages lost, duplicated, cut by partitions (a lost request or
//! answer fails the call, as a timeout does); friends going away and coming
//! back; the owner crashing in the middle of a run (the packs placed so far
//! stay in the catalog, as the node saves it after every pack); bit rot in
//! a stored shard; a bad friend silently dropping shards; a friend losing
//! its disk (shards and agreement: it accepts again when asked). Shard
//! damage stays within what the coding tolerates: at most `n - k` damaged
//! shards per pack at a time (`backup.fault_skipped_budget` counts the rest). A
//! stranger asks hosts for shards, audits, hosting, and uploads.
//!
//! The owner also deletes, from friends online, the shards no pack record
//! places on them any more (moved away by a repair, or of a pack whose
//! upload failed half-way), which the node does not do (bug 6 of the
//! README); the node's repair stops at its first failure, the model goes
//! on (bug 4); and a host answers "already have" only for an intact copy
//! (bug 5). Mutants `repair-stops-early`, `stale-shard-kept` and
//! `garbage-kept` are the node as it is.
//!
//! Invariants ([`check`]): after every event, no host holds more than its
//! quota for the owner and nothing for the stranger, and the stranger got
//! no byte of a shard; whatever the owner accepts as good (a download, an
//! audit answer) is the shard it made, byte for byte. When a snapshot
//! completes: every `k` of the `n` shards of each new pack rebuild it, and
//! the snapshot restores byte for byte. After settling (all up, no faults,
//! audits of every shard and repairs until nothing fails): every pack has
//! `n` good shards on `n` distinct friends (unless no friend with room is
//! left that the repair rule may use), every `k` of the good shards rebuild
//! it, every snapshot restores byte for byte from the friends' shards, and
//! no friend keeps a shard no pack places on it.

use std::collections::{BTreeMap, BTreeSet};

use hearth_protocol::backup::audit;
use hearth_protocol::backup::catalog::{Catalog, CATALOG_VERSION};
use hearth_protocol::backup::erasure::ShardId;
use hearth_protocol::backup::hosting::{decide_put, Agreement, PutAction};
use hearth_protocol::backup::keys::{Keys, RootSecret};
use hearth_protocol::backup::wire::{self, BackupRequest, BackupResponse, Refusal};
use hearth_protocol::frame;
use rand::Rng;

use super::{Run, Sim};
use crate::invariants::Violation;
use crate::world::{Config, Faults, Mutant};

mod check;
mod owner;

/// A pack is closed once its sealed chunks reach this (the node's is
/// 16 MiB; small packs give many packs from small files).
const PACK_TARGET: usize = 48 * 1024;
/// Largest file of the workload (one chunk: below FastCDC's minimum).
const MAX_FILE: usize = 40 * 1024;
/// Files on the owner's disk at most.
const MAX_FILES: usize = 12;
/// A friend away longer than this (virtual seconds) loses its shards.
const GRACE_SECS: u64 = 20;
/// Audit and repair sweeps while settling, at most.
const SETTLE_SWEEPS: usize = 12;

#[derive(Debug)]
enum Ev {
    Tick,
    Restart(usize),
    Heal(usize, usize),
    /// The person of host `.0` accepts the owner's hosting request.
    Accept(usize),
}

/// A friend's node, as far as backups go; everything is on its disk.
#[derive(Default)]
struct Host {
    up: bool,
    /// The agreement with the owner (n0) and the bytes it uses.
    agreement: Option<Agreement>,
    used: u64,
    quota: u64,
    /// Shards it holds for the owner.
    shards: BTreeMap<ShardId, Vec<u8>>,
    /// Drops shards it holds, silently.
    bad: bool,
}

/// The owner's record of a friend (`store.rs` `Friend`).
struct Friend {
    accepted: bool,
    stored: u64,
    last_seen: u64,
}

struct Backup {
    sim: Sim<Ev>,
    ids: Vec<Vec<u8>>,
    /// Index 0 is the owner (its host part unused), the last the stranger.
    hosts: Vec<Host>,
    owner_up: bool,
    keys: Keys,
    /// Durable: the catalog is saved after every pack.
    catalog: Catalog,
    friends: BTreeMap<usize, Friend>,
    /// The files on the owner's disk.
    files: BTreeMap<String, Vec<u8>>,
    next_file: u64,
    /// Ground truth: every completed snapshot's files, by snapshot id.
    truth: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Ground truth: every shard the owner made.
    made: BTreeMap<ShardId, Vec<u8>>,
    /// Shards to delete from each friend (no pack record places them
    /// there any more); durable.
    pending_deletes: BTreeMap<usize, BTreeSet<ShardId>>,
    /// Ground truth: what the stranger obtained.
    stranger_got: u64,
    settling: bool,
}

/// Runs the backup scenario of `cfg`.
pub fn run(cfg: &Config) -> Run {
    let mut sim = Sim::new(cfg, 4);
    let n = cfg.nodes.max(2) + 1;
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut id = vec![0u8; 38];
        sim.rng.fill(&mut id[..]);
        ids.push(id);
    }
    let mut root = [0u8; 32];
    sim.rng.fill(&mut root[..]);
    let mut hosts: Vec<Host> = (0..n).map(|_| Host { up: true, ..Host::default() }).collect();
    let mut friends = BTreeMap::new();
    for (h, host) in hosts.iter_mut().enumerate().take(n - 1).skip(1) {
        host.quota = if sim.rng.gen_bool(0.15) { 600_000 } else { sim.rng.gen_range(4_000_000..=16_000_000) };
        host.agreement = Some(Agreement::Accepted { quota: host.quota });
        friends.insert(h, Friend { accepted: true, stored: 0, last_seen: sim.now_secs() });
    }
    if n > 3 && sim.rng.gen_bool(0.5) {
        let bad = sim.rng.gen_range(1..n - 1);
        hosts[bad].bad = true;
        sim.log(format!("n{bad} is a bad friend: it drops shards"));
    }
    let mut b = Backup {
        sim,
        ids,
        hosts,
        owner_up: true,
        keys: RootSecret(root).keys(),
        catalog: Catalog { version: CATALOG_VERSION, ..Catalog::default() },
        friends,
        files: BTreeMap::new(),
        next_file: 0,
        truth: BTreeMap::new(),
        made: BTreeMap::new(),
        pending_deletes: BTreeMap::new(),
        stranger_got: 0,
        settling: false,
    };
    b.sim.bump("sim.runs.backup");
    b.sim.after(0, Ev::Tick);
    for _ in 0..cfg.events {
        let Some(ev) = b.sim.pop() else { break };
        b.handle(ev);
        b.check_hosts();
        if b.sim.failure.is_some() {
            return b.sim.into();
        }
    }
    b.settle();
    b.sim.into()
}

impl Backup {
    fn stranger(&self) -> usize {
        self.ids.len() - 1
    }

    fn up(&self, i: usize) -> bool {
        if i == 0 {
            self.owner_up
        } else {
            self.hosts[i].up
        }
    }

    /// Whether the owner sees friend `h` online (connected).
    fn online(&self, h: usize) -> bool {
        self.hosts[h].up && !self.sim.net.is_cut(0, h) && !self.sim.net.is_cut(h, 0)
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
            Ev::Restart(i) => {
                if i == 0 {
                    self.owner_up = true;
                } else {
                    self.hosts[i].up = true;
                }
                self.sim.log(format!("n{i} is back"));
            }
            Ev::Heal(a, b) => {
                self.sim.net.heal(a, b);
                self.sim.log(format!("heal n{a}<->n{b}"));
            }
            Ev::Accept(h) => self.accept(h),
        }
    }

    fn workload(&mut self) {
        let n = self.ids.len();
        let faults = self.sim.node_faults();
        match self.sim.rng.gen_range(0..100) {
            0..=6 => self.backup_run(),
            7..=21 => self.audit_round(),
            22..=27 => self.stranger_acts(),
            28..=35 if faults => {
                let h = self.sim.rng.gen_range(1..n - 1);
                self.go_away(h, 1_000..=40_000);
            }
            36..=45 if self.sim.cfg.faults != Faults::None => self.sim.partition(n - 1, Ev::Heal),
            46..=49 if faults => self.bit_rot(),
            50..=52 if faults => self.drop_shard(),
            53..=54 if faults => self.disk_loss(),
            55..=56 if faults && self.owner_up => self.go_away(0, 500..=5_000),
            _ => self.sim.log("tick"),
        }
    }

    // ----- network ---------------------------------------------------------

    /// One request-response exchange `from -> to`: `None` if the request
    /// or its answer is lost, cut, or meets a node that is down (the
    /// caller's timeout). A duplicated request is handled twice.
    fn call(&mut self, from: usize, to: usize, request: &BackupRequest) -> Option<BackupResponse> {
        let what = match request {
            BackupRequest::PutShard { shard, .. } => format!("put {}", &shard.hex()[..8]),
            BackupRequest::GetShard { shard, .. } => format!("get {}", &shard.hex()[..8]),
            BackupRequest::Audit(c) => format!("audit {} at {}", &c.shard.hex()[..8], c.offset),
            other => format!("{:?}", std::mem::discriminant(other)),
        };
        let bytes = frame::encode(request, wire::MAX_MESSAGE).expect("encode request");
        let up = self.up(to);
        let copies = self.sim.transmit(from, to, up, &what);
        let mut answer = None;
        for _ in &copies {
            let decoded = frame::decode::<BackupRequest>(&bytes, wire::MAX_MESSAGE).expect("decode request");
            let response = self.answer(to, from, decoded);
            answer.get_or_insert(response);
        }
        let response = answer?;
        let bytes = frame::encode(&response, wire::MAX_MESSAGE).expect("encode response");
        let up = self.up(from);
        if self.sim.transmit(to, from, up, "answer").is_empty() {
            return None;
        }
        let response = frame::decode::<BackupResponse>(&bytes, wire::MAX_MESSAGE).expect("decode response");
        if from == 0 {
            if let Some(f) = self.friends.get_mut(&to) {
                f.last_seen = self.sim.now_secs();
            }
        }
        Some(response)
    }

    /// Host `h` answers `peer` (`host.rs` `try_answer`): only the owner is
    /// a contact with an agreement; shards are checked against their id.
    fn answer(&mut self, h: usize, peer: usize, request: BackupRequest) -> BackupResponse {
        let refused = |code, message: &str| BackupResponse::refused(code, message);
        if h == 0 {
            // The owner is asked nothing but hosting answers.
            return match request {
                BackupRequest::HostingAnswer { accepted, .. } if self.friends.contains_key(&peer) => {
                    if let Some(f) = self.friends.get_mut(&peer) {
                        f.accepted = accepted;
                    }
                    self.sim.log(format!("n0 learns n{peer} hosts its backup again"));
                    BackupResponse::Ok
                }
                _ => refused(Refusal::NotAFriend, "we did not ask you to host our backup"),
            };
        }
        let is_owner = peer == 0;
        if let BackupRequest::Hosting { offer, .. } = request {
            if !is_owner {
                return refused(Refusal::NotAFriend, "not a contact");
            }
            let host = &mut self.hosts[h];
            let agreement = *host.agreement.get_or_insert(Agreement::Pending { offer });
            if matches!(agreement, Agreement::Pending { .. }) {
                let d = self.sim.rng.gen_range(500..=5_000);
                self.sim.after(d, Ev::Accept(h));
            }
            return BackupResponse::Hosting { state: agreement.name().into(), quota: agreement.quota() };
        }
        let host = &mut self.hosts[h];
        if !is_owner || host.agreement.is_none() {
            return refused(Refusal::NotAFriend, "this node hosts no backup for you");
        }
        match request {
            BackupRequest::PutShard { shard, offset, total, data } => {
                // A shard held already is "had" only if it is intact: a copy
                // that rotted here, was repaired onto another friend and
                // comes back in a later repair would otherwise stay rotten
                // behind an `AlreadyHave` (bug 5; `host.rs` does not check).
                let stale = host.shards.get(&shard).is_some_and(|b| ShardId::of(b) != shard);
                if stale && self.sim.cfg.mutant != Some(Mutant::StaleShardKept) {
                    let len = host.shards.remove(&shard).map(|b| b.len() as u64).unwrap_or(0);
                    host.used = host.used.saturating_sub(len);
                    self.sim.bump("host.dropped_rotten_copy");
                }
                let have = host.shards.get(&shard).map(|s| s.len() as u64);
                let action = decide_put(
                    host.agreement.as_ref(),
                    host.used,
                    have.unwrap_or(0),
                    have.is_some(),
                    0,
                    offset,
                    total,
                    data.len(),
                );
                match action {
                    Err((code, message)) => BackupResponse::refused(code, message),
                    Ok(PutAction::AlreadyHave) => BackupResponse::Stored { have: total },
                    Ok(PutAction::Append { complete: false }) => {
                        refused(Refusal::BadRequest, "the simulator uploads shards in one piece")
                    }
                    Ok(PutAction::Append { complete: true }) => {
                        if ShardId::of(&data) != shard {
                            self.sim.bump("host.refused_corrupt_upload");
                            return refused(Refusal::Corrupt, "the shard does not hash to its id");
                        }
                        host.used += total;
                        host.shards.insert(shard, data);
                        BackupResponse::Stored { have: total }
                    }
                }
            }
            BackupRequest::GetShard { shard, offset, len } => match host.shards.get(&shard) {
                Some(bytes) => BackupResponse::Data { total: bytes.len() as u64, data: range(bytes, offset, len) },
                None => refused(Refusal::NotFound, "no such object here"),
            },
            BackupRequest::Audit(c) => match host.shards.get(&c.shard) {
                Some(bytes) => BackupResponse::Proof { nonce: c.nonce.to_vec(), data: range(bytes, c.offset, c.len) },
                None => refused(Refusal::NotFound, "no such object here"),
            },
            BackupRequest::Delete { shards } => {
                let (mut count, mut freed) = (0u32, 0u64);
                for id in shards {
                    if let Some(b) = host.shards.remove(&id) {
                        count += 1;
                        freed += b.len() as u64;
                    }
                }
                host.used = host.used.saturating_sub(freed);
                BackupResponse::Deleted { count, freed }
            }
            _ => refused(Refusal::BadRequest, "not simulated"),
        }
    }

    /// Host `h`'s person accepts the hosting request, and its node tells
    /// the owner (again later if the owner cannot be reached).
    fn accept(&mut self, h: usize) {
        if !self.hosts[h].up {
            let d = self.sim.rng.gen_range(1_000..=5_000);
            return self.sim.after(d, Ev::Accept(h));
        }
        let quota = self.hosts[h].quota;
        match self.hosts[h].agreement {
            Some(Agreement::Pending { .. }) => {
                self.hosts[h].agreement = Some(Agreement::Accepted { quota });
                self.sim.log(format!("n{h} accepts to host n0's backup ({quota} bytes)"));
            }
            Some(Agreement::Accepted { .. }) => {}
            _ => return,
        }
        let answer = BackupRequest::HostingAnswer { accepted: true, quota };
        if self.call(h, 0, &answer).is_none() {
            let d = self.sim.rng.gen_range(1_000..=5_000);
            self.sim.after(d, Ev::Accept(h));
        }
    }

    fn index_of(&self, peer: &[u8]) -> Option<usize> {
        self.ids.iter().position(|p| p == peer)
    }

    // ----- the stranger --------------------------------------------------------

    /// A stranger who learned shard ids asks a host for one, audits it,
    /// asks for hosting, or uploads a shard of its own.
    fn stranger_acts(&mut self) {
        let s = self.stranger();
        let h = self.sim.rng.gen_range(1..s);
        let known: Vec<ShardId> = self.made.keys().copied().collect();
        let shard = if known.is_empty() { ShardId([9; 32]) } else { known[self.sim.rng.gen_range(0..known.len())] };
        let mut junk = vec![0u8; self.sim.rng.gen_range(1..2_000)];
        self.sim.rng.fill(&mut junk[..]);
        let request = match self.sim.rng.gen_range(0..4) {
            0 => BackupRequest::GetShard { shard, offset: 0, len: 1 << 20 },
            1 => BackupRequest::Audit(audit::challenge(shard, 1 << 16, 0, [3; 16])),
            2 => BackupRequest::Hosting { offer: 1 << 30, restore_peer: vec![1; 38], passphrase_peer: None },
            _ => BackupRequest::PutShard { shard: ShardId::of(&junk), offset: 0, total: junk.len() as u64, data: junk },
        };
        self.sim.bump("hostile.backup_request");
        let answer = self.call(s, h, &request);
        self.sim.log(format!("stranger n{s} asks n{h}: {answer:?}"));
        match answer {
            None | Some(BackupResponse::Refused { .. }) => {}
            Some(BackupResponse::Data { data, .. }) | Some(BackupResponse::Proof { data, .. }) => {
                self.stranger_got += data.len() as u64;
            }
            Some(other) => {
                let v = Violation::new("stranger_served", format!("n{h} answered the stranger with {other:?}"));
                self.sim.fail(v);
            }
        }
    }

    // ----- faults ----------------------------------------------------------------

    fn go_away(&mut self, i: usize, downtime: std::ops::RangeInclusive<u64>) {
        if !self.up(i) {
            return;
        }
        if i == 0 {
            self.owner_up = false;
        } else {
            self.hosts[i].up = false;
        }
        self.sim.bump(if i == 0 { "fault.owner_crash" } else { "fault.friend_away" });
        let d = self.sim.rng.gen_range(downtime);
        self.sim.log(format!("n{i} goes away for {d} ms"));
        self.sim.after(d, Ev::Restart(i));
    }

    /// A random shard of a random host, if damaging it stays within the
    /// coding's tolerance.
    fn victim(&mut self, only_bad: bool) -> Option<(usize, ShardId)> {
        let hosts: Vec<usize> = (1..self.stranger())
            .filter(|&h| !self.hosts[h].shards.is_empty() && (!only_bad || self.hosts[h].bad))
            .collect();
        if hosts.is_empty() {
            return None;
        }
        let h = hosts[self.sim.rng.gen_range(0..hosts.len())];
        let ids: Vec<ShardId> = self.hosts[h].shards.keys().copied().collect();
        let id = ids[self.sim.rng.gen_range(0..ids.len())];
        if self.damage_ok(h, Some(id)) {
            Some((h, id))
        } else {
            self.sim.bump("backup.fault_skipped_budget");
            None
        }
    }

    fn bit_rot(&mut self) {
        let Some((h, id)) = self.victim(false) else { return };
        let shard = self.hosts[h].shards.get_mut(&id).expect("victim");
        let at = self.sim.rng.gen_range(0..shard.len());
        shard[at] ^= 1 << self.sim.rng.gen_range(0..8);
        self.sim.bump("fault.bit_rot");
        self.sim.log(format!("bit rot in shard {} on n{h} at byte {at}", &id.hex()[..8]));
    }

    fn drop_shard(&mut self) {
        let Some((h, id)) = self.victim(true) else { return };
        self.hosts[h].shards.remove(&id);
        self.sim.bump("fault.shard_dropped");
        self.sim.log(format!("bad friend n{h} drops shard {}", &id.hex()[..8]));
    }

    fn disk_loss(&mut self) {
        let h = self.sim.rng.gen_range(1..self.stranger());
        if !self.damage_ok(h, None) {
            return self.sim.bump("backup.fault_skipped_budget");
        }
        let host = &mut self.hosts[h];
        host.shards.clear();
        host.agreement = None;
        host.used = 0;
        self.sim.bump("fault.disk_loss");
        self.sim.log(format!("n{h} loses its disk: shards and agreement gone"));
        self.go_away(h, 1_000..=10_000);
    }
}

fn range(bytes: &[u8], offset: u64, len: u32) -> Vec<u8> {
    let start = (offset as usize).min(bytes.len());
    let end = start.saturating_add(len as usize).min(bytes.len());
    bytes[start..end].to_vec()
}
