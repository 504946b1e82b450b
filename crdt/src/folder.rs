//! The shared folder as members see it: the [`Tree`] of moves plus each
//! entry's file version, both stored in the [`ShareDoc`].
//!
//! Storage in the document:
//! - `moves[<lamport:016x>-<actor hex>]` = CBOR of a [`MoveOp`] with that id.
//!   Ops are immutable; `doc` refuses a move keyed with another author, and
//!   [`Folder::from_doc`] skips a value whose op id does not match its key.
//! - `entries[<entry hex>].version` = CBOR of a [`Version`]: kind, content id
//!   (the file's manifest id), size, mtime, executable bit, and who wrote it.
//!   One register holds a whole version, so concurrent edits leave complete
//!   competing versions (never the size of one and the content of another).
//!
//! Reading: the winning version (Automerge's deterministic pick) is the file
//! at its display path; every other concurrent version is a **conflict copy**
//! beside it, named `name (conflict from <author> <date>).ext` from data in
//! the document only, so every member computes the same names. Writing a new
//! version supersedes all the versions it has seen, which resolves a conflict.
//!
//! Pure: ids and times come from the caller.

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::doc::{hex, DocError, ShareDoc, SignedChange, Signer, Touched};
use crate::names;
use crate::tree::{EntryId, MoveOp, OpId, Tree};

/// File or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A regular file with content.
    File,
    /// A folder.
    Dir,
}

/// One version of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// File or folder.
    pub kind: Kind,
    /// The content's manifest id (BLAKE3), for files.
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix milliseconds.
    pub mtime_ms: i64,
    /// Executable bit.
    pub exec: bool,
    /// The author's peer id.
    #[serde(with = "serde_bytes")]
    pub author: Vec<u8>,
    /// The author's own display name, for conflict names.
    pub author_name: String,
    /// Unix seconds of the edit, for conflict names.
    pub at: i64,
    /// Length of the encoded manifest (files), so that a member can fetch
    /// the manifest blob in one request.
    #[serde(default)]
    pub manifest_len: u32,
    /// For a conflict copy recorded as a file of its own (a local edit that
    /// turned out concurrent with another member's), the entry it conflicts
    /// with; empty otherwise.
    #[serde(default, with = "serde_bytes")]
    pub conflict_of: Vec<u8>,
}

/// One thing to have on disk: an entry's winning version at its path, or a
/// conflict copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The entry.
    pub entry: EntryId,
    /// Display path components below the share root.
    pub path: Vec<String>,
    /// The version to show there (shared with the folder: listing every
    /// item of a large share copies no version).
    pub version: Arc<Version>,
    /// `None` for the winning version; `Some(i)` for the i-th losing one.
    pub conflict: Option<usize>,
}

/// The folder read from a document.
#[derive(Debug, Clone)]
pub struct Folder {
    tree: Tree,
    versions: BTreeMap<EntryId, Vec<Arc<Version>>>,
    skipped_values: usize,
}

pub(crate) fn move_key(id: &OpId) -> String {
    format!("{:016x}-{}", id.lamport, hex(&id.actor))
}

fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Serialising these plain structs into a Vec cannot fail.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

pub(crate) fn from_cbor<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    ciborium::from_reader(bytes).ok()
}

/// An entry's versions in `doc`, winner first.
fn read_versions(doc: &ShareDoc, entry: EntryId) -> Vec<Arc<Version>> {
    let mut versions: Vec<Arc<Version>> = doc
        .entry_field(entry.as_bytes(), "version")
        .into_iter()
        .filter_map(|v| match v {
            ScalarValue::Bytes(b) => from_cbor(&b).map(Arc::new),
            _ => None,
        })
        .collect();
    if crate::mutant::active(crate::mutant::Mutant::LastWriterWins) {
        versions.truncate(1);
    }
    versions
}

/// The entry named by a key of the `entries` map (32 hex digits).
impl Folder {
    /// Reads the tree and the versions from `doc`. Values that do not decode
    /// (or a move whose id does not match its key) are skipped and counted.
    pub fn from_doc(doc: &ShareDoc) -> Folder {
        let mut skipped_values = 0;
        let mut ops = Vec::new();
        doc.for_each_move(|key, bytes| match from_cbor::<MoveOp>(bytes) {
            Some(op) if move_key(&op.id) == key => ops.push(op),
            _ => skipped_values += 1,
        });
        let tree = Tree::from_ops(ops);
        let mut versions = BTreeMap::new();
        for entry in tree.entries() {
            let values = read_versions(doc, entry);
            if !values.is_empty() {
                versions.insert(entry, values);
            }
        }
        Folder { tree, versions, skipped_values }
    }

    /// Brings the folder up to date with what `doc` says was `touched` since
    /// the state this folder was read at (see [`ShareDoc::take_touched`]):
    /// the result equals [`Folder::from_doc`] of the document now, at the
    /// cost of the change instead of the whole share. Returns false, leaving
    /// the folder unusable, when `touched` cannot say (the document's
    /// structure itself changed): then read the folder again with
    /// [`Folder::from_doc`].
    pub fn apply_touched(&mut self, doc: &ShareDoc, touched: &Touched) -> bool {
        if touched.whole {
            return false;
        }
        let mut ops = Vec::new();
        let mut entries = std::collections::BTreeSet::new();
        for key in &touched.moves {
            // As in `from_doc`: a value that is not bytes is not a move.
            let Some(bytes) = doc.move_at(key) else { continue };
            match from_cbor::<MoveOp>(&bytes) {
                Some(op) if move_key(&op.id) == *key => {
                    entries.insert(op.entry);
                    ops.push(op);
                }
                _ => self.skipped_values += 1,
            }
        }
        for entry in &touched.entries {
            match <[u8; 16]>::try_from(entry.as_slice()) {
                Ok(bytes) => entries.insert(EntryId::from_bytes(bytes)),
                Err(_) => return false,
            };
        }
        self.tree.apply_all(ops);
        for entry in entries {
            let values = if self.tree.contains(entry) { read_versions(doc, entry) } else { Vec::new() };
            if values.is_empty() {
                self.versions.remove(&entry);
            } else {
                self.versions.insert(entry, values);
            }
        }
        true
    }

    /// The tree of moves.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// An entry's versions, winner first (several when edited concurrently).
    pub fn versions(&self, entry: EntryId) -> &[Arc<Version>] {
        self.versions.get(&entry).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Document values that could not be read (corrupt or forged).
    pub fn skipped_values(&self) -> usize {
        self.skipped_values
    }

    /// Whether a local edit of `entry`'s file, made on the version whose
    /// content is `based_on` (what the local index recorded at its path),
    /// is concurrent with a version of another member: the winning version
    /// is not the one edited (another member's edit arrived since), so the
    /// local edit must become a conflict copy instead of a new version. The
    /// rule the node's scan applies, here so that the simulator checks the
    /// same one.
    pub fn edit_is_concurrent(&self, entry: EntryId, based_on: &[u8]) -> bool {
        self.versions(entry).first().is_some_and(|w| w.content != based_on)
    }

    /// The losing versions of `entry` shown as conflict copies, each with
    /// the name it is shown under, for an edit of the winning version to
    /// keep as files of their own (see [`Editor::keep_conflict_copies`])
    /// before it supersedes them: the member editing the winner may not
    /// have a copy on disk yet, and a new version would otherwise make the
    /// other member's edit vanish from every folder (found by the
    /// simulator, seed 49 of `--scenario share`).
    pub fn conflict_copies(&self, entry: EntryId) -> Vec<(String, Arc<Version>)> {
        if self.versions(entry).len() < 2 {
            return Vec::new(); // no conflict: no path to build (the usual edit)
        }
        self.items_of(entry)
            .into_iter()
            .filter(|i| i.conflict.is_some())
            .filter_map(|i| Some((i.path.last()?.clone(), i.version)))
            .collect()
    }

    /// The next Lamport counter for a local op.
    pub fn next_lamport(&self) -> u64 {
        self.tree.lamport_max() + 1
    }

    /// Everything that should be on disk, below the root (not the trash), in
    /// path order: folders, files and conflict copies. Entries without a
    /// version yet (content not described) are left out.
    pub fn items(&self) -> Vec<Item> {
        let mut out = Vec::new();
        for entry in self.tree.entries() {
            self.push_items(entry, &mut out);
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// The items of one entry (its winning version and its conflict
    /// copies), at the cost of that entry's path: see [`Folder::items`].
    pub fn items_of(&self, entry: EntryId) -> Vec<Item> {
        let mut out = Vec::new();
        self.push_items(entry, &mut out);
        out
    }

    /// The versions of `entry` shown in the folder, without their paths: the
    /// winner (`None`), then, for a file, each losing file version `Some(i)`
    /// (a conflict copy). Empty for an entry in the trash or without a
    /// version. The rule of [`Folder::items`], for counting.
    pub fn shown_versions(&self, entry: EntryId) -> Vec<(Option<usize>, &Arc<Version>)> {
        let versions = self.versions(entry);
        let Some((winner, losers)) = versions.split_first() else { return Vec::new() };
        if self.tree.is_in_trash(entry) {
            return Vec::new();
        }
        let mut out = vec![(None, winner)];
        if winner.kind == Kind::File {
            out.extend(losers.iter().enumerate().filter(|(_, v)| v.kind == Kind::File).map(|(i, v)| (Some(i), v)));
        }
        out
    }

    fn push_items(&self, entry: EntryId, out: &mut Vec<Item>) {
        let shown = self.shown_versions(entry);
        let Some(((_, winner), losers)) = shown.split_first() else { return };
        let Some(path) = self.tree.display_path(entry) else { return };
        out.push(Item { entry, path: path.clone(), version: Arc::clone(winner), conflict: None });
        if losers.is_empty() {
            return;
        }
        let Some((name, dir)) = path.split_last() else { return };
        // Names already used in the folder (case-insensitively): a conflict
        // copy never takes one (two losing versions by the same member in
        // the same minute, or a file that happens to bear the name) but gets
        // the next free number, the same on every member.
        let mut taken: std::collections::BTreeSet<String> = match self.tree.parent_of(entry) {
            Some(parent) => self.tree.display_names(parent).into_iter().map(|(_, n)| n.to_lowercase()).collect(),
            None => Default::default(),
        };
        for (i, loser) in losers.iter().filter_map(|(i, v)| Some(((*i)?, *v))) {
            let base = names::conflict_name(name, &loser.author_name, &date(loser.at));
            let mut copy_name = base.clone();
            let mut n = 2;
            while taken.contains(&copy_name.to_lowercase()) {
                copy_name = names::numbered_name(&base, n);
                n += 1;
            }
            taken.insert(copy_name.to_lowercase());
            let mut copy = dir.to_vec();
            copy.push(copy_name);
            out.push(Item { entry, path: copy, version: Arc::clone(loser), conflict: Some(i) });
        }
    }
}

/// A deleted entry, restorable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashItem {
    /// The entry.
    pub entry: EntryId,
    /// Where it was before it was deleted (display path; its folder may be
    /// gone too).
    pub original_path: Vec<String>,
    /// The folder it was in, and its name there.
    pub original_place: (EntryId, String),
    /// Its last version.
    pub version: Option<Version>,
}

impl Folder {
    /// Entries deleted directly (not those inside a deleted folder), with
    /// where they were.
    pub fn trash(&self) -> Vec<TrashItem> {
        let mut out = Vec::new();
        for entry in self.tree.children(EntryId::TRASH) {
            // The last applied move that did not put it in the trash.
            let before = self
                .tree
                .ops()
                .filter(|op| op.entry == entry && op.parent != EntryId::TRASH)
                .filter(|op| matches!(self.tree.effect_of(&op.id), Some(crate::tree::Effect::Moved)))
                .last();
            let Some(before) = before else { continue };
            let mut original_path = self.tree.display_path(before.parent).unwrap_or_default();
            original_path.push(before.name.clone());
            out.push(TrashItem {
                entry,
                original_path,
                original_place: (before.parent, before.name.clone()),
                version: self.versions(entry).first().map(|v| Version::clone(v)),
            });
        }
        out.sort_by(|a, b| a.original_path.cmp(&b.original_path));
        out
    }

    /// Every version an entry has had in `doc`, oldest first.
    pub fn history(doc: &mut ShareDoc, entry: EntryId) -> Vec<Version> {
        doc.field_history(entry.as_bytes(), "version")
            .into_iter()
            .filter_map(|v| match v {
                ScalarValue::Bytes(b) => from_cbor(&b),
                _ => None,
            })
            .collect()
    }
}

/// Local edits, written to the document (the caller commits and signs).
pub struct Editor<'a> {
    doc: &'a mut ShareDoc,
    actor: Vec<u8>,
    lamport: u64,
    uncommitted: usize,
}

impl<'a> Editor<'a> {
    /// An editor for `actor` (the local peer id) continuing after `folder`.
    pub fn new(doc: &'a mut ShareDoc, folder: &Folder, actor: &[u8]) -> Self {
        Editor { doc, actor: actor.to_vec(), lamport: folder.next_lamport(), uncommitted: 0 }
    }

    /// Edits (moves and versions) written since the editor was made or last
    /// committed.
    pub fn uncommitted(&self) -> usize {
        self.uncommitted
    }

    /// Commits the edits so far as one signed change (see
    /// [`ShareDoc::commit`]), so that a long series of edits (the first scan
    /// of a large folder) becomes changes of a bounded size; editing goes on
    /// afterwards.
    pub fn commit(&mut self, signer: &dyn Signer, now: i64) -> Result<Option<SignedChange>, DocError> {
        self.uncommitted = 0;
        self.doc.commit(signer, now)
    }

    fn write_move(&mut self, entry: EntryId, parent: EntryId, name: &str) -> Result<MoveOp, DocError> {
        let op = MoveOp { id: OpId::new(self.lamport, self.actor.clone()), entry, parent, name: name.to_owned() };
        self.lamport += 1;
        self.uncommitted += 1;
        self.doc.put_move(&move_key(&op.id), cbor(&op))?;
        Ok(op)
    }

    /// Creates `entry` (a fresh random id from the caller) under `parent`.
    pub fn create(&mut self, entry: EntryId, parent: EntryId, name: &str, version: &Version) -> Result<(), DocError> {
        self.write_move(entry, parent, name)?;
        self.set_version(entry, version)
    }

    /// Records a new version of `entry` (supersedes every version seen).
    pub fn set_version(&mut self, entry: EntryId, version: &Version) -> Result<(), DocError> {
        self.uncommitted += 1;
        self.doc.put_entry_field(entry.as_bytes(), "version", ScalarValue::Bytes(cbor(version)))
    }

    /// Makes each of `copies` (from [`Folder::conflict_copies`] of `entry`,
    /// under `parent`) a file of its own, named as it was shown, so that a
    /// new version of `entry` supersedes only the version it was based on.
    /// `new_id` gives each a fresh id; returns the ids with their names.
    pub fn keep_conflict_copies(
        &mut self,
        entry: EntryId,
        parent: EntryId,
        copies: &[(String, Arc<Version>)],
        mut new_id: impl FnMut() -> EntryId,
    ) -> Result<Vec<(EntryId, String)>, DocError> {
        let mut kept = Vec::with_capacity(copies.len());
        for (name, version) in copies {
            let mut own = Version::clone(version);
            own.conflict_of = entry.as_bytes().to_vec();
            let id = new_id();
            self.create(id, parent, name, &own)?;
            kept.push((id, name.clone()));
        }
        Ok(kept)
    }

    /// Renames and/or moves `entry`: its content is not touched.
    pub fn move_to(&mut self, entry: EntryId, parent: EntryId, name: &str) -> Result<(), DocError> {
        self.write_move(entry, parent, name).map(|_| ())
    }

    /// Deletes `entry` (moves it into the trash, where its versions stay).
    pub fn delete(&mut self, entry: EntryId, name: &str) -> Result<(), DocError> {
        self.write_move(entry, EntryId::TRASH, name).map(|_| ())
    }
}

/// `YYYY-MM-DD HH-MM` (UTC) for Unix seconds, without a clock or a library:
/// the days-to-civil conversion of Howard Hinnant's date algorithms.
pub fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}-{:02}", secs / 3600, (secs % 3600) / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(date(0), "1970-01-01 00-00");
        assert_eq!(date(1_795_309_881), "2026-11-22 01-11");
        assert_eq!(date(951_782_400), "2000-02-29 00-00");
        assert_eq!(date(-1), "1969-12-31 23-59");
    }
}
