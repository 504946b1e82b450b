//! Hearth's replicated documents: the shared-folder tree with its membership
//! and roles, and the bank view. Pure and deterministic (no IO, no clock):
//! merge rules, conflict detection and the validation of remote changes
//! (who may write what) live here so that the node and the simulator apply
//! exactly the same rules.
//!
//! Empty until the shared-folder capability lands (issue 3): the foundation
//! only needs identities and pairing, which live in `hearth-protocol`.
