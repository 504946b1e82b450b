//! The owner's side of the backup scenario (`engine.rs`, `audit.rs`,
//! `restore.rs` of `node/src/backup`): backup runs, audits, repair, and
//! rebuilding a pack from its shards.

use std::collections::BTreeSet;

use hearth_protocol::backup::audit;
use hearth_protocol::backup::catalog::{FileEntry, PackRecord, ShardPlace, Snapshot};
use hearth_protocol::backup::chunk::{self, ChunkId};
use hearth_protocol::backup::erasure::{self, ShardId};
use hearth_protocol::backup::pack::{PackBuilder, PackId};
use hearth_protocol::backup::wire::{BackupRequest, BackupResponse, Refusal};
use rand::Rng;

use super::{Backup, GRACE_SECS, MAX_FILE, MAX_FILES, PACK_TARGET};
use crate::invariants::Violation;
use crate::world::Mutant;

impl Backup {
    /// The people change a few files.
    pub(super) fn edit_files(&mut self) {
        for _ in 0..self.sim.rng.gen_range(1..=4) {
            let names: Vec<String> = self.files.keys().cloned().collect();
            match self.sim.rng.gen_range(0..10) {
                0..=4 if self.files.len() < MAX_FILES => {
                    self.next_file += 1;
                    let content = self.content();
                    self.files.insert(format!("/home/f{}", self.next_file), content);
                }
                5..=6 if !names.is_empty() => {
                    let name = names[self.sim.rng.gen_range(0..names.len())].clone();
                    let content = self.content();
                    self.files.insert(name, content);
                }
                7 if !names.is_empty() => {
                    // A copy: its chunk is deduplicated.
                    let src = names[self.sim.rng.gen_range(0..names.len())].clone();
                    let copy = self.files[&src].clone();
                    self.next_file += 1;
                    self.files.insert(format!("/home/copy{}", self.next_file), copy);
                }
                8 if !names.is_empty() => {
                    let name = &names[self.sim.rng.gen_range(0..names.len())];
                    self.files.remove(name);
                }
                _ => {}
            }
        }
    }

    pub(super) fn content(&mut self) -> Vec<u8> {
        let len = match self.sim.rng.gen_range(0..10) {
            0 => 0,
            1..=3 => self.sim.rng.gen_range(1..200),
            _ => self.sim.rng.gen_range(200..=MAX_FILE),
        };
        if self.sim.rng.gen_bool(0.5) {
            let mut b = vec![0u8; len];
            self.sim.rng.fill(&mut b[..]);
            b
        } else {
            let word = format!("line {} ", self.sim.rng.gen_range(0..1000));
            word.bytes().cycle().take(len).collect()
        }
    }

    /// The accepted friends online, least loaded first (`usable_friends`).
    pub(super) fn usable(&self) -> Vec<usize> {
        let mut out: Vec<(u64, usize)> =
            self.friends.iter().filter(|(h, f)| f.accepted && self.online(**h)).map(|(h, f)| (f.stored, *h)).collect();
        out.sort();
        out.into_iter().map(|(_, h)| h).collect()
    }

    /// `hearth backup run` (`engine.rs`): chunk, seal, pack, encode, place
    /// each pack's shards on the `n` least-loaded friends, save the catalog
    /// after every pack, the snapshot at the end.
    pub(super) fn backup_run(&mut self) {
        if !self.owner_up {
            return;
        }
        self.edit_files();
        let usable = self.usable();
        if usable.is_empty() {
            self.sim.bump("backup.run_no_friend");
            return self.sim.log("n0 backup run: no friend online");
        }
        let (k, n) = erasure::default_coding(usable.len());
        self.sim.bump("backup.run");
        self.sim.log(format!("n0 backup run of {} file(s), {k}-of-{n}", self.files.len()));
        let mut known: BTreeSet<ChunkId> = self.catalog.index.keys().copied().collect();
        let mut builder = PackBuilder::default();
        let mut packs = Vec::new();
        let mut entries = Vec::new();
        for (path, data) in &self.files {
            let (mut chunks, mut sizes) = (Vec::new(), Vec::new());
            for (offset, len) in chunk::cut(data) {
                let plain = &data[offset..offset + len];
                let id = chunk::chunk_id(&self.keys, plain);
                if known.insert(id) {
                    let mut nonce = [0u8; chunk::NONCE_LEN];
                    self.sim.rng.fill(&mut nonce[..]);
                    builder.add(id, chunk::seal(&self.keys, &id, plain, nonce));
                    if builder.size() >= PACK_TARGET {
                        let mut seed = [0u8; 32];
                        self.sim.rng.fill(&mut seed[..]);
                        packs.push(std::mem::take(&mut builder).finish(seed));
                    }
                }
                chunks.push(id);
                sizes.push(len as u32);
            }
            let size = data.len() as u64;
            entries.push(FileEntry { path: path.clone(), size, mtime_ns: 0, mode: 0o644, chunks, sizes });
        }
        if !builder.is_empty() {
            let mut seed = [0u8; 32];
            self.sim.rng.fill(&mut seed[..]);
            packs.push(builder.finish(seed));
        }
        let mut new_packs = Vec::new();
        for pack in packs {
            let shards = erasure::encode(&pack.id, &pack.bytes, k, n).expect("encode shards");
            // `assign`: the n least-loaded friends, one shard each.
            let mut targets: Vec<(u64, usize)> = usable.iter().map(|&h| (self.friends[&h].stored, h)).collect();
            targets.sort();
            let mut places: Vec<ShardPlace> = Vec::new();
            for (i, (shard, &(_, h))) in shards.iter().zip(&targets).enumerate() {
                let id = ShardId::of(shard);
                self.made.insert(id, shard.clone());
                if !self.upload(h, shard) {
                    // The pack's shards already uploaded (and this one, if
                    // only the answer was lost) belong to no pack record:
                    // deleted later (bug 6: the node leaves them).
                    let uploaded: Vec<(usize, ShardId)> =
                        places.iter().zip(&targets).map(|(p, &(_, host))| (host, p.id)).chain([(h, id)]).collect();
                    for (host, sid) in uploaded {
                        self.pending_deletes.entry(host).or_default().insert(sid);
                    }
                    self.sim.bump("backup.run_failed");
                    return self.sim.log("n0 backup run failed: uploading shards failed; what was placed is kept");
                }
                let len = shard.len() as u64;
                places.push(ShardPlace {
                    index: i as u8,
                    host: self.ids[h].clone(),
                    id,
                    len,
                    blocks: audit::block_hashes(shard),
                });
            }
            for (&(_, h), place) in targets.iter().zip(&places) {
                if let Some(f) = self.friends.get_mut(&h) {
                    f.stored += place.len;
                }
            }
            let record = PackRecord { len: pack.bytes.len() as u64, k: k as u8, n: n as u8, shards: places };
            self.catalog.packs.insert(pack.id, record);
            for (id, loc) in &pack.entries {
                self.catalog.index.insert(*id, *loc);
            }
            self.catalog.generation += 1;
            self.sim.bump("backup.pack_placed");
            self.sim.log(format!("n0 placed pack {} ({} bytes)", &pack.id.hex()[..8], pack.bytes.len()));
            new_packs.push(pack.id);
            if self.sim.node_faults() && self.sim.rng.gen_bool(0.03) {
                self.sim.bump("fault.crash_during_run");
                self.sim.log("n0 crashes in the middle of its backup run");
                return self.go_away(0, 500..=5_000);
            }
        }
        let mut sid = [0u8; 6];
        self.sim.rng.fill(&mut sid[..]);
        let id: String = sid.iter().map(|b| format!("{b:02x}")).collect();
        let snapshot = Snapshot {
            id: id.clone(),
            time: self.sim.now_secs(),
            paths: vec!["/home".into()],
            files: entries,
            state: Vec::new(),
            stats: Default::default(),
        };
        self.catalog.snapshots.push(snapshot);
        self.catalog.generation += 1;
        self.truth.insert(id.clone(), self.files.clone());
        self.sim.bump("backup.snapshot");
        self.sim.log(format!("n0 snapshot {id} complete ({} new pack(s))", new_packs.len()));
        self.check_new_snapshot(&id, &new_packs);
    }

    /// Uploads one shard to friend `h` (in one piece); a refusal for want
    /// of an agreement makes the owner ask for hosting again.
    pub(super) fn upload(&mut self, h: usize, shard: &[u8]) -> bool {
        let id = ShardId::of(shard);
        let request = BackupRequest::PutShard { shard: id, offset: 0, total: shard.len() as u64, data: shard.to_vec() };
        match self.call(0, h, &request) {
            Some(BackupResponse::Stored { have }) if have == shard.len() as u64 => true,
            Some(BackupResponse::Refused { code, message }) => {
                self.sim.bump(format!("backup.upload_refused.{code:?}"));
                self.sim.log(format!("n{h} refuses shard {}: {message}", &id.hex()[..8]));
                if code == Refusal::NotAFriend {
                    self.ask_hosting(h);
                }
                false
            }
            _ => false,
        }
    }

    pub(super) fn ask_hosting(&mut self, h: usize) {
        if let Some(f) = self.friends.get_mut(&h) {
            f.accepted = false;
        }
        let request = BackupRequest::Hosting { offer: 1 << 30, restore_peer: vec![7; 38], passphrase_peer: None };
        let answer = self.call(0, h, &request);
        self.sim.log(format!("n0 asks n{h} to host its backup again: {answer:?}"));
        if let Some(BackupResponse::Hosting { state, .. }) = answer {
            if state == "accepted" {
                if let Some(f) = self.friends.get_mut(&h) {
                    f.accepted = true;
                }
            }
        }
    }

    /// One audit round (`audit.rs`), then repair of the friends that failed
    /// or stayed away too long. `sweep`: every block of every shard instead
    /// of one random block per friend.
    pub(super) fn audit_round_with(&mut self, sweep: bool) -> usize {
        if !self.owner_up {
            return 0;
        }
        self.sim.bump("backup.audit_round");
        self.flush_deletes();
        let now = self.sim.now_secs();
        let mut failed = Vec::new();
        let friends: Vec<usize> = self.friends.keys().copied().collect();
        for h in friends {
            let places: Vec<ShardPlace> = self
                .catalog
                .packs
                .values()
                .flat_map(|r| &r.shards)
                .filter(|s| s.host == self.ids[h])
                .cloned()
                .collect();
            if places.is_empty() {
                continue;
            }
            if !self.online(h) {
                if now.saturating_sub(self.friends[&h].last_seen) > GRACE_SECS {
                    self.sim.bump("backup.audit_away");
                    failed.push((h, "away past the grace period".to_string()));
                }
                continue;
            }
            let challenges: Vec<(ShardPlace, u64)> = if sweep {
                places
                    .iter()
                    .flat_map(|p| (0..p.len.div_ceil(audit::AUDIT_BLOCK as u64)).map(move |b| (p.clone(), b)))
                    .collect()
            } else {
                let p = places[self.sim.rng.gen_range(0..places.len())].clone();
                let pick = self.sim.rng.gen();
                vec![(p, pick)]
            };
            for (place, pick) in challenges {
                if let Err(why) = self.audit_one(h, &place, pick) {
                    self.sim.bump("backup.audit_failed");
                    self.sim.log(format!("n0 audit of n{h} failed: {why}"));
                    failed.push((h, why));
                    break;
                }
                self.sim.bump("backup.audit_passed");
                if self.sim.failure.is_some() {
                    return 0;
                }
            }
        }
        let lost: BTreeSet<usize> = failed.iter().map(|(h, _)| *h).collect();
        for h in &lost {
            self.repair(*h);
        }
        lost.len()
    }

    pub(super) fn audit_round(&mut self) {
        self.audit_round_with(false);
    }

    pub(super) fn audit_one(&mut self, h: usize, place: &ShardPlace, pick: u64) -> Result<(), String> {
        let mut nonce = [0u8; 16];
        self.sim.rng.fill(&mut nonce[..]);
        let c = audit::challenge(place.id, place.len, pick, nonce);
        match self.call(0, h, &BackupRequest::Audit(c.clone())) {
            Some(BackupResponse::Proof { nonce, data }) => {
                audit::verify(&place.blocks, &c, &nonce, &data).map_err(|e| e.to_string())?;
                // Accepted as good: it must be the shard as made.
                self.check_accepted(h, place.id, c.offset, &data, "audit answer");
                Ok(())
            }
            Some(BackupResponse::Refused { message, .. }) => Err(format!("refused the audit: {message}")),
            Some(other) => Err(format!("answered the audit with {other:?}")),
            None => Err("did not answer the audit".into()),
        }
    }

    /// Moves every shard `lost` holds onto other friends (`audit.rs`
    /// `repair`): rebuilt from `k` good shards elsewhere, re-encoded (the
    /// same shards), uploaded to the least-loaded friend online holding no
    /// shard of the pack.
    pub(super) fn repair(&mut self, lost: usize) {
        let packs: Vec<(PackId, PackRecord)> = self
            .catalog
            .packs
            .iter()
            .filter(|(_, r)| r.shards.iter().any(|s| s.host == self.ids[lost]))
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        let (mut moved, mut stuck, mut unrebuilt) = (0, 0, 0);
        for (pack, record) in packs {
            let holders: BTreeSet<&Vec<u8>> = record.shards.iter().map(|s| &s.host).collect();
            let mut loads: Vec<(u64, usize)> = self
                .friends
                .iter()
                .filter(|(h, f)| f.accepted && **h != lost && self.online(**h) && !holders.contains(&self.ids[**h]))
                .map(|(h, f)| (f.stored, *h))
                .collect();
            loads.sort();
            if loads.is_empty() {
                stuck += 1;
                continue;
            }
            // (The node's `repair` stops at the first pack it cannot rebuild,
            // `fetch_pack(..).await?`, and so never repairs the friend's
            // other packs: bug 4 of the README. The model goes on.)
            let Some(bytes) = self.fetch_pack(&pack, &record, Some(lost)) else {
                self.sim.bump("backup.repair_pack_not_rebuilt");
                unrebuilt += 1;
                if self.sim.cfg.mutant == Some(Mutant::RepairStopsEarly) {
                    break;
                }
                continue;
            };
            let shards =
                erasure::encode(&pack, &bytes, record.k as usize, record.n as usize).expect("re-encode shards");
            let lost_id = self.ids[lost].clone();
            let places: Vec<ShardPlace> = record.shards.iter().filter(|s| s.host == lost_id).cloned().collect();
            for place in &places {
                if ShardId::of(&shards[place.index as usize]) != place.id {
                    let v =
                        Violation::new("repair_changed_shard", format!("pack {} re-encodes differently", pack.hex()));
                    return self.sim.fail(v);
                }
            }
            // The least-loaded free friend first, the next one if it refuses
            // (its quota is full). (The node's
            // `repair` stops at the first refusal too, `upload(..).await?`:
            // a friend whose quota is full ends every repair it is the
            // least-loaded target of; part of bug 4.)
            let mut placed = false;
            for &(_, target) in &loads {
                let mut all = true;
                for place in &places {
                    let shard = &shards[place.index as usize];
                    if !self.upload(target, shard) {
                        // (Stored there if only the answer was lost.)
                        self.pending_deletes.entry(target).or_default().insert(place.id);
                        self.sim.bump("backup.repair_upload_failed");
                        self.sim.log(format!("n0 repair of n{lost}: upload to n{target} failed"));
                        if self.sim.cfg.mutant == Some(Mutant::RepairStopsEarly) {
                            return;
                        }
                        all = false;
                        break;
                    }
                    // The copy on `lost` is garbage now: deleted once `lost`
                    // is reachable (bug 6: the node never deletes it).
                    self.pending_deletes.entry(lost).or_default().insert(place.id);
                    if let Some(rec) = self.catalog.packs.get_mut(&pack) {
                        for s in rec.shards.iter_mut().filter(|s| s.index == place.index) {
                            s.host = self.ids[target].clone();
                        }
                    }
                    if let Some(f) = self.friends.get_mut(&target) {
                        f.stored += shard.len() as u64;
                    }
                    moved += 1;
                }
                if all {
                    placed = true;
                    break;
                }
            }
            if !placed {
                stuck += 1;
            }
            self.catalog.generation += 1;
        }
        if let Some(f) = self.friends.get_mut(&lost) {
            f.stored = 0;
        }
        self.sim.bump("backup.repair");
        self.sim.log(format!(
            "n0 repair of n{lost}: {moved} shard(s) re-created, {stuck} pack(s) without a free friend, {unrebuilt} not rebuilt"
        ));
    }

    /// Deletes, from the friends online, the shards no pack record places
    /// on them any more (moved by a repair, or of a run that failed). Not in
    /// the node (bug 6); `Delete` is its prune's request.
    pub(super) fn flush_deletes(&mut self) {
        // (The node as it is keeps them: both "node as is" mutants.)
        if matches!(self.sim.cfg.mutant, Some(Mutant::GarbageKept | Mutant::StaleShardKept)) {
            return;
        }
        let hosts: Vec<usize> = self.pending_deletes.keys().copied().collect();
        for h in hosts {
            if !self.online(h) {
                continue;
            }
            let placed: BTreeSet<ShardId> = self
                .catalog
                .packs
                .values()
                .flat_map(|r| &r.shards)
                .filter(|s| s.host == self.ids[h])
                .map(|s| s.id)
                .collect();
            let ids = self.pending_deletes.remove(&h).unwrap_or_default();
            let shards: Vec<ShardId> = ids.iter().filter(|id| !placed.contains(id)).copied().collect();
            if shards.is_empty() {
                continue;
            }
            match self.call(0, h, &BackupRequest::Delete { shards }) {
                Some(BackupResponse::Deleted { count, freed }) => {
                    self.sim.bump("backup.garbage_deleted");
                    self.sim.log(format!("n0 deletes {count} unplaced shard(s) on n{h} ({freed} bytes)"));
                }
                _ => {
                    self.pending_deletes.insert(h, ids);
                }
            }
        }
    }

    /// Rebuilds a pack from `k` good shards (`restore.rs` `fetch_pack`):
    /// each place tried at most once, a shard kept only if it hashes to
    /// its id, the decoded pack checked against its id.
    pub(super) fn fetch_pack(&mut self, pack: &PackId, record: &PackRecord, skip: Option<usize>) -> Option<Vec<u8>> {
        let k = record.k as usize;
        let mut candidates: Vec<&ShardPlace> =
            record.shards.iter().filter(|s| skip.is_none_or(|l| s.host != self.ids[l])).collect();
        // Connected hosts first, else in the catalog's order.
        candidates.sort_by_key(|s| !self.index_of(&s.host).is_some_and(|h| self.online(h)));
        let mut good = Vec::new();
        for place in candidates {
            if good.len() == k {
                break;
            }
            let Some(h) = self.index_of(&place.host) else { continue };
            let request = BackupRequest::GetShard { shard: place.id, offset: 0, len: place.len as u32 };
            match self.call(0, h, &request) {
                Some(BackupResponse::Data { data, .. }) if ShardId::of(&data) == place.id => {
                    self.check_accepted(h, place.id, 0, &data, "download");
                    good.push(data);
                }
                Some(BackupResponse::Data { .. }) => {
                    self.sim.bump("backup.corrupt_download_refused");
                    self.sim.log(format!("n{h} returned a corrupted shard {}", &place.id.hex()[..8]));
                }
                other => self.sim.log(format!("n0 works around shard {} on n{h}: {other:?}", &place.id.hex()[..8])),
            }
        }
        if good.len() < k {
            self.sim.log(format!("pack {} cannot be rebuilt: {} of {k} shards", &pack.hex()[..8], good.len()));
            return None;
        }
        match erasure::decode(&good) {
            Ok((id, bytes)) if id == *pack => Some(bytes),
            other => {
                let what = other.map(|(id, _)| id.hex()).unwrap_or_else(|e| e.to_string());
                self.sim.fail(Violation::new("good_shards_do_not_decode", format!("pack {}: {what}", pack.hex())));
                None
            }
        }
    }
}
