//! `GET /v1/shares/{share}/files`: what a share holds, as the web interface
//! shows it: the entries of the document (not a walk of the directory, so
//! a file whose content is still on its way is listed, marked pending) and
//! every conflict as its two versions side by side.

use serde::{Deserialize, Serialize};

use hearth_crdt::folder::{Folder, Item, Kind};
use hearth_crdt::tree::EntryId;
use hearth_protocol::blob::ChunkHash;

use super::Shares;
use crate::api::ApiError;

/// Most entries one listing returns when the caller gives no limit.
pub const DEFAULT_LIMIT: usize = 1000;
/// Most entries one listing may return: a share may hold 100,000 files, and
/// the page that asks wants a screenful, not a dump.
pub const MAX_LIMIT: usize = 10_000;

/// One entry of a share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileView {
    /// Path in the share, `/`-separated.
    pub path: String,
    /// `file` or `dir`.
    pub kind: String,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// The display name its author gave themselves.
    pub author: String,
    /// When it was written, RFC 3339.
    pub at: String,
    /// Its content is not on this node yet (being fetched from a member).
    pub pending: bool,
    /// A conflict copy: the path of the version it lost against.
    pub conflict_of: Option<String>,
}

/// A conflict: the version kept at the path and a concurrent one kept
/// beside it as a conflict copy. Both are on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConflictView {
    /// The version at the original path.
    pub kept: FileView,
    /// The conflict copy.
    pub copy: FileView,
}

/// `GET /v1/shares/{share}/files`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilesView {
    /// Entries in the share (folders included), all of them.
    pub total: usize,
    /// The first `limit` entries by path.
    pub files: Vec<FileView>,
    /// `files` stops before the end.
    pub truncated: bool,
    /// Every conflict, whatever the limit.
    pub conflicts: Vec<ConflictView>,
}

impl Shares {
    /// The entries of share `id` (at most `limit`, by path) and its conflicts.
    pub fn files(&mut self, id: &[u8], limit: usize) -> Result<FilesView, ApiError> {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_LIMIT}")));
        }
        let folder = self.folder(id).ok_or_else(|| ApiError::not_found("this share has no document yet"))?;
        let wanted = self.wanted.get(id);
        let pending = |item: &Item| {
            <[u8; 32]>::try_from(item.version.content.as_slice())
                .is_ok_and(|c| wanted.is_some_and(|w| w.contains_key(&ChunkHash(c))))
        };
        let items = folder.items();
        let view = |item: &Item, conflict_of: Option<String>| FileView {
            path: item.path.join("/"),
            kind: match item.version.kind {
                Kind::Dir => "dir".into(),
                Kind::File => "file".into(),
            },
            size: item.version.size,
            author: item.version.author_name.clone(),
            at: crate::views::rfc3339(item.version.at.max(0) as u64),
            pending: pending(item),
            conflict_of,
        };
        let mut conflicts = Vec::new();
        let mut files = Vec::new();
        for item in &items {
            let kept = kept_version(&folder, item);
            let conflict_of = kept.as_ref().map(|k| k.path.join("/"));
            if let Some(kept) = &kept {
                conflicts.push(ConflictView { kept: view(kept, None), copy: view(item, conflict_of.clone()) });
            }
            if files.len() < limit {
                files.push(view(item, conflict_of));
            }
        }
        Ok(FilesView { total: items.len(), truncated: items.len() > files.len(), files, conflicts })
    }
}

/// For a conflict copy, the version it lost against: the winner of the same
/// entry (a concurrent remote version), or the entry it was recorded
/// against (a local edit that turned out concurrent). `None` for others.
fn kept_version(folder: &Folder, item: &Item) -> Option<Item> {
    let winner_of = |entry: EntryId| folder.items_of(entry).into_iter().find(|i| i.conflict.is_none());
    if item.conflict.is_some() {
        return winner_of(item.entry);
    }
    let against: [u8; 16] = item.version.conflict_of.as_slice().try_into().ok()?;
    winner_of(EntryId::from_bytes(against))
}
