//! The backup scenario's invariants, its restore, and settling.

use std::collections::{BTreeMap, BTreeSet};

use hearth_protocol::backup::catalog::{PackRecord, Snapshot};
use hearth_protocol::backup::chunk;
use hearth_protocol::backup::erasure;
use hearth_protocol::backup::pack::PackId;

use super::{Backup, SETTLE_SWEEPS};
use crate::invariants::Violation;

/// Every `k`-subset of `0..n`, in order.
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut pick: Vec<usize> = (0..k).collect();
    if k == 0 || k > n {
        return out;
    }
    loop {
        out.push(pick.clone());
        let Some(i) = (0..k).rev().find(|&i| pick[i] < n - k + i) else { return out };
        pick[i] += 1;
        for j in i + 1..k {
            pick[j] = pick[j - 1] + 1;
        }
    }
}

impl Backup {
    /// After every event: quotas hold, hosts keep nothing but the owner's
    /// shards, the stranger got nothing.
    pub(super) fn check_hosts(&mut self) {
        self.sim.bump("invariants.checks");
        for h in 1..self.stranger() {
            let host = &self.hosts[h];
            if let Some(a) = host.agreement {
                if host.used > a.quota() && a.quota() > 0 {
                    let v = Violation::new(
                        "over_quota",
                        format!("n{h} holds {} bytes of a {} quota", host.used, a.quota()),
                    );
                    return self.sim.fail(v);
                }
            }
            if let Some(id) = host.shards.keys().find(|id| !self.made.contains_key(id)) {
                let v =
                    Violation::new("stranger_stored", format!("n{h} holds shard {} the owner never made", id.hex()));
                return self.sim.fail(v);
            }
        }
        if self.stranger_got > 0 {
            let v =
                Violation::new("stranger_served", format!("the stranger got {} bytes of shards", self.stranger_got));
            self.sim.fail(v);
        }
    }

    /// What the owner accepted as good (a downloaded shard that hashed to
    /// its id, an audit answer that verified) is the shard as made.
    pub(super) fn check_accepted(&mut self, h: usize, id: erasure::ShardId, offset: u64, data: &[u8], what: &str) {
        self.sim.bump("invariants.checks");
        let made = self.made.get(&id).map(Vec::as_slice).unwrap_or_default();
        let start = (offset as usize).min(made.len());
        let end = (start + data.len()).min(made.len());
        if made[start..end] != *data {
            let v = Violation::new(
                "corrupt_accepted",
                format!("n0 took a corrupted {what} from n{h} for good (shard {}, at {offset})", &id.hex()[..8]),
            );
            self.sim.fail(v);
        }
    }

    /// Whether one more damaged shard on host `h` (shard `only`, or all it
    /// holds) leaves every pack at most `n - k` damaged shards.
    pub(super) fn damage_ok(&self, h: usize, only: Option<erasure::ShardId>) -> bool {
        for record in self.catalog.packs.values() {
            let hit = |s: &&hearth_protocol::backup::catalog::ShardPlace| {
                s.host == self.ids[h] && only.is_none_or(|id| s.id == id)
            };
            if !record.shards.iter().any(|s| hit(&s)) {
                continue;
            }
            let bad = record.shards.iter().filter(|s| hit(s) || !self.is_good(&s.host, &s.id)).count();
            if bad > (record.n - record.k) as usize {
                return false;
            }
        }
        true
    }

    /// Whether the friend `host` holds shard `id` as it was made.
    fn is_good(&self, host: &[u8], id: &erasure::ShardId) -> bool {
        let Some(h) = self.index_of(host) else { return false };
        self.hosts[h].shards.get(id).is_some_and(|b| self.made.get(id) == Some(b))
    }

    /// A pack's shards as made, in index order.
    fn made_shards(&self, record: &PackRecord) -> Vec<Vec<u8>> {
        record.shards.iter().filter_map(|s| self.made.get(&s.id).cloned()).collect()
    }

    /// Every `k` of `shards` rebuild the pack `pack`, the same bytes each
    /// time; returns them.
    fn every_k_decodes(&mut self, pack: &PackId, k: usize, shards: &[Vec<u8>], when: &str) -> Option<Vec<u8>> {
        let mut bytes: Option<Vec<u8>> = None;
        for subset in subsets(shards.len(), k) {
            self.sim.bump("invariants.decodes");
            let some: Vec<Vec<u8>> = subset.iter().map(|&i| shards[i].clone()).collect();
            match erasure::decode(&some) {
                Ok((id, b)) if id == *pack && bytes.as_ref().is_none_or(|first| *first == b) => {
                    bytes.get_or_insert(b);
                }
                other => {
                    let what = other.map(|(id, _)| id.hex()).unwrap_or_else(|e| e.to_string());
                    let v = Violation::new(
                        "k_shards_do_not_decode",
                        format!("{when}: shards {subset:?} of pack {}: {what}", &pack.hex()[..8]),
                    );
                    self.sim.fail(v);
                    return None;
                }
            }
        }
        bytes
    }

    /// The files of `snapshot`, from the packs' bytes.
    fn restore_files(
        &self,
        snapshot: &Snapshot,
        packs: &BTreeMap<PackId, Vec<u8>>,
    ) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let mut out = BTreeMap::new();
        for file in &snapshot.files {
            let mut data = Vec::with_capacity(file.size as usize);
            for id in &file.chunks {
                let loc = self.catalog.index.get(id).ok_or_else(|| format!("chunk {} not in the index", id.hex()))?;
                let pack = packs.get(&loc.pack).ok_or_else(|| format!("pack {} not rebuilt", loc.pack.hex()))?;
                let at = loc.offset as usize;
                let sealed = pack.get(at..at + loc.len as usize).ok_or("chunk outside its pack")?;
                data.extend(chunk::open(&self.keys, id, sealed).map_err(|e| e.to_string())?);
            }
            if data.len() as u64 != file.size {
                return Err(format!("{} restored to {} bytes of {}", file.path, data.len(), file.size));
            }
            out.insert(file.path.clone(), data);
        }
        Ok(out)
    }

    /// Restores snapshot `id` from `packs` and compares it with the files
    /// it was made of.
    fn check_restores(&mut self, id: &str, packs: &BTreeMap<PackId, Vec<u8>>, when: &str) {
        self.sim.bump("invariants.restores");
        let Some(snapshot) = self.catalog.snapshots.iter().find(|s| s.id == id) else { return };
        let restored = self.restore_files(snapshot, packs);
        let truth = &self.truth[id];
        let why = match restored {
            Ok(files) if files == *truth => return,
            Ok(files) => {
                let differ: Vec<&String> =
                    truth.keys().chain(files.keys()).filter(|p| files.get(*p) != truth.get(*p)).collect();
                format!("{} file(s) differ, first {:?}", differ.len(), differ.first())
            }
            Err(e) => e,
        };
        self.sim.fail(Violation::new("restore_differs", format!("{when}: snapshot {id}: {why}")));
    }

    /// The packs a snapshot needs.
    fn packs_of(&self, id: &str) -> BTreeSet<PackId> {
        let Some(snapshot) = self.catalog.snapshots.iter().find(|s| s.id == id) else { return BTreeSet::new() };
        snapshot
            .files
            .iter()
            .flat_map(|f| &f.chunks)
            .filter_map(|c| self.catalog.index.get(c))
            .map(|l| l.pack)
            .collect()
    }

    /// A snapshot just completed: every `k` of the `n` shards of each new
    /// pack rebuild it, and the snapshot restores byte for byte from the
    /// shards as made.
    pub(super) fn check_new_snapshot(&mut self, id: &str, new_packs: &[PackId]) {
        let mut packs = BTreeMap::new();
        for pack in self.packs_of(id) {
            let Some(record) = self.catalog.packs.get(&pack).cloned() else { continue };
            let shards = self.made_shards(&record);
            let bytes = if new_packs.contains(&pack) {
                self.every_k_decodes(&pack, record.k as usize, &shards, "new snapshot")
            } else {
                erasure::decode(&shards[..record.k as usize]).ok().map(|(_, b)| b)
            };
            let Some(bytes) = bytes else { return };
            packs.insert(pack, bytes);
        }
        self.check_restores(id, &packs, "new snapshot");
    }

    /// All up, links healed, no faults; audit sweeps of every shard and
    /// repairs until nothing fails; then the final checks.
    pub(super) fn settle(&mut self) {
        self.settling = true;
        self.sim.net.heal_all();
        self.sim.net.set_faults(crate::net::NetFaults::NONE);
        self.sim.log("settle: heal all links, everyone back, no more faults");
        self.owner_up = true;
        for h in 1..self.ids.len() {
            self.hosts[h].up = true;
        }
        for sweep in 0..=SETTLE_SWEEPS {
            let mut budget = 100_000u64;
            while let Some(ev) = self.sim.pop() {
                self.handle(ev);
                budget -= 1;
                if budget == 0 {
                    return self.sim.fail(Violation::new("no_quiescence", "still busy while settling"));
                }
            }
            if self.sim.failure.is_some() || sweep == SETTLE_SWEEPS {
                break;
            }
            self.sim.log(format!("settle sweep {sweep}: audit every shard"));
            // Until a sweep changes nothing: a friend failing for a shard no
            // free friend can take fails every sweep, but the garbage
            // deleted from it can make room for the next sweep's repairs.
            let before = (self.catalog.generation, self.pending_deletes.clone());
            if self.audit_round_with(true) == 0 || before == (self.catalog.generation, self.pending_deletes.clone()) {
                break;
            }
        }
        self.check_hosts();
        if self.sim.failure.is_none() {
            self.check_final();
        }
    }

    fn check_final(&mut self) {
        self.sim.bump("invariants.final_checks");
        let mut rebuilt = BTreeMap::new();
        let packs: Vec<(PackId, PackRecord)> = self.catalog.packs.iter().map(|(p, r)| (*p, r.clone())).collect();
        for (pack, record) in packs {
            let (k, n) = (record.k as usize, record.n as usize);
            let hosts: BTreeSet<&Vec<u8>> = record.shards.iter().map(|s| &s.host).collect();
            if hosts.len() != n || record.shards.len() != n {
                let v = Violation::new(
                    "shards_not_distinct",
                    format!("pack {}: {} shards on {} friends", &pack.hex()[..8], record.shards.len(), hosts.len()),
                );
                return self.sim.fail(v);
            }
            let good: Vec<Vec<u8>> = record
                .shards
                .iter()
                .filter(|s| self.is_good(&s.host, &s.id))
                .filter_map(|s| self.made.get(&s.id).cloned())
                .collect();
            if good.len() < k {
                let v = Violation::new(
                    "pack_lost",
                    format!("pack {}: {} good shards of {k}", &pack.hex()[..8], good.len()),
                );
                return self.sim.fail(v);
            }
            if good.len() < n {
                // Repair may use an accepted friend holding no shard of it,
                // with room left in its quota for one.
                let len = record.shards.first().map(|s| s.len).unwrap_or(0);
                let free: Vec<usize> = self
                    .friends
                    .iter()
                    .filter(|(h, f)| f.accepted && !hosts.contains(&self.ids[**h]))
                    .filter(|(h, _)| self.hosts[**h].used + len <= self.hosts[**h].quota)
                    .map(|(h, _)| *h)
                    .collect();
                if !free.is_empty() {
                    let v = Violation::new(
                        "not_repaired",
                        format!(
                            "pack {}: {} good shards of {n}, friends {free:?} were free",
                            &pack.hex()[..8],
                            good.len()
                        ),
                    );
                    return self.sim.fail(v);
                }
                self.sim.bump("backup.unrepaired_no_free_friend");
                let full = self
                    .friends
                    .keys()
                    .any(|h| !hosts.contains(&self.ids[*h]) && self.hosts[*h].used + len > self.hosts[*h].quota);
                if full {
                    self.sim.bump("backup.unrepaired_quota_full");
                }
            }
            let Some(bytes) = self.every_k_decodes(&pack, k, &good, "after settling") else { return };
            // And through the owner's own restore path, over the network.
            match self.fetch_pack(&pack, &record, None) {
                Some(fetched) if fetched == bytes => {}
                _ => {
                    let v = Violation::new("restore_failed", format!("pack {} did not come back", &pack.hex()[..8]));
                    return self.sim.fail(v);
                }
            }
            rebuilt.insert(pack, bytes);
        }
        let ids: Vec<String> = self.catalog.snapshots.iter().map(|s| s.id.clone()).collect();
        for id in &ids {
            self.check_restores(id, &rebuilt, "after settling");
            if self.sim.failure.is_some() {
                return;
            }
        }
        // No space leaked: once the deletes owed reach the friends, each
        // holds only shards the catalog places on it.
        self.flush_deletes();
        for h in 1..self.stranger() {
            let placed: BTreeSet<erasure::ShardId> = self
                .catalog
                .packs
                .values()
                .flat_map(|r| &r.shards)
                .filter(|s| s.host == self.ids[h])
                .map(|s| s.id)
                .collect();
            let garbage: u64 =
                self.hosts[h].shards.iter().filter(|(id, _)| !placed.contains(id)).map(|(_, b)| b.len() as u64).sum();
            if garbage > 0 {
                let v = Violation::new(
                    "garbage_left",
                    format!(
                        "n{h} keeps {garbage} bytes of shards no pack places on it: {:?}",
                        self.hosts[h]
                            .shards
                            .keys()
                            .filter(|id| !placed.contains(id))
                            .map(|id| id.hex()[..8].to_string())
                            .collect::<Vec<_>>()
                    ),
                );
                return self.sim.fail(v);
            }
        }
        self.sim.log(format!(
            "final: {} snapshot(s) restore byte for byte, {} pack(s) each with every k of its good shards",
            ids.len(),
            rebuilt.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::subsets;

    #[test]
    fn subsets_are_every_combination() {
        assert_eq!(subsets(3, 2), vec![vec![0, 1], vec![0, 2], vec![1, 2]]);
        assert_eq!(subsets(5, 3).len(), 10);
        assert_eq!(subsets(1, 1), vec![vec![0]]);
        assert!(subsets(2, 3).is_empty());
    }
}
