//! Retention in the node: deleted files and replaced versions stay
//! restorable for `keep_versions_days` (30 by default, see `config`), then
//! [`Shares::expire`] drops their contents from the blob store. The rule
//! itself (what is past the period, what is still shown) is
//! [`hearth_crdt::retention`]; only contents expire, never the document's
//! history, and each member applies its own setting.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use hearth_crdt::folder::Folder;
use hearth_crdt::retention::expiry;
use hearth_crdt::tree::EntryId;
use hearth_protocol::blob::ChunkHash;
use serde::Serialize;
use tracing::{info, warn};

pub use hearth_crdt::retention::is_kept;

use super::Shares;

/// What [`Shares::expire`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ExpireReport {
    /// Contents (old versions, deleted files) past the period.
    pub contents: usize,
    /// Blobs removed (manifests and the chunks only they used).
    pub blobs: usize,
    /// Bytes freed.
    pub bytes: u64,
}

/// Until when something that stopped being current at `since` stays
/// restorable (RFC 3339); empty if it is current or kept forever.
pub fn expires(since: Option<i64>, keep_secs: Option<i64>) -> String {
    match (since, keep_secs) {
        (Some(since), Some(keep)) => crate::views::rfc3339(since.saturating_add(keep).max(0) as u64),
        _ => String::new(),
    }
}

/// The retention period in words.
pub fn period(keep_secs: Option<i64>) -> String {
    match keep_secs {
        None => "forever".into(),
        Some(secs) if secs % 86_400 == 0 => format!("{} days", secs / 86_400),
        Some(secs) => format!("{secs} seconds"),
    }
}

impl Shares {
    /// Keep deleted files and replaced versions for `keep_secs` (`None`:
    /// forever).
    pub fn set_retention(&mut self, keep_secs: Option<i64>) {
        self.keep_secs = keep_secs;
    }

    /// When each item of share `id`'s trash was deleted.
    pub(super) fn deletion_dates(&mut self, id: &[u8], folder: &Folder) -> BTreeMap<EntryId, i64> {
        match self.docs.get_mut(id) {
            Some(doc) => hearth_crdt::retention::deletion_times(doc, folder),
            None => BTreeMap::new(),
        }
    }

    /// Drops from the blob store the contents of every share that are past
    /// the retention period at `now` (Unix seconds) and used by nothing
    /// kept, in any share: a chunk still used by a kept file stays. Costs a
    /// pass over each document's history, and, when something expired, a
    /// read of every kept manifest: run it rarely (the event loop does
    /// hourly).
    pub fn expire(&mut self, now: u64) -> ExpireReport {
        let mut report = ExpireReport::default();
        let Some(keep) = self.keep_secs else { return report };
        let (mut kept, mut expired) = (BTreeSet::new(), BTreeSet::new());
        let ids: Vec<Vec<u8>> = self.docs.keys().cloned().collect();
        for id in ids {
            let Some(folder) = self.folder(&id) else { continue };
            let Some(doc) = self.docs.get_mut(&id) else { continue };
            let split = expiry(doc, &folder, now as i64, keep);
            kept.extend(split.kept);
            expired.extend(split.expired);
        }
        let hash = |content: &Vec<u8>| <[u8; 32]>::try_from(content.as_slice()).ok().map(ChunkHash);
        let expired: Vec<ChunkHash> =
            expired.difference(&kept).filter_map(hash).filter(|h| self.blobs.has(h)).collect();
        if expired.is_empty() {
            return report;
        }
        let mut live: HashSet<ChunkHash> = HashSet::new();
        for content in kept.iter().filter_map(hash) {
            live.insert(content);
            if let Ok(Some(manifest)) = self.blobs.manifest(&content) {
                live.extend(manifest.chunks().iter().map(|c| c.hash));
            }
        }
        for content in expired {
            let manifest = match self.blobs.manifest(&content) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
                    warn!(%content, "an expired content's manifest is unreadable; it stays: {e}");
                    continue;
                }
            };
            report.contents += 1;
            let mut doomed: Vec<(ChunkHash, u64)> = manifest
                .chunks()
                .iter()
                .filter(|c| !live.contains(&c.hash))
                .map(|c| (c.hash, u64::from(c.len)))
                .collect();
            doomed.sort_unstable();
            doomed.dedup();
            doomed.push((content, manifest.encode().len() as u64));
            for (blob, len) in doomed {
                match self.blobs.remove(&blob) {
                    Ok(true) => {
                        report.blobs += 1;
                        report.bytes += len;
                    }
                    Ok(false) => {}
                    Err(e) => warn!(%blob, "cannot remove an expired blob: {e}"),
                }
            }
        }
        if report.contents > 0 {
            info!(
                contents = report.contents,
                blobs = report.blobs,
                bytes = report.bytes,
                "dropped old versions and deleted files kept longer than {}",
                period(self.keep_secs)
            );
        }
        report
    }
}
