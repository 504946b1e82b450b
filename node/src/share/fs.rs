//! The share directory on disk, kept in step with the share document.
//!
//! - [`ShareFs::scan`] records local edits: it walks the directory, compares
//!   each file with the local index (size and mtime: an unchanged file is not
//!   read again), imports changed content into the blob store, and writes
//!   creations, new versions, moves (a path that disappeared and a new path
//!   with the same content are one move, not a delete and a re-upload) and
//!   deletions into the document through `crdt::folder::Editor`.
//! - [`ShareFs::materialise`] writes the document's state to disk: folders,
//!   moves as renames, new content through a temporary file, fsync and rename,
//!   and removal of entries deleted elsewhere. It never overwrites a file whose
//!   on-disk state is not the one the index recorded (an edit not scanned
//!   yet): that file is left alone and the next scan turns the two edits into
//!   a conflict, so nothing is lost. Content not yet in the blob store is
//!   reported as missing, to be fetched from other members.
//!
//! `.hearthignore` at the top of the share (gitignore syntax, read with the
//! `ignore` crate) is a shared file like any other, so every member skips
//! the same paths; [`ignored`] adds the node's own and editors' temporary
//! files.
//!
//! Paths from the document go through `names::safe_join`, so nothing outside
//! the share directory is ever written; symbolic links in the directory are
//! not followed and are reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use hearth_crdt::folder::{Editor, Folder, Kind, Version};
use hearth_crdt::names;
use hearth_crdt::tree::EntryId;
use hearth_protocol::blob::ChunkHash;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::blobs::BlobStore;

/// A changed file modified less than this long ago is still being written.
/// Shorter than the watcher's quiet time (`DEBOUNCE`, 75 ms), so a scan
/// started by the watcher finds the file settled; a file that changes while
/// it is read is caught by its size and mtime after the read.
pub const SETTLE_MS: i64 = 50;

/// The shared file of ignore patterns (gitignore syntax).
pub const IGNORE_FILE: &str = ".hearthignore";

/// Names the node keeps out of the share: its own temporary files, and
/// editors' lock and swap files.
pub fn ignored(name: &str) -> bool {
    (name.starts_with(".hearth") && name != IGNORE_FILE)
        || name.starts_with(".tmp")
        || name.starts_with(".~lock.")
        || name.starts_with("~$")
        || name.ends_with(".swp")
        || name.ends_with('~')
        || name == ".DS_Store"
        || name == "Thumbs.db"
}

/// The temporary file a write-out stages content in, next to its place
/// (`BlobStore::stage`), before renaming it over the destination.
fn is_staging_leftover(name: &str) -> bool {
    name.starts_with(".hearth-") && name.ends_with(".tmp")
}

/// What the index knows of one path: the entry there and the state of the
/// file when it was last scanned or written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indexed {
    /// The entry at this path.
    pub entry: EntryId,
    /// File or folder.
    pub kind: Kind,
    /// Manifest id of the content (files).
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
    /// Size on disk.
    pub size: u64,
    /// Modification time on disk, Unix ms.
    pub mtime_ms: i64,
    /// A conflict copy (a losing concurrent version of `entry`).
    #[serde(default)]
    pub conflict: bool,
}

/// The local index of a share: relative path (`/`-separated) -> state.
pub type Index = BTreeMap<String, Indexed>;

/// What a scan recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    /// New files and folders.
    pub created: usize,
    /// New versions of existing files.
    pub edited: usize,
    /// Renames and moves.
    pub moved: usize,
    /// Deletions.
    pub deleted: usize,
    /// Paths skipped because `.hearthignore` matches them.
    pub ignored: usize,
    /// Changed files still being written (modified within [`SETTLE_MS`]):
    /// left for the next scan, so no half-written state is recorded.
    pub unsettled: usize,
    /// Paths that could not be recorded, with the reason.
    pub problems: Vec<String>,
}

impl ScanReport {
    /// Whether anything was written to the document.
    pub fn changed(&self) -> bool {
        self.created + self.edited + self.moved + self.deleted > 0
    }
}

/// What a materialisation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReport {
    /// Files written (new or new content).
    pub written: usize,
    /// Folders created.
    pub folders: usize,
    /// Renames and moves applied.
    pub moved: usize,
    /// Files and folders removed because they were deleted elsewhere.
    pub removed: usize,
    /// Local edits not scanned yet that were left untouched.
    pub kept_local: usize,
    /// Content ids (manifests) whose chunks are not all here yet, with the
    /// length of the encoded manifest.
    #[serde(skip)]
    pub missing: BTreeMap<ChunkHash, u32>,
    /// The entries waiting for each of those contents.
    #[serde(skip)]
    pub waiting: BTreeMap<ChunkHash, Vec<EntryId>>,
    /// Problems, per path.
    pub problems: Vec<String>,
}

/// One share's directory.
pub struct ShareFs<'a> {
    root: &'a Path,
    blobs: &'a BlobStore,
    index: &'a mut Index,
    /// Whether the index was changed (and needs saving).
    changed: bool,
    /// Files staged (written next to their place, not yet durable), put in
    /// place together by [`ShareFs::finish_writes`].
    staged: Vec<StagedWrite>,
    /// Bytes in `staged`.
    staged_bytes: u64,
}

/// A file written out, waiting for the batch's flush before its rename.
struct StagedWrite {
    rel: String,
    abs: PathBuf,
    entry: EntryId,
    version: Version,
    conflict: bool,
    file: crate::blobs::Staged,
}

/// Files staged before a batch is flushed and renamed into place: one
/// `syncfs` per batch instead of two fsyncs per file (a journal commit each,
/// which made writing out thousands of small files disk-bound).
const WRITE_BATCH_FILES: usize = 128;
const WRITE_BATCH_BYTES: u64 = 64 * 1024 * 1024;
/// Fewer files than this are made durable one by one instead.
const SYNCFS_MIN_FILES: usize = 8;

fn mtime_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(unix)]
fn is_exec(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_exec(_: &std::fs::Metadata) -> bool {
    false
}

fn parent_of(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

/// The path of `name` in the folder that holds `path`.
fn sibling(path: &str, name: &str) -> String {
    match parent_of(path) {
        Some(p) => format!("{p}/{name}"),
        None => name.to_owned(),
    }
}

fn name_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(_, n)| n).unwrap_or(path)
}

fn appeared_inside(path: &str, taken: &BTreeSet<String>) -> bool {
    taken.iter().any(|t| path.starts_with(&format!("{t}/")))
}

/// A file or folder found on disk.
struct Found {
    kind: Kind,
    size: u64,
    mtime_ms: i64,
    exec: bool,
}

impl Found {
    /// Still what the index recorded at this path: not read again.
    fn unchanged(&self, known: Option<&Indexed>) -> bool {
        known.is_some_and(|k| {
            k.kind == self.kind && (self.kind == Kind::Dir || (k.size == self.size && k.mtime_ms == self.mtime_ms))
        })
    }

    /// A file modified within [`SETTLE_MS`] of `now_ms`: still being written.
    fn unsettled(&self, now_ms: i64) -> bool {
        self.kind == Kind::File && self.mtime_ms > now_ms - SETTLE_MS
    }
}

/// An item of the document at a path: entry, kind, content, conflict copy.
type Placed = (EntryId, Kind, Vec<u8>, bool);

/// A changed file, read into the blob store by [`ShareFs::import_all`].
enum Read {
    /// Its content id and encoded manifest length.
    Content(Vec<u8>, u32),
    /// It changed while it was read: still being written.
    Changing,
    /// It could not be read.
    Failed(String),
}

/// Files read at once by a scan. Reading is mostly waiting on the disk: a
/// first scan of many small files is several times faster with several
/// readers. Their blobs are made durable together, by one flush at the end
/// ([`BlobStore::import_file_deferred`]).
const READERS: usize = 32;

impl<'a> ShareFs<'a> {
    /// Imports the files `paths` (relative, as found) into the blob store,
    /// [`READERS`] at a time; a file whose size or mtime changed while it
    /// was read is reported as [`Read::Changing`].
    fn import_all(&self, paths: &[(&String, &Found)]) -> BTreeMap<String, Read> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let out = std::sync::Mutex::new(BTreeMap::new());
        std::thread::scope(|scope| {
            for _ in 0..READERS.min(paths.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((path, f)) = paths.get(i) else { break };
                    let abs = self.root.join(path);
                    let result = match self.blobs.import_file_deferred(&abs) {
                        Ok(manifest) => match abs.symlink_metadata() {
                            Ok(meta) if meta.len() == f.size && mtime_ms(&meta) == f.mtime_ms => {
                                Read::Content(manifest.id().0.to_vec(), manifest.encoded_len() as u32)
                            }
                            _ => Read::Changing,
                        },
                        Err(e) => Read::Failed(e.to_string()),
                    };
                    out.lock().unwrap_or_else(|e| e.into_inner()).insert((*path).clone(), result);
                });
            }
        });
        let mut out = out.into_inner().unwrap_or_else(|e| e.into_inner());
        // One flush makes every imported blob durable before any change
        // names them.
        if !out.is_empty() {
            if let Err(e) = self.blobs.flush() {
                let message = e.to_string();
                for read in out.values_mut() {
                    *read = Read::Failed(message.clone());
                }
            }
        }
        out
    }

    /// The share at `root`, with its blob store and index.
    pub fn new(root: &'a Path, blobs: &'a BlobStore, index: &'a mut Index) -> Self {
        Self { root, blobs, index, changed: false, staged: Vec::new(), staged_bytes: 0 }
    }

    /// Whether the index changed since this was made: only then is it saved.
    pub fn index_changed(&self) -> bool {
        self.changed
    }

    fn index_put(&mut self, path: String, indexed: Indexed) {
        self.changed = true;
        self.index.insert(path, indexed);
    }

    fn index_del(&mut self, path: &str) {
        self.changed |= self.index.remove(path).is_some();
    }

    /// The patterns of the share's `.hearthignore`, if any.
    fn ignore_rules(&self, report: &mut ScanReport) -> Option<ignore::gitignore::Gitignore> {
        let file = self.root.join(IGNORE_FILE);
        if !file.is_file() {
            return None;
        }
        let mut builder = ignore::gitignore::GitignoreBuilder::new(self.root);
        if let Some(e) = builder.add(&file) {
            report.problems.push(format!("{IGNORE_FILE}: {e}"));
        }
        match builder.build() {
            Ok(rules) => Some(rules),
            Err(e) => {
                report.problems.push(format!("{IGNORE_FILE}: {e}"));
                None
            }
        }
    }

    /// Removes the staging files an interrupted write-out left (the walk
    /// of a scan does it too): for a read-only member, whose scans record
    /// nothing.
    pub fn remove_leftovers(&self) {
        let mut report = ScanReport::default();
        self.walk(&mut report);
    }

    fn walk(&self, report: &mut ScanReport) -> (BTreeMap<String, Found>, Option<ignore::gitignore::Gitignore>) {
        let rules = self.ignore_rules(report);
        let mut found = BTreeMap::new();
        let mut stack = vec![(self.root.to_path_buf(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    report.problems.push(format!("{}: cannot read the folder: {e}", dir.display()));
                    continue;
                }
            };
            for entry in entries.flatten() {
                let Ok(name) = entry.file_name().into_string() else {
                    report.problems.push(format!("{}: a name that is not UTF-8 is not shared", entry.path().display()));
                    continue;
                };
                if ignored(&name) {
                    if is_staging_leftover(&name) {
                        // Staged files only exist inside a write-out, which
                        // never overlaps a scan: this one outlived a crash.
                        match std::fs::remove_file(entry.path()) {
                            Ok(()) => warn!("removed {}, left by an interrupted write", entry.path().display()),
                            Err(e) => debug!("cannot remove {}: {e}", entry.path().display()),
                        }
                    }
                    continue;
                }
                let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
                if let Err(e) = names::validate_name(&name) {
                    report.problems.push(format!("{path}: not shared: {e}"));
                    continue;
                }
                let Ok(meta) = entry.path().symlink_metadata() else { continue };
                if rules.as_ref().is_some_and(|r| r.matched(entry.path(), meta.is_dir()).is_ignore()) {
                    report.ignored += 1;
                    continue;
                }
                if meta.file_type().is_symlink() {
                    report.problems.push(format!("{path}: symbolic links are not shared"));
                    continue;
                }
                if meta.is_dir() {
                    stack.push((entry.path(), path.clone()));
                    found.insert(path, Found { kind: Kind::Dir, size: 0, mtime_ms: 0, exec: false });
                } else if meta.is_file() {
                    let f =
                        Found { kind: Kind::File, size: meta.len(), mtime_ms: mtime_ms(&meta), exec: is_exec(&meta) };
                    found.insert(path, f);
                }
            }
        }
        (found, rules)
    }

    /// Paths whose state on disk differs from what the document put there
    /// (for a read-only member: local edits that are not shared). Nothing is
    /// read beyond metadata and nothing is recorded.
    pub fn local_differences(&self) -> Vec<String> {
        let mut report = ScanReport::default();
        let (found, _) = self.walk(&mut report);
        let mut out: Vec<String> = found
            .iter()
            .filter(|(path, f)| match self.index.get(*path) {
                Some(i) => f.kind == Kind::File && (i.size != f.size || i.mtime_ms != f.mtime_ms),
                None => true,
            })
            .map(|(p, _)| p.clone())
            .collect();
        out.extend(self.index.keys().filter(|p| !found.contains_key(*p)).cloned());
        out.sort();
        out
    }

    /// Records local edits in the document (see the module documentation).
    /// `now` is (Unix seconds for the versions, Unix ms of the clock, to
    /// tell files still being written). `new_id` makes fresh entry ids;
    /// `checkpoint` runs before each path (to commit in batches); the
    /// caller commits the rest.
    pub fn scan(
        &mut self,
        folder: &Folder,
        editor: &mut Editor,
        author: (&[u8], &str),
        (now, now_ms): (i64, i64),
        mut new_id: impl FnMut() -> EntryId,
        mut checkpoint: impl FnMut(&mut Editor),
    ) -> ScanReport {
        let mut report = ScanReport::default();
        let (found, rules) = self.walk(&mut report);
        let version = |kind, (content, manifest_len): (Vec<u8>, u32), f: &Found| Version {
            kind,
            content,
            manifest_len,
            conflict_of: Vec::new(),
            size: f.size,
            mtime_ms: f.mtime_ms,
            exec: f.exec,
            author: author.0.to_vec(),
            author_name: author.1.to_owned(),
            at: now,
        };
        // Paths that vanished: candidates for moves (by content), else deletions.
        let gone: Vec<(String, Indexed)> =
            self.index.iter().filter(|(p, _)| !found.contains_key(*p)).map(|(p, i)| (p.clone(), i.clone())).collect();
        let mut gone_by_content: BTreeMap<(Vec<u8>, Kind), Vec<String>> = BTreeMap::new();
        for (path, indexed) in &gone {
            if indexed.kind == Kind::File {
                gone_by_content.entry((indexed.content.clone(), indexed.kind)).or_default().push(path.clone());
            }
        }
        let mut moved_away = BTreeSet::new();
        self.detect_folder_moves(folder, editor, &found, &mut report, &mut moved_away);
        // Read every changed file first, several at once.
        let to_read: Vec<(&String, &Found)> = found
            .iter()
            .filter(|(path, f)| f.kind == Kind::File && !f.unchanged(self.index.get(*path)) && !f.unsettled(now_ms))
            .collect();
        let mut read = self.import_all(&to_read);
        // The document's items by path, built only if a path is unknown.
        let mut by_path: Option<BTreeMap<String, Placed>> = None;
        // Parents first (BTreeMap order puts "a" before "a/b").
        for (path, f) in &found {
            checkpoint(editor);
            let parent = match parent_of(path) {
                None => EntryId::ROOT,
                Some(p) => match self.index.get(p) {
                    Some(i) => i.entry,
                    None => {
                        report.problems.push(format!("{path}: its folder could not be recorded"));
                        continue;
                    }
                },
            };
            let name = name_of(path);
            let known = self.index.get(path).cloned();
            if f.unchanged(known.as_ref()) {
                continue; // not read again
            }
            if f.unsettled(now_ms) {
                report.unsettled += 1;
                continue;
            }
            let (content, manifest_len) = match f.kind {
                Kind::Dir => (Vec::new(), 0),
                Kind::File => match read.remove(path.as_str()) {
                    Some(Read::Content(content, manifest_len)) => (content, manifest_len),
                    Some(Read::Changing) => {
                        report.unsettled += 1;
                        continue;
                    }
                    Some(Read::Failed(e)) => {
                        report.problems.push(format!("{path}: {e}"));
                        continue;
                    }
                    None => {
                        report.problems.push(format!("{path}: not read (internal error); retried at the next scan"));
                        continue;
                    }
                },
            };
            if known.is_none() {
                // Already in the document at this very path with this very
                // content (written here just before a crash, before the
                // index was saved): only the index was missing.
                let by_path = by_path.get_or_insert_with(|| {
                    folder
                        .items()
                        .into_iter()
                        .map(|i| {
                            (
                                i.path.join("/"),
                                (i.entry, i.version.kind, i.version.content.clone(), i.conflict.is_some()),
                            )
                        })
                        .collect()
                });
                if let Some((entry, kind, known_content, conflict)) = by_path.get(path.as_str()) {
                    if *kind == f.kind && *known_content == content {
                        let (entry, conflict) = (*entry, *conflict);
                        let indexed =
                            Indexed { entry, kind: f.kind, content, size: f.size, mtime_ms: f.mtime_ms, conflict };
                        self.index_put(path.clone(), indexed);
                        continue;
                    }
                }
            }
            let result = match known {
                Some(known) if known.conflict => {
                    // An edited conflict copy becomes a file of its own, and
                    // the conflict is resolved in favour of the winner.
                    let entry = new_id();
                    report.created += 1;
                    let winner = folder.versions(known.entry).first().cloned();
                    editor
                        .create(entry, parent, name, &version(f.kind, (content.clone(), manifest_len), f))
                        .and_then(|_| match winner {
                            Some(w) => editor.set_version(known.entry, &w),
                            None => Ok(()),
                        })
                        .map(|_| entry)
                }
                Some(known)
                    if known.kind == Kind::File
                        && f.kind == Kind::File
                        && (!folder.tree().contains(known.entry) || folder.tree().is_in_trash(known.entry)) =>
                {
                    // Edited here while deleted elsewhere: the edit wins and
                    // the file comes back, as a new entry.
                    let entry = new_id();
                    report.created += 1;
                    editor
                        .create(entry, parent, name, &version(f.kind, (content.clone(), manifest_len), f))
                        .map(|_| entry)
                }
                Some(known)
                    if known.kind == Kind::File
                        && f.kind == Kind::File
                        && known.content != content
                        && folder.edit_is_concurrent(known.entry, &known.content) =>
                {
                    // The document moved on since this file was last scanned or
                    // written (another member's edit arrived) and the file was
                    // edited here too: concurrent edits. The local one becomes a
                    // conflict copy beside it; the other member's version is
                    // written at the original name by the next materialisation.
                    let base = names::conflict_name(name, author.1, &hearth_crdt::folder::date(now));
                    let in_dir = |copy: &str| sibling(path, copy);
                    // Never renamed over an existing file (a second conflict
                    // of the same file within the minute).
                    let mut copy = base.clone();
                    let mut n = 2;
                    while self.root.join(in_dir(&copy)).symlink_metadata().is_ok() || found.contains_key(&in_dir(&copy))
                    {
                        copy = names::numbered_name(&base, n);
                        n += 1;
                    }
                    let copy_path = in_dir(&copy);
                    if let Err(e) = std::fs::rename(self.root.join(path), self.root.join(&copy_path)) {
                        report.problems.push(format!("{path}: cannot keep the local version aside: {e}"));
                        continue;
                    }
                    self.index_del(path);
                    let entry = new_id();
                    report.created += 1;
                    let mut copy_version = version(f.kind, (content.clone(), manifest_len), f);
                    copy_version.conflict_of = known.entry.as_bytes().to_vec();
                    let result = editor.create(entry, parent, &copy, &copy_version);
                    if result.is_ok() {
                        let indexed = Indexed {
                            entry,
                            kind: f.kind,
                            content,
                            size: f.size,
                            mtime_ms: f.mtime_ms,
                            conflict: false,
                        };
                        self.index_put(copy_path, indexed);
                    } else if let Err(e) = result {
                        report.problems.push(format!("{path}: {e}"));
                    }
                    continue;
                }
                Some(known) if known.kind == f.kind => {
                    if known.content == content && f.kind == Kind::File {
                        // Touched but identical: only the index changes.
                        Ok(known.entry)
                    } else {
                        report.edited += 1;
                        // Another member's losing versions still shown as
                        // conflict copies are kept as files of their own
                        // (under the names they have, on disk or not yet),
                        // so that this edit supersedes only what it edited.
                        let copies =
                            if f.kind == Kind::File { folder.conflict_copies(known.entry) } else { Vec::new() };
                        let kept = match folder.tree().parent_of(known.entry) {
                            Some(at) if !copies.is_empty() => {
                                editor.keep_conflict_copies(known.entry, at, &copies, &mut new_id)
                            }
                            _ => Ok(Vec::new()),
                        };
                        kept.and_then(|kept| {
                            for (entry, name) in kept {
                                let copy_path = sibling(path, &name);
                                if let Some(mut indexed) = self.index.get(&copy_path).cloned() {
                                    indexed.entry = entry;
                                    indexed.conflict = false;
                                    self.index_put(copy_path, indexed);
                                }
                            }
                            editor.set_version(known.entry, &version(f.kind, (content.clone(), manifest_len), f))
                        })
                        .map(|_| known.entry)
                    }
                }
                _ => {
                    // A path that vanished with the same content is a move.
                    let from = gone_by_content.get_mut(&(content.clone(), f.kind)).and_then(|paths| paths.pop());
                    match from.and_then(|p| self.index.get(&p).map(|i| (p, i.entry))) {
                        Some((old_path, entry)) if folder.tree().contains(entry) => {
                            moved_away.insert(old_path);
                            report.moved += 1;
                            editor.move_to(entry, parent, name).map(|_| entry)
                        }
                        _ => {
                            let entry = new_id();
                            report.created += 1;
                            editor
                                .create(entry, parent, name, &version(f.kind, (content.clone(), manifest_len), f))
                                .map(|_| entry)
                        }
                    }
                }
            };
            match result {
                Ok(entry) => {
                    let indexed =
                        Indexed { entry, kind: f.kind, content, size: f.size, mtime_ms: f.mtime_ms, conflict: false };
                    self.index_put(path.clone(), indexed);
                }
                Err(e) => report.problems.push(format!("{path}: {e}")),
            }
        }
        // Deepest first, so a folder's deletion follows its content's.
        for (path, indexed) in gone.iter().rev() {
            checkpoint(editor);
            if appeared_inside(path, &moved_away) {
                continue; // moved with its folder (the index was re-keyed)
            }
            self.index_del(path);
            if moved_away.contains(path) {
                continue; // moved: a folder, or a file found elsewhere by content
            }
            let now_ignored = rules.as_ref().is_some_and(|r| {
                r.matched_path_or_any_parents(self.root.join(path), indexed.kind == Kind::Dir).is_ignore()
            });
            if now_ignored {
                continue; // no longer shared from here, but not deleted for the others
            }
            if indexed.conflict {
                // Deleting a conflict copy resolves the conflict: the winner stays.
                if let Some(winner) = folder.versions(indexed.entry).first() {
                    match editor.set_version(indexed.entry, winner) {
                        Ok(()) => report.edited += 1,
                        Err(e) => report.problems.push(format!("{path}: {e}")),
                    }
                }
                continue;
            }
            if folder.tree().contains(indexed.entry) && !folder.tree().is_in_trash(indexed.entry) {
                match editor.delete(indexed.entry, name_of(path)) {
                    Ok(()) => report.deleted += 1,
                    Err(e) => report.problems.push(format!("{path}: {e}")),
                }
            }
        }
        report
    }

    /// A folder that vanished while a new folder appeared with the same
    /// content (same relative paths, sizes and mtimes: what a rename keeps)
    /// was renamed or moved: record one move of the folder entry and re-key
    /// the index, so its files are not seen as deleted and re-created.
    fn detect_folder_moves(
        &mut self,
        folder: &Folder,
        editor: &mut Editor,
        found: &BTreeMap<String, Found>,
        report: &mut ScanReport,
        moved_away: &mut BTreeSet<String>,
    ) {
        let signature_of_index = |index: &Index, dir: &str| -> Vec<(String, u64, i64)> {
            let prefix = format!("{dir}/");
            index
                .iter()
                .filter(|(p, _)| p.starts_with(&prefix))
                .map(|(p, i)| (p[prefix.len()..].to_owned(), i.size, i.mtime_ms))
                .collect()
        };
        let signature_of_disk = |dir: &str| -> Vec<(String, u64, i64)> {
            let prefix = format!("{dir}/");
            found
                .iter()
                .filter(|(p, _)| p.starts_with(&prefix))
                .map(|(p, f)| (p[prefix.len()..].to_owned(), f.size, f.mtime_ms))
                .collect()
        };
        let vanished: Vec<String> = self
            .index
            .iter()
            .filter(|(p, i)| i.kind == Kind::Dir && !found.contains_key(*p))
            .map(|(p, _)| p.clone())
            .collect();
        // Outermost folders first: a moved tree is one move.
        let appeared: Vec<String> = found
            .iter()
            .filter(|(p, f)| f.kind == Kind::Dir && !self.index.contains_key(*p))
            .map(|(p, _)| p.clone())
            .collect();
        let mut taken = BTreeSet::new();
        for new in appeared {
            if appeared_inside(&new, &taken) {
                continue;
            }
            let wanted = signature_of_disk(&new);
            if wanted.is_empty() {
                continue;
            }
            let Some(old) = vanished
                .iter()
                .find(|old| !moved_away.contains(*old) && signature_of_index(self.index, old) == wanted)
                .cloned()
            else {
                continue;
            };
            let Some(indexed) = self.index.get(&old).cloned() else { continue };
            let parent = match parent_of(&new) {
                None => EntryId::ROOT,
                Some(p) => match self.index.get(p) {
                    Some(i) => i.entry,
                    None => continue,
                },
            };
            if !folder.tree().contains(indexed.entry) {
                continue;
            }
            match editor.move_to(indexed.entry, parent, name_of(&new)) {
                Ok(()) => {
                    report.moved += 1;
                    self.rekey(&old, &new);
                    moved_away.insert(old);
                    taken.insert(new);
                }
                Err(e) => report.problems.push(format!("{new}: {e}")),
            }
        }
    }

    /// Moves every index entry at or below `old` to the same place below `new`.
    fn rekey(&mut self, old: &str, new: &str) {
        let prefix = format!("{old}/");
        let moved: Vec<(String, Indexed)> = self
            .index
            .iter()
            .filter(|(p, _)| p.as_str() == old || p.starts_with(&prefix))
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect();
        for (p, i) in moved {
            self.index_del(&p);
            self.index_put(format!("{new}{}", &p[old.len()..]), i);
        }
    }

    /// Whether the file at `path` is still what the index recorded.
    fn unchanged_on_disk(&self, rel: &str, abs: &Path) -> bool {
        match (self.index.get(rel), abs.symlink_metadata()) {
            (Some(i), Ok(meta)) => {
                i.kind == Kind::Dir && meta.is_dir() || (meta.len() == i.size && mtime_ms(&meta) == i.mtime_ms)
            }
            (None, Err(_)) => true,
            _ => false,
        }
    }

    /// Writes the document's state to disk (see the module documentation).
    /// Contents in `fetching` are known to be incomplete (being fetched):
    /// their files are not looked at, only reported missing again.
    pub fn materialise(&mut self, folder: &Folder, fetching: &BTreeMap<ChunkHash, u32>) -> WriteReport {
        let mut report = WriteReport::default();
        // Names this node never scans (temporary and lock files) are not
        // written either: the next scan would take them for deletions.
        let items: Vec<_> = folder.items().into_iter().filter(|i| !i.path.iter().any(|n| ignored(n))).collect();
        let wanted: BTreeMap<String, &hearth_crdt::folder::Item> =
            items.iter().map(|i| (i.path.join("/"), i)).collect();
        let by_entry: BTreeMap<EntryId, &str> =
            wanted.iter().filter(|(_, i)| i.conflict.is_none()).map(|(path, i)| (i.entry, path.as_str())).collect();

        // 1. Moves: an indexed entry now wanted elsewhere is renamed on disk.
        let indexed: Vec<(String, Indexed)> =
            self.index.iter().filter(|(_, i)| !i.conflict).map(|(p, i)| (p.clone(), i.clone())).collect();
        for (old, i) in &indexed {
            let Some(new) = by_entry.get(&i.entry) else { continue };
            if new == old || wanted.get(old).is_some_and(|w| w.entry == i.entry) {
                continue;
            }
            let (Ok(from), Ok(to)) = (self.abs(old), self.abs(new)) else { continue };
            if to.exists() || !self.unchanged_on_disk(old, &from) {
                continue;
            }
            if let Some(dir) = to.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match std::fs::rename(&from, &to) {
                Ok(()) => {
                    report.moved += 1;
                    self.rekey(old, new);
                }
                Err(e) => report.problems.push(format!("{old} -> {new}: {e}")),
            }
        }

        // 2. Folders and files wanted.
        for (rel, item) in &wanted {
            self.write_item(rel, item, fetching, &mut report);
        }
        self.finish_writes(&mut report);

        // 3. Entries no longer wanted anywhere: deleted elsewhere. Deepest first.
        let stale: Vec<(String, Indexed)> =
            self.index.iter().filter(|(p, _)| !wanted.contains_key(*p)).map(|(p, i)| (p.clone(), i.clone())).collect();
        for (rel, i) in stale.iter().rev() {
            let Ok(abs) = self.abs(rel) else { continue };
            if !self.unchanged_on_disk(rel, &abs) {
                report.kept_local += 1;
                continue;
            }
            // The content stays in the blob store and the document's trash.
            let result = match i.kind {
                Kind::Dir => std::fs::remove_dir(&abs),
                Kind::File => std::fs::remove_file(&abs),
            };
            match result {
                Ok(()) => {
                    report.removed += 1;
                    self.index_del(rel);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.index_del(rel);
                }
                Err(e) => {
                    // A folder that still holds local files stays.
                    debug!("{rel}: not removed: {e}");
                }
            }
        }
        if !report.problems.is_empty() {
            warn!("share {}: {} problem(s) writing files", self.root.display(), report.problems.len());
        }
        report
    }

    /// Writes only `items` (files whose content just arrived): no moves, no
    /// removals, no walk of the whole share.
    pub fn materialise_items(&mut self, items: &[hearth_crdt::folder::Item]) -> WriteReport {
        let mut report = WriteReport::default();
        for item in items.iter().filter(|i| !i.path.iter().any(|n| ignored(n))) {
            self.write_item(&item.path.join("/"), item, &BTreeMap::new(), &mut report);
        }
        self.finish_writes(&mut report);
        report
    }

    /// Step 2 of [`ShareFs::materialise`] for one item at `rel`.
    fn write_item(
        &mut self,
        rel: &str,
        item: &hearth_crdt::folder::Item,
        fetching: &BTreeMap<ChunkHash, u32>,
        report: &mut WriteReport,
    ) {
        let abs = match self.abs(rel) {
            Ok(p) => p,
            Err(e) => {
                report.problems.push(format!("{rel}: refused: {e}"));
                return;
            }
        };
        let current = self.index.get(rel);
        if current
            .is_some_and(|c| c.entry == item.entry && c.content == item.version.content && c.kind == item.version.kind)
        {
            return;
        }
        if item.version.kind == Kind::Dir {
            match std::fs::create_dir_all(&abs) {
                Ok(()) => {
                    report.folders += 1;
                    let indexed = Indexed {
                        entry: item.entry,
                        kind: Kind::Dir,
                        content: Vec::new(),
                        size: 0,
                        mtime_ms: 0,
                        conflict: false,
                    };
                    self.index_put(rel.to_owned(), indexed);
                }
                Err(e) => report.problems.push(format!("{rel}: {e}")),
            }
            return;
        }
        if !self.unchanged_on_disk(rel, &abs) {
            report.kept_local += 1;
            debug!("{rel}: local edit not scanned yet; left as is");
            return;
        }
        let content = <[u8; 32]>::try_from(item.version.content.as_slice()).ok().map(ChunkHash);
        if let Some((content, len)) = content.and_then(|c| fetching.get(&c).map(|len| (c, *len))) {
            report.missing.insert(content, len);
            report.waiting.entry(content).or_default().push(item.entry);
            return;
        }
        match self.write_file(rel, &abs, item.entry, &item.version, item.conflict.is_some()) {
            // Counted once in place (`finish_writes`).
            Ok(true) => {
                if self.staged.len() >= WRITE_BATCH_FILES || self.staged_bytes >= WRITE_BATCH_BYTES {
                    self.finish_writes(report);
                }
            }
            Ok(false) => {
                if let Ok(id) = <[u8; 32]>::try_from(item.version.content.as_slice()) {
                    report.missing.insert(ChunkHash(id), item.version.manifest_len);
                    report.waiting.entry(ChunkHash(id)).or_default().push(item.entry);
                }
            }
            Err(e) => report.problems.push(format!("{rel}: {e}")),
        }
    }

    fn abs(&self, rel: &str) -> Result<PathBuf, names::JoinError> {
        let parts: Vec<&str> = rel.split('/').collect();
        names::safe_join(self.root, &parts)
    }

    /// Stages one file next to its place (`Ok(false)` when its content is
    /// not all here yet); [`Self::finish_writes`] puts it there.
    fn write_file(
        &mut self,
        rel: &str,
        abs: &Path,
        entry: EntryId,
        version: &Version,
        conflict: bool,
    ) -> anyhow::Result<bool> {
        let Ok(id) = <[u8; 32]>::try_from(version.content.as_slice()) else {
            anyhow::bail!("the document names no valid content");
        };
        let Some(manifest) = self.blobs.manifest(&ChunkHash(id))? else { return Ok(false) };
        if !self.blobs.missing(&manifest).is_empty() {
            return Ok(false);
        }
        let dir = abs.parent().ok_or_else(|| anyhow::anyhow!("no parent folder"))?;
        std::fs::create_dir_all(dir)?;
        let file = self.blobs.stage_unsynced(&manifest, dir, abs)?;
        self.staged_bytes += manifest.size();
        self.staged.push(StagedWrite {
            rel: rel.to_owned(),
            abs: abs.to_owned(),
            entry,
            version: version.clone(),
            conflict,
            file,
        });
        Ok(true)
    }

    /// Makes the staged files durable (one flush of the file system), then
    /// renames each into place unless the file there changed meanwhile (a
    /// local edit not scanned yet: the staged copy is dropped, the edit
    /// wins), then makes the renames durable.
    fn finish_writes(&mut self, report: &mut WriteReport) {
        let staged = std::mem::take(&mut self.staged);
        self.staged_bytes = 0;
        if staged.is_empty() {
            return;
        }
        // A few files (an edit arriving) are made durable one by one: a
        // flush of the whole file system also waits for whatever else is
        // being written on it, which would slow every small update down.
        let one_by_one = staged.len() < SYNCFS_MIN_FILES;
        if one_by_one {
            for w in staged {
                if let Err(e) = w.file.sync() {
                    report.problems.push(format!("{}: {e}", w.rel));
                    continue;
                }
                self.put_in_place(w, true, report);
            }
            return;
        }
        if let Err(e) = crate::blobs::store::sync_fs_of(self.root) {
            // Nothing renamed: the staged files are dropped and written again
            // at the next write-out.
            report.problems.push(format!("{} files not written: {e}", staged.len()));
            return;
        }
        for w in staged {
            self.put_in_place(w, false, report);
        }
        if let Err(e) = crate::blobs::store::sync_fs_of(self.root) {
            report.problems.push(format!("cannot make the written files durable: {e}"));
        }
    }

    /// Renames a staged file (its bytes durable already) into place unless
    /// the file there changed since the index recorded it; `durable`: the
    /// rename too, now.
    fn put_in_place(&mut self, w: StagedWrite, durable: bool, report: &mut WriteReport) {
        // Last check just before the rename: still what the index recorded?
        if !self.unchanged_on_disk(&w.rel, &w.abs) {
            report.kept_local += 1;
            return;
        }
        let persisted = if durable { w.file.persist(&w.abs) } else { w.file.persist_unsynced(&w.abs) };
        if let Err(e) = persisted {
            report.problems.push(format!("{}: {e}", w.rel));
            return;
        }
        set_times_and_mode(&w.abs, &w.version);
        let meta = match w.abs.symlink_metadata() {
            Ok(m) => m,
            Err(e) => {
                report.problems.push(format!("{}: {e}", w.rel));
                return;
            }
        };
        report.written += 1;
        self.index_put(
            w.rel,
            Indexed {
                entry: w.entry,
                kind: Kind::File,
                content: w.version.content.clone(),
                size: meta.len(),
                mtime_ms: mtime_ms(&meta),
                conflict: w.conflict,
            },
        );
    }
}

fn set_times_and_mode(path: &Path, version: &Version) {
    if let Ok(file) = std::fs::File::options().write(true).open(path) {
        let when = UNIX_EPOCH + std::time::Duration::from_millis(version.mtime_ms.max(0) as u64);
        let _ = file.set_modified(when);
    }
    // The temporary file was private (0600); a shared file is readable like
    // any file its owner creates (the executable bit is shared).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if version.exec { 0o755 } else { 0o644 };
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
}
