//! Shared folders: the node's registry of shares, their documents and the
//! `/hearth/share/1` exchanges.
//!
//! [`Shares`] owns every share record and loaded [`ShareDoc`], persists them
//! (redb) after every change, and turns requests and commands into
//! responses plus [`Outgoing`] messages for the event loop to send; it does
//! no network IO itself. Every remote change goes through
//! `ShareDoc::receive`, which verifies signatures and roles, so a read-only
//! member's or a stranger's change is never applied nor forwarded.
//!
//! The directory itself is handled by [`fs`]: scans record local edits into
//! the document (started by the watcher, a timer, or a request), and
//! applied remote changes and arrived contents are written to disk. Each
//! document is stored as a full save plus appended increments; each folder
//! is cached and kept up to date from the keys each change touched, so the cost of a
//! change is the size of the change, not of the share.

pub mod fs;
pub mod keys;
pub mod listing;
mod retention;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_crdt::doc::{Hash as ChangeHash, Role, ShareDoc, SignedChange};
use hearth_protocol::share::{self as wire, ShareRequest, ShareResponse, WireChange};
use libp2p::identity::Keypair;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::api::ApiError;
use crate::blobs::BlobStore;
use crate::store::{DocWrite, ShareRecord, Store};
use fs::{Index, ScanReport, ShareFs, WriteReport};
use hearth_crdt::folder::{Editor, Folder, Version};
use hearth_crdt::tree::EntryId;
use hearth_protocol::blob::ChunkHash;
use keys::{NodeSigner, PeerVerifier};

/// A message for the event loop to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// To whom.
    pub peer: PeerId,
    /// What.
    pub request: ShareRequest,
}

/// `hearth share list` items.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareView {
    /// Share id, hex.
    pub id: String,
    /// Name.
    pub name: String,
    /// Local directory, once accepted.
    pub path: Option<String>,
    /// This node's role.
    pub role: String,
    /// `active`, `pending`, `declined`, `left` or `removed`.
    pub state: String,
    /// The owner's peer id.
    pub owner: String,
}

/// A member in `hearth share status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberView {
    /// Peer id.
    pub peer_id: String,
    /// The local contact name, or `you`.
    pub name: String,
    /// `owner`, `read-write` or `read-only`.
    pub role: String,
    /// Connected now.
    pub online: bool,
}

/// `hearth share versions` / `hearth share trash` items.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionView {
    /// Path in the share (for the trash: where it was).
    pub path: String,
    /// Number to pass to `restore --version` (0 = oldest).
    pub version: usize,
    /// Size in bytes.
    pub size: u64,
    /// Who wrote it.
    pub author: String,
    /// When, RFC 3339.
    pub at: String,
    /// Content id (hex).
    pub content: String,
    /// The version currently in the folder.
    pub current: bool,
    /// Until when it stays restorable (RFC 3339); empty for the current
    /// version, or when the past is kept forever.
    #[serde(default)]
    pub expires: String,
}

/// `hearth share status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareStatusView {
    /// The share.
    #[serde(flatten)]
    pub share: ShareView,
    /// Members with roles.
    pub members: Vec<MemberView>,
    /// Invitations not answered yet (owner only), by contact name.
    pub pending_invitations: Vec<String>,
    /// Changes from other members that this node refused.
    pub rejected_changes: u64,
    /// Changes in the document.
    pub doc_changes: usize,
    /// Files in the share (conflict copies included).
    pub files: usize,
    /// Folders in the share.
    pub folders: usize,
    /// Bytes of all files.
    pub bytes: u64,
    /// Files whose content is still being fetched from other members.
    pub files_pending_down: usize,
    /// Bytes of those files.
    pub bytes_pending_down: u64,
    /// Of `bytes_pending_down`, the bytes already received and verified
    /// (progress inside the files being fetched; filled in by the fetcher).
    #[serde(default)]
    pub bytes_pending_down_stored: u64,
    /// Content bytes received from other members and verified since this
    /// node started (not persisted). Chunks already in the blob store are
    /// never asked for, so after a restart this counts only what was missing.
    #[serde(default)]
    pub bytes_received: u64,
    /// Conflicts: paths of the conflict copies (both versions are on disk).
    pub conflicts: Vec<String>,
    /// Entries in the trash (deleted, content kept).
    pub in_trash: usize,
    /// Read-only members: local edits that are not shared (paths).
    pub not_shared: Vec<String>,
}

fn peer_text(peer: &[u8]) -> String {
    PeerId::from_bytes(peer).map(|p| p.to_string()).unwrap_or_else(|_| hex::encode(peer))
}

fn heads_to_wire(heads: &[ChangeHash]) -> Vec<serde_bytes::ByteBuf> {
    heads.iter().map(|h| serde_bytes::ByteBuf::from(h.0.to_vec())).collect()
}

fn heads_from_wire(heads: &[serde_bytes::ByteBuf]) -> Vec<ChangeHash> {
    heads.iter().filter_map(|h| ChangeHash::try_from(h.as_slice()).ok()).collect()
}

fn role_name(role: &str) -> Result<Role, ApiError> {
    match role {
        "read-write" => Ok(Role::ReadWrite),
        "read-only" => Ok(Role::ReadOnly),
        other => Err(ApiError::bad_request(format!("unknown role {other:?}: use read-write or read-only"))),
    }
}

/// See the module documentation.
pub struct Shares {
    store: Arc<Store>,
    key: Keypair,
    local: Vec<u8>,
    records: BTreeMap<Vec<u8>, ShareRecord>,
    docs: BTreeMap<Vec<u8>, ShareDoc>,
    /// Last heads each member told us, per share (in memory: after a restart
    /// the first exchange starts from "unknown", which costs one round trip).
    peer_heads: BTreeMap<(Vec<u8>, Vec<u8>), Vec<ChangeHash>>,
    blobs: Arc<BlobStore>,
    indexes: BTreeMap<Vec<u8>, Index>,
    name: String,
    /// Content each share still needs from other members (manifest id ->
    /// encoded manifest length).
    wanted: BTreeMap<Vec<u8>, BTreeMap<ChunkHash, u32>>,
    /// Verified content bytes received per share since start (for status).
    received: BTreeMap<Vec<u8>, u64>,
    /// Each share's folder as last read from its document, with the heads
    /// it was read at: rebuilt only when the document changed.
    folders: BTreeMap<Vec<u8>, (Vec<ChangeHash>, Arc<Folder>)>,
    /// What is stored of each document since its last full save.
    increments: BTreeMap<Vec<u8>, Stored>,
    /// Changes each member sent us, per share (in memory): they have them,
    /// so they are never sent back, even while their heads are unknown here.
    sent_us: BTreeMap<(Vec<u8>, Vec<u8>), std::collections::BTreeSet<ChangeHash>>,
    /// Shares with applied changes not written to disk yet.
    unwritten: std::collections::BTreeSet<Vec<u8>>,
    /// Per share, the heads of the document last written out whole, the
    /// entries waiting for each missing content then, and the contents
    /// fetched since: while the document stays at those heads, a write-out
    /// writes only the files whose content arrived (not a walk of them all).
    written: BTreeMap<Vec<u8>, Written>,
    /// How long deleted files and replaced versions stay restorable, in
    /// seconds (`None`: forever); see [`retention`].
    keep_secs: Option<i64>,
}

/// See [`Shares::increments`].
#[derive(Clone, Copy, Default)]
struct Stored {
    /// Increments appended.
    count: usize,
    /// Their bytes.
    appended: u64,
    /// Bytes of the full save they follow.
    full: u64,
}

impl Stored {
    /// Whether to save the document whole again: after [`COMPACT_AFTER`]
    /// increments, once they weigh half the full save. A full save of a
    /// 100,000-file share takes about 150 MB and two seconds, so it must
    /// not come every few dozen edits.
    fn compact(&self) -> bool {
        self.count >= COMPACT_AFTER && self.appended.saturating_mul(2) >= self.full
    }
}

/// See [`Shares::written`].
#[derive(Default)]
struct Written {
    heads: Vec<ChangeHash>,
    waiting: BTreeMap<ChunkHash, Vec<EntryId>>,
    fetched: std::collections::BTreeSet<ChunkHash>,
}

/// A document is saved whole again (compacted) after at least this many
/// increments (see `Stored::compact`).
const COMPACT_AFTER: usize = 64;

/// A scan commits its edits every this many (about 450 bytes each: one
/// change stays well below `wire::MAX_CHANGE_BYTES`).
const SCAN_BATCH: usize = 2_000;

impl Shares {
    /// Loads every share and the documents of those that have one.
    pub fn load(store: Arc<Store>, key: Keypair, blobs: Arc<BlobStore>, name: String) -> anyhow::Result<Self> {
        let local = key.public().to_peer_id().to_bytes();
        let mut records = BTreeMap::new();
        let mut docs = BTreeMap::new();
        let mut indexes = BTreeMap::new();
        let mut increments = BTreeMap::new();
        for (id, record) in store.shares()? {
            if let Some(stored) = store.share_doc(&id)? {
                let signatures = stored
                    .signatures
                    .into_iter()
                    .filter_map(|(h, s)| Some((ChangeHash::try_from(h.as_slice()).ok()?, s)))
                    .collect();
                let doc = ShareDoc::load(&stored.bytes, signatures, &record.owner, &local)?;
                docs.insert(id.clone(), doc);
                // The split of the stored bytes is unknown: count them all as
                // the full save (compaction comes later, never earlier).
                let full = stored.bytes.len() as u64;
                increments.insert(id.clone(), Stored { count: stored.increments, appended: 0, full });
            }
            if let Some(bytes) = store.share_index(&id)? {
                let index: Index = ciborium::from_reader(bytes.as_slice())
                    .map_err(|e| anyhow::anyhow!("the index of share {} is corrupted: {e}", hex::encode(&id)))?;
                indexes.insert(id.clone(), index);
            }
            records.insert(id, record);
        }
        Ok(Self {
            store,
            key,
            local,
            records,
            docs,
            peer_heads: BTreeMap::new(),
            blobs,
            indexes,
            name,
            wanted: BTreeMap::new(),
            received: BTreeMap::new(),
            folders: BTreeMap::new(),
            increments,
            sent_us: BTreeMap::new(),
            unwritten: Default::default(),
            written: BTreeMap::new(),
            keep_secs: Some(hearth_crdt::retention::DEFAULT_KEEP_SECS),
        })
    }

    /// Share `id`'s folder, read from its document only if the document
    /// changed since the last read. Call it only with no uncommitted edit
    /// (reading the heads would commit it unsigned).
    fn folder(&mut self, id: &[u8]) -> Option<Arc<Folder>> {
        let doc = self.docs.get_mut(id)?;
        let heads = doc.heads();
        if let Some((at, folder)) = self.folders.get_mut(id) {
            if *at == heads {
                return Some(folder.clone());
            }
            // Only what changed since, as the document recorded it.
            if let Some((from, touched)) = doc.take_touched() {
                if from == *at && !from.is_empty() && Arc::make_mut(folder).apply_touched(doc, &touched) {
                    *at = heads;
                    return Some(folder.clone());
                }
            }
        }
        let folder = Arc::new(Folder::from_doc(doc));
        doc.track_touched();
        self.folders.insert(id.to_vec(), (heads, folder.clone()));
        Some(folder)
    }

    /// The blob store (to serve and store content).
    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.blobs
    }

    /// Active shares whose content is incomplete: up to `limit` manifest
    /// ids to fetch for which `skip` is false (e.g. already being fetched).
    /// Bounded, because it is asked after every answer of a download.
    pub fn wanted(&self, limit: usize, skip: &dyn Fn(&ChunkHash) -> bool) -> Vec<(Vec<u8>, BTreeMap<ChunkHash, u32>)> {
        let mut left = limit;
        let mut out = Vec::new();
        for (id, wanted) in &self.wanted {
            if left == 0 {
                break;
            }
            let some: BTreeMap<ChunkHash, u32> =
                wanted.iter().filter(|(c, _)| !skip(c)).take(left).map(|(c, l)| (*c, *l)).collect();
            left -= some.len();
            if !some.is_empty() {
                out.push((id.clone(), some));
            }
        }
        out
    }

    /// Content `content` of share `id` is now complete in the blob store.
    pub fn fetched(&mut self, id: &[u8], content: &ChunkHash) {
        if let Some(wanted) = self.wanted.get_mut(id) {
            wanted.remove(content);
        }
        if let Some(written) = self.written.get_mut(id) {
            written.fetched.insert(*content);
        }
    }

    /// `bytes` of verified content of share `id` arrived from a member.
    pub fn received(&mut self, id: &[u8], bytes: u64) {
        *self.received.entry(id.to_vec()).or_default() += bytes;
    }

    /// The members of share `id` other than us.
    pub fn members_of(&self, id: &[u8]) -> Vec<Vec<u8>> {
        self.docs
            .get(id)
            .map(|d| d.members().into_iter().map(|(p, _)| p).filter(|p| *p != self.local).collect())
            .unwrap_or_default()
    }

    /// Whether `peer` is a member of an active share here (may read blobs).
    pub fn is_member_anywhere(&self, peer: &[u8]) -> bool {
        self.records.iter().any(|(id, r)| r.state == "active" && self.docs.get(id).is_some_and(|d| d.may_sync(peer)))
    }

    fn save_index(&self, id: &[u8]) {
        if let Some(index) = self.indexes.get(id) {
            let mut bytes = Vec::new();
            if ciborium::into_writer(index, &mut bytes).is_ok() {
                if let Err(e) = self.store.put_share_index(id, &bytes) {
                    warn!("cannot save the index of share {}: {e:#}", hex::encode(id));
                }
            }
        }
    }

    /// Scans share `id`'s directory and records local edits; pushes them.
    pub fn scan(
        &mut self,
        id: &[u8],
        now: u64,
        online: &dyn Fn(&PeerId) -> bool,
    ) -> Result<(ScanReport, Vec<Outgoing>), ApiError> {
        let record = self.records.get(id).ok_or_else(|| ApiError::not_found("no such share"))?;
        if record.state != "active" {
            return Err(ApiError::conflict(format!("share {:?} is {}", record.name, record.state)));
        }
        if record.role == "read-only" {
            // Local edits of a read-only member stay local: nothing to
            // record; only what an interrupted write-out left is removed.
            if let (Some(path), Some(index)) = (record.path.clone(), self.indexes.get_mut(id)) {
                ShareFs::new(Path::new(&path), &self.blobs, index).remove_leftovers();
            }
            return Ok((ScanReport::default(), Vec::new()));
        }
        let root = PathBuf::from(record.path.clone().ok_or_else(|| ApiError::internal("active share without a path"))?);
        let folder = self.folder(id).ok_or_else(|| ApiError::internal("share has no document"))?;
        let doc = self.docs.get_mut(id).ok_or_else(|| ApiError::internal("share has no document"))?;
        let index = self.indexes.entry(id.to_vec()).or_default();
        let key = &self.key;
        let (report, index_changed) = {
            let mut editor = Editor::new(doc, &folder, &self.local);
            let mut fs = ShareFs::new(&root, &self.blobs, index);
            let report = fs.scan(
                &folder,
                &mut editor,
                (&self.local, &self.name),
                (now as i64, crate::now_unix_ms()),
                || EntryId::from_bytes(rand::random()),
                |editor| {
                    // Changes of a bounded size, so that each fits in a sync
                    // message (a first scan may record 100,000 files).
                    if editor.uncommitted() >= SCAN_BATCH {
                        if let Err(e) = editor.commit(&NodeSigner(key), now as i64) {
                            warn!(share = %hex::encode(id), "cannot record local changes: {e}");
                        }
                    }
                },
            );
            (report, fs.index_changed())
        };
        for problem in &report.problems {
            warn!(share = %hex::encode(id), "{problem}");
        }
        let out = if report.changed() {
            info!(share = %hex::encode(id), created = report.created, edited = report.edited, moved = report.moved, deleted = report.deleted, "recorded local changes");
            self.commit_and_push(id, now, online)?
        } else {
            Vec::new()
        };
        if index_changed {
            self.save_index(id);
        }
        Ok((report, out))
    }

    /// Writes share `id`'s document to its directory; remembers what content
    /// is still missing.
    pub fn write_out(&mut self, id: &[u8]) -> Option<WriteReport> {
        let record = self.records.get(id)?;
        if record.state != "active" {
            return None;
        }
        let root = PathBuf::from(record.path.clone()?);
        let changed = self.unwritten.remove(id);
        let folder = self.folder(id)?;
        let heads = self.folders.get(id).map(|(h, _)| h.clone()).unwrap_or_default();
        let index = self.indexes.entry(id.to_vec()).or_default();
        let written = self.written.entry(id.to_vec()).or_default();
        let whole = changed || written.heads != heads || heads.is_empty();
        let mut fs = ShareFs::new(&root, &self.blobs, index);
        let report = if whole {
            let fetching = self.wanted.get(id).cloned().unwrap_or_default();
            let report = fs.materialise(&folder, &fetching);
            *written = Written { heads, waiting: report.waiting.clone(), fetched: Default::default() };
            self.wanted.insert(id.to_vec(), report.missing.clone());
            report
        } else {
            // Only the files whose content arrived since.
            let mut items = Vec::new();
            for content in std::mem::take(&mut written.fetched) {
                for entry in written.waiting.remove(&content).unwrap_or_default() {
                    items.extend(folder.items_of(entry).into_iter().filter(|i| i.version.content == content.0));
                }
            }
            let report = fs.materialise_items(&items);
            let wanted = self.wanted.entry(id.to_vec()).or_default();
            for (content, len) in &report.missing {
                wanted.insert(*content, *len);
            }
            for (content, entries) in &report.waiting {
                written.waiting.entry(*content).or_default().extend(entries.iter().copied());
            }
            report
        };
        let index_changed = fs.index_changed();
        for problem in &report.problems {
            warn!(share = %hex::encode(id), "{problem}");
        }
        if report.written + report.moved + report.removed + report.folders > 0 {
            info!(share = %hex::encode(id), written = report.written, moved = report.moved, removed = report.removed, "wrote remote changes to disk");
        }
        // Saved at once: a file on disk that the index does not know would
        // be taken, after a crash, for a new local file.
        if index_changed {
            self.save_index(id);
        }
        Some(report)
    }

    /// Active shares with their directories.
    pub fn active_paths(&self) -> Vec<(Vec<u8>, PathBuf)> {
        self.records
            .iter()
            .filter(|(_, r)| r.state == "active")
            .filter_map(|(id, r)| Some((id.clone(), PathBuf::from(r.path.clone()?))))
            .collect()
    }

    /// Ids of active shares.
    pub fn active(&self) -> Vec<Vec<u8>> {
        self.records.iter().filter(|(_, r)| r.state == "active").map(|(id, _)| id.clone()).collect()
    }

    /// Resolves a share named by id (or unique id prefix) or by name.
    pub fn resolve(&self, name_or_id: &str) -> Result<Vec<u8>, ApiError> {
        let matches: Vec<&Vec<u8>> = self
            .records
            .iter()
            .filter(|(id, r)| r.name == name_or_id || hex::encode(id).starts_with(&name_or_id.to_lowercase()))
            .map(|(id, _)| id)
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ApiError::not_found(format!("no share {name_or_id:?}; see `hearth share list`"))),
            _ => Err(ApiError::conflict(format!("{name_or_id:?} names several shares; use its id"))),
        }
    }

    fn view(&self, id: &[u8]) -> Option<ShareView> {
        let r = self.records.get(id)?;
        Some(ShareView {
            id: hex::encode(id),
            name: r.name.clone(),
            path: r.path.clone(),
            role: r.role.clone(),
            state: r.state.clone(),
            owner: peer_text(&r.owner),
        })
    }

    /// All shares.
    pub fn list(&self) -> Vec<ShareView> {
        self.records.keys().filter_map(|id| self.view(id)).collect()
    }

    fn persist(&mut self, id: &[u8]) -> Result<(), ApiError> {
        let record = self.records.get(id).ok_or_else(|| ApiError::internal("share vanished"))?;
        let Some(doc) = self.docs.get_mut(id) else {
            return self.store.put_share(id, record, None).map_err(ApiError::internal);
        };
        let sigs = |list: &mut dyn Iterator<Item = (&ChangeHash, &Vec<u8>)>| -> Vec<(Vec<u8>, Vec<u8>)> {
            list.map(|(h, s)| (h.0.to_vec(), s.clone())).collect()
        };
        // Append the new changes; save the whole document (which replaces
        // the increments) for a new share and when `Stored::compact` says.
        let result = match self.increments.get(id).copied() {
            Some(stored) if !stored.compact() => {
                let increment = doc.save_incremental();
                if increment.bytes.is_empty() && increment.signatures.is_empty() {
                    self.store.put_share(id, record, None)
                } else {
                    let signatures = sigs(&mut increment.signatures.iter().map(|(h, s)| (h, s)));
                    let appended = stored.appended + increment.bytes.len() as u64;
                    self.increments.insert(id.to_vec(), Stored { count: stored.count + 1, appended, ..stored });
                    self.store.put_share(id, record, Some(DocWrite::Append(&increment.bytes, &signatures)))
                }
            }
            _ => {
                let bytes = doc.save();
                let signatures = sigs(&mut doc.signatures().iter());
                self.increments.insert(id.to_vec(), Stored { count: 0, appended: 0, full: bytes.len() as u64 });
                self.store.put_share(id, record, Some(DocWrite::Full(&bytes, &signatures)))
            }
        };
        result.map_err(ApiError::internal)
    }

    /// `hearth share create PATH [--name NAME]`.
    pub fn create(&mut self, path: &Path, name: Option<&str>, now: u64) -> Result<ShareView, ApiError> {
        let path = std::fs::canonicalize(path)
            .map_err(|e| ApiError::bad_request(format!("cannot share {}: {e}", path.display())))?;
        if !path.is_dir() {
            return Err(ApiError::bad_request(format!("{} is not a directory", path.display())));
        }
        let path_text = path.to_string_lossy().to_string();
        if let Some(r) = self.records.values().find(|r| r.path.as_deref() == Some(&path_text) && r.state == "active") {
            return Err(ApiError::conflict(format!("{} is already shared as {:?}", path.display(), r.name)));
        }
        let default_name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "share".into());
        let name = hearth_protocol::names::validate_name(name.unwrap_or(&default_name))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let id: [u8; wire::SHARE_ID_LEN] = rand::random();
        let (doc, _) = ShareDoc::create(&id, &name, &NodeSigner(&self.key), now as i64).map_err(ApiError::internal)?;
        self.docs.insert(id.to_vec(), doc);
        self.records.insert(
            id.to_vec(),
            ShareRecord {
                name: name.clone(),
                owner: self.local.clone(),
                role: "owner".into(),
                state: "active".into(),
                path: Some(path_text),
                since: now,
                rejected: 0,
                invitations: Vec::new(),
            },
        );
        self.persist(&id)?;
        info!(share = %hex::encode(id), "created share {name} at {}", path.display());
        self.view(&id).ok_or_else(|| ApiError::internal("share vanished"))
    }

    /// Commits pending edits of share `id` and returns the pushes to the
    /// online members.
    fn commit_and_push(
        &mut self,
        id: &[u8],
        now: u64,
        online: &dyn Fn(&PeerId) -> bool,
    ) -> Result<Vec<Outgoing>, ApiError> {
        let doc = self.docs.get_mut(id).ok_or_else(|| ApiError::internal("share has no document"))?;
        doc.commit(&NodeSigner(&self.key), now as i64).map_err(|e| ApiError::conflict(e.to_string()))?;
        self.persist(id)?;
        Ok(self.sync_all(id, online))
    }

    /// Sync messages for every online member of share `id` except us.
    fn sync_all(&mut self, id: &[u8], online: &dyn Fn(&PeerId) -> bool) -> Vec<Outgoing> {
        // On the owner, invitees who have not accepted are not synced yet.
        let unanswered: Vec<Vec<u8>> = self
            .records
            .get(id)
            .map(|r| r.invitations.iter().filter(|(_, s)| s != "accepted").map(|(p, _)| p.clone()).collect())
            .unwrap_or_default();
        let members: Vec<Vec<u8>> = match self.docs.get(id) {
            Some(doc) => doc
                .members()
                .into_iter()
                .map(|(p, _)| p)
                .filter(|p| *p != self.local && !unanswered.contains(p))
                .collect(),
            None => return Vec::new(),
        };
        members
            .into_iter()
            .filter_map(|p| PeerId::from_bytes(&p).ok())
            .filter(|p| online(p))
            .filter_map(|p| self.sync_message(id, &p))
            .collect()
    }

    /// The changes member `peer`, whose heads are `theirs`, lacks: a first
    /// batch of bounded size (see [`wire::bounded`]), and whether more
    /// remain. Only the batch is copied out of the document.
    fn changes_for(&mut self, id: &[u8], peer: &[u8], theirs: &[ChangeHash]) -> (Vec<WireChange>, bool) {
        let Some(doc) = self.docs.get_mut(id) else { return (Vec::new(), false) };
        let sent = self.sent_us.get(&(id.to_vec(), peer.to_vec()));
        let has = |h: &ChangeHash| sent.is_some_and(|s| s.contains(h));
        let batch = wire::bounded(
            doc.missing_changes(theirs, &has).map(|c| WireChange { change: c.change, signature: c.signature }),
        );
        batch
    }

    /// Whether member `peer`, whose heads are `theirs`, lacks any change.
    fn owes(&mut self, id: &[u8], peer: &[u8], theirs: &[ChangeHash]) -> bool {
        let Some(doc) = self.docs.get_mut(id) else { return false };
        let sent = self.sent_us.get(&(id.to_vec(), peer.to_vec()));
        let has = |h: &ChangeHash| sent.is_some_and(|s| s.contains(h));
        let owes = doc.missing_changes(theirs, &has).next().is_some();
        owes
    }

    fn sync_message(&mut self, id: &[u8], peer: &PeerId) -> Option<Outgoing> {
        if self.records.get(id).is_none_or(|r| r.state != "active") {
            return None;
        }
        let known = self.peer_heads.get(&(id.to_vec(), peer.to_bytes())).cloned();
        // Unknown heads: send only ours; the answer tells what they have.
        let changes = match known {
            Some(theirs) => self.changes_for(id, &peer.to_bytes(), &theirs).0,
            None => Vec::new(),
        };
        let heads = self.docs.get_mut(id)?.heads();
        Some(Outgoing {
            peer: *peer,
            request: ShareRequest::Sync { share: id.to_vec(), heads: heads_to_wire(&heads), changes },
        })
    }

    /// `hearth share invite SHARE CONTACT [--read-only]`.
    pub fn invite(
        &mut self,
        id: &[u8],
        contact: &PeerId,
        role: &str,
        now: u64,
        online: &dyn Fn(&PeerId) -> bool,
    ) -> Result<Vec<Outgoing>, ApiError> {
        let role = role_name(role)?;
        let record = self.records.get_mut(id).ok_or_else(|| ApiError::not_found("no such share"))?;
        if record.role != "owner" {
            return Err(ApiError::conflict("only the share's owner can invite"));
        }
        let peer = contact.to_bytes();
        record.invitations.retain(|(p, _)| *p != peer);
        record.invitations.push((peer.clone(), "pending".into()));
        let doc = self.docs.get_mut(id).ok_or_else(|| ApiError::internal("share has no document"))?;
        doc.set_role(&peer, Some(role)).map_err(ApiError::internal)?;
        let mut out = self.commit_and_push(id, now, online)?;
        out.extend(self.invitation_for(id, contact));
        Ok(out)
    }

    fn invitation_for(&self, id: &[u8], contact: &PeerId) -> Option<Outgoing> {
        let record = self.records.get(id)?;
        let role = self.docs.get(id)?.role_of(&contact.to_bytes())?;
        Some(Outgoing {
            peer: *contact,
            request: ShareRequest::Invite { share: id.to_vec(), name: record.name.clone(), role: role.as_str().into() },
        })
    }

    /// Messages owed to a contact that just came online: pending invitations
    /// and a sync of every active share it is a member of.
    pub fn on_contact_online(&mut self, contact: &PeerId) -> Vec<Outgoing> {
        let peer = contact.to_bytes();
        let mut out = Vec::new();
        let ids: Vec<Vec<u8>> = self.records.keys().cloned().collect();
        for id in ids {
            let pending = self
                .records
                .get(&id)
                .is_some_and(|r| r.role == "owner" && r.invitations.iter().any(|(p, s)| *p == peer && s == "pending"));
            if pending {
                out.extend(self.invitation_for(&id, contact));
            }
            let member = self.docs.get(&id).is_some_and(|d| d.may_sync(&peer));
            if member {
                out.extend(self.sync_message(&id, contact));
            }
        }
        out
    }

    /// Answers a request from contact `from` (strangers never get here).
    pub fn on_request(
        &mut self,
        from: &PeerId,
        request: ShareRequest,
        now: u64,
        online: &dyn Fn(&PeerId) -> bool,
    ) -> (ShareResponse, Vec<Outgoing>) {
        let refuse = |message: &str| (ShareResponse::Refused { message: message.into() }, Vec::new());
        let id = request.share().to_vec();
        let peer = from.to_bytes();
        match request {
            ShareRequest::Invite { name, role, .. } => {
                if let Some(existing) = self.records.get(&id) {
                    if existing.owner != peer {
                        warn!(share = %hex::encode(&id), %from, "refused an invitation to a share owned by someone else");
                        return refuse("this share belongs to someone else");
                    }
                    if existing.state == "active" {
                        // A resent invitation: our acceptance was lost. Answer again.
                        let again =
                            Outgoing { peer: *from, request: ShareRequest::Answer { share: id.clone(), accept: true } };
                        return (ShareResponse::Ok, vec![again]);
                    }
                }
                let Ok(name) = hearth_protocol::names::validate_name(&name) else {
                    return refuse("invalid share name");
                };
                if role_name(&role).is_err() {
                    return refuse("invalid role");
                }
                info!(share = %hex::encode(&id), %from, "invited to share {name} as {role}");
                self.records.insert(
                    id.clone(),
                    ShareRecord {
                        name,
                        owner: peer,
                        role,
                        state: "pending".into(),
                        path: None,
                        since: now,
                        rejected: 0,
                        invitations: Vec::new(),
                    },
                );
                match self.persist(&id) {
                    Ok(()) => (ShareResponse::Ok, Vec::new()),
                    Err(e) => refuse(&e.message),
                }
            }
            ShareRequest::Answer { accept, .. } => {
                let Some(record) = self.records.get_mut(&id) else { return refuse("unknown share") };
                let Some(slot) = record.invitations.iter_mut().find(|(p, _)| *p == peer) else {
                    return refuse("you were not invited to this share");
                };
                slot.1 = if accept { "accepted".into() } else { "declined".into() };
                info!(share = %hex::encode(&id), %from, accepted = accept, "answer to a share invitation");
                let mut out = Vec::new();
                if !accept {
                    if let Some(doc) = self.docs.get_mut(&id) {
                        let _ = doc.set_role(&peer, None);
                    }
                    match self.commit_and_push(&id, now, online) {
                        Ok(msgs) => out = msgs,
                        Err(e) => warn!("cannot record a declined invitation: {}", e.message),
                    }
                } else if let Err(e) = self.persist(&id) {
                    return refuse(&e.message);
                }
                (ShareResponse::Ok, out)
            }
            ShareRequest::Sync { heads, changes, .. } => {
                if self.records.get(&id).is_none_or(|r| r.state != "active") {
                    return refuse("this node does not take part in that share");
                }
                let Some(doc) = self.docs.get(&id) else { return refuse("unknown share") };
                if !doc.may_sync(&peer) {
                    warn!(share = %hex::encode(&id), %from, "refused a share sync from a node that is not a member");
                    return refuse(wire::NOT_A_MEMBER);
                }
                let (applied, rejected) = self.apply(&id, from, changes, true);
                let theirs = heads_from_wire(&heads);
                self.peer_heads.insert((id.clone(), peer), theirs.clone());
                let (changes, more) = self.changes_for(&id, &from.to_bytes(), &theirs);
                let Some(doc) = self.docs.get_mut(&id) else { return refuse("unknown share") };
                let response = ShareResponse::Sync {
                    heads: heads_to_wire(&doc.heads()),
                    changes,
                    more,
                    rejected: rejected as u32,
                };
                // Forward what we learned to the other members online.
                let out = if applied > 0 { self.sync_all_except(&id, from, online) } else { Vec::new() };
                (response, out)
            }
        }
    }

    fn sync_all_except(&mut self, id: &[u8], except: &PeerId, online: &dyn Fn(&PeerId) -> bool) -> Vec<Outgoing> {
        self.sync_all(id, &|p| p != except && online(p))
    }

    /// Applies received changes; returns (applied, rejected) counts. With
    /// `write`, applied changes are written to disk at once (else by the
    /// caller later: a sync that comes in several messages is written once).
    fn apply(&mut self, id: &[u8], from: &PeerId, changes: Vec<WireChange>, write: bool) -> (usize, usize) {
        if changes.is_empty() {
            return (0, 0);
        }
        let Some(doc) = self.docs.get_mut(id) else { return (0, 0) };
        let signed = changes.into_iter().map(|c| SignedChange { change: c.change, signature: c.signature }).collect();
        let report = doc.receive(signed, &PeerVerifier);
        for (hash, author, reason) in &report.rejected {
            warn!(share = %hex::encode(id), %from, author = %peer_text(author), change = %hex::encode(hash.0), "refused a change: {reason}");
        }
        let (applied, rejected) = (report.applied.len(), report.rejected.len());
        self.sent_us.entry((id.to_vec(), from.to_bytes())).or_default().extend(report.applied.iter().copied());
        if let Some(record) = self.records.get_mut(id) {
            record.rejected += rejected as u64;
        }
        if applied > 0 || rejected > 0 {
            if let Err(e) = self.persist(id) {
                warn!("cannot save share {}: {}", hex::encode(id), e.message);
            }
        }
        if applied > 0 {
            info!(share = %hex::encode(id), %from, "applied {applied} change(s)");
            let removed = self.docs.get(id).is_some_and(|d| d.was_removed(&self.local));
            match self.records.get_mut(id) {
                Some(record) if removed && record.role != "owner" => {
                    // The owner removed us: stop syncing; the files stay.
                    warn!(share = %hex::encode(id), "this node was removed from share {:?}; its files stay", record.name);
                    record.state = "removed".into();
                    if let Err(e) = self.persist(id) {
                        warn!("cannot save share {}: {}", hex::encode(id), e.message);
                    }
                }
                _ => {
                    if let Some(doc) = self.docs.get(id) {
                        let role = doc.role_of(&self.local).map(|r| r.as_str().to_owned());
                        if let (Some(role), Some(record)) = (role, self.records.get_mut(id)) {
                            record.role = role; // a role change by the owner
                        }
                    }
                    if write {
                        self.write_out(id);
                    } else {
                        self.unwritten.insert(id.to_vec());
                    }
                }
            }
        }
        (applied, rejected)
    }

    /// Handles the answer to one of our sync requests; may ask again.
    pub fn on_sync_response(
        &mut self,
        from: &PeerId,
        id: &[u8],
        response: ShareResponse,
        online: &dyn Fn(&PeerId) -> bool,
    ) -> Vec<Outgoing> {
        match response {
            ShareResponse::Sync { heads, changes, more, rejected } => {
                if rejected > 0 {
                    warn!(share = %hex::encode(id), %from, "{rejected} of our changes were refused by that member");
                }
                let (applied, _) = self.apply(id, from, changes, !more);
                if !more && self.unwritten.contains(id) {
                    self.write_out(id);
                }
                let theirs = heads_from_wire(&heads);
                let before = self.peer_heads.insert((id.to_vec(), from.to_bytes()), theirs.clone());
                let mut out = Vec::new();
                // They may lack changes we have (we did not know their heads),
                // or have more for us: one more round in either case, but only
                // if their heads moved since we last heard them. Heads that
                // include a change we refused (a read-only member's forgery)
                // look as if they lacked our whole history: we sent it all
                // again, round after round, forever (found by the simulator,
                // bug 2, seed 16 of `--scenario share`).
                let moved = before.as_ref() != Some(&theirs);
                let owe_them = moved && self.owes(id, &from.to_bytes(), &theirs);
                if more || owe_them {
                    out.extend(self.sync_message(id, from));
                }
                if applied > 0 {
                    out.extend(self.sync_all_except(id, from, online));
                }
                out
            }
            ShareResponse::Refused { message } => {
                warn!(share = %hex::encode(id), %from, "share sync refused: {message}");
                let from_owner = self.records.get(id).is_some_and(|r| r.owner == from.to_bytes() && r.role != "owner");
                if from_owner && message == wire::NOT_A_MEMBER {
                    if let Some(record) = self.records.get_mut(id) {
                        warn!(share = %hex::encode(id), "the owner removed this node from share {:?}; its files stay", record.name);
                        record.state = "removed".into();
                    }
                    if let Err(e) = self.persist(id) {
                        warn!("cannot save share {}: {}", hex::encode(id), e.message);
                    }
                }
                Vec::new()
            }
            ShareResponse::Ok => Vec::new(),
        }
    }

    /// `hearth share accept SHARE PATH`.
    pub fn accept(&mut self, id: &[u8], path: &Path) -> Result<(ShareView, Vec<Outgoing>), ApiError> {
        let record = self.records.get(id).ok_or_else(|| ApiError::not_found("no such share"))?;
        if record.state != "pending" {
            return Err(ApiError::conflict(format!("share {:?} is {}, not pending", record.name, record.state)));
        }
        let path = prepare_empty_dir(path)?;
        let owner = record.owner.clone();
        let owner_peer = PeerId::from_bytes(&owner).map_err(|_| ApiError::internal("bad owner id"))?;
        self.docs.insert(id.to_vec(), ShareDoc::join(&owner, &self.local));
        if let Some(r) = self.records.get_mut(id) {
            r.state = "active".into();
            r.path = Some(path.to_string_lossy().to_string());
        }
        self.persist(id)?;
        let mut out =
            vec![Outgoing { peer: owner_peer, request: ShareRequest::Answer { share: id.to_vec(), accept: true } }];
        out.extend(self.sync_message(id, &owner_peer));
        let view = self.view(id).ok_or_else(|| ApiError::internal("share vanished"))?;
        Ok((view, out))
    }

    /// `hearth share decline SHARE`.
    pub fn decline(&mut self, id: &[u8]) -> Result<(ShareView, Vec<Outgoing>), ApiError> {
        let record = self.records.get_mut(id).ok_or_else(|| ApiError::not_found("no such share"))?;
        if record.state != "pending" {
            return Err(ApiError::conflict(format!("share {:?} is {}, not pending", record.name, record.state)));
        }
        record.state = "declined".into();
        let owner = PeerId::from_bytes(&record.owner).map_err(|_| ApiError::internal("bad owner id"))?;
        self.persist(id)?;
        let out = vec![Outgoing { peer: owner, request: ShareRequest::Answer { share: id.to_vec(), accept: false } }];
        let view = self.view(id).ok_or_else(|| ApiError::internal("share vanished"))?;
        Ok((view, out))
    }

    /// `hearth share leave SHARE`: stop syncing; the local files stay.
    pub fn leave(&mut self, id: &[u8]) -> Result<ShareView, ApiError> {
        let record = self.records.get_mut(id).ok_or_else(|| ApiError::not_found("no such share"))?;
        if record.role == "owner" {
            return Err(ApiError::conflict("the owner cannot leave its own share; remove the members instead"));
        }
        record.state = "left".into();
        self.persist(id)?;
        self.view(id).ok_or_else(|| ApiError::internal("share vanished"))
    }

    /// `hearth share trash SHARE`: deleted files and folders, restorable
    /// (those past the retention period are left out).
    pub fn trash(&mut self, id: &[u8], now: u64) -> Result<Vec<VersionView>, ApiError> {
        let folder = self.folder(id).ok_or_else(|| ApiError::not_found("this share has no document yet"))?;
        let deleted = self.deletion_dates(id, &folder);
        let keep = self.keep_secs;
        Ok(folder
            .trash()
            .into_iter()
            .filter_map(|t| {
                let at = deleted.get(&t.entry).copied();
                if at.is_some_and(|at| !retention::is_kept(at, now as i64, keep)) {
                    return None;
                }
                let v = t.version.clone();
                Some(VersionView {
                    path: t.original_path.join("/"),
                    version: 0,
                    size: v.as_ref().map(|v| v.size).unwrap_or(0),
                    author: v.as_ref().map(|v| v.author_name.clone()).unwrap_or_default(),
                    at: v.as_ref().map(|v| crate::views::rfc3339(v.at.max(0) as u64)).unwrap_or_default(),
                    content: v.as_ref().map(|v| hex::encode(&v.content)).unwrap_or_default(),
                    current: false,
                    expires: retention::expires(at, keep),
                })
            })
            .collect())
    }

    /// `hearth share versions SHARE PATH`: every version of a file still
    /// restorable (numbered from the oldest ever, so numbers never change).
    pub fn versions(&mut self, id: &[u8], path: &str, now: u64) -> Result<Vec<VersionView>, ApiError> {
        let (entry, _) = self.find(id, path, now)?;
        let current = self.folder(id).and_then(|f| f.versions(entry).first().cloned());
        let keep = self.keep_secs;
        let doc = self.docs.get_mut(id).ok_or_else(|| ApiError::not_found("this share has no document yet"))?;
        let history = Folder::history(doc, entry);
        Ok(history
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let is_current = current.as_deref() == Some(v);
                // An old version is dated by the one that replaced it.
                let replaced = if is_current { None } else { history.get(i + 1).map(|next| next.at) };
                if replaced.is_some_and(|at| !retention::is_kept(at, now as i64, keep)) {
                    return None;
                }
                Some(VersionView {
                    path: path.to_owned(),
                    version: i,
                    size: v.size,
                    author: v.author_name.clone(),
                    at: crate::views::rfc3339(v.at.max(0) as u64),
                    content: hex::encode(&v.content),
                    current: is_current,
                    expires: retention::expires(replaced, keep),
                })
            })
            .collect())
    }

    /// An entry by its current path, or by the path it had before deletion;
    /// the bool says it is in the trash.
    fn find(&mut self, id: &[u8], path: &str, now: u64) -> Result<(EntryId, bool), ApiError> {
        let folder = self.folder(id).ok_or_else(|| ApiError::not_found("this share has no document yet"))?;
        let path = path.trim_matches('/');
        if let Some(item) = folder.items().into_iter().find(|i| i.path.join("/") == path && i.conflict.is_none()) {
            return Ok((item.entry, false));
        }
        let Some(item) = folder.trash().into_iter().rev().find(|t| t.original_path.join("/") == path) else {
            return Err(ApiError::not_found(format!("nothing at {path:?} in this share or its trash")));
        };
        let deleted = self.deletion_dates(id, &folder).get(&item.entry).copied();
        if let Some(at) = deleted.filter(|at| !retention::is_kept(*at, now as i64, self.keep_secs)) {
            return Err(ApiError::not_found(format!(
                "{path} was deleted on {}, longer ago than this node keeps deleted files ({})",
                crate::views::rfc3339(at.max(0) as u64),
                retention::period(self.keep_secs)
            )));
        }
        Ok((item.entry, true))
    }

    /// `hearth share restore SHARE PATH [--version V]`: brings a deleted
    /// entry back where it was, and/or makes an earlier version current.
    pub fn restore(
        &mut self,
        id: &[u8],
        path: &str,
        version: Option<usize>,
        now: u64,
        online: &dyn Fn(&PeerId) -> bool,
    ) -> Result<Vec<Outgoing>, ApiError> {
        let record = self.records.get(id).ok_or_else(|| ApiError::not_found("no such share"))?;
        if record.role == "read-only" {
            return Err(ApiError::conflict("read-only members cannot restore; ask the owner or a read-write member"));
        }
        let (entry, in_trash) = self.find(id, path, now)?;
        let folder = self.folder(id).ok_or_else(|| ApiError::not_found("this share has no document yet"))?;
        let doc = self.docs.get_mut(id).ok_or_else(|| ApiError::not_found("this share has no document yet"))?;
        let history = Folder::history(doc, entry);
        if !in_trash && version.is_none() {
            return Err(ApiError::bad_request(format!(
                "{path} is not deleted: give --version to restore an older version"
            )));
        }
        let mut editor = Editor::new(doc, &folder, &self.local);
        if in_trash {
            let item = folder
                .trash()
                .into_iter()
                .find(|t| t.entry == entry)
                .ok_or_else(|| ApiError::internal("trash item vanished"))?;
            let (mut parent, name) = item.original_place;
            if !folder.tree().contains(parent) || folder.tree().is_in_trash(parent) {
                parent = EntryId::ROOT; // its folder is gone: back at the top
            }
            editor.move_to(entry, parent, &name).map_err(ApiError::internal)?;
        }
        if let Some(v) = version {
            let old = history.get(v).ok_or_else(|| {
                ApiError::bad_request(format!("{path} has no version {v}; see `hearth share versions`"))
            })?;
            let replaced = history
                .get(v + 1)
                .map(|next| next.at)
                .filter(|_| folder.versions(entry).first().map(|w| &**w) != Some(old));
            if replaced.is_some_and(|at| !retention::is_kept(at, now as i64, self.keep_secs)) {
                return Err(ApiError::not_found(format!(
                    "version {v} of {path} was replaced longer ago than this node keeps old versions ({})",
                    retention::period(self.keep_secs)
                )));
            }
            let restored =
                Version { author: self.local.clone(), author_name: self.name.clone(), at: now as i64, ..old.clone() };
            editor.set_version(entry, &restored).map_err(ApiError::internal)?;
        }
        let out = self.commit_and_push(id, now, online)?;
        self.write_out(id);
        Ok(out)
    }

    /// `hearth share status SHARE`.
    pub fn status(
        &mut self,
        id: &[u8],
        names: &dyn Fn(&PeerId) -> Option<(String, bool)>,
    ) -> Result<ShareStatusView, ApiError> {
        let share = self.view(id).ok_or_else(|| ApiError::not_found("no such share"))?;
        let folder = self.folder(id);
        let record = self.records.get(id).ok_or_else(|| ApiError::not_found("no such share"))?;
        let mut members = Vec::new();
        let mut doc_changes = 0;
        if let Some(doc) = self.docs.get(id) {
            doc_changes = doc.signatures().len();
            for (peer, role) in doc.members() {
                let (name, online) = if peer == self.local {
                    ("you".to_owned(), true)
                } else {
                    PeerId::from_bytes(&peer)
                        .ok()
                        .and_then(|p| names(&p))
                        .unwrap_or_else(|| ("(not a contact)".into(), false))
                };
                members.push(MemberView { peer_id: peer_text(&peer), name, role: role.as_str().into(), online });
            }
        }
        let pending_invitations = record
            .invitations
            .iter()
            .filter(|(_, s)| s == "pending")
            .map(|(p, _)| {
                PeerId::from_bytes(p).ok().and_then(|p| names(&p)).map(|n| n.0).unwrap_or_else(|| peer_text(p))
            })
            .collect();
        let wanted = self.wanted.get(id);
        let (mut files, mut folders, mut bytes, mut conflicts, mut in_trash) = (0, 0, 0, Vec::new(), 0);
        let mut bytes_pending_down = 0;
        if let Some(folder) = folder {
            // Counted from the versions, without building every path (a
            // share may hold 100,000 files and status is asked every second).
            for entry in folder.tree().entries() {
                let shown = folder.shown_versions(entry);
                for (_, version) in &shown {
                    let pending = <[u8; 32]>::try_from(version.content.as_slice())
                        .is_ok_and(|c| wanted.is_some_and(|w| w.contains_key(&ChunkHash(c))));
                    if pending {
                        bytes_pending_down += version.size;
                    }
                    match version.kind {
                        hearth_crdt::folder::Kind::Dir => folders += 1,
                        hearth_crdt::folder::Kind::File => {
                            files += 1;
                            bytes += version.size;
                        }
                    }
                }
                if shown.iter().any(|(copy, v)| copy.is_some() || !v.conflict_of.is_empty()) {
                    for item in folder.items_of(entry) {
                        if item.conflict.is_some() || !item.version.conflict_of.is_empty() {
                            conflicts.push(item.path.join("/"));
                        }
                    }
                }
            }
            conflicts.sort();
            in_trash = folder.tree().entries().filter(|e| folder.tree().is_in_trash(*e)).count();
        }
        let not_shared = match (&record.path, record.role.as_str(), self.indexes.get(id)) {
            (Some(path), "read-only", Some(index)) => {
                let mut index = index.clone();
                ShareFs::new(Path::new(path), &self.blobs, &mut index).local_differences()
            }
            _ => Vec::new(),
        };
        let files_pending_down = wanted.map(BTreeMap::len).unwrap_or(0);
        Ok(ShareStatusView {
            share,
            members,
            pending_invitations,
            rejected_changes: record.rejected,
            doc_changes,
            files,
            folders,
            bytes,
            files_pending_down,
            bytes_pending_down,
            bytes_pending_down_stored: 0,
            bytes_received: self.received.get(id).copied().unwrap_or(0),
            conflicts,
            in_trash,
            not_shared,
        })
    }

    /// `hearth share doc SHARE --out FILE`: the document in Automerge's format.
    pub fn doc_bytes(&mut self, id: &[u8]) -> Result<Vec<u8>, ApiError> {
        let doc = self.docs.get_mut(id).ok_or_else(|| ApiError::not_found("this share has no document yet"))?;
        Ok(doc.save())
    }

    /// `hearth share set-role` / `remove-member` (owner only); `None` removes.
    pub fn set_role(
        &mut self,
        id: &[u8],
        member: &PeerId,
        role: Option<&str>,
        now: u64,
        online: &dyn Fn(&PeerId) -> bool,
    ) -> Result<Vec<Outgoing>, ApiError> {
        let record = self.records.get_mut(id).ok_or_else(|| ApiError::not_found("no such share"))?;
        if record.role != "owner" {
            return Err(ApiError::conflict("only the share's owner can change roles"));
        }
        let role = role.map(role_name).transpose()?;
        let peer = member.to_bytes();
        if role.is_none() {
            record.invitations.retain(|(p, _)| *p != peer);
        }
        let doc = self.docs.get_mut(id).ok_or_else(|| ApiError::internal("share has no document"))?;
        if doc.role_of(&peer).is_none() {
            return Err(ApiError::not_found("that contact is not a member of this share"));
        }
        doc.set_role(&peer, role).map_err(ApiError::internal)?;
        let mut out = self.commit_and_push(id, now, online)?;
        if role.is_none() {
            // The removed node is told nothing more, not even this change.
            out.retain(|o| o.peer != *member);
        }
        Ok(out)
    }
}

/// Creates `path` if missing; refuses a directory that is not empty, so that
/// accepting a share never mixes with (or overwrites) existing files.
fn prepare_empty_dir(path: &Path) -> Result<PathBuf, ApiError> {
    if path.exists() {
        let mut entries = std::fs::read_dir(path)
            .map_err(|e| ApiError::bad_request(format!("cannot use {}: {e}", path.display())))?;
        if entries.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "{} is not empty: accept the share into a new or empty directory",
                path.display()
            )));
        }
    } else {
        std::fs::create_dir_all(path)
            .map_err(|e| ApiError::bad_request(format!("cannot create {}: {e}", path.display())))?;
    }
    std::fs::canonicalize(path).map_err(|e| ApiError::bad_request(format!("cannot use {}: {e}", path.display())))
}
