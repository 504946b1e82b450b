//! Shared folders: an owner, members who join, edit, lose their network,
//! crash and leave, a read-only member who forges writes and a stranger who
//! forges changes, over `hearth_crdt::doc::ShareDoc` + `folder` and the
//! `/hearth/share/1` sync messages (`hearth_protocol::share`), as
//! `node/src/share/mod.rs` drives them.
//!
//! A node here is that module's state: the share record (joined, removed),
//! the document (saved at a crash and loaded at the restart, so received
//! changes still waiting for their dependencies are lost, as in the node),
//! the peers' last heads and, standing for the directory, what the last
//! write-out put on disk per entry (main file and conflict copies) and the
//! contents in the blob store. Edits are what a scan records of a person's
//! change on disk: a new version of the file they see (or a conflict copy,
//! by `Folder::edit_is_concurrent`, the scan's rule), creations, renames,
//! moves (also into each other), deletions. Each content has a small
//! manifest of a few chunks (made from the content id and the RNG when it is
//! written); a node missing a content runs `hearth_protocol::blob::Fetcher`
//! over the members online to it (as `node/src/net/event_loop/fetch.rs`
//! does), `Get`s and `Response`s travel as simulated messages, holders answer
//! with `blob::answer` from their chunk store, the read-only forger answers
//! with flipped bytes, and the content counts as here (a write-out follows)
//! only when the fetcher is done. Every chunk a fetcher verifies must be the
//! original (`corrupt_chunk_accepted`).
//!
//! Invariants: after every event, the node that changed has a tree that
//! passes `Tree::check_invariants`, and no change by the read-only member or
//! the stranger was applied anywhere; an honest member never refuses a
//! member's sync. After settling (links healed, nodes restarted, faults
//! off, everyone synced with everyone): every member holds the same heads
//! and the same items; every write committed by a read-write member is
//! still a version of its entry (the file, a conflict copy, or in the
//! trash) unless a later write superseded it by someone who had it on disk.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::ReadDoc;
use hearth_crdt::doc::{Hash, Role, ShareDoc, SignedChange};
use hearth_crdt::folder::{Editor, Folder, Kind, Version};
use hearth_crdt::tree::EntryId;
use hearth_protocol::blob::{answer, ChunkHash, ChunkRef, FetchConfig, FetchEvent, Fetcher, Get, Manifest, Response};
use hearth_protocol::frame;
use hearth_protocol::share::{self as wire, ShareRequest, ShareResponse, WireChange};
use rand::Rng;

use super::{Run, Sim, SimKey, SimVerifier};
use crate::invariants::Violation;
use crate::world::Config;

mod blob;
mod check;
mod workload;

const SHARE_ID: [u8; 16] = [7; 16];
const NAMES: [&str; 6] = ["a.txt", "b.txt", "A.txt", "notes", "photo.jpg", "c"];

#[derive(Debug)]
enum Ev {
    Tick,
    Deliver { from: usize, to: usize, to_inc: u64, bytes: Vec<u8>, response: bool },
    Accept(usize),
    BlobGet { from: usize, to: usize, to_inc: u64, content: Vec<u8>, get: Get },
    BlobAnswer { from: usize, to: usize, to_inc: u64, content: Vec<u8>, get: Get, response: Response },
    FetchTimer { node: usize, inc: u64, content: Vec<u8> },
    WriteOut { node: usize, inc: u64 },
    Restart(usize),
    Heal(usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    Member,
    /// A read-only member that forges writes.
    ReadOnlyForger,
    /// Never a member; holds a leaked copy of the document.
    Stranger,
}

/// What a crash leaves of a document: its bytes and signatures.
type Saved = (Vec<u8>, BTreeMap<Hash, Vec<u8>>);
/// Contents on disk of one entry: the main file's, the conflict copies'.
type OnDisk = (Option<Vec<u8>>, BTreeSet<Vec<u8>>);
/// A member's listing: path and content of every item.
type Listing = Vec<(Vec<String>, Vec<u8>)>;

struct Node {
    id: Vec<u8>,
    name: String,
    who: Who,
    up: bool,
    inc: u64,
    /// Accepted the invitation and not (known to be) removed.
    active: bool,
    /// Invited and not yet accepted.
    invited: bool,
    doc: Option<ShareDoc>,
    /// The document as saved at a crash (bytes, signatures).
    saved: Option<Saved>,
    peer_heads: BTreeMap<usize, Vec<Hash>>,
    /// Contents on disk per entry: the main file's and the conflict copies'.
    disk: BTreeMap<EntryId, OnDisk>,
    /// Contents wholly here (every chunk of their manifest in `chunks`).
    blobs: BTreeSet<Vec<u8>>,
    /// The chunk store (durable): verified chunks by hash.
    chunks: BTreeMap<ChunkHash, Vec<u8>>,
    /// Downloads in progress per content (in memory: lost at a crash).
    downloads: BTreeMap<Vec<u8>, Download>,
}

/// One content being fetched: the core's planner, the peers it was given,
/// the time of the timer set for it.
struct Download {
    fetcher: Fetcher,
    peers: BTreeSet<usize>,
    timer: Option<u64>,
}

fn fetch_config() -> FetchConfig {
    FetchConfig {
        max_in_flight_per_peer: 4,
        request_timeout_ms: 6_000,
        backoff_initial_ms: 500,
        backoff_max_ms: 8_000,
        ..FetchConfig::default()
    }
}

/// A version committed by a read-write member, and what its author had on
/// disk of that entry when it replaced the entry's versions.
struct Write {
    author: usize,
    entry: EntryId,
    content: Vec<u8>,
    seen: BTreeSet<Vec<u8>>,
    /// The author later learned it had been removed: what it had not sent
    /// by then stays on its disk only.
    author_left: bool,
}

impl Write {
    /// A write of a new file or conflict copy: nobody had replaced anything.
    fn fresh(author: usize, entry: EntryId, content: Vec<u8>) -> Self {
        Write { author, entry, content, seen: BTreeSet::new(), author_left: false }
    }
}

struct Share {
    sim: Sim<Ev>,
    nodes: Vec<Node>,
    writes: Vec<Write>,
    settling: bool,
    /// Ground truth: every content's manifest, and every chunk's bytes.
    manifests: BTreeMap<Vec<u8>, Manifest>,
    originals: BTreeMap<ChunkHash, Vec<u8>>,
}

fn short(bytes: &[u8]) -> String {
    bytes.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

fn heads_wire(heads: &[Hash]) -> Vec<serde_bytes::ByteBuf> {
    heads.iter().map(|h| serde_bytes::ByteBuf::from(h.0.to_vec())).collect()
}

fn heads_from(heads: &[serde_bytes::ByteBuf]) -> Vec<Hash> {
    heads.iter().filter_map(|h| <[u8; 32]>::try_from(h.as_slice()).ok().map(Hash)).collect()
}

fn to_wire(c: SignedChange) -> WireChange {
    WireChange { change: c.change, signature: c.signature }
}

/// Runs the share scenario of `cfg`.
pub fn run(cfg: &Config) -> Run {
    let mut sim = Sim::new(cfg, 2);
    let honest = cfg.nodes.max(2);
    let mut nodes = Vec::new();
    for i in 0..honest + 2 {
        let mut id = vec![0u8; 38];
        sim.rng.fill(&mut id[..]);
        let who = match i {
            0 => Who::Owner,
            i if i == honest => Who::ReadOnlyForger,
            i if i == honest + 1 => Who::Stranger,
            _ => Who::Member,
        };
        let name = match who {
            Who::ReadOnlyForger => "rory".to_string(),
            Who::Stranger => "mallory".to_string(),
            _ => format!("node-{i}"),
        };
        nodes.push(Node {
            id,
            name,
            who,
            up: true,
            inc: 0,
            active: false,
            invited: false,
            doc: None,
            saved: None,
            peer_heads: BTreeMap::new(),
            disk: BTreeMap::new(),
            blobs: BTreeSet::new(),
            chunks: BTreeMap::new(),
            downloads: BTreeMap::new(),
        });
    }
    let mut share = Share {
        sim,
        nodes,
        writes: Vec::new(),
        settling: false,
        manifests: BTreeMap::new(),
        originals: BTreeMap::new(),
    };
    share.setup();
    share.run();
    share.sim.into()
}

impl Share {
    fn key(&self, i: usize) -> SimKey {
        SimKey(self.nodes[i].id.clone())
    }

    fn index_of(&self, peer: &[u8]) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == peer)
    }

    fn setup(&mut self) {
        let now = self.sim.now_secs() as i64;
        let owner_key = self.key(0);
        let (doc, _) = ShareDoc::create(&SHARE_ID, "family", &owner_key, now).expect("create share");
        self.nodes[0].doc = Some(doc);
        self.nodes[0].active = true;
        self.sim.log("n0 creates share \"family\"");
        // Rory is invited read-only at once; others as the workload goes.
        let rory = self.nodes.len() - 2;
        self.invite(rory, Role::ReadOnly);
        let first = self.sim.rng.gen_range(1..self.nodes.len() - 2);
        self.invite(first, Role::ReadWrite);
        // Mallory's leaked copy: the document as it is now.
        let mallory = self.nodes.len() - 1;
        self.leak_to(mallory);
    }

    fn leak_to(&mut self, i: usize) {
        let owner = self.nodes[0].id.clone();
        let local = self.nodes[i].id.clone();
        let Some(doc) = self.nodes[0].doc.as_mut() else { return };
        let (bytes, sigs) = (doc.save(), doc.signatures().clone());
        self.nodes[i].doc = ShareDoc::load(&bytes, sigs, &owner, &local).ok();
    }

    fn run(&mut self) {
        self.sim.bump("sim.runs.share");
        self.sim.after(0, Ev::Tick);
        for _ in 0..self.sim.cfg.events {
            let Some(ev) = self.sim.pop() else { break };
            self.handle(ev);
            if self.sim.failure.is_some() {
                return;
            }
        }
        self.settle();
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
                if !self.nodes[to].up || self.nodes[to].inc != to_inc {
                    self.sim.bump("net.connection_lost");
                    return self.sim.log(format!("drop n{from}->n{to}: receiver crashed"));
                }
                self.sim.bump("net.delivered");
                if response {
                    self.on_response(to, from, &bytes);
                } else {
                    self.on_request(to, from, &bytes);
                }
            }
            Ev::Accept(i) => self.accept(i),
            Ev::BlobGet { from, to, to_inc, content, get } => {
                if self.blob_delivered(from, to, to_inc) {
                    self.serve(to, from, content, get);
                }
            }
            Ev::BlobAnswer { from, to, to_inc, content, get, response } => {
                if self.blob_delivered(from, to, to_inc) {
                    self.on_blob_answer(to, from, content, get, response);
                }
            }
            Ev::FetchTimer { node, inc, content } => {
                if self.nodes[node].up && self.nodes[node].inc == inc {
                    if let Some(d) = self.nodes[node].downloads.get_mut(&content) {
                        d.timer = None;
                        self.drive(node, content);
                    }
                }
            }
            Ev::WriteOut { node, inc } => {
                if self.nodes[node].up && self.nodes[node].inc == inc {
                    self.write_out(node);
                } else {
                    self.sim.log(format!("n{node} write-out lost in a crash"));
                }
            }
            Ev::Restart(i) => {
                if !self.nodes[i].up {
                    self.restart(i);
                }
            }
            Ev::Heal(a, b) => {
                self.sim.net.heal(a, b);
                self.sim.log(format!("heal n{a}<->n{b}"));
                self.drive_all(a);
                self.drive_all(b);
                for (x, y) in [(a, b), (b, a)] {
                    if self.is_member_peer(x, y) {
                        self.sync_to(x, y);
                    }
                }
            }
        }
    }

    // ----- membership ------------------------------------------------------

    fn invite(&mut self, i: usize, role: Role) {
        let now = self.sim.now_secs() as i64;
        let key = self.key(0);
        let peer = self.nodes[i].id.clone();
        let Some(doc) = self.nodes[0].doc.as_mut() else { return };
        if doc.set_role(&peer, Some(role)).is_err() {
            return;
        }
        if let Err(e) = doc.commit(&key, now) {
            return self.sim.fail(Violation::new("owner_refused", format!("n0 cannot invite n{i}: {e}")));
        }
        self.sim.bump(format!("share.invite.{}", role.as_str()));
        self.sim.log(format!("n0 invites n{i} as {}", role.as_str()));
        // A node that still takes part answers a new invitation at once
        // and keeps its document (`on_request`, "a resent invitation").
        if !self.nodes[i].active {
            self.nodes[i].invited = true;
            let delay = self.sim.rng.gen_range(50..=3_000);
            self.sim.after(delay, Ev::Accept(i));
        }
        self.sync_all(0, None);
    }

    /// `hearth share accept`: an empty document, then a sync with the owner.
    fn accept(&mut self, i: usize) {
        if !self.nodes[i].up || !self.nodes[i].invited {
            return self.sim.log(format!("n{i} does not accept now"));
        }
        let owner = self.nodes[0].id.clone();
        let local = self.nodes[i].id.clone();
        let n = &mut self.nodes[i];
        n.invited = false;
        n.active = true;
        n.doc = Some(ShareDoc::join(&owner, &local));
        n.disk.clear();
        n.peer_heads.clear();
        self.sim.bump("share.accept");
        self.sim.log(format!("n{i} accepts the share with an empty document"));
        self.sync_to(i, 0);
    }

    /// Members other than `i` that `i`'s document lists (and the owner).
    fn members_seen_by(&self, i: usize) -> Vec<usize> {
        let Some(doc) = &self.nodes[i].doc else { return Vec::new() };
        let mut out: Vec<usize> =
            doc.members().into_iter().filter_map(|(p, _)| self.index_of(&p)).filter(|&j| j != i).collect();
        if i != 0 && !out.contains(&0) {
            out.push(0);
        }
        out.sort_unstable();
        out
    }

    fn is_member_peer(&self, i: usize, j: usize) -> bool {
        self.nodes[i].active && self.nodes[i].up && self.members_seen_by(i).contains(&j)
    }

    fn left(&mut self, i: usize) {
        self.nodes[i].active = false;
        for w in self.writes.iter_mut().filter(|w| w.author == i) {
            w.author_left = true;
        }
    }

    // ----- sync ------------------------------------------------------------

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>, response: bool, what: &str) {
        let up = self.nodes[to].up;
        let to_inc = self.nodes[to].inc;
        for d in self.sim.transmit(from, to, up, what) {
            self.sim.after(d, Ev::Deliver { from, to, to_inc, bytes: bytes.clone(), response });
        }
    }

    fn sync_all(&mut self, i: usize, except: Option<usize>) {
        if !self.nodes[i].active || !self.nodes[i].up {
            return;
        }
        for j in self.members_seen_by(i) {
            if Some(j) != except {
                self.sync_to(i, j);
            }
        }
    }

    fn sync_to(&mut self, i: usize, j: usize) {
        if !self.nodes[i].active || !self.nodes[i].up {
            return;
        }
        let known = self.nodes[i].peer_heads.get(&j).cloned();
        let Some(doc) = self.nodes[i].doc.as_mut() else { return };
        let changes = match known {
            Some(theirs) => wire::bounded(doc.changes_for(&theirs).into_iter().map(to_wire)).0,
            None => Vec::new(),
        };
        let n = changes.len();
        let request = ShareRequest::Sync { share: SHARE_ID.to_vec(), heads: heads_wire(&doc.heads()), changes };
        let bytes = frame::encode(&request, wire::MAX_MESSAGE).expect("encode sync");
        self.send(i, j, bytes, false, &format!("sync {n} change(s)"));
    }

    /// Applies changes received by `i` from `from`; checks that nothing
    /// unauthorised got in. Returns (applied, rejected).
    fn apply(&mut self, i: usize, from: usize, changes: Vec<WireChange>) -> (usize, usize) {
        if changes.is_empty() {
            return (0, 0);
        }
        let me = self.nodes[i].id.clone();
        let Some(doc) = self.nodes[i].doc.as_mut() else { return (0, 0) };
        let signed = changes.into_iter().map(|c| SignedChange { change: c.change, signature: c.signature }).collect();
        let report = doc.receive(signed, &SimVerifier);
        let mut authors = Vec::new();
        for h in &report.applied {
            if let Some(c) = doc.automerge().get_change_by_hash(h) {
                authors.push(c.actor_id().to_bytes().to_vec());
            }
        }
        let removed = doc.was_removed(&me);
        for (_, author, why) in &report.rejected {
            let who = self.index_of(author).map(|a| format!("n{a}")).unwrap_or_else(|| "?".into());
            self.sim.bump("share.rejected");
            self.sim.log(format!("n{i} refuses a change by {who} from n{from}: {why}"));
        }
        let (applied, rejected) = (report.applied.len(), report.rejected.len());
        self.sim.log(format!("n{i} applies {applied} change(s) from n{from} ({} pending)", report.pending));
        for author in authors {
            let a = self.index_of(&author);
            if let Some(a) = a.filter(|&a| matches!(self.nodes[a].who, Who::ReadOnlyForger | Who::Stranger)) {
                self.sim.fail(Violation::new(
                    "unauthorised_change_applied",
                    format!("n{i} applied a change by {} (n{a})", self.nodes[a].name),
                ));
            }
        }
        if applied > 0 {
            self.sim.bump("share.changes_applied");
            if removed && self.nodes[i].who != Who::Owner {
                self.sim.bump("share.learned_removal");
                self.sim.log(format!("n{i} learns it was removed; its files stay"));
                self.left(i);
            } else {
                self.check_tree(i);
                let d = self.sim.rng.gen_range(1..=400);
                let inc = self.nodes[i].inc;
                self.sim.after(d, Ev::WriteOut { node: i, inc });
            }
        }
        (applied, rejected)
    }

    fn on_request(&mut self, i: usize, from: usize, bytes: &[u8]) {
        let request = match frame::decode::<ShareRequest>(bytes, wire::MAX_MESSAGE) {
            Ok(r) => r,
            Err(e) => return self.sim.log(format!("n{i} refuses a frame from n{from}: {e}")),
        };
        let ShareRequest::Sync { heads, changes, .. } = request else { return };
        let refusal = if !self.nodes[i].active {
            Some("this node does not take part in that share")
        } else {
            let peer = self.nodes[from].id.clone();
            let doc = self.nodes[i].doc.as_ref().expect("active node has a document");
            if !doc.may_sync(&peer) {
                Some(wire::NOT_A_MEMBER)
            } else {
                None
            }
        };
        if let Some(message) = refusal {
            self.sim.bump("share.sync_refused");
            self.sim.log(format!("n{i} refuses a sync from n{from}: {message}"));
            // The owner is a member of its share from its first change on:
            // a member that refuses it is cut off from its share.
            if from == 0 && self.nodes[i].active && self.nodes[i].who == Who::Member {
                let empty = self.nodes[i].doc.as_mut().is_some_and(|d| d.heads().is_empty());
                self.sim.fail(Violation::new(
                    "owner_refused",
                    format!("active member n{i} refused the owner's sync (its document is empty: {empty})"),
                ));
            }
            let response = ShareResponse::Refused { message: message.into() };
            let bytes = frame::encode(&response, wire::MAX_MESSAGE).expect("encode");
            return self.send(i, from, bytes, true, "refused");
        }
        let (applied, rejected) = self.apply(i, from, changes);
        let theirs = heads_from(&heads);
        self.nodes[i].peer_heads.insert(from, theirs.clone());
        let doc = self.nodes[i].doc.as_mut().expect("document");
        let (changes, more) = wire::bounded(doc.changes_for(&theirs).into_iter().map(to_wire));
        let n = changes.len();
        let response =
            ShareResponse::Sync { heads: heads_wire(&doc.heads()), changes, more, rejected: rejected as u32 };
        let bytes = frame::encode(&response, wire::MAX_MESSAGE).expect("encode");
        self.send(i, from, bytes, true, &format!("sync answer {n} change(s)"));
        if applied > 0 && self.nodes[i].active {
            self.sync_all(i, Some(from));
        }
    }

    fn on_response(&mut self, i: usize, from: usize, bytes: &[u8]) {
        let response = match frame::decode::<ShareResponse>(bytes, wire::MAX_MESSAGE) {
            Ok(r) => r,
            Err(e) => return self.sim.log(format!("n{i} refuses a frame from n{from}: {e}")),
        };
        match response {
            ShareResponse::Sync { heads, changes, more, .. } => {
                if !self.nodes[i].active {
                    return self.sim.log(format!("n{i} ignores a sync answer: not active"));
                }
                let (applied, _) = self.apply(i, from, changes);
                let theirs = heads_from(&heads);
                let before = self.nodes[i].peer_heads.insert(from, theirs.clone());
                // Another round when they have more, or lack some of ours,
                // but only if this round moved their heads: a peer whose
                // heads include a change we refused (the read-only forger)
                // seems to lack everything, and was sent our whole history
                // again and again, forever (bug 2).
                let moved = before.as_ref() != Some(&theirs);
                let owe = moved && self.nodes[i].doc.as_mut().is_some_and(|d| !d.changes_for(&theirs).is_empty());
                // (The hostile nodes do not follow up.)
                let honest = matches!(self.nodes[i].who, Who::Owner | Who::Member);
                if self.nodes[i].active && honest && (more || owe) {
                    self.sync_to(i, from);
                }
                if applied > 0 {
                    self.sync_all(i, Some(from));
                }
            }
            ShareResponse::Refused { message } => {
                self.sim.log(format!("n{i}'s sync refused by n{from}: {message}"));
                if from == 0 && message == wire::NOT_A_MEMBER && i != 0 {
                    self.left(i);
                    self.sim.log(format!("n{i} was removed by the owner; its files stay"));
                }
            }
            ShareResponse::Ok => {}
        }
    }

    // ----- disk ------------------------------------------------------------

    /// `ShareFs::materialise` in outline: every item whose content is here
    /// is on disk; the rest is fetched.
    fn write_out(&mut self, i: usize) {
        if !self.nodes[i].active && self.nodes[i].who != Who::Owner {
            return;
        }
        let Some(doc) = &self.nodes[i].doc else { return };
        let folder = Folder::from_doc(doc);
        let mut disk: BTreeMap<EntryId, OnDisk> = BTreeMap::new();
        let mut missing = Vec::new();
        for item in folder.items() {
            if item.version.kind == Kind::Dir {
                continue;
            }
            let c = item.version.content.clone();
            let here = self.nodes[i].blobs.contains(&c);
            // A file whose content is not here keeps what was on disk.
            let slot = disk.entry(item.entry).or_default();
            let old = self.nodes[i].disk.get(&item.entry);
            match (item.conflict, here) {
                (None, true) => slot.0 = Some(c),
                (None, false) => {
                    slot.0 = old.and_then(|o| o.0.clone());
                    missing.push(c);
                }
                (Some(_), true) => {
                    slot.1.insert(c);
                }
                (Some(_), false) => missing.push(c),
            }
        }
        self.nodes[i].disk = disk;
        self.sim.bump("share.write_out");
        self.sim.log(format!("n{i} writes out ({} missing)", missing.len()));
        for c in missing {
            self.fetch(i, c);
        }
    }

    /// Starts (or refreshes: every peer online is a fresh candidate, as
    /// when it announces new content) the download of `content` at `i`.
    fn fetch(&mut self, i: usize, content: Vec<u8>) {
        let Some(manifest) = self.manifests.get(&content) else {
            return self.sim.log(format!("n{i} knows no manifest for {}", short(&content)));
        };
        let known: Option<Vec<Vec<u8>>> =
            self.nodes[i].downloads.get(&content).map(|d| d.peers.iter().map(|&j| self.nodes[j].id.clone()).collect());
        let node = &mut self.nodes[i];
        match (known, node.downloads.get_mut(&content)) {
            (Some(peers), Some(d)) => {
                for peer in peers {
                    d.fetcher.add_peer(peer);
                }
            }
            (_, Some(_)) => {}
            (_, None) => {
                let chunks = &node.chunks;
                let fetcher = Fetcher::new(manifest, |r: &ChunkRef| chunks.contains_key(&r.hash), fetch_config());
                node.downloads.insert(content.clone(), Download { fetcher, peers: BTreeSet::new(), timer: None });
                self.sim.bump("share.blob_download");
                self.sim.log(format!("n{i} fetches {} ({} chunk(s))", short(&content), manifest.chunks().len()));
            }
        }
        self.drive(i, content);
    }
    // ----- faults ------------------------------------------------------------

    fn crash(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.up = false;
        n.inc += 1;
        if let Some(mut doc) = n.doc.take() {
            n.saved = Some((doc.save(), doc.signatures().clone()));
        }
        n.peer_heads.clear();
        n.downloads.clear();
        self.sim.bump("fault.crash");
        self.sim.log(format!("crash n{i}"));
        // Its connections drop: every download elsewhere loses it as a peer.
        for j in 0..self.nodes.len() {
            if j != i {
                self.drive_all(j);
            }
        }
        let at = self.sim.rng.gen_range(200..=8_000);
        self.sim.after(at, Ev::Restart(i));
    }

    fn restart(&mut self, i: usize) {
        let owner = self.nodes[0].id.clone();
        let n = &mut self.nodes[i];
        n.up = true;
        if let Some((bytes, sigs)) = n.saved.take() {
            n.doc = match ShareDoc::load(&bytes, sigs, &owner, &n.id) {
                Ok(d) => Some(d),
                Err(e) => {
                    let v = Violation::new("reload_failed", format!("n{i}: {e}"));
                    self.sim.fail(v);
                    return;
                }
            };
        }
        self.sim.log(format!("restart n{i} from its saved document"));
        // Back online: every member syncs with it and it with them.
        self.sync_all(i, None);
        let inc = self.nodes[i].inc;
        self.sim.after(1, Ev::WriteOut { node: i, inc });
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
