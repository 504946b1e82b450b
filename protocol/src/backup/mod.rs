//! Mutual encrypted backups: the sans-IO core (see `spec/backup.md`).
//!
//! Data flow: files -> FastCDC chunks ([`chunk`]) named by a keyed BLAKE3
//! hash -> zstd -> XChaCha20-Poly1305 -> packs in random order, padded to a
//! size bucket ([`pack`]) -> Reed-Solomon k-of-n shards, one per friend
//! ([`erasure`]). The [`catalog`] (snapshots, index, shard placement, audit
//! hashes) is sealed with the metadata key and replicated to every friend.
//! All keys derive from one root secret printed as the recovery key
//! ([`keys`]). Hosts decide uploads with [`hosting`]; owners audit with
//! [`audit`]; messages of `/hearth/backup/1` and `/2` are in [`wire`];
//! recovery shares are sealed to the friend holding them ([`sealed_share`]).
//!
//! Nothing here does IO or reads the clock: nonces, seeds and times are
//! arguments, so the node and tests drive the same code.

pub mod audit;
pub mod catalog;
pub mod chunk;
pub mod erasure;
pub mod hosting;
pub mod keys;
pub mod pack;
pub mod sealed_share;
pub mod wire;
