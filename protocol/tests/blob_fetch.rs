//! Seeded simulation of the blob [`Fetcher`] against in-memory peers.
//!
//! Each seed builds a file of random chunks and a cast of peers on a virtual
//! network with per-peer latency and random silent drops (which only a
//! timeout recovers from):
//!
//! - two honest peers holding overlapping subsets whose union is the file;
//! - a "ghost" holding everything that vanishes mid-transfer (its answers in
//!   flight turn into failures, new requests to it fail) and, on some seeds,
//!   comes back;
//! - an "evil" peer holding everything that answers with flipped bytes, wrong
//!   lengths or another chunk's bytes (and, on some seeds, sometimes honestly).
//!
//! Properties checked on every seed: every byte that leaves the fetcher is the
//! original chunk; the download completes whenever the honest peers together
//! hold every chunk; an honest peer is never banned; a peer that delivered a
//! wrong whole chunk is banned; the bookkeeping invariants hold after every
//! step; and a seed replays identically. A failing seed is printed and can be
//! pinned as its own test.

use std::collections::{BTreeMap, BTreeSet};

use hearth_protocol::blob::{
    answer, ChunkHash, ChunkRef, FetchConfig, FetchEvent, Fetcher, Get, Manifest, Outcome, Response,
};

/// SplitMix64: a tiny seeded generator, enough for a simulation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Honest,
    Ghost,
    Evil,
}

struct SimPeer {
    kind: Kind,
    has: BTreeSet<ChunkHash>,
    latency_ms: u64,
    /// Ghost: gone from this time on ...
    gone_at: u64,
    /// ... until this time (u64::MAX: never back).
    back_at: u64,
    /// Evil: percentage of honest answers.
    honest_percent: u64,
}

enum Delivery {
    Answer(Response),
    Failure,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    done: bool,
    unavailable: Vec<ChunkHash>,
    banned: Vec<String>,
    end_ms: u64,
    requests: u64,
    trace: u64,
    /// Answers lost to the ghost's disappearance.
    failures: u64,
    /// Requests expired by the fetcher's timer.
    timeouts: u64,
    /// Mixed-source mismatches.
    mismatches: u64,
    /// Chunks the ghost delivered before vanishing (resume, not restart).
    ghost_chunks_before_gone: u64,
}

struct Scenario {
    /// The honest peers do not hold this chunk, the ghost neither: only the
    /// evil peer does, and it always lies.
    withheld: bool,
    part_size: u32,
}

fn run(seed: u64, scenario: &Scenario) -> Report {
    let mut rng = Rng(seed);
    let n = 20 + rng.below(40) as usize;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..n {
        if !chunks.is_empty() && rng.chance(10) {
            let dup = chunks[rng.below(chunks.len() as u64) as usize].clone();
            chunks.push(dup);
        } else {
            let len = 1 + rng.below(8192) as usize;
            chunks.push(rng.bytes(len));
        }
    }
    let store: BTreeMap<ChunkHash, Vec<u8>> = chunks.iter().map(|c| (ChunkHash::of(c), c.clone())).collect();
    let manifest = Manifest::from_chunks(
        chunks.iter().map(|c| ChunkRef { hash: ChunkHash::of(c), len: c.len() as u32 }).collect(),
    )
    .expect("valid manifest");
    let hashes: Vec<ChunkHash> = store.keys().copied().collect();
    let withheld = scenario.withheld.then(|| hashes[rng.below(hashes.len() as u64) as usize]);

    // Honest peers: each chunk on a, on b, or on both.
    let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
    for h in &hashes {
        if Some(*h) == withheld {
            continue;
        }
        match rng.below(3) {
            0 => a.insert(*h),
            1 => b.insert(*h),
            _ => a.insert(*h) | b.insert(*h),
        };
    }
    let all: BTreeSet<ChunkHash> = hashes.iter().copied().collect();
    let mut ghost_has = all.clone();
    if let Some(w) = withheld {
        ghost_has.remove(&w);
    }
    let gone_at = 5 + rng.below(60);
    let back_at = if !scenario.withheld && rng.chance(50) { gone_at + 500 + rng.below(3000) } else { u64::MAX };
    let evil_honesty = if scenario.withheld || rng.chance(50) { 0 } else { 30 };
    let mut peers: BTreeMap<Vec<u8>, SimPeer> = BTreeMap::new();
    let mut add = |id: &str, kind, has, rng: &mut Rng, gone_at, back_at, honest_percent| {
        let latency_ms = 1 + rng.below(50);
        peers.insert(id.as_bytes().to_vec(), SimPeer { kind, has, latency_ms, gone_at, back_at, honest_percent });
    };
    add("honest-a", Kind::Honest, a, &mut rng, u64::MAX, u64::MAX, 100);
    add("honest-b", Kind::Honest, b, &mut rng, u64::MAX, u64::MAX, 100);
    add("ghost", Kind::Ghost, ghost_has, &mut rng, gone_at, back_at, 100);
    add("evil", Kind::Evil, all, &mut rng, u64::MAX, u64::MAX, evil_honesty);

    let config = FetchConfig {
        max_in_flight_per_peer: 1 + rng.below(4) as usize,
        part_size: scenario.part_size,
        request_timeout_ms: 400,
        backoff_initial_ms: 50,
        backoff_max_ms: 2_000,
    };
    let mut f = Fetcher::new(&manifest, |_| false, config);
    for id in peers.keys() {
        f.add_peer(id.clone());
    }

    // Virtual network: deliveries ordered by (time, sequence number).
    let mut net: BTreeMap<(u64, u64), (Vec<u8>, Get, Delivery)> = BTreeMap::new();
    let mut seq = 0u64;
    let mut now = 0u64;
    let mut report = Report::default();
    let mut verified: BTreeMap<ChunkHash, Vec<u8>> = BTreeMap::new();
    let mut wrong_whole_chunk: BTreeSet<Vec<u8>> = BTreeSet::new();
    let ghost_back_at = peers[b"ghost".as_slice()].back_at;
    let ghost_gone_at = peers[b"ghost".as_slice()].gone_at;
    let mut ghost_readded = false;
    let limit_ms = 60 * 60 * 1000;

    for _step in 0..200_000 {
        if !ghost_readded && now >= ghost_back_at {
            // The ghost reconnects: the node offers it to the fetcher again.
            ghost_readded = true;
            f.add_peer(b"ghost".to_vec());
        }

        while let Some((peer, get)) = f.poll_request(now) {
            report.requests += 1;
            report.trace = report.trace.wrapping_mul(31).wrapping_add(get.offset as u64 ^ get.hash.0[0] as u64);
            let p = &peers[&peer];
            let arrive = now + p.latency_ms + rng.below(p.latency_ms + 1);
            seq += 1;
            let gone = p.kind == Kind::Ghost && arrive >= p.gone_at && arrive < p.back_at;
            let delivery = if gone {
                Delivery::Failure
            } else if rng.chance(3) {
                continue; // silently dropped: only the timeout recovers
            } else {
                let held = p.has.contains(&get.hash).then(|| store[&get.hash].as_slice());
                let mut resp = answer(&get, held);
                if p.kind == Kind::Evil && !rng.chance(p.honest_percent) {
                    if let Response::Data { bytes } = &mut resp {
                        match rng.below(4) {
                            0 => {
                                let i = rng.below(bytes.len() as u64) as usize;
                                bytes[i] ^= 1 + rng.below(255) as u8;
                            }
                            1 => {
                                bytes.push(0);
                            }
                            2 => {
                                let other = &hashes[rng.below(hashes.len() as u64) as usize];
                                *bytes = store[other].clone();
                            }
                            _ => *bytes = rng.bytes(bytes.len()),
                        }
                    }
                }
                Delivery::Answer(resp)
            };
            net.insert((arrive, seq), (peer, get, delivery));
        }

        while let Some(event) = f.poll_event() {
            match event {
                FetchEvent::Verified { hash, bytes } => {
                    assert_eq!(store.get(&hash), Some(&bytes), "seed {seed}: accepted bytes that are not the chunk");
                    assert!(verified.insert(hash, bytes).is_none(), "seed {seed}: verified twice");
                }
                FetchEvent::Corrupt { peer, .. } => {
                    assert_eq!(peers[&peer].kind, Kind::Evil, "seed {seed}: an honest peer was blamed");
                }
                FetchEvent::Mismatch { .. } => report.mismatches += 1,
                FetchEvent::Refused { .. } => {}
            }
        }
        f.check_invariants().unwrap_or_else(|e| panic!("seed {seed}: {e}"));

        if f.is_done() || now > limit_ms {
            break;
        }
        let next_net = net.keys().next().map(|k| k.0);
        let next = match (next_net, f.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                // Nothing in flight, nothing to wait for: stalled, unless the
                // ghost is due back.
                None if ghost_readded || ghost_back_at == u64::MAX => break,
                None => ghost_back_at,
            },
        };
        now = now.max(next);
        while let Some(entry) = net.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (peer, get, delivery) = entry.remove();
            match delivery {
                Delivery::Failure => {
                    report.failures += 1;
                    // The connection is gone: requeue, and forget the peer
                    // until it reconnects.
                    f.on_failure(now, &peer);
                    f.remove_peer(&peer);
                }
                Delivery::Answer(resp) => {
                    let was_data = matches!(resp, Response::Data { .. });
                    let full_chunk_wrong = match &resp {
                        Response::Data { bytes } => {
                            get.offset == 0 && get.len as usize == store[&get.hash].len() && *bytes != store[&get.hash]
                        }
                        _ => false,
                    };
                    let outcome = f.on_response(now, &peer, &get, resp);
                    if peer == b"ghost" && outcome == Outcome::Verified && now < ghost_gone_at {
                        report.ghost_chunks_before_gone += 1;
                    }
                    if full_chunk_wrong && outcome != Outcome::Ignored {
                        wrong_whole_chunk.insert(peer.clone());
                    }
                    if outcome == Outcome::Rejected {
                        assert!(was_data);
                    }
                }
            }
        }
        let before = f.in_flight();
        f.handle_timeout(now);
        report.timeouts += (before - f.in_flight()) as u64;
    }

    report.done = f.is_done();
    report.unavailable = f.unavailable();
    report.end_ms = now;
    for (id, p) in &peers {
        if f.is_banned(id) {
            assert_eq!(p.kind, Kind::Evil, "seed {seed}: honest peer banned");
            report.banned.push(String::from_utf8_lossy(id).into_owned());
        }
    }
    for peer in &wrong_whole_chunk {
        assert!(f.is_banned(peer), "seed {seed}: a peer that sent a wrong whole chunk is not banned");
    }
    if report.done {
        let file: Vec<u8> = manifest.chunks().iter().flat_map(|c| verified[&c.hash].clone()).collect();
        let original: Vec<u8> = chunks.concat();
        assert_eq!(file, original, "seed {seed}: reassembled file differs");
        assert_eq!(f.bytes_done(), manifest.size());
    }
    if let Some(w) = withheld {
        assert!(!report.done, "seed {seed}: completed without the withheld chunk");
        assert_eq!(report.unavailable, vec![w], "seed {seed}: the withheld chunk is reported");
        assert!(!verified.contains_key(&w), "seed {seed}: a lie was accepted");
    }
    report
}

#[test]
fn completes_with_verified_data_whenever_honest_peers_cover_the_file() {
    let scenario = Scenario { withheld: false, part_size: hearth_protocol::blob::CHUNK_MAX };
    let (mut banned, mut resumed, mut timed_out) = (0, 0, 0);
    for seed in 0..200 {
        let r = run(seed, &scenario);
        assert!(r.done, "seed {seed}: stalled at {} ms with {:?} unavailable", r.end_ms, r.unavailable);
        banned += usize::from(!r.banned.is_empty());
        resumed += usize::from(r.failures > 0 && r.ghost_chunks_before_gone > 0);
        timed_out += usize::from(r.timeouts > 0);
    }
    // The cast really misbehaves: the liar is caught, the ghost vanishes with
    // work in flight after delivering some, and drops force timeouts.
    eprintln!("liar banned {banned}/200, ghost resumed {resumed}/200, timeouts {timed_out}/200");
    assert!(banned > 170, "the liar is caught on almost every seed ({banned}/200)");
    assert!(resumed > 60, "the ghost vanishes mid-transfer on many seeds ({resumed}/200)");
    assert!(timed_out > 120, "timeouts happen on most seeds ({timed_out}/200)");
}

#[test]
fn completes_when_chunks_are_fetched_in_parts_from_several_peers() {
    let scenario = Scenario { withheld: false, part_size: 1024 };
    let mut mixed = 0;
    for seed in 1000..1100 {
        let r = run(seed, &scenario);
        assert!(r.done, "seed {seed}: stalled at {} ms with {:?} unavailable", r.end_ms, r.unavailable);
        mixed += usize::from(r.mismatches > 0);
    }
    // The liar is usually banned early for a wrong length; same-length lies
    // mixed with honest parts still occur on a good share of seeds.
    eprintln!("mixed-source mismatches on {mixed}/100 seeds");
    assert!(mixed > 6, "mixed-source mismatches are exercised ({mixed}/100)");
}

#[test]
fn never_accepts_a_chunk_only_a_liar_holds() {
    for (part_size, seeds) in [(hearth_protocol::blob::CHUNK_MAX, 2000..2060), (1024, 3000..3060)] {
        let scenario = Scenario { withheld: true, part_size };
        for seed in seeds {
            let r = run(seed, &scenario);
            assert_eq!(r.banned, vec!["evil".to_owned()], "seed {seed}");
        }
    }
}

#[test]
fn a_seed_replays_identically() {
    let scenario = Scenario { withheld: false, part_size: 1024 };
    assert_eq!(run(42, &scenario), run(42, &scenario));
}
