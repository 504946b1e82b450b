//! How long a share's past is kept: deleted files (the trash) and versions
//! overwritten by a newer one stay restorable for a retention period (30
//! days by default, a setting of each member), then their contents may be
//! dropped from that member's store. The document itself keeps every op (its
//! history is what members merge), so only contents expire, and every
//! member decides for itself.
//!
//! The clock is the caller's: times are Unix seconds. A trash item is dated
//! by the change that moved it into the trash (its author's clock); an old
//! version by the version that replaced it.

use std::collections::{BTreeMap, BTreeSet};

use automerge::ScalarValue;

use crate::doc::ShareDoc;
use crate::folder::{from_cbor, move_key, Folder, Version};
use crate::tree::EntryId;

/// The default retention period: 30 days.
pub const DEFAULT_KEEP_SECS: i64 = 30 * 86_400;

/// Whether something that stopped being current at `since` is still kept
/// at `now`, with a retention of `keep_secs` (`None`: forever).
pub fn is_kept(since: i64, now: i64, keep_secs: Option<i64>) -> bool {
    keep_secs.is_none_or(|keep| now.saturating_sub(since) <= keep)
}

/// When each trash item (an entry deleted directly, not one inside a deleted
/// folder) was deleted.
pub fn deletion_times(doc: &mut ShareDoc, folder: &Folder) -> BTreeMap<EntryId, i64> {
    let keys: BTreeMap<String, EntryId> = folder
        .tree()
        .children(EntryId::TRASH)
        .filter_map(|e| Some((move_key(&folder.tree().placement(e)?.since), e)))
        .collect();
    let times = doc.move_times(keys.keys());
    keys.into_iter().filter_map(|(key, entry)| Some((entry, *times.get(&key)?))).collect()
}

/// The item of the trash that holds `entry` (itself, or the deleted folder
/// it is in); `None` if it is not in the trash.
fn trash_item_of(folder: &Folder, entry: EntryId) -> Option<EntryId> {
    let mut current = entry;
    loop {
        match folder.tree().parent_of(current)? {
            EntryId::TRASH => return Some(current),
            parent => current = parent,
        }
    }
}

/// What retention needs of one version: its content (none for a folder or
/// an undecodable value) and when it was written.
type Past = (Option<Vec<u8>>, i64);

/// Every version an entry has had, oldest first, for all entries at once,
/// reduced to [`Past`].
fn histories(doc: &mut ShareDoc) -> BTreeMap<EntryId, Vec<Past>> {
    let mut out: BTreeMap<EntryId, Vec<Past>> = BTreeMap::new();
    doc.for_each_field_value("version", |entry, value| {
        let Ok(bytes) = <[u8; 16]>::try_from(entry) else { return };
        let past = match value {
            ScalarValue::Bytes(b) => {
                from_cbor::<Version>(&b).map(|v| ((!v.content.is_empty()).then_some(v.content), v.at))
            }
            _ => None,
        };
        if let Some(past) = past {
            out.entry(EntryId::from_bytes(bytes)).or_default().push(past);
        }
    });
    out
}

/// The contents (manifest ids) of a share's files, split by the retention
/// rule at `now`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// Contents still needed: shown in the folder (including conflict
    /// copies), or of an old version or a trash item within the period.
    pub kept: BTreeSet<Vec<u8>>,
    /// Contents only of old versions and trash items past the period, which
    /// this member may drop.
    pub expired: BTreeSet<Vec<u8>>,
}

/// Splits the contents of `doc` (whose folder is `folder`) into kept and
/// expired at `now`, keeping the past for `keep_secs`. One pass over the
/// document's history.
pub fn expiry(doc: &mut ShareDoc, folder: &Folder, now: i64, keep_secs: i64) -> Expiry {
    let deleted = deletion_times(doc, folder);
    let mut out = Expiry::default();
    let mut candidates = BTreeSet::new();
    for (entry, history) in histories(doc) {
        let contents = history.iter().filter_map(|(content, _)| content.clone());
        if let Some(item) = trash_item_of(folder, entry) {
            // Deleted: everything it had goes with the trash item. Without a
            // date (its change is unknown), it is kept.
            let kept = deleted.get(&item).is_none_or(|at| is_kept(*at, now, Some(keep_secs)));
            let set = if kept { &mut out.kept } else { &mut candidates };
            set.extend(contents);
            continue;
        }
        for (_, shown) in folder.shown_versions(entry) {
            out.kept.insert(shown.content.clone());
        }
        // Each older version was replaced by the next one.
        for pair in history.windows(2) {
            let ((old, _), (_, next_at)) = (&pair[0], &pair[1]);
            let Some(old) = old else { continue };
            if is_kept(*next_at, now, Some(keep_secs)) {
                out.kept.insert(old.clone());
            } else {
                candidates.insert(old.clone());
            }
        }
        if let Some((Some(last), _)) = history.last() {
            out.kept.insert(last.clone());
        }
    }
    out.kept.remove(&Vec::new());
    out.expired = candidates.difference(&out.kept).cloned().collect();
    out
}
