//! What the people and the hostile members of a share do.

use super::*;

impl Share {
    pub(super) fn workload(&mut self) {
        let n = self.nodes.len();
        let roll = self.sim.rng.gen_range(0..100);
        match roll {
            0..=54 => {
                let i = self.sim.rng.gen_range(0..n - 2);
                self.edit(i);
            }
            55..=59 => self.forge(n - 2),
            60..=62 => self.forge(n - 1),
            63..=69 => self.membership(),
            70..=79 => {
                // A member comes back online (or just syncs).
                let i = self.sim.rng.gen_range(0..n - 1);
                let peers = self.members_seen_by(i);
                if !peers.is_empty() {
                    let j = peers[self.sim.rng.gen_range(0..peers.len())];
                    self.sync_to(i, j);
                }
            }
            80..=87 if self.sim.cfg.faults != crate::world::Faults::None => {
                self.sim.partition(n, Ev::Heal);
            }
            88..=93 if self.sim.node_faults() => {
                let i = self.sim.rng.gen_range(0..n - 1);
                if self.nodes[i].up {
                    self.crash(i);
                }
            }
            _ => {
                let i = self.sim.rng.gen_range(0..n - 2);
                self.write_out(i);
            }
        }
    }

    pub(super) fn membership(&mut self) {
        let n = self.nodes.len();
        let i = self.sim.rng.gen_range(1..n - 2);
        if !self.nodes[0].up {
            return;
        }
        let role = self.nodes[0].doc.as_ref().and_then(|d| d.role_of(&self.nodes[i].id));
        let now = self.sim.now_secs() as i64;
        let key = self.key(0);
        let peer = self.nodes[i].id.clone();
        match role {
            None => {
                let role = if self.sim.rng.gen_bool(0.8) { Role::ReadWrite } else { Role::ReadOnly };
                self.invite(i, role);
            }
            Some(r) => {
                let next = match self.sim.rng.gen_range(0..3) {
                    0 => None,
                    _ if r == Role::ReadWrite => Some(Role::ReadOnly),
                    _ => Some(Role::ReadWrite),
                };
                let doc = self.nodes[0].doc.as_mut().expect("owner doc");
                if doc.set_role(&peer, next).is_err() || doc.commit(&key, now).is_err() {
                    return;
                }
                let what = next.map(Role::as_str).unwrap_or("removed");
                self.sim.bump(format!("share.role.{what}"));
                self.sim.log(format!("n0 sets n{i} {what}"));
                self.sync_all(0, None);
                if next.is_none() {
                    // The removed member is not synced with any more; it
                    // learns at its next sync with the owner.
                    self.sync_to(0, i);
                }
            }
        }
    }

    /// A person's change in the folder of node `i`, recorded by its scan.
    pub(super) fn edit(&mut self, i: usize) {
        if !self.nodes[i].up || !self.nodes[i].active {
            return;
        }
        let now = self.sim.now_secs() as i64;
        let key = self.key(i);
        let me = self.nodes[i].id.clone();
        let author_name = self.nodes[i].name.clone();
        let mut content = vec![0u8; 32];
        self.sim.rng.fill(&mut content[..]);
        let Some(doc) = self.nodes[i].doc.as_ref() else { return };
        if doc.role_of(&me).is_none_or(|r| r == Role::ReadOnly) {
            return;
        }
        let folder = Folder::from_doc(doc);
        let live: Vec<EntryId> = folder.tree().entries().filter(|e| !folder.tree().is_in_trash(*e)).collect();
        let dirs: Vec<EntryId> = std::iter::once(EntryId::ROOT)
            .chain(live.iter().copied().filter(|e| folder.versions(*e).first().is_some_and(|v| v.kind == Kind::Dir)))
            .collect();
        // Files on this node's disk (what the person can edit).
        let on_disk: Vec<(EntryId, Vec<u8>)> =
            self.nodes[i].disk.iter().filter_map(|(e, (main, _))| Some((*e, main.clone()?))).collect();
        let version = |kind: Kind, content: &[u8]| Version {
            kind,
            content: if kind == Kind::File { content.to_vec() } else { Vec::new() },
            size: 10,
            mtime_ms: now * 1000,
            exec: false,
            author: me.clone(),
            author_name: author_name.clone(),
            at: now,
            manifest_len: 0,
            conflict_of: Vec::new(),
        };
        let fresh = {
            let mut b = [0u8; 16];
            self.sim.rng.fill(&mut b[..]);
            b[0] |= 0x80;
            EntryId::from_bytes(b)
        };
        let new_id = || fresh;
        let pick = self.sim.rng.gen_range(0..10);
        let name = NAMES[self.sim.rng.gen_range(0..NAMES.len())];
        let dir = dirs[self.sim.rng.gen_range(0..dirs.len())];
        let target = if live.is_empty() { None } else { Some(live[self.sim.rng.gen_range(0..live.len())]) };
        let edit_target =
            if on_disk.is_empty() { None } else { Some(on_disk[self.sim.rng.gen_range(0..on_disk.len())].clone()) };
        let seen: BTreeSet<Vec<u8>> = edit_target
            .as_ref()
            .and_then(|(entry, _)| self.nodes[i].disk.get(entry))
            .map(|(m, c)| m.iter().cloned().chain(c.iter().cloned()).collect())
            .unwrap_or_default();
        let kind = if self.sim.rng.gen_bool(0.3) { Kind::Dir } else { Kind::File };
        let doc = self.nodes[i].doc.as_mut().expect("document");
        let mut editor = Editor::new(doc, &folder, &me);
        let mut write: Option<Write> = None;
        let mut kept_writes: Vec<Write> = Vec::new();
        let what = match (pick, target, edit_target) {
            (0..=3, _, Some((entry, based_on))) => {
                if !folder.tree().contains(entry) || folder.tree().is_in_trash(entry) {
                    // Edited here while deleted elsewhere: comes back as new.
                    let e = new_id();
                    let _ = editor.create(e, EntryId::ROOT, name, &version(Kind::File, &content));
                    write = Some(Write::fresh(i, e, content.clone()));
                    format!("edits deleted {entry}: back as {e}")
                } else if folder.edit_is_concurrent(entry, &based_on) {
                    let e = new_id();
                    let parent = folder.tree().parent_of(entry).unwrap_or(EntryId::ROOT);
                    let mut v = version(Kind::File, &content);
                    v.conflict_of = entry.as_bytes().to_vec();
                    let copy = format!("{name} (conflict)");
                    let _ = editor.create(e, parent, &copy, &v);
                    write = Some(Write::fresh(i, e, content.clone()));
                    format!("edits {entry} concurrently: conflict copy {e}")
                } else {
                    // As the node's scan does: the conflict copies still
                    // shown become files of their own, then the edit.
                    let copies = folder.conflict_copies(entry);
                    let parent = folder.tree().parent_of(entry).unwrap_or(EntryId::ROOT);
                    let mut n = 0u8;
                    let copy_id = || {
                        n += 1;
                        let mut b = *fresh.as_bytes();
                        b[15] ^= n;
                        EntryId::from_bytes(b)
                    };
                    let kept = editor.keep_conflict_copies(entry, parent, &copies, copy_id).unwrap_or_default();
                    // Each kept copy is a new file with that content (a write
                    // of its own to keep), so this edit supersedes it in
                    // `entry` as someone who has it.
                    let mut seen = seen;
                    for ((e, _), (_, v)) in kept.iter().zip(&copies) {
                        seen.insert(v.content.clone());
                        kept_writes.push(Write::fresh(i, *e, v.content.clone()));
                    }
                    let kept = kept.len();
                    let _ = editor.set_version(entry, &version(Kind::File, &content));
                    write = Some(Write { author: i, entry, content: content.clone(), seen, author_left: false });
                    if kept > 0 {
                        format!("edits {entry}, keeping {kept} conflict cop(ies) as files")
                    } else {
                        format!("edits {entry}")
                    }
                }
            }
            (0..=5, _, _) => {
                let e = new_id();
                let _ = editor.create(e, dir, name, &version(kind, &content));
                if kind == Kind::File {
                    write = Some(Write::fresh(i, e, content.clone()));
                }
                format!("creates {kind:?} {e} {name:?} in {dir}")
            }
            (6..=7, Some(t), _) => {
                let _ = editor.move_to(t, dir, name);
                format!("moves {t} to {dir} as {name:?}")
            }
            (8, Some(t), _) => {
                let _ = editor.move_to(t, folder.tree().parent_of(t).unwrap_or(EntryId::ROOT), name);
                format!("renames {t} to {name:?}")
            }
            (9, Some(t), _) => {
                let _ = editor.delete(t, name);
                format!("deletes {t}")
            }
            _ => return,
        };
        // A crash before the scan's commit loses the edit (the file stays
        // on disk for the next scan, which this model does not redo).
        match editor.commit(&key, now) {
            Ok(Some(_)) => {
                self.sim.bump("share.local_edit");
                self.sim.log(format!("n{i} {what}"));
                if let Some(w) = write {
                    self.new_content(i, &w.content);
                    self.nodes[i].blobs.insert(w.content.clone());
                    let slot = self.nodes[i].disk.entry(w.entry).or_default();
                    slot.0 = Some(w.content.clone());
                    self.writes.push(w);
                }
                // Kept conflict copies: on disk here only once written out.
                self.writes.append(&mut kept_writes);
                self.check_tree(i);
                self.sync_all(i, None);
            }
            Ok(None) => {}
            Err(e) => self.sim.log(format!("n{i} cannot record: {e}")),
        }
    }

    /// The read-only member (or the stranger) writes to its copy of the
    /// document behind `ShareDoc::commit`'s back and sends the change to
    /// the members: signed with its own key, or claiming another's actor.
    pub(super) fn forge(&mut self, i: usize) {
        if !self.nodes[i].up {
            return;
        }
        if self.nodes[i].who == Who::Stranger && self.sim.rng.gen_bool(0.3) {
            self.leak_to(i);
        }
        let now = self.sim.now_secs() as i64;
        let impersonate = self.sim.rng.gen_bool(0.3);
        let mut entry = [0u8; 16];
        self.sim.rng.fill(&mut entry[..]);
        let Some(doc) = self.nodes[i].doc.as_mut() else { return };
        let am = doc.automerge();
        let Ok(Some((_, entries))) = am.get(automerge::ROOT, "entries") else { return };
        if am.put(&entries, hex(&entry), "forged").is_err() {
            return;
        }
        let Some(hash) = am.commit_with(automerge::transaction::CommitOptions::default().with_time(now)) else {
            return;
        };
        let Some(change) = am.get_change_by_hash(&hash) else { return };
        let bytes = change.raw_bytes().to_vec();
        // Claiming the owner's key cannot produce the owner's signature.
        let signer = if impersonate { SimKey(b"not the owner".to_vec()) } else { self.key(i) };
        let signature = hearth_crdt::doc::Signer::sign(&signer, &hearth_crdt::doc::signing_message(&hash));
        let members: Vec<usize> = (0..self.nodes.len() - 2).collect();
        let j = members[self.sim.rng.gen_range(0..members.len())];
        self.sim.bump(format!("hostile.forged.{}", self.nodes[i].name));
        self.sim.log(format!("{} (n{i}) forges change {} and sends it to n{j}", self.nodes[i].name, short(&hash.0)));
        let heads = self.nodes[i].doc.as_mut().map(|d| d.heads()).unwrap_or_default();
        let request = ShareRequest::Sync {
            share: SHARE_ID.to_vec(),
            heads: heads_wire(&heads),
            changes: vec![WireChange { change: bytes, signature }],
        };
        let frame = frame::encode(&request, wire::MAX_MESSAGE).expect("encode");
        self.send(i, j, frame, false, "forged sync");
    }
}
