//! File contents as chunks: manifests, the holders' answers (`blob::answer`,
//! or flipped bytes from the read-only forger) and the fetching node's
//! `blob::Fetcher`, driven as `node/src/net/event_loop/fetch.rs` drives it.

use super::*;

impl Share {
    /// A content just written at `i`: its manifest of 1 to 4 chunks (the
    /// content id, the chunk's index, then random bytes), all in `i`'s store.
    pub(super) fn new_content(&mut self, i: usize, content: &[u8]) {
        if self.manifests.contains_key(content) {
            return;
        }
        let n = self.sim.rng.gen_range(1..=4u8);
        let mut refs = Vec::new();
        for k in 0..n {
            let mut bytes = content.to_vec();
            bytes.push(k);
            let extra = self.sim.rng.gen_range(0..=64usize);
            let start = bytes.len();
            bytes.resize(start + extra, 0);
            self.sim.rng.fill(&mut bytes[start..]);
            let hash = ChunkHash::of(&bytes);
            refs.push(ChunkRef { hash, len: bytes.len() as u32 });
            self.nodes[i].chunks.insert(hash, bytes.clone());
            self.originals.insert(hash, bytes);
        }
        let manifest = Manifest::from_chunks(refs).expect("small chunks make a valid manifest");
        self.manifests.insert(content.to_vec(), manifest);
    }

    /// Whether a blob message `from -> to` reaches `to` (its link holds and
    /// `to` did not crash since it was sent).
    pub(super) fn blob_delivered(&mut self, from: usize, to: usize, to_inc: u64) -> bool {
        if self.sim.net.is_cut(from, to) {
            self.sim.bump("net.cut");
            self.sim.log(format!("drop n{from}->n{to}: link cut"));
            return false;
        }
        if !self.nodes[to].up || self.nodes[to].inc != to_inc {
            self.sim.bump("net.connection_lost");
            self.sim.log(format!("drop n{from}->n{to}: receiver crashed"));
            return false;
        }
        self.sim.bump("net.delivered");
        true
    }

    /// `j` answers `i`'s `get`: from its chunk store, or (the read-only
    /// forger) with the chunk's bytes flipped.
    pub(super) fn serve(&mut self, j: usize, i: usize, content: Vec<u8>, get: Get) {
        let response = if self.nodes[j].who == Who::ReadOnlyForger {
            match self.originals.get(&get.hash) {
                Some(bytes) => match answer(&get, Some(bytes)) {
                    Response::Data { mut bytes } => {
                        let k = self.sim.rng.gen_range(0..bytes.len());
                        bytes[k] ^= 1 << self.sim.rng.gen_range(0..8);
                        self.sim.bump("hostile.blob_flipped");
                        Response::Data { bytes }
                    }
                    other => other,
                },
                None => Response::Missing,
            }
        } else {
            answer(&get, self.nodes[j].chunks.get(&get.hash).map(Vec::as_slice))
        };
        let what = match &response {
            Response::Data { bytes } => format!("blob {} {} byte(s)", short(&get.hash.0), bytes.len()),
            Response::Missing => format!("blob {} missing", short(&get.hash.0)),
            Response::Refused { .. } => format!("blob {} refused", short(&get.hash.0)),
        };
        let (up, to_inc) = (self.nodes[i].up, self.nodes[i].inc);
        for d in self.sim.transmit(j, i, up, &what) {
            let ev =
                Ev::BlobAnswer { from: j, to: i, to_inc, content: content.clone(), get, response: response.clone() };
            self.sim.after(d, ev);
        }
    }

    pub(super) fn on_blob_answer(&mut self, i: usize, from: usize, content: Vec<u8>, get: Get, response: Response) {
        let now = self.sim.now_ms;
        let peer = self.nodes[from].id.clone();
        let Some(d) = self.nodes[i].downloads.get_mut(&content) else {
            return self.sim.log(format!("n{i} ignores blob {} from n{from}: no download", short(&get.hash.0)));
        };
        let outcome = d.fetcher.on_response(now, &peer, &get, response);
        self.sim.bump(format!("share.blob_answer.{outcome:?}"));
        self.drive(i, content);
    }

    /// Drives every download of `i` (its peers came or went).
    pub(super) fn drive_all(&mut self, i: usize) {
        let contents: Vec<Vec<u8>> = self.nodes[i].downloads.keys().cloned().collect();
        for c in contents {
            self.drive(i, c);
        }
    }

    /// One turn of `i`'s download of `content`: its peers are the members
    /// online to `i` (gone ones removed, new ones added), then timeouts,
    /// requests, events; done means the content is here.
    pub(super) fn drive(&mut self, i: usize, content: Vec<u8>) {
        if !self.nodes[i].up || !self.nodes[i].downloads.contains_key(&content) {
            return;
        }
        let now = self.sim.now_ms;
        let online: BTreeSet<usize> = self
            .members_seen_by(i)
            .into_iter()
            .filter(|&j| self.nodes[j].up && !self.sim.net.is_cut(i, j) && !self.sim.net.is_cut(j, i))
            .collect();
        let ids: Vec<Vec<u8>> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let d = self.nodes[i].downloads.get_mut(&content).expect("download");
        for &j in d.peers.difference(&online) {
            d.fetcher.remove_peer(&ids[j]);
        }
        for &j in online.difference(&d.peers) {
            d.fetcher.add_peer(ids[j].clone());
        }
        d.peers = online;
        d.fetcher.handle_timeout(now);
        let mut requests = Vec::new();
        while let Some(r) = d.fetcher.poll_request(now) {
            requests.push(r);
        }
        let mut events = Vec::new();
        while let Some(e) = d.fetcher.poll_event() {
            events.push(e);
        }
        let bookkeeping = d.fetcher.check_invariants();
        let done = d.fetcher.is_done();
        let timeout = d.fetcher.poll_timeout();
        let timer = match timeout {
            Some(t) if d.timer.is_none_or(|at| at > t) => {
                d.timer = Some(t);
                Some(t.saturating_sub(now).max(1))
            }
            _ => None,
        };
        self.sim.bump("invariants.checks");
        if let Err(e) = bookkeeping {
            return self.sim.fail(Violation::new("fetcher_invariant", format!("n{i}: {e}")));
        }
        for e in events {
            self.on_fetch_event(i, e, &ids);
        }
        if done {
            self.nodes[i].downloads.remove(&content);
            let manifest = self.manifests.get(&content).expect("manifest");
            let whole = manifest
                .chunks()
                .iter()
                .all(|r| self.nodes[i].chunks.get(&r.hash).is_some_and(|b| self.originals.get(&r.hash) == Some(b)));
            if !whole {
                return self.sim.fail(Violation::new(
                    "corrupt_chunk_accepted",
                    format!("n{i}'s finished download of {} is not the original", short(&content)),
                ));
            }
            self.nodes[i].blobs.insert(content.clone());
            self.sim.bump("share.blob_fetched");
            self.sim.log(format!("n{i} has content {}", short(&content)));
            return self.write_out(i);
        }
        for (peer, get) in requests {
            let Some(j) = self.index_of(&peer) else { continue };
            let (up, to_inc) = (self.nodes[j].up, self.nodes[j].inc);
            self.sim.bump("share.blob_get");
            for delay in self.sim.transmit(i, j, up, &format!("get {}", short(&get.hash.0))) {
                self.sim.after(delay, Ev::BlobGet { from: i, to: j, to_inc, content: content.clone(), get });
            }
        }
        if let Some(delay) = timer {
            let inc = self.nodes[i].inc;
            self.sim.after(delay, Ev::FetchTimer { node: i, inc, content });
        }
    }

    fn on_fetch_event(&mut self, i: usize, e: FetchEvent, ids: &[Vec<u8>]) {
        let name = |peer: &[u8]| ids.iter().position(|id| id == peer).map_or("?".to_string(), |j| format!("n{j}"));
        match e {
            FetchEvent::Verified { hash, bytes } => {
                self.sim.bump("invariants.checks");
                if self.originals.get(&hash) != Some(&bytes) {
                    return self.sim.fail(Violation::new(
                        "corrupt_chunk_accepted",
                        format!("n{i} accepted chunk {} that is not the original", short(&hash.0)),
                    ));
                }
                self.sim.bump("share.chunk_verified");
                self.nodes[i].chunks.insert(hash, bytes);
            }
            FetchEvent::Corrupt { peer, hash } => {
                let who = name(&peer);
                self.sim.bump("share.chunk_corrupt_refused");
                self.sim.log(format!("n{i} refuses chunk {} from {who}: corrupt; banned", short(&hash.0)));
                if self.index_of(&peer).is_some_and(|j| self.nodes[j].who != Who::ReadOnlyForger) {
                    self.sim.fail(Violation::new("honest_peer_banned", format!("n{i} banned {who}")));
                }
            }
            FetchEvent::Mismatch { hash, .. } => {
                self.sim.bump("share.chunk_mismatch");
                self.sim.log(format!("n{i}: chunk {} from several peers mismatched", short(&hash.0)));
            }
            FetchEvent::Refused { peer, hash, message } => {
                self.sim.log(format!("n{i}: {} refused chunk {}: {message}", name(&peer), short(&hash.0)));
            }
        }
    }
}
