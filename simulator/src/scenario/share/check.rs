//! The share scenario's invariants and settling.

use super::*;

impl Share {
    pub(super) fn check_tree(&mut self, i: usize) {
        self.sim.bump("invariants.checks");
        let Some(doc) = &self.nodes[i].doc else { return };
        let folder = Folder::from_doc(doc);
        if let Err(e) = folder.tree().check_invariants() {
            self.sim.fail(Violation::new("tree_invariant", format!("n{i}: {e:?}")));
        }
    }

    pub(super) fn settle(&mut self) {
        if self.sim.failure.is_some() {
            return;
        }
        self.settling = true;
        self.sim.net.heal_all();
        self.sim.net.set_faults(crate::net::NetFaults::NONE);
        self.sim.log("settle: heal all links, restart all nodes, no more faults");
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up {
                self.restart(i);
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].invited {
                self.accept(i);
            }
        }
        // Everyone is online again: every node syncs with the members it
        // knows once (as the node does when a contact comes online), even
        // when the members left agree already; a removed node that missed
        // its removal learns it here.
        for i in 0..self.nodes.len() - 1 {
            self.sync_all(i, None);
        }
        for round in 0..6 {
            let mut budget = 200_000u64;
            while let Some(ev) = self.sim.pop() {
                self.handle(ev);
                if self.sim.failure.is_some() {
                    return;
                }
                budget -= 1;
                if budget == 0 {
                    return self.sim.fail(Violation::new("no_quiescence", "still busy while settling"));
                }
            }
            if self.converged() {
                break;
            }
            self.sim.log(format!("settle round {round}: everyone syncs with everyone"));
            for i in 0..self.nodes.len() - 1 {
                self.sync_all(i, None);
            }
        }
        for i in 0..self.nodes.len() - 2 {
            self.write_out(i);
        }
        let mut budget = 100_000u64;
        while let Some(ev) = self.sim.pop() {
            self.handle(ev);
            budget -= 1;
            if budget == 0 {
                return self.sim.fail(Violation::new("no_quiescence", "still busy after the last write-out"));
            }
        }
        self.check_final();
    }

    /// The members the owner lists who accepted and still take part.
    pub(super) fn final_members(&self) -> Vec<usize> {
        let owner = self.nodes[0].doc.as_ref().expect("owner doc");
        (0..self.nodes.len() - 2)
            .filter(|&i| i == 0 || (self.nodes[i].active && owner.role_of(&self.nodes[i].id).is_some()))
            .collect()
    }

    pub(super) fn converged(&mut self) -> bool {
        let members = self.final_members();
        let heads: BTreeSet<Vec<Hash>> =
            members.iter().map(|&i| self.nodes[i].doc.as_mut().map(|d| d.heads()).unwrap_or_default()).collect();
        heads.len() <= 1
    }

    pub(super) fn check_final(&mut self) {
        self.sim.bump("invariants.final_checks");
        let members = self.final_members();
        let mut reference: Option<(usize, Vec<Hash>, Listing)> = None;
        for &i in &members {
            let doc = self.nodes[i].doc.as_mut().expect("member doc");
            let heads = doc.heads();
            let folder = Folder::from_doc(doc);
            let items: Listing = folder.items().into_iter().map(|it| (it.path, it.version.content.clone())).collect();
            if let Err(e) = folder.tree().check_invariants() {
                return self.sim.fail(Violation::new("tree_invariant", format!("n{i} after settling: {e:?}")));
            }
            match &reference {
                None => reference = Some((i, heads, items)),
                Some((r, rh, ri)) => {
                    if *rh != heads || *ri != items {
                        return self.sim.fail(Violation::new(
                            "diverged",
                            format!("n{i} and n{r} hold different trees after settling"),
                        ));
                    }
                }
            }
        }
        // Every write survives unless superseded by someone who had it.
        let owner_doc = self.nodes[0].doc.as_ref().expect("owner doc");
        let folder = Folder::from_doc(owner_doc);
        let seen: BTreeSet<(EntryId, Vec<u8>)> =
            self.writes.iter().flat_map(|w| w.seen.iter().map(|c| (w.entry, c.clone()))).collect();
        for w in &self.writes {
            let present = folder.versions(w.entry).iter().any(|v| v.content == w.content);
            if !present && !seen.contains(&(w.entry, w.content.clone())) && !w.author_left {
                let v = Violation::new(
                    "lost_write",
                    format!(
                        "n{}'s version {} of {} is gone and nobody who replaced it had it",
                        w.author,
                        short(&w.content),
                        w.entry
                    ),
                );
                return self.sim.fail(v);
            }
        }
        self.sim.stats.counters.insert("share.writes_checked".into(), self.writes.len() as u64);
        self.sim.log(format!("final: {} member(s) agree; {} write(s) all kept", members.len(), self.writes.len()));
    }
}
