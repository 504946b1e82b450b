//! The owner's backup engine: friends, runs, status, snapshots, forget.
//!
//! A run walks the backed-up paths (skipping files whose size, mtime and
//! inode match the cache), cuts new content with FastCDC, seals chunks not
//! already in the index, closes 16 MiB packs, codes each into k-of-n shards
//! and uploads one shard per friend (the least loaded first). Chunking and
//! sealing run on a blocking thread (`scan.rs`) that hands finished packs to the async
//! uploader through a bounded channel, so reading and uploading overlap.
//! The catalog is saved after every pack (an interrupted run resends
//! nothing already placed) and, at the end, sealed and replicated to every
//! friend. The node's own state (identity, config, database) is in every
//! snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Result};
use hearth_protocol::backup::audit::block_hashes;
use hearth_protocol::backup::catalog::{Catalog, HostAddrs, PackRecord, ShardPlace, Snapshot, SnapshotStats};
use hearth_protocol::backup::chunk::ChunkId;
use hearth_protocol::backup::erasure::{self, ShardId};
use hearth_protocol::backup::keys::{passphrase_identity_seed, KdfParams, Keys, RootSecret, WrappedRoot};
use hearth_protocol::backup::pack::{Location, Pack, PackBuilder, PackId};
use hearth_protocol::backup::wire::{BackupRequest, BackupResponse, WRAPPED_ROOT};
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::rpc::Rpc;
use super::scan::{read_and_pack, ReadyPack};
use super::store::{self as bstore, FriendRecord};
use crate::home::Home;
use crate::now_unix;
use crate::store::Store;

/// Files of the home that make up the node's state.
pub const STATE_FILES: &[&str] = &["identity.key", "config.toml", "hearth.redb"];
/// Largest catalog accepted from a friend.
pub const MAX_CATALOG: u64 = 1 << 30;
/// Name of the catalog object on friends.
pub const CATALOG_OBJECT: &str = "catalog";

/// How many snapshots `forget` keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeepPolicy {
    /// The last N.
    pub keep_last: Option<usize>,
    /// The last of each of the last N days.
    pub keep_daily: Option<usize>,
    /// Weeks.
    pub keep_weekly: Option<usize>,
    /// Months (30 days).
    pub keep_monthly: Option<usize>,
}

/// Progress of the current run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// `idle`, `scanning`, `backing up`, `replicating`, `restoring`.
    pub phase: String,
    /// Files to look at.
    pub files_total: u64,
    /// Files done.
    pub files_done: u64,
    /// Bytes to look at.
    pub bytes_total: u64,
    /// Bytes done.
    pub bytes_done: u64,
    /// Shard bytes placed on friends.
    pub uploaded: u64,
    /// Shard bytes actually sent (less than `uploaded` when a friend held
    /// a shard, or its beginning, already: an interrupted run resumed).
    #[serde(default)]
    pub sent: u64,
}

/// What a run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// The snapshot.
    pub snapshot: String,
    /// Figures.
    pub stats: SnapshotStats,
    /// Coding.
    pub k: usize,
    /// Coding.
    pub n: usize,
    /// Friends that got the catalog.
    pub catalog_on: Vec<String>,
    /// Packs uploaded.
    pub packs: usize,
    /// Shard bytes sent to friends in this run.
    #[serde(default)]
    pub sent_bytes: u64,
}

/// The owner's engine.
pub struct Engine {
    pub(crate) store: Arc<Store>,
    pub(crate) home: Home,
    pub(crate) rpc: Rpc,
    pub(crate) config: crate::config::Config,
    /// One run, audit, repair or forget at a time.
    pub(crate) busy: tokio::sync::Mutex<()>,
    pub(crate) progress: Arc<Mutex<Progress>>,
}

/// Resolves a contact by name or peer id.
pub fn contact_peer(store: &Store, name: &str) -> Result<(PeerId, String)> {
    for (peer, c) in store.contacts()? {
        let id = PeerId::from_bytes(&peer).map_err(|e| anyhow!("bad stored peer id: {e}"))?;
        if c.name == name || id.to_string() == name {
            return Ok((id, c.name));
        }
    }
    bail!("no contact named {name:?}; see `hearth contacts`")
}

fn peer_name(store: &Store, peer: &[u8]) -> String {
    match store.contact(peer) {
        Ok(Some(c)) => c.name,
        _ => PeerId::from_bytes(peer).map(|p| p.to_string()).unwrap_or_else(|_| hex::encode(peer)),
    }
}

/// The restore identity of a root secret.
pub fn restore_keypair(root: &RootSecret) -> Result<libp2p::identity::Keypair> {
    libp2p::identity::Keypair::ed25519_from_bytes(root.keys().restore_identity)
        .map_err(|e| anyhow!("cannot derive the restore identity: {e}"))
}

impl Engine {
    /// An engine on `store`, sending through `rpc`.
    pub fn new(store: Arc<Store>, home: Home, rpc: Rpc, config: crate::config::Config) -> Self {
        Self { store, home, rpc, config, busy: Default::default(), progress: Default::default() }
    }

    pub(super) fn set_phase(&self, phase: &str) {
        if let Ok(mut p) = self.progress.lock() {
            *p = Progress { phase: phase.into(), ..Default::default() };
        }
    }

    /// Asks a contact to host this node's shards.
    pub async fn friends_add(&self, contact: &str, offer: u64) -> Result<serde_json::Value> {
        let (peer, name) = contact_peer(&self.store, contact)?;
        let root = bstore::root(&self.store)?;
        let restore_peer = restore_keypair(&root)?.public().to_peer_id().to_bytes();
        bstore::update_friend(&self.store, &peer.to_bytes(), |f| {
            Some(f.map(|f| FriendRecord { offer, ..f }).unwrap_or(FriendRecord {
                offer,
                state: "asked".into(),
                quota: 0,
                stored: 0,
                last_contact: None,
                last_audit: None,
                repaired: None,
            }))
        })?;
        let state = self.refresh_friend(peer, offer, restore_peer).await;
        info!(%peer, "asked {name} to host our backup: {state:?}");
        let state = state?;
        Ok(serde_json::json!({ "friend": name, "state": state }))
    }

    /// Sends the hosting request again and records the answer.
    async fn refresh_friend(&self, peer: PeerId, offer: u64, restore_peer: Vec<u8>) -> Result<String> {
        let passphrase_peer = bstore::wrapped(&self.store)?.map(|(_, p)| serde_bytes::ByteBuf::from(p));
        let request = BackupRequest::Hosting { offer, restore_peer, passphrase_peer };
        let answer = self.rpc.call(peer, vec![], request).await?;
        let (state, quota) = match answer {
            BackupResponse::Hosting { state, quota } => (state, quota),
            BackupResponse::Refused { message, .. } => bail!("refused: {message}"),
            other => bail!("unexpected answer {other:?}"),
        };
        let now = now_unix();
        let mapped = match state.as_str() {
            "accepted" => "accepted",
            "declined" => "declined",
            _ => "asked",
        };
        bstore::update_friend(&self.store, &peer.to_bytes(), |f| {
            f.map(|mut f| {
                f.state = mapped.into();
                f.quota = quota;
                f.last_contact = Some(now);
                f
            })
        })?;
        Ok(mapped.into())
    }

    /// The host person's answer to a contact's request.
    pub async fn hosting_answer(&self, contact: &str, accept: bool, quota: u64) -> Result<serde_json::Value> {
        use hearth_protocol::backup::hosting::Agreement;
        let (peer, name) = contact_peer(&self.store, contact)?;
        let updated = bstore::update_hosting(&self.store, &peer.to_bytes(), |r| {
            r.map(|mut r| {
                r.agreement = if accept { Agreement::Accepted { quota } } else { Agreement::Declined };
                r
            })
        })?;
        if updated.is_none() {
            bail!("{name} has not asked you to host their backup (they run `hearth backup friends add`)");
        }
        info!(%peer, accept, quota, "answered {name}'s hosting request");
        let told = self.rpc.call(peer, vec![], BackupRequest::HostingAnswer { accepted: accept, quota }).await;
        if let Err(e) = &told {
            warn!(%peer, "cannot tell {name} our answer now ({e}); they learn it at their next run");
        }
        Ok(serde_json::json!({
            "owner": name,
            "state": if accept { "accepted" } else { "declined" },
            "quota": quota,
            "told": told.is_ok(),
        }))
    }

    /// Friends and what they hold.
    pub async fn friends(&self) -> Result<serde_json::Value> {
        let catalog = bstore::catalog(&self.store)?;
        let online = self.rpc.online().await;
        let hostings: BTreeMap<Vec<u8>, bstore::HostingRecord> = bstore::hostings(&self.store)?.into_iter().collect();
        let mut out = Vec::new();
        for (peer, f) in bstore::friends(&self.store)? {
            let (shards, bytes) = held_on(&catalog, &peer);
            let id = PeerId::from_bytes(&peer).ok();
            out.push(serde_json::json!({
                "name": peer_name(&self.store, &peer),
                "peer_id": id.map(|p| p.to_string()),
                "state": f.state,
                "online": id.is_some_and(|p| online.contains(&p)),
                "quota": f.quota,
                "offered": f.offer,
                "holds_for_me_shards": shards,
                "holds_for_me_bytes": bytes,
                "i_hold_for_them_bytes": hostings.get(&peer).map(|h| h.used).unwrap_or(0),
                "last_contact": f.last_contact,
                "last_audit": f.last_audit,
                "repaired": f.repaired,
            }));
        }
        Ok(serde_json::Value::Array(out))
    }

    /// What this node hosts, for whom.
    pub fn hosting(&self) -> Result<serde_json::Value> {
        let mut out = Vec::new();
        for (owner, h) in bstore::hostings(&self.store)? {
            out.push(serde_json::json!({
                "owner": peer_name(&self.store, &owner),
                "peer_id": PeerId::from_bytes(&owner).map(|p| p.to_string()).ok(),
                "state": h.agreement.name(),
                "quota": h.agreement.quota(),
                "offer": match h.agreement { hearth_protocol::backup::hosting::Agreement::Pending { offer } => Some(offer), _ => None },
                "used": h.used,
                "since": h.since,
                "last_contact": h.last_contact,
            }));
        }
        Ok(serde_json::Value::Array(out))
    }

    /// Adds a path to back up.
    pub fn add_path(&self, path: &str) -> Result<serde_json::Value> {
        let p = Path::new(path);
        if !p.is_absolute() {
            bail!("give an absolute path ({path:?} is relative)");
        }
        if !p.exists() {
            bail!("{path} does not exist");
        }
        let mut paths = bstore::paths(&self.store)?;
        if !paths.iter().any(|x| x == path) {
            paths.push(path.to_owned());
            paths.sort();
        }
        bstore::set_paths(&self.store, &paths)?;
        Ok(serde_json::json!({ "paths": paths }))
    }

    /// Removes a path.
    pub fn remove_path(&self, path: &str) -> Result<serde_json::Value> {
        let mut paths = bstore::paths(&self.store)?;
        let before = paths.len();
        paths.retain(|x| x != path);
        if paths.len() == before {
            bail!("{path} is not backed up; see `hearth backup status`");
        }
        bstore::set_paths(&self.store, &paths)?;
        Ok(serde_json::json!({ "paths": paths }))
    }

    /// Accepted friends that are connected now, least loaded first.
    async fn usable_friends(&self) -> Result<Vec<(PeerId, FriendRecord)>> {
        let online = self.rpc.online().await;
        let root = bstore::root(&self.store)?;
        let restore_peer = restore_keypair(&root)?.public().to_peer_id().to_bytes();
        let mut out = Vec::new();
        for (peer, f) in bstore::friends(&self.store)? {
            let Ok(id) = PeerId::from_bytes(&peer) else { continue };
            if !online.contains(&id) {
                continue;
            }
            // A friend that had not answered may have accepted meanwhile.
            let f = if f.state == "asked" {
                let _ = self.refresh_friend(id, f.offer, restore_peer.clone()).await;
                bstore::friends(&self.store)?.into_iter().find(|(p, _)| *p == peer).map(|x| x.1).unwrap_or(f)
            } else {
                f
            };
            if f.state == "accepted" {
                out.push((id, f));
            }
        }
        out.sort_by_key(|(_, f)| f.stored);
        Ok(out)
    }

    /// One backup run.
    pub async fn run(&self) -> Result<RunReport> {
        let _busy = self.busy.lock().await;
        let result = self.run_inner().await;
        self.set_phase("idle");
        if let Err(e) = &result {
            warn!("backup run failed: {e:#}");
        }
        result
    }

    async fn run_inner(&self) -> Result<RunReport> {
        self.set_phase("scanning");
        let friends = self.usable_friends().await?;
        if friends.is_empty() {
            let any = bstore::friends(&self.store)?.iter().any(|(_, f)| f.state == "accepted");
            if any {
                bail!("none of the friends hosting your backup is online now; try again later");
            }
            bail!("no friend hosts your backup yet: `hearth backup friends add CONTACT`, then they run `hearth backup hosting accept`");
        }
        let (dk, dn) = erasure::default_coding(friends.len());
        let n = self.config.backup_n.unwrap_or(dn).clamp(1, friends.len());
        let k = self.config.backup_k.unwrap_or(dk).clamp(1, n);
        let root = bstore::root(&self.store)?;
        let keys = root.keys();
        let mut catalog = bstore::catalog(&self.store)?;
        let paths = bstore::paths(&self.store)?;
        info!(k, n, friends = friends.len(), paths = paths.len(), "backup run starts");

        let (tx, mut rx) = tokio::sync::mpsc::channel::<ReadyPack>(2);
        let known: BTreeSet<ChunkId> = catalog.index.keys().copied().collect();
        let store = self.store.clone();
        let home = self.home.clone();
        let progress = self.progress.clone();
        let paths_for_scan = paths.clone();
        let keys_for_scan = keys.clone();
        let scan = tokio::task::spawn_blocking(move || {
            read_and_pack(&store, &home, &progress, &paths_for_scan, &keys_for_scan, known, (k, n), &tx)
        });

        let mut packs = 0usize;
        let mut loads: BTreeMap<PeerId, u64> = friends.iter().map(|(p, f)| (*p, f.stored)).collect();
        let mut upload_error = None;
        // Up to UPLOADS_IN_FLIGHT packs upload at once: each friend then has
        // several pieces in flight instead of waiting for every answer.
        let mut inflight = futures::stream::FuturesUnordered::new();
        let mut input_open = true;
        loop {
            use futures::StreamExt;
            tokio::select! {
                ready = rx.recv(), if input_open && inflight.len() < UPLOADS_IN_FLIGHT => match ready {
                    None => input_open = false,
                    Some(_) if upload_error.is_some() => {} // drain so the scanner finishes
                    Some(ready) => {
                        let targets = assign(&ready, &mut loads, n);
                        inflight.push(async move {
                            let record = self.upload_pack(&ready, &targets, k, n).await;
                            (ready, record)
                        });
                    }
                },
                Some((ready, record)) = inflight.next(), if !inflight.is_empty() => match record {
                    Ok(record) => {
                        for (id, loc) in &ready.pack.entries {
                            catalog.index.insert(*id, *loc);
                        }
                        catalog.packs.insert(ready.pack.id, record);
                        packs += 1;
                        // Saved after every pack: an interrupted run resends nothing placed.
                        bstore::set_catalog(&self.store, &catalog)?;
                    }
                    Err(e) => upload_error = Some(e),
                },
                else => break,
            }
        }
        let scanned = scan.await.map_err(|e| anyhow!("the backup reader failed: {e}"))?;
        if let Some(e) = upload_error {
            return Err(e.context("uploading shards failed; what was placed is kept, run again to finish"));
        }
        let scanned = scanned?;
        let now = now_unix();
        let id = hex::encode(rand::random::<[u8; 4]>());
        catalog.snapshots.push(Snapshot {
            id: id.clone(),
            time: now,
            paths,
            files: scanned.files,
            state: scanned.state,
            stats: scanned.stats.clone(),
        });
        catalog.generation += 1;
        catalog.hosts = self.host_addrs()?;
        bstore::set_catalog(&self.store, &catalog)?;
        bstore::set_file_cache(&self.store, &scanned.cache)?;
        for (peer, bytes) in &loads {
            bstore::update_friend(&self.store, &peer.to_bytes(), |f| {
                f.map(|mut f| {
                    f.stored = *bytes;
                    f.last_contact = Some(now);
                    f
                })
            })?;
        }
        let catalog_on = self.replicate(&catalog, &keys).await;
        info!(snapshot = %id, files = scanned.stats.files, new_bytes = scanned.stats.new_bytes, packs, "backup run done");
        let sent_bytes = self.progress.lock().map(|p| p.sent).unwrap_or(0);
        Ok(RunReport { snapshot: id, stats: scanned.stats, k, n, catalog_on, packs, sent_bytes })
    }

    /// Uploads a pack's shards to the `n` least-loaded friends.
    async fn place(
        &self,
        ready: &ReadyPack,
        loads: &mut BTreeMap<PeerId, u64>,
        k: usize,
        n: usize,
    ) -> Result<PackRecord> {
        let targets = assign(ready, loads, n);
        self.upload_pack(ready, &targets, k, n).await
    }

    /// Uploads shard `i` to `targets[i]`, all at once.
    async fn upload_pack(&self, ready: &ReadyPack, targets: &[PeerId], k: usize, n: usize) -> Result<PackRecord> {
        let uploads = ready.shards.iter().zip(targets).map(|(shard, peer)| {
            let id = ShardId::of(shard);
            async move { self.rpc.put_shard(*peer, id, shard).await.map(|sent| (*peer, id, shard.len() as u64, sent)) }
        });
        let results = futures::future::join_all(uploads).await;
        let mut shards = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            let (peer, id, len, sent) = r?;
            if let Ok(mut p) = self.progress.lock() {
                p.uploaded += len;
                p.sent += sent;
            }
            shards.push(ShardPlace {
                index: i as u8,
                host: peer.to_bytes(),
                id,
                len,
                blocks: block_hashes(&ready.shards[i]),
            });
        }
        Ok(PackRecord { len: ready.pack.bytes.len() as u64, k: k as u8, n: n as u8, shards })
    }

    fn host_addrs(&self) -> Result<Vec<HostAddrs>> {
        let mut out = Vec::new();
        for (peer, _) in bstore::friends(&self.store)? {
            let addrs = self.store.contact(&peer)?.map(|c| c.addrs).unwrap_or_default();
            out.push(HostAddrs { peer, addrs });
        }
        Ok(out)
    }

    /// Sets the passphrase: the root wrapped with Argon2id is stored with
    /// every friend, readable by the passphrase identity only.
    pub async fn set_passphrase(&self, passphrase: &str, params: KdfParams) -> Result<serde_json::Value> {
        if passphrase.chars().count() < 8 {
            bail!("choose a passphrase of at least 8 characters");
        }
        let _busy = self.busy.lock().await;
        let root = bstore::root(&self.store)?;
        let (pass, pass2) = (passphrase.to_owned(), passphrase.to_owned());
        let wrapped = tokio::task::spawn_blocking(move || {
            WrappedRoot::wrap(&root, &pass, params, rand::random(), rand::random())
        })
        .await
        .map_err(|e| anyhow!("{e}"))??;
        let seed = tokio::task::spawn_blocking(move || passphrase_identity_seed(&pass2, params))
            .await
            .map_err(|e| anyhow!("{e}"))??;
        let peer = libp2p::identity::Keypair::ed25519_from_bytes(seed)
            .map_err(|e| anyhow!("{e}"))?
            .public()
            .to_peer_id()
            .to_bytes();
        bstore::set_wrapped(&self.store, &wrapped, &peer)?;
        let root = bstore::root(&self.store)?;
        let restore_peer = restore_keypair(&root)?.public().to_peer_id().to_bytes();
        let online = self.rpc.online().await;
        let mut holders = Vec::new();
        for (p, f) in bstore::friends(&self.store)? {
            let Ok(id) = PeerId::from_bytes(&p) else { continue };
            if f.state != "accepted" || !online.contains(&id) {
                continue;
            }
            if let Err(e) = self.refresh_friend(id, f.offer, restore_peer.clone()).await {
                warn!(%id, "cannot register the passphrase identity: {e:#}");
                continue;
            }
            match self.put_wrapped(id, &wrapped).await {
                Ok(()) => holders.push(peer_name(&self.store, &p)),
                Err(e) => warn!(%id, "cannot store the wrapped root: {e:#}"),
            }
        }
        Ok(serde_json::json!({ "stored_with": holders }))
    }

    /// Splits the root `threshold`-of-`contacts.len()` and stores one share
    /// with each friend (they must host the backup and be online).
    pub async fn split_key(&self, threshold: u8, contacts: &[String]) -> Result<serde_json::Value> {
        if contacts.len() > 255 {
            bail!("at most 255 shares");
        }
        let friends = bstore::friends(&self.store)?;
        let online = self.rpc.online().await;
        let mut peers = Vec::new();
        for c in contacts {
            let (peer, name) = contact_peer(&self.store, c)?;
            if !friends.iter().any(|(p, f)| *p == peer.to_bytes() && f.state == "accepted") {
                bail!("{name} does not host your backup: only friends that accepted can keep a recovery share");
            }
            if !online.contains(&peer) {
                bail!("{name} is offline; every friend of the split must be online to receive a share");
            }
            peers.push((peer, name));
        }
        let root = bstore::root(&self.store)?;
        let shares = super::social::split(&root, threshold, contacts.len() as u8)?;
        let mut given = Vec::new();
        for ((peer, name), text) in peers.iter().zip(shares) {
            // Sealed to the friend's own key: its host's disk alone reveals nothing.
            let sealed = hearth_protocol::backup::sealed_share::seal(
                &super::social::ed25519_of(peer)?,
                text.as_bytes(),
                rand::random(),
                rand::random(),
            )
            .map_err(|e| anyhow!("cannot seal {name}'s share: {e}"))?;
            self.rpc
                .upload(*peer, &sealed, |offset, total, data| BackupRequest::MetaPut {
                    name: super::social::SHARE_OBJECT.into(),
                    offset,
                    total,
                    data,
                })
                .await
                .map_err(|e| anyhow!("giving {name} a share failed ({e:#}); split again"))?;
            given.push(name.clone());
        }
        info!(threshold, shares = given.len(), "recovery key split among friends");
        Ok(serde_json::json!({ "threshold": threshold, "given_to": given }))
    }

    /// The recovery share `owner` gave this node.
    pub fn hosted_share(&self, owner: &str) -> Result<serde_json::Value> {
        let (peer, name) = contact_peer(&self.store, owner)?;
        let path = self
            .home
            .path("blobs")
            .join("hosted")
            .join(hex::encode(peer.to_bytes()))
            .join("meta")
            .join(super::social::SHARE_OBJECT);
        let bytes = std::fs::read(&path).map_err(|_| anyhow!("{name} gave you no recovery share"))?;
        let text = if hearth_protocol::backup::sealed_share::is_sealed(&bytes) {
            let key = self.home.identity()?;
            let ed = key.try_into_ed25519().map_err(|_| anyhow!("this node's identity is not an ed25519 key"))?;
            let seed: [u8; 32] =
                ed.secret().as_ref().try_into().map_err(|_| anyhow!("this node's identity key is malformed"))?;
            hearth_protocol::backup::sealed_share::open(&seed, &ed.public().to_bytes(), &bytes)
                .map_err(|e| anyhow!("{name}'s recovery share: {e}"))?
        } else {
            bytes // an older share, stored in clear
        };
        let text = String::from_utf8(text).map_err(|_| anyhow!("{name}'s recovery share is not text"))?;
        Ok(serde_json::json!({ "owner": name, "share": text }))
    }

    async fn put_wrapped(&self, peer: PeerId, wrapped: &WrappedRoot) -> Result<()> {
        let bytes = hearth_protocol::frame::to_cbor(wrapped).map_err(|e| anyhow!("{e}"))?;
        self.rpc
            .upload(peer, &bytes, |offset, total, data| BackupRequest::MetaPut {
                name: WRAPPED_ROOT.into(),
                offset,
                total,
                data,
            })
            .await
    }

    /// Seals the catalog and sends it to every accepted friend online;
    /// returns the names of those that took it.
    pub(crate) async fn replicate(&self, catalog: &Catalog, keys: &Keys) -> Vec<String> {
        if let Ok(mut p) = self.progress.lock() {
            p.phase = "replicating".into();
        }
        let sealed = catalog.seal(keys, rand::random());
        let online = self.rpc.online().await;
        let mut took = Vec::new();
        for (peer, f) in bstore::friends(&self.store).unwrap_or_default() {
            let Ok(id) = PeerId::from_bytes(&peer) else { continue };
            if f.state != "accepted" || !online.contains(&id) {
                continue;
            }
            let name = peer_name(&self.store, &peer);
            let r = self
                .rpc
                .upload(id, &sealed, |offset, total, data| BackupRequest::MetaPut {
                    name: CATALOG_OBJECT.into(),
                    offset,
                    total,
                    data,
                })
                .await;
            if let Ok(Some((wrapped, _))) = bstore::wrapped(&self.store) {
                if let Err(e) = self.put_wrapped(id, &wrapped).await {
                    warn!(%id, "cannot store the wrapped root with {name}: {e:#}");
                }
            }
            match r {
                Ok(()) => took.push(name),
                Err(e) => warn!(%id, "cannot replicate the backup catalog to {name}: {e:#}"),
            }
        }
        took
    }

    /// Status.
    pub async fn status(&self) -> Result<serde_json::Value> {
        let catalog = bstore::catalog(&self.store)?;
        let online = self.rpc.online().await;
        let paths = bstore::paths(&self.store)?;
        let friends = bstore::friends(&self.store)?;
        let mut per_friend = Vec::new();
        for (peer, f) in &friends {
            let (shards, bytes) = held_on(&catalog, peer);
            per_friend.push(serde_json::json!({
                "name": peer_name(&self.store, peer),
                "state": f.state,
                "online": PeerId::from_bytes(peer).is_ok_and(|p| online.contains(&p)),
                "shards": shards,
                "bytes": bytes,
                "last_audit": f.last_audit,
                "repaired": f.repaired,
            }));
        }
        let (restorable, reachable, hosts, k) = restorable(&catalog, &online);
        // With no snapshot there is nothing to restore, whoever is online.
        let restorable = restorable && !catalog.snapshots.is_empty();
        let last = catalog.latest().map(|s| {
            serde_json::json!({
                "id": s.id,
                "time": s.time,
                "time_rfc3339": crate::views::rfc3339(s.time),
                "files": s.stats.files,
                "bytes": s.stats.bytes,
                "new_bytes": s.stats.new_bytes,
                "stored_bytes": s.stats.stored_bytes,
                "dedup_ratio": dedup_ratio(&s.stats),
            })
        });
        let line = if catalog.snapshots.is_empty() {
            "restorable now: no (no backup yet)".to_string()
        } else {
            format!(
                "restorable now: {} ({reachable} of {hosts} friends reachable, {k} needed)",
                if restorable { "yes" } else { "no" }
            )
        };
        let progress = self.progress.lock().map(|p| p.clone()).unwrap_or_default();
        Ok(serde_json::json!({
            "paths": paths,
            "last_snapshot": last,
            "snapshots": catalog.snapshots.len(),
            "friends": per_friend,
            "restorable": restorable,
            "reachable": reachable,
            "hosts": hosts,
            "k": k,
            "restorable_line": line,
            "progress": progress,
        }))
    }

    /// Snapshots.
    pub fn snapshots(&self) -> Result<serde_json::Value> {
        let catalog = bstore::catalog(&self.store)?;
        Ok(serde_json::Value::Array(
            catalog
                .snapshots
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "id": s.id,
                        "time": s.time,
                        "time_rfc3339": crate::views::rfc3339(s.time),
                        "paths": s.paths,
                        "files": s.stats.files,
                        "bytes": s.stats.bytes,
                        "new_bytes": s.stats.new_bytes,
                        "dedup_ratio": dedup_ratio(&s.stats),
                    })
                })
                .collect(),
        ))
    }

    /// The recovery key.
    pub fn recovery_key(&self) -> Result<serde_json::Value> {
        let root = bstore::root(&self.store)?;
        Ok(serde_json::json!({ "recovery_key": root.recovery_key() }))
    }

    /// Forgets snapshots by policy, then deletes packs nothing references
    /// from the friends.
    pub async fn forget(&self, policy: &KeepPolicy) -> Result<serde_json::Value> {
        let _busy = self.busy.lock().await;
        let mut catalog = bstore::catalog(&self.store)?;
        let keep = keep_set(&catalog.snapshots, policy);
        let before = catalog.snapshots.len();
        catalog.snapshots.retain(|s| keep.contains(&s.id));
        let removed = before - catalog.snapshots.len();
        let (repacked, mut dead) = match self.repack(&mut catalog).await {
            Ok(r) => r,
            Err(e) => {
                warn!("repacking partly used packs failed, only unused packs are pruned: {e:#}");
                (0, Vec::new())
            }
        };
        dead.extend(catalog.prune());
        let mut by_host: BTreeMap<Vec<u8>, Vec<ShardId>> = BTreeMap::new();
        for (_, rec) in &dead {
            for s in &rec.shards {
                by_host.entry(s.host.clone()).or_default().push(s.id);
            }
        }
        // Recorded before the catalog forgets them: a host away now, or a
        // crash before its answer, gets the delete when it is back.
        for (host, shards) in &by_host {
            bstore::add_pending_deletes(&self.store, host, shards)?;
        }
        catalog.generation += 1;
        bstore::set_catalog(&self.store, &catalog)?;
        let online = self.rpc.online().await;
        let (freed, pending) = self.send_pending_deletes(&online).await?;
        let keys = bstore::root(&self.store)?.keys();
        self.replicate(&catalog, &keys).await;
        info!(removed, packs = dead.len(), freed, "backup forget and prune done");
        Ok(serde_json::json!({
            "repacked_packs": repacked,
            "removed_snapshots": removed,
            "kept_snapshots": catalog.snapshots.len(),
            "pruned_packs": dead.len(),
            "freed_bytes": freed,
            "friends_unreachable": pending,
        }))
    }
}

impl Engine {
    /// Sends the deletes still pending (see `forget`) to those of their
    /// hosts that are online; returns the bytes freed and the names of the
    /// hosts that still have some pending.
    async fn send_pending_deletes(&self, online: &BTreeSet<PeerId>) -> Result<(u64, Vec<String>)> {
        let mut freed = 0u64;
        let mut still = Vec::new();
        // Packs are derived from content: a later run may have placed a
        // pruned shard on that friend again, which must then stay there. A
        // shard placed on another friend (a repair moved it) still goes.
        let catalog = bstore::catalog(&self.store)?;
        let live: BTreeSet<(&[u8], ShardId)> =
            catalog.packs.values().flat_map(|r| r.shards.iter().map(|s| (s.host.as_slice(), s.id))).collect();
        for (host, pending) in bstore::pending_deletes(&self.store)? {
            let Ok(peer) = PeerId::from_bytes(&host) else { continue };
            let (placed, shards): (Vec<ShardId>, Vec<ShardId>) =
                pending.into_iter().partition(|s| live.contains(&(host.as_slice(), *s)));
            bstore::clear_pending_deletes(&self.store, &host, &placed)?;
            if shards.is_empty() {
                continue;
            }
            if !online.contains(&peer) {
                still.push(peer_name(&self.store, &host));
                continue;
            }
            match self.rpc.call(peer, vec![], BackupRequest::Delete { shards: shards.clone() }).await {
                Ok(BackupResponse::Deleted { freed: f, count }) => {
                    freed += f;
                    bstore::clear_pending_deletes(&self.store, &host, &shards)?;
                    bstore::update_friend(&self.store, &host, |r| {
                        r.map(|mut r| {
                            r.stored = r.stored.saturating_sub(f);
                            r
                        })
                    })?;
                    info!(%peer, count, freed = f, "pruned shards deleted from {}", peer_name(&self.store, &host));
                }
                other => {
                    warn!(%peer, "cannot delete pruned shards now, kept for later: {other:?}");
                    still.push(peer_name(&self.store, &host));
                }
            }
        }
        Ok((freed, still))
    }

    /// Deletes, from the friends that came back, the shards `forget` pruned
    /// while they were away. Skipped while a run, audit or forget is busy
    /// (the next call does it). Returns the bytes freed.
    pub async fn retry_pending_deletes(&self) -> Result<u64> {
        let Ok(_busy) = self.busy.try_lock() else { return Ok(0) };
        let pending = bstore::pending_deletes(&self.store)?;
        if pending.is_empty() {
            return Ok(0);
        }
        let online = self.rpc.online().await;
        if !pending.iter().any(|(h, _)| PeerId::from_bytes(h).is_ok_and(|p| online.contains(&p))) {
            return Ok(0);
        }
        Ok(self.send_pending_deletes(&online).await?.0)
    }
}

impl Engine {
    /// Packs that hold both live and dead chunks are rebuilt with their live
    /// chunks only (the sealed chunks are copied as they are: a sealed
    /// chunk does not depend on its position), placed like new packs, and
    /// the old packs returned for deletion. Needs the friends of a run.
    async fn repack(&self, catalog: &mut Catalog) -> Result<(usize, Vec<(PackId, PackRecord)>)> {
        let live = catalog.referenced();
        let mut by_pack: BTreeMap<PackId, (Vec<(ChunkId, Location)>, bool)> = BTreeMap::new();
        for (id, loc) in &catalog.index {
            let e = by_pack.entry(loc.pack).or_default();
            if live.contains(id) {
                e.0.push((*id, *loc));
            } else {
                e.1 = true;
            }
        }
        let mixed: Vec<(PackId, Vec<(ChunkId, Location)>)> =
            by_pack.into_iter().filter(|(_, (l, dead))| *dead && !l.is_empty()).map(|(p, (l, _))| (p, l)).collect();
        if mixed.is_empty() {
            return Ok((0, Vec::new()));
        }
        let friends = self.usable_friends().await?;
        if friends.is_empty() {
            bail!("no friend online to place repacked chunks");
        }
        let (dk, dn) = erasure::default_coding(friends.len());
        let n = self.config.backup_n.unwrap_or(dn).clamp(1, friends.len());
        let k = self.config.backup_k.unwrap_or(dk).clamp(1, n);
        let mut loads: BTreeMap<PeerId, u64> = friends.iter().map(|(p, f)| (*p, f.stored)).collect();
        let mut builder = PackBuilder::default();
        let mut old = Vec::new();
        let mut placed = Vec::new();
        let mut problems = Vec::new();
        for (pack, chunks) in &mixed {
            let Some(record) = catalog.packs.get(pack).cloned() else { continue };
            let bytes =
                super::restore::fetch_pack(&self.rpc, catalog, pack, &record, &BTreeSet::new(), &mut problems).await?;
            for (id, loc) in chunks {
                let sealed = bytes
                    .get(loc.offset as usize..loc.offset as usize + loc.len as usize)
                    .ok_or_else(|| anyhow!("chunk {} lies outside its pack", id.hex()))?;
                builder.add(*id, sealed.to_vec());
            }
            old.push((*pack, record));
            if builder.full() {
                placed.push(self.place_built(std::mem::take(&mut builder), &mut loads, k, n).await?);
            }
        }
        if !builder.is_empty() {
            placed.push(self.place_built(builder, &mut loads, k, n).await?);
        }
        let gone: BTreeSet<PackId> = old.iter().map(|(p, _)| *p).collect();
        catalog.index.retain(|_, l| !gone.contains(&l.pack));
        for (pack, record) in placed {
            for (id, loc) in &pack.entries {
                catalog.index.insert(*id, *loc);
            }
            catalog.packs.insert(pack.id, record);
        }
        for p in &gone {
            catalog.packs.remove(p);
        }
        for (peer, bytes) in &loads {
            bstore::update_friend(&self.store, &peer.to_bytes(), |f| {
                f.map(|mut f| {
                    f.stored = *bytes;
                    f
                })
            })?;
        }
        info!(packs = old.len(), "repacked the live chunks of partly used packs");
        Ok((old.len(), old))
    }
}

impl Engine {
    async fn place_built(
        &self,
        builder: PackBuilder,
        loads: &mut BTreeMap<PeerId, u64>,
        k: usize,
        n: usize,
    ) -> Result<(Pack, PackRecord)> {
        let pack = builder.finish(rand::random());
        let shards = erasure::encode(&pack.id, &pack.bytes, k, n)?;
        let ready = ReadyPack { pack, shards: shards.into_iter().map(bytes::Bytes::from).collect() };
        let record = self.place(&ready, loads, k, n).await?;
        Ok((ready.pack, record))
    }
}

/// Packs uploading at once during a run.
const UPLOADS_IN_FLIGHT: usize = 3;

/// The `n` least-loaded friends for a pack's shards (shard `i` to the
/// `i`-th), counted as loaded with them from now on.
fn assign(ready: &ReadyPack, loads: &mut BTreeMap<PeerId, u64>, n: usize) -> Vec<PeerId> {
    let mut order: Vec<(PeerId, u64)> = loads.iter().map(|(p, l)| (*p, *l)).collect();
    order.sort_by_key(|(_, l)| *l);
    let targets: Vec<PeerId> = order.iter().take(n).map(|(p, _)| *p).collect();
    for (peer, shard) in targets.iter().zip(&ready.shards) {
        *loads.entry(*peer).or_default() += shard.len() as u64;
    }
    targets
}

fn held_on(catalog: &Catalog, peer: &[u8]) -> (u64, u64) {
    let mut shards = 0;
    let mut bytes = 0;
    for rec in catalog.packs.values() {
        for s in rec.shards.iter().filter(|s| s.host == peer) {
            shards += 1;
            bytes += s.len;
        }
    }
    (shards, bytes)
}

/// Bytes looked at per new byte stored (1 = nothing deduplicated).
fn dedup_ratio(s: &SnapshotStats) -> f64 {
    s.bytes.max(1) as f64 / s.new_bytes.max(1) as f64
}

/// Whether every pack has `k` shards on reachable friends; with the
/// number of reachable hosts, of hosts, and the largest `k`.
pub fn restorable(catalog: &Catalog, online: &BTreeSet<PeerId>) -> (bool, usize, usize, usize) {
    let mut hosts = BTreeSet::new();
    let mut ok = true;
    let mut k = 0;
    for rec in catalog.packs.values() {
        k = k.max(rec.k as usize);
        let mut reachable = BTreeSet::new();
        for s in &rec.shards {
            hosts.insert(s.host.clone());
            if PeerId::from_bytes(&s.host).is_ok_and(|p| online.contains(&p)) {
                reachable.insert(s.index);
            }
        }
        ok &= reachable.len() >= rec.k as usize;
    }
    let reachable = hosts.iter().filter(|h| PeerId::from_bytes(h).is_ok_and(|p| online.contains(&p))).count();
    (ok, reachable, hosts.len(), k)
}

/// The snapshot ids a policy keeps (restic's rules, simplified: the
/// newest of each period, for the N newest periods).
pub fn keep_set(snapshots: &[Snapshot], policy: &KeepPolicy) -> BTreeSet<String> {
    let mut keep = BTreeSet::new();
    // Snapshots are appended in order: among equal times (one second), the
    // later in the list is the newer (a stable sort keeps that).
    let mut newest: Vec<&Snapshot> = snapshots.iter().rev().collect();
    newest.sort_by_key(|s| std::cmp::Reverse(s.time));
    if let Some(n) = policy.keep_last {
        keep.extend(newest.iter().take(n).map(|s| s.id.clone()));
    }
    for (n, period) in
        [(policy.keep_daily, 86_400u64), (policy.keep_weekly, 7 * 86_400), (policy.keep_monthly, 30 * 86_400)]
    {
        let Some(n) = n else { continue };
        let mut seen = BTreeSet::new();
        for s in &newest {
            if seen.len() >= n {
                break;
            }
            if seen.insert(s.time / period) {
                keep.insert(s.id.clone());
            }
        }
    }
    if policy.keep_last.is_none()
        && policy.keep_daily.is_none()
        && policy.keep_weekly.is_none()
        && policy.keep_monthly.is_none()
    {
        keep.extend(snapshots.iter().map(|s| s.id.clone()));
    }
    keep
}

/// Multiaddresses of a catalog's hosts.
pub fn catalog_addrs(catalog: &Catalog, peer: &[u8]) -> Vec<Multiaddr> {
    catalog
        .hosts
        .iter()
        .filter(|h| h.peer == peer)
        .flat_map(|h| h.addrs.iter().filter_map(|a| a.parse().ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, time: u64) -> Snapshot {
        Snapshot { id: id.into(), time, paths: vec![], files: vec![], state: vec![], stats: SnapshotStats::default() }
    }

    #[test]
    fn keep_policies_pick_the_newest_per_period() {
        let day = 86_400;
        let all = vec![snap("a", day), snap("b", day + 10), snap("c", 2 * day), snap("d", 9 * day)];
        let last = keep_set(&all, &KeepPolicy { keep_last: Some(2), ..Default::default() });
        assert_eq!(last, ["c", "d"].iter().map(|s| s.to_string()).collect());
        let daily = keep_set(&all, &KeepPolicy { keep_daily: Some(3), ..Default::default() });
        assert_eq!(daily, ["b", "c", "d"].iter().map(|s| s.to_string()).collect());
        assert_eq!(keep_set(&all, &KeepPolicy::default()).len(), 4, "no policy keeps everything");
        let same_second = vec![snap("old", 5), snap("new", 5)];
        let last = keep_set(&same_second, &KeepPolicy { keep_last: Some(1), ..Default::default() });
        assert_eq!(last, ["new".to_string()].into(), "the later of two snapshots of one second is the newer");
    }
}
