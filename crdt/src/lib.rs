//! Hearth's replicated documents: the shared-folder tree with its membership
//! and roles, and the bank view. Pure and deterministic (no IO, no clock):
//! merge rules, conflict detection and the validation of remote changes
//! (who may write what) live here so that the node and the simulator apply
//! exactly the same rules.
//!
//! - [`bank`]: the bank view, an owner-signed hash-chained log of one
//!   account's operations and balance, which only the owner may write.
//! - [`doc`]: the share document (Automerge), its signed changes and the
//!   authorisation of every remote change against the membership.
//! - [`folder`]: the shared folder read from a document (tree + file
//!   versions, conflict copies) and the local editor that writes to it.
//! - [`tree`]: the shared-folder tree as a replicated tree with a move
//!   operation (Kleppmann et al. 2021): an op log folded in a total order,
//!   undo/apply/redo for late ops, cycle-making moves skipped, deterministic
//!   display names for colliding siblings.
//! - [`retention`]: how long deleted files and old versions are kept.
//! - [`mutant`]: deliberately broken rules for the simulator (feature
//!   `mutants`, off unless a thread turns one on).
//! - [`names`]: which entry names are acceptable, safe joining of names onto
//!   the share directory, and the names Hearth makes up (numbered and
//!   conflict names).

pub mod bank;
pub mod doc;
pub mod folder;
pub mod mutant;
pub mod names;
pub mod retention;
pub mod tree;
