//! The shared-folder tree as a replicated tree with a move operation, after
//! Kleppmann, Mulligan, Gomes and Beresford, "A highly-available move
//! operation for replicated trees" (IEEE TPDS 2021).
//!
//! # Model
//!
//! Entries (files and folders) have stable [`EntryId`]s; their parent and
//! name are attributes set by [`MoveOp`]s. Creating an entry is its first
//! move, renaming is a move to the same parent, and deleting is a move under
//! [`EntryId::TRASH`] (restoring is a move back out). [`EntryId::ROOT`] and
//! [`EntryId::TRASH`] always exist and are never moved. Entries are never
//! removed from the tree; purging the trash is a later concern.
//!
//! Every op has an [`OpId`] (Lamport counter, then actor): a total order that
//! extends causality, provided a writer stamps each new op with
//! [`Tree::lamport_max`]` + 1` over every op it has seen. The tree is defined
//! as the fold of all known ops in `OpId` order, starting from the empty
//! tree, where an op is *skipped* (leaves the tree unchanged) when at its
//! point in the order:
//!
//! - it moves a reserved entry (ROOT, TRASH or any other [`EntryId`] whose
//!   first 15 bytes are zero): [`SkipReason::ReservedEntry`];
//! - its name is not a valid name ([`crate::names::validate_name`]):
//!   [`SkipReason::InvalidName`];
//! - its new parent is neither ROOT, TRASH nor an entry that exists at that
//!   point: [`SkipReason::UnknownParent`];
//! - its new parent is the entry itself or one of its descendants, so
//!   applying it would make a cycle: [`SkipReason::Cycle`].
//!
//! Because each decision depends only on the ops before it in the order,
//! every replica that knows the same set of ops computes the same tree,
//! whatever order the ops arrived in.
//!
//! # Unknown parents are skipped, not parked
//!
//! A move under a parent that does not exist (yet) is skipped rather than
//! kept as a dangling edge. A writer only moves under a parent it can see,
//! so the op that created that parent has a smaller `OpId` and precedes the
//! move in the order: once the log is causally complete, no honest move is
//! skipped for this reason. Before that (the parent's create is still in
//! flight), the move is logged as skipped; when the create arrives it sorts
//! before the move, which is redone and now succeeds. Skipping keeps the
//! strongest invariant at every moment, not only after sync: every entry of
//! the tree is reachable from ROOT or TRASH, so paths and display names are
//! always defined. The cost is that an op stamped by a writer that broke the
//! Lamport rule (a Lamport counter smaller than that of the parent's create)
//! stays skipped, and is visible as such through [`Tree::skipped`].
//!
//! # No entry is lost
//!
//! By induction over the order: an entry's first op in the order is never a
//! cycle (nothing can be under an entry that does not exist yet, since such
//! moves are skipped as unknown parent), and with a causally complete log
//! from writers that follow the Lamport rule its parent exists there. Once
//! an entry exists it never stops existing, because no op removes entries.
//!
//! # Late ops: undo, apply, redo
//!
//! The log keeps every op sorted by `OpId` together with the placement the
//! entry had before the op (when it was applied), so the op can be undone.
//! An op newer than everything in the log is applied and appended. An older
//! op undoes every later op (newest first), is applied, and the later ops are
//! redone, each decision re-evaluated. Skipped ops stay in the log so that a
//! redo re-evaluates them too. [`Tree::apply_all`] does this once for a whole
//! batch, which is how a replica catching up after being offline should
//! ingest what it missed.
//!
//! An `OpId` identifies one op. A duplicate (same id, same content) is
//! ignored. Two different ops with the same id can only come from a broken or
//! hostile actor; the tree keeps the smaller one (`MoveOp`'s `Ord`), which
//! again depends on the set of ops only, and reports [`ApplyOutcome::IdReused`].
//!
//! # Names and collisions
//!
//! The tree stores names as given (valid ones only). Two entries of one
//! folder whose names collide ([`crate::names::collision_key`]: Unicode lower
//! case) are both kept; their *display names* differ: in each group of
//! colliding siblings, the entry whose latest applied move has the smallest
//! `OpId` keeps its name and the others are numbered in `OpId` order
//! (`photo (2).jpg`, `photo (3).jpg`, see [`crate::names::numbered_name`]),
//! skipping any number whose name collides with another sibling's name or
//! with a number already handed out. Groups are numbered in the order of
//! their collision keys. Display names are a function of the tree state, so
//! every replica shows the same ones, and they are distinct (case-
//! insensitively) among the children of every folder, ROOT and TRASH
//! included. A rename of the entry that kept the name hands it to the next
//! one in its group.
//!
//! The tree knows nothing of entry kinds: keeping files from becoming
//! parents is the document layer's job.
//!
//! # Invariants (checked by [`Tree::check_invariants`])
//!
//! 1. The log is strictly sorted by `OpId`; the state equals the fold of the
//!    logged ops from the empty tree.
//! 2. Every entry reaches ROOT or TRASH by following parents: no cycles, no
//!    orphans. ROOT and TRASH are never entries.
//! 3. The children index agrees with the entries' placements.
//! 4. Display names are valid names, distinct case-insensitively within a
//!    folder.
//!
//! # Complexity
//!
//! With `n` entries, `d` the depth of the target folder and `k` the number of
//! logged ops after a late op's position:
//!
//! - [`Tree::apply`] of an op newer than all logged ops (the common case):
//!   `O(log n + |name|)` for a create, `O(d log n + |name|)` for a move of an
//!   existing entry (the cycle check walks up from the target), no undo. A
//!   late op: that cost times `k + 1`.
//! - [`Tree::apply_all`] of `m` ops: sorting `O(m log m)`, then one undo of the
//!   `k` logged ops after the oldest new op and one redo of `k + m` ops.
//! - [`Tree::parent_of`], [`Tree::placement`]: `O(log n)`; [`Tree::path_of`],
//!   [`Tree::is_in_trash`]: `O(d log n)`; [`Tree::display_path`]: the same
//!   plus one [`Tree::display_name`] per level.
//! - [`Tree::display_name`]: `O(log n)` for an entry that keeps its name;
//!   for a numbered one, `O(c log n)` the first time after its folder
//!   changed and `O(log n)` after that, `c` being the number of colliding
//!   siblings in the folder (the numbering of a folder is memoised until the
//!   folder changes). [`Tree::display_names`] lists a folder of `s` children
//!   in `O((s + c) log n)`.
//! - Memory: the log (one op and at most one previous placement per op) plus
//!   one placement and one index slot per entry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::names::{self, NameError};

/// The stable identity of an entry: 16 opaque bytes (random for new entries,
/// chosen by the node). Ids whose first 15 bytes are zero are reserved;
/// [`EntryId::ROOT`] and [`EntryId::TRASH`] are the two in use.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryId(#[serde(with = "serde_bytes")] [u8; 16]);

impl EntryId {
    /// The share's top folder. Always exists, never moves, has no name.
    pub const ROOT: EntryId = EntryId([0; 16]);
    /// The folder deleted entries are moved under. Always exists, never
    /// moves, has no name, and is not below ROOT.
    pub const TRASH: EntryId = EntryId([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    /// Wraps 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> EntryId {
        EntryId(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// True for ROOT, TRASH and the other ids kept for later use (first 15
    /// bytes zero): moves of reserved ids are always skipped. A random id is
    /// reserved with probability 2^-120.
    pub fn is_reserved(&self) -> bool {
        self.0[..15].iter().all(|b| *b == 0)
    }
}

impl std::fmt::Display for EntryId {
    /// Lower-case hex, or `ROOT` / `TRASH`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            EntryId::ROOT => f.write_str("ROOT"),
            EntryId::TRASH => f.write_str("TRASH"),
            _ => self.0.iter().try_for_each(|b| write!(f, "{b:02x}")),
        }
    }
}

impl std::fmt::Debug for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EntryId({self})")
    }
}

/// The identity and position of an op in the total order: by Lamport
/// counter, then by actor bytes. Unique per op as long as every actor stamps
/// its ops with increasing counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    /// Lamport counter: greater than that of every op the author had seen.
    pub lamport: u64,
    /// The author's actor id (opaque bytes, bound to a member by the
    /// document layer).
    #[serde(with = "serde_bytes")]
    pub actor: Vec<u8>,
}

impl OpId {
    /// An op id.
    pub fn new(lamport: u64, actor: impl Into<Vec<u8>>) -> OpId {
        OpId { lamport, actor: actor.into() }
    }
}

/// Put `entry` under `parent` with the name `name`. Creates the entry if it
/// does not exist yet; moving under [`EntryId::TRASH`] deletes it.
///
/// The derived `Ord` (by `id` first) is the order of the log; the remaining
/// fields only break ties between two different ops that reuse an id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MoveOp {
    /// Identity and position in the order.
    pub id: OpId,
    /// The entry moved (or created).
    pub entry: EntryId,
    /// Its new parent.
    pub parent: EntryId,
    /// Its new name.
    pub name: String,
}

/// Where an entry is: its parent, its name as stored, and the op that put it
/// there (the latest applied move of the entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The folder holding the entry (ROOT, TRASH or an entry).
    pub parent: EntryId,
    /// The name as stored, a valid name; see [`Tree::display_name`] for the
    /// name to show and to write to disk.
    pub name: String,
    /// The latest applied move of the entry. Orders colliding siblings.
    pub since: OpId,
}

/// Why an op left the tree unchanged. Decided at the op's position in the
/// order, so it can change while earlier ops arrive.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// The op moves ROOT, TRASH or another reserved id.
    #[error("the op moves a reserved entry (the share root or the trash)")]
    ReservedEntry,
    /// The op's name is not acceptable.
    #[error("the op's name is refused: {0}")]
    InvalidName(NameError),
    /// The new parent does not exist at the op's position.
    #[error("the op moves the entry into a folder that does not exist (yet)")]
    UnknownParent,
    /// The new parent is the entry or one of its descendants.
    #[error("the op would move a folder into itself or into one of its subfolders")]
    Cycle,
}

/// What [`Tree::apply`] did with an op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The op was logged and moved (or created) its entry.
    Moved,
    /// The op was logged but, at its position, leaves the tree unchanged.
    Skipped(SkipReason),
    /// The same op was already logged; nothing changed.
    Duplicate,
    /// A *different* op with the same [`OpId`] was already logged: its author
    /// is broken or hostile. The smaller op of the two is kept
    /// (`replaced` tells whether that is the new one).
    IdReused {
        /// True if the new op replaced the logged one.
        replaced: bool,
    },
}

/// Effect of a logged op, as seen from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The op moved its entry.
    Moved,
    /// The op left the tree unchanged.
    Skipped(SkipReason),
}

/// A broken invariant found by [`Tree::check_invariants`]. Any of these is a
/// bug in this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvariantError {
    /// Two neighbouring log entries are not in strictly increasing order.
    #[error("the log is not strictly sorted at position {position}")]
    LogOrder {
        /// Index of the second entry.
        position: usize,
    },
    /// Following parents from the entry does not reach ROOT or TRASH.
    #[error("entry {entry} is not reachable from ROOT or TRASH")]
    Unreachable {
        /// The entry.
        entry: EntryId,
    },
    /// The children index disagrees with the placements.
    #[error("the children index disagrees with the placement of {entry}")]
    Index {
        /// The entry.
        entry: EntryId,
    },
    /// Two children of one folder show the same (case-insensitive) name, or a
    /// display name is invalid.
    #[error("folder {dir} shows the name {name:?} twice or shows an invalid name")]
    DisplayName {
        /// The folder.
        dir: EntryId,
        /// The name.
        name: String,
    },
}

/// Effect of a logged op, with what undo needs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Logged {
    /// Applied; `prev` is the entry's placement before (None: it was created).
    Moved {
        prev: Option<Placement>,
    },
    Skipped(SkipReason),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct LogEntry {
    op: MoveOp,
    effect: Logged,
}

/// The children of one folder, grouped by collision key.
#[derive(Clone, Debug, Default)]
struct Dir {
    /// Collision key -> the children with that key, sorted by the `since` of
    /// their placement (unique: one op places one entry). Most groups have
    /// one element, hence a `Vec` rather than a map.
    groups: BTreeMap<String, Vec<EntryId>>,
    /// The keys of the groups with more than one child.
    collided: BTreeSet<String>,
    /// The numbered display names of this folder's children
    /// ([`Tree::numbered_names`]), computed on first use and reset by every
    /// change to the folder: a memo, not state (ignored by `PartialEq`).
    /// Without it, listing the paths below a folder with `c` colliding
    /// children would cost `O(c)` per path.
    numbered: OnceLock<BTreeMap<EntryId, String>>,
}

impl PartialEq for Dir {
    fn eq(&self, other: &Dir) -> bool {
        self.groups == other.groups && self.collided == other.collided
    }
}

impl Eq for Dir {}

/// The replicated tree: an op log sorted by [`OpId`] and the tree it folds
/// to. See the module documentation for the rules and invariants.
///
/// Two trees compare equal exactly when they logged the same ops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    log: Vec<LogEntry>,
    nodes: BTreeMap<EntryId, Placement>,
    dirs: BTreeMap<EntryId, Dir>,
}

impl Tree {
    /// An empty tree: ROOT and TRASH, no entries, no ops.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// The tree folded from `ops`, in any order, duplicates allowed.
    /// Sorts once and applies in order, so no undo happens.
    pub fn from_ops(ops: impl IntoIterator<Item = MoveOp>) -> Tree {
        let mut tree = Tree::new();
        tree.apply_all(ops);
        tree
    }

    /// Adds one op, received in any order, and returns what it did at its
    /// position in the order. Later ops are re-evaluated (undo, apply, redo)
    /// and their effects may change; query them with [`Tree::effect_of`].
    pub fn apply(&mut self, op: MoveOp) -> ApplyOutcome {
        if self.log.last().is_none_or(|last| last.op.id < op.id) {
            // The common case, checked first: no search, no undo.
            return self.push(op);
        }
        match self.log.binary_search_by(|logged| logged.op.id.cmp(&op.id)) {
            Ok(position) => {
                let logged = &self.log[position].op;
                if *logged == op {
                    return ApplyOutcome::Duplicate;
                }
                if op > *logged {
                    return ApplyOutcome::IdReused { replaced: false };
                }
                let mut tail = self.rewind(position);
                tail[0] = op;
                self.replay(tail);
                ApplyOutcome::IdReused { replaced: true }
            }
            Err(position) => {
                let tail = self.rewind(position);
                let outcome = self.push(op);
                self.replay(tail);
                outcome
            }
        }
    }

    /// Adds many ops at once (any order, duplicates allowed) with a single
    /// undo/redo pass back to the oldest new op. Returns how many ops had an
    /// id not logged before. Reused ids are resolved as in [`Tree::apply`].
    pub fn apply_all(&mut self, ops: impl IntoIterator<Item = MoveOp>) -> usize {
        let mut new: Vec<MoveOp> = ops.into_iter().collect();
        new.sort_unstable();
        // Sorted by (id, content): the first op of each id is the one kept.
        new.dedup_by(|later, kept| later.id == kept.id);
        let Some(oldest) = new.first() else { return 0 };
        let position = self.log.partition_point(|logged| logged.op.id < oldest.id);
        let tail = self.rewind(position);
        let mut merged = Vec::with_capacity(tail.len() + new.len());
        let mut added = 0;
        let mut old = tail.into_iter().peekable();
        for op in new {
            while let Some(logged) = old.next_if(|logged| logged.id < op.id) {
                merged.push(logged);
            }
            match old.next_if(|logged| logged.id == op.id) {
                Some(logged) => merged.push(logged.min(op)),
                None => {
                    added += 1;
                    merged.push(op);
                }
            }
        }
        merged.extend(old);
        self.replay(merged);
        added
    }

    /// Undoes every logged op from `position` on, newest first, and returns
    /// them in order.
    fn rewind(&mut self, position: usize) -> Vec<MoveOp> {
        let tail = self.log.split_off(position);
        let mut ops = Vec::with_capacity(tail.len());
        for logged in tail.into_iter().rev() {
            if let Logged::Moved { prev } = logged.effect {
                self.detach(logged.op.entry);
                if let Some(prev) = prev {
                    self.attach(logged.op.entry, prev);
                }
            }
            ops.push(logged.op);
        }
        ops.reverse();
        ops
    }

    /// Applies `ops` (sorted, all newer than the log) and logs them.
    fn replay(&mut self, ops: Vec<MoveOp>) {
        self.log.reserve(ops.len());
        for op in ops {
            self.push(op);
        }
    }

    /// Applies `op` (newer than the log) and logs it.
    fn push(&mut self, op: MoveOp) -> ApplyOutcome {
        let logged = self.do_op(op);
        let outcome = match &logged.effect {
            Logged::Moved { .. } => ApplyOutcome::Moved,
            Logged::Skipped(reason) => ApplyOutcome::Skipped(reason.clone()),
        };
        self.log.push(logged);
        outcome
    }

    /// Applies one op at the end of the order and returns its log entry.
    fn do_op(&mut self, op: MoveOp) -> LogEntry {
        let effect = match self.check(&op) {
            Err(reason) => Logged::Skipped(reason),
            Ok(existed) => {
                let prev = if existed { self.detach(op.entry) } else { None };
                self.attach(op.entry, Placement { parent: op.parent, name: op.name.clone(), since: op.id.clone() });
                Logged::Moved { prev }
            }
        };
        LogEntry { op, effect }
    }

    /// Whether `op` may be applied to the current state; if so, whether its
    /// entry already exists.
    fn check(&self, op: &MoveOp) -> Result<bool, SkipReason> {
        if op.entry.is_reserved() {
            return Err(SkipReason::ReservedEntry);
        }
        names::validate_name(&op.name).map_err(SkipReason::InvalidName)?;
        if !self.exists(op.parent) {
            return Err(SkipReason::UnknownParent);
        }
        // An entry not in the tree has no descendants (every entry's parent
        // exists), so creates, the common case, skip the walk up.
        let existed = self.contains(op.entry);
        if op.entry == op.parent || (existed && self.is_ancestor(op.entry, op.parent)) {
            return Err(SkipReason::Cycle);
        }
        Ok(existed)
    }

    /// True for ROOT, TRASH and every entry of the tree.
    fn exists(&self, id: EntryId) -> bool {
        id == EntryId::ROOT || id == EntryId::TRASH || self.nodes.contains_key(&id)
    }

    /// True if `ancestor` is a strict ancestor of `node`. The tree has no
    /// cycles, so the walk ends within `len()` steps; the bound only turns a
    /// bug into a skipped move (and a failed debug assertion) instead of a
    /// hang.
    fn is_ancestor(&self, ancestor: EntryId, node: EntryId) -> bool {
        let mut current = node;
        let mut steps = 0usize;
        while let Some(placement) = self.nodes.get(&current) {
            if placement.parent == ancestor {
                return true;
            }
            current = placement.parent;
            steps += 1;
            if steps > self.nodes.len() {
                debug_assert!(false, "cycle in the tree above {node}");
                return true;
            }
        }
        false
    }

    /// Removes `entry` from the tree and the index; returns its placement.
    fn detach(&mut self, entry: EntryId) -> Option<Placement> {
        let placement = self.nodes.remove(&entry)?;
        let key = names::collision_key(&placement.name);
        if let Some(dir) = self.dirs.get_mut(&placement.parent) {
            dir.numbered = OnceLock::new();
            if let Some(group) = dir.groups.get_mut(&key) {
                group.retain(|child| *child != entry);
                match group.len() {
                    0 => {
                        dir.groups.remove(&key);
                    }
                    1 => {
                        dir.collided.remove(&key);
                    }
                    _ => {}
                }
            }
            if dir.groups.is_empty() {
                self.dirs.remove(&placement.parent);
            }
        }
        Some(placement)
    }

    /// Puts `entry` (currently detached) at `placement`.
    fn attach(&mut self, entry: EntryId, placement: Placement) {
        let key = names::collision_key(&placement.name);
        let dir = self.dirs.entry(placement.parent).or_default();
        dir.numbered = OnceLock::new();
        match dir.groups.get_mut(&key) {
            None => {
                dir.groups.insert(key, vec![entry]);
            }
            Some(group) => {
                let nodes = &self.nodes;
                let since = |child: &EntryId| nodes.get(child).map(|p| &p.since);
                let slot = group.partition_point(|child| since(child) < Some(&placement.since));
                group.insert(slot, entry);
                if group.len() == 2 {
                    dir.collided.insert(key);
                }
            }
        }
        self.nodes.insert(entry, placement);
    }

    /// The greatest Lamport counter of all logged ops (skipped ones
    /// included), 0 for an empty log. A local writer stamps its next op with
    /// `lamport_max() + 1`.
    pub fn lamport_max(&self) -> u64 {
        // The log is sorted by (lamport, actor): the last op has the greatest.
        self.log.last().map_or(0, |logged| logged.op.id.lamport)
    }

    /// Number of entries (ROOT and TRASH not counted).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of logged ops, skipped ones included.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    /// The logged ops in order: what a replica must keep (or be able to
    /// rebuild) to fold the same tree.
    pub fn ops(&self) -> impl Iterator<Item = &MoveOp> + '_ {
        self.log.iter().map(|logged| &logged.op)
    }

    /// The logged ops that are currently skipped, in order, with the reason:
    /// for status and diagnostics (a long-lived skip is a rejected change).
    pub fn skipped(&self) -> impl Iterator<Item = (&MoveOp, &SkipReason)> + '_ {
        self.log.iter().filter_map(|logged| match &logged.effect {
            Logged::Skipped(reason) => Some((&logged.op, reason)),
            Logged::Moved { .. } => None,
        })
    }

    /// The current effect of the logged op `id`, or None if not logged.
    pub fn effect_of(&self, id: &OpId) -> Option<Effect> {
        let position = self.log.binary_search_by(|logged| logged.op.id.cmp(id)).ok()?;
        Some(match &self.log[position].effect {
            Logged::Moved { .. } => Effect::Moved,
            Logged::Skipped(reason) => Effect::Skipped(reason.clone()),
        })
    }

    /// True if `entry` is in the tree (ROOT and TRASH are not entries).
    pub fn contains(&self, entry: EntryId) -> bool {
        self.nodes.contains_key(&entry)
    }

    /// Every entry, in `EntryId` order (ROOT and TRASH excluded).
    pub fn entries(&self) -> impl Iterator<Item = EntryId> + '_ {
        self.nodes.keys().copied()
    }

    /// Parent, stored name and latest move of `entry`; None for ROOT, TRASH
    /// and unknown ids.
    pub fn placement(&self, entry: EntryId) -> Option<&Placement> {
        self.nodes.get(&entry)
    }

    /// The folder holding `entry`; None for ROOT, TRASH and unknown ids.
    pub fn parent_of(&self, entry: EntryId) -> Option<EntryId> {
        self.nodes.get(&entry).map(|placement| placement.parent)
    }

    /// The children of `dir` (ROOT, TRASH or an entry), ordered by collision
    /// key, then by the `OpId` of their latest move: the order in which
    /// colliding names are numbered. Empty for a file or an unknown id.
    pub fn children(&self, dir: EntryId) -> impl Iterator<Item = EntryId> + '_ {
        self.dirs.get(&dir).into_iter().flat_map(|dir| dir.groups.values().flatten().copied())
    }

    /// The ids from ROOT or TRASH (first element) down to `entry` (last).
    /// `Some(vec![ROOT])` for ROOT, `Some(vec![TRASH])` for TRASH, None for
    /// an unknown id.
    pub fn path_of(&self, entry: EntryId) -> Option<Vec<EntryId>> {
        if entry != EntryId::ROOT && entry != EntryId::TRASH && !self.contains(entry) {
            return None;
        }
        let mut path = vec![entry];
        let mut current = entry;
        while let Some(placement) = self.nodes.get(&current) {
            path.push(placement.parent);
            current = placement.parent;
        }
        path.reverse();
        Some(path)
    }

    /// True if `entry` is TRASH or below it (deleted, or inside a deleted
    /// folder). False for ROOT, live entries and unknown ids.
    pub fn is_in_trash(&self, entry: EntryId) -> bool {
        let mut current = entry;
        while let Some(placement) = self.nodes.get(&current) {
            current = placement.parent;
        }
        current == EntryId::TRASH
    }

    /// The name to show for `entry` and to write on disk: its stored name,
    /// or a numbered variant if a sibling with a smaller latest-move `OpId`
    /// has a colliding name (see the module documentation). None for ROOT,
    /// TRASH and unknown ids.
    pub fn display_name(&self, entry: EntryId) -> Option<String> {
        let placement = self.nodes.get(&entry)?;
        let dir = self.dirs.get(&placement.parent)?;
        let group = dir.groups.get(&names::collision_key(&placement.name))?;
        if group.first() == Some(&entry) {
            return Some(placement.name.clone());
        }
        self.numbered_names(dir).get(&entry).cloned()
    }

    /// The display names of all children of `dir`, in [`Tree::children`]
    /// order. Cheaper than calling [`Tree::display_name`] for each child.
    pub fn display_names(&self, dir: EntryId) -> Vec<(EntryId, String)> {
        let Some(index) = self.dirs.get(&dir) else { return Vec::new() };
        let numbered = self.numbered_names(index);
        self.children(dir)
            .map(|child| {
                let name = numbered.get(&child).cloned().unwrap_or_else(|| self.stored_name(child).to_owned());
                (child, name)
            })
            .collect()
    }

    /// The display names of the components from below ROOT or TRASH down to
    /// `entry`: `["Photos", "2024", "beach (2).jpg"]`. Ready for
    /// [`crate::names::safe_join`] onto the share directory (check
    /// [`Tree::is_in_trash`] first). Empty for ROOT and TRASH, None for an
    /// unknown id.
    pub fn display_path(&self, entry: EntryId) -> Option<Vec<String>> {
        let ids = self.path_of(entry)?;
        ids.iter().skip(1).map(|id| self.display_name(*id)).collect()
    }

    fn stored_name(&self, entry: EntryId) -> &str {
        self.nodes.get(&entry).map_or("", |placement| placement.name.as_str())
    }

    /// The numbered display names of the children of `dir` that lose a name
    /// collision (every child absent from the result keeps its stored name).
    /// Memoised in the folder until it changes.
    fn numbered_names<'a>(&self, dir: &'a Dir) -> &'a BTreeMap<EntryId, String> {
        dir.numbered.get_or_init(|| self.compute_numbered_names(dir))
    }

    fn compute_numbered_names(&self, dir: &Dir) -> BTreeMap<EntryId, String> {
        let mut numbered = BTreeMap::new();
        let mut handed_out = BTreeSet::new();
        for key in &dir.collided {
            let Some(group) = dir.groups.get(key) else { continue };
            let mut n = 1u64;
            for entry in group.iter().skip(1) {
                let name = self.stored_name(*entry);
                // Terminates: each number refused is a distinct name already
                // taken, and there are finitely many.
                loop {
                    n += 1;
                    let candidate = names::numbered_name(name, n);
                    let candidate_key = names::collision_key(&candidate);
                    if !dir.groups.contains_key(&candidate_key) && handed_out.insert(candidate_key) {
                        numbered.insert(*entry, candidate);
                        break;
                    }
                }
            }
        }
        numbered
    }

    /// Checks the invariants listed in the module documentation (except the
    /// fold equality, which tests check by rebuilding with
    /// [`Tree::from_ops`]). `O(n d log n)`: for tests and the simulator.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        for (position, pair) in self.log.windows(2).enumerate() {
            if pair[0].op.id >= pair[1].op.id {
                return Err(InvariantError::LogOrder { position: position + 1 });
            }
        }
        for (entry, placement) in &self.nodes {
            let mut current = *entry;
            let mut steps = 0usize;
            while let Some(up) = self.nodes.get(&current) {
                current = up.parent;
                steps += 1;
                if steps > self.nodes.len() {
                    return Err(InvariantError::Unreachable { entry: *entry });
                }
            }
            if current != EntryId::ROOT && current != EntryId::TRASH {
                return Err(InvariantError::Unreachable { entry: *entry });
            }
            let indexed = self
                .dirs
                .get(&placement.parent)
                .and_then(|dir| dir.groups.get(&names::collision_key(&placement.name)))
                .is_some_and(|group| group.contains(entry));
            if !indexed {
                return Err(InvariantError::Index { entry: *entry });
            }
        }
        let mut indexed = 0;
        for (dir_id, dir) in &self.dirs {
            for (key, group) in &dir.groups {
                indexed += group.len();
                let since = |child: &EntryId| self.nodes.get(child).map(|p| &p.since);
                let sorted = group.windows(2).all(|pair| since(&pair[0]) < since(&pair[1]));
                if group.is_empty() || !sorted || dir.collided.contains(key) != (group.len() > 1) {
                    return Err(InvariantError::Index { entry: group.first().copied().unwrap_or(*dir_id) });
                }
            }
            let mut seen = BTreeSet::new();
            for (_, name) in self.display_names(*dir_id) {
                if names::validate_name(&name).is_err() || !seen.insert(names::collision_key(&name)) {
                    return Err(InvariantError::DisplayName { dir: *dir_id, name });
                }
            }
        }
        if indexed != self.nodes.len() {
            return Err(InvariantError::Index { entry: EntryId::ROOT });
        }
        Ok(())
    }
}
