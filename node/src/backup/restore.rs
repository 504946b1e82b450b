//! Restores: fetch shards from the friends, decode packs, write files.
//!
//! A pack is rebuilt from the first `k` good shards, asking the friends in
//! parallel and moving on to the next when one is away or answers with a
//! shard that does not hash to its id (logged, never used). Files are
//! written into temporary files next to their destination, each chunk at
//! its offsets as its pack arrives, and renamed into place only once every
//! file is complete: an interrupted or failed restore leaves no half file
//! in place of a good one.
//!
//! A fresh install restores with [`restore_fresh`]: from the recovery key
//! alone it derives the restore identity, starts a temporary swarm under
//! it, fetches the catalog from the friends given (a wrong key is refused
//! by them, or fails to open the catalog: nothing is written), then the
//! files and the node's own state (identity, config, database).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use hearth_protocol::backup::catalog::{Catalog, FileEntry, PackRecord, Snapshot};
use hearth_protocol::backup::chunk::{self, ChunkId};
use hearth_protocol::backup::erasure::{self, ShardId};
use hearth_protocol::backup::keys::{passphrase_identity_seed, KdfParams, Keys, RootSecret, WrappedRoot};
use hearth_protocol::backup::pack::PackId;
use hearth_protocol::backup::wire::{BackupRequest, BackupResponse, WRAPPED_ROOT};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::engine::{catalog_addrs, restore_keypair, CATALOG_OBJECT, MAX_CATALOG};
use super::rpc::{Rpc, RpcMsg};
use crate::home::Home;
use crate::net::behaviour::BehaviourEvent;
use crate::net::codec::Wire;

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The snapshot.
    pub snapshot: String,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Packs decoded.
    pub packs: u64,
    /// Shards refused as corrupted, or friends that failed.
    pub problems: Vec<String>,
}

/// Packs fetched at once during a restore. Over `/hearth/backup/2` a
/// shard is one stream, so a single pack leaves the links idle while it is
/// decoded and written (bench/backup.py on the 2-core machine: see
/// bench/README.md). Over `/hearth/backup/1` 3 were slower than 1.
const PACKS_IN_FLIGHT: usize = 3;

/// Fetches one whole shard and checks it against its id.
async fn fetch_shard(rpc: &Rpc, peer: PeerId, addrs: Vec<Multiaddr>, id: ShardId, len: u64) -> Result<Vec<u8>> {
    let bytes = rpc.get_shard(peer, &addrs, id, len).await?;
    if ShardId::of(&bytes) != id {
        bail!("{peer} returned a corrupted shard {} (it does not hash to its id)", id.hex());
    }
    Ok(bytes)
}

/// Rebuilds a pack from `k` good shards, asking hosts in parallel.
pub async fn fetch_pack(
    rpc: &Rpc,
    catalog: &Catalog,
    pack: &PackId,
    record: &PackRecord,
    skip: &BTreeSet<Vec<u8>>,
    problems: &mut Vec<String>,
) -> Result<Vec<u8>> {
    let k = record.k as usize;
    let mut candidates: Vec<_> = record.shards.iter().filter(|s| !skip.contains(&s.host)).collect();
    // Hosts that are connected first: they answer fastest.
    let online = rpc.online().await;
    candidates.sort_by_key(|s| !PeerId::from_bytes(&s.host).is_ok_and(|p| online.contains(&p)));
    let mut good: Vec<Vec<u8>> = Vec::new();
    let mut next = 0;
    let mut inflight = futures::stream::FuturesUnordered::new();
    // Bounded: each shard place is tried at most once.
    while good.len() < k {
        while inflight.len() + good.len() < k && next < candidates.len() {
            let place = candidates[next];
            next += 1;
            let peer = PeerId::from_bytes(&place.host).map_err(|e| anyhow!("bad host id: {e}"))?;
            let addrs = catalog_addrs(catalog, &place.host);
            let (id, len) = (place.id, place.len);
            inflight.push(async move { (peer, fetch_shard(rpc, peer, addrs, id, len).await) });
        }
        match inflight.next().await {
            Some((_, Ok(bytes))) => good.push(bytes),
            Some((peer, Err(e))) => {
                warn!(%peer, "restore works around a shard: {e:#}");
                problems.push(format!("{e:#}"));
            }
            None => bail!(
                "pack {} cannot be rebuilt: only {} of the {k} shards needed could be fetched ({}); more friends must be online",
                pack.hex(),
                good.len(),
                if problems.is_empty() { "no friend holding one is reachable".to_string() } else { problems.join("; ") }
            ),
        }
    }
    let (id, bytes) = tokio::task::spawn_blocking(move || erasure::decode(&good))
        .await
        .map_err(|e| anyhow!("decoding failed: {e}"))??;
    if id != *pack {
        bail!("the shards of pack {} decode to another pack", pack.hex());
    }
    Ok(bytes)
}

/// Where restored files go.
pub enum Target {
    /// Their original paths.
    Original,
    /// Under this directory (the original absolute path appended).
    Under(PathBuf),
}

fn destination(target: &Target, path: &str) -> PathBuf {
    match target {
        Target::Original => PathBuf::from(path),
        Target::Under(dir) => dir.join(path.trim_start_matches('/')),
    }
}

fn temp_of(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.hearth-restore"))
}

/// The temporary files of a restore, each made (with its final length)
/// when first opened.
struct TempFiles {
    paths: Vec<PathBuf>,
    sizes: Vec<u64>,
    made: std::sync::Mutex<Vec<bool>>,
}

impl TempFiles {
    /// Opens temporary file `i` for writing, making it (and its directory)
    /// on first use; a leftover of an interrupted restore is emptied then.
    fn open(&self, i: usize) -> Result<std::fs::File> {
        let path = &self.paths[i];
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if made[i] {
            drop(made);
            return std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        file.set_len(self.sizes[i]).with_context(|| format!("cannot write {}", path.display()))?;
        made[i] = true;
        Ok(file)
    }

    /// Makes the files no chunk reached (empty ones).
    fn make_missing(&self) -> Result<()> {
        let missing: Vec<usize> = self
            .made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .enumerate()
            .filter(|(_, m)| !**m)
            .map(|(i, _)| i)
            .collect();
        for i in missing {
            drop(self.open(i)?);
        }
        Ok(())
    }
}

/// Writes `files` (with their destinations) from the packs, one pack in
/// memory at a time: every chunk's offsets are known from the catalog.
/// `progress(bytes_done, bytes_total)` is called as packs arrive.
pub async fn restore_files(
    rpc: &Rpc,
    keys: &Keys,
    catalog: &Catalog,
    files: Vec<(FileEntry, PathBuf)>,
    report: &mut RestoreReport,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<()> {
    // chunk -> where it goes: (file index, offset)
    let mut wanted: BTreeMap<ChunkId, Vec<(usize, u64)>> = BTreeMap::new();
    let mut chunk_len: BTreeMap<ChunkId, u64> = BTreeMap::new();
    let mut by_pack: BTreeMap<PackId, BTreeSet<ChunkId>> = BTreeMap::new();
    for (i, (f, _)) in files.iter().enumerate() {
        if f.sizes.len() != f.chunks.len() {
            bail!("the catalog entry of {} is malformed (chunk sizes missing)", f.path);
        }
        let mut off = 0u64;
        for (c, len) in f.chunks.iter().zip(&f.sizes) {
            let loc =
                catalog.index.get(c).ok_or_else(|| anyhow!("chunk {} of {} is not in the index", c.hex(), f.path))?;
            wanted.entry(*c).or_default().push((i, off));
            chunk_len.insert(*c, *len as u64);
            by_pack.entry(loc.pack).or_default().insert(*c);
            off += *len as u64;
        }
        if off != f.size {
            bail!("the catalog entry of {} is malformed ({off} bytes of chunks for {})", f.path, f.size);
        }
    }
    // Each temporary file is made by the first writer that needs it, so that
    // making thousands of them overlaps the first fetches; the ones no chunk
    // reaches (empty files) are made at the end.
    let temps = std::sync::Arc::new(TempFiles {
        paths: files.iter().map(|(_, d)| temp_of(d)).collect(),
        sizes: files.iter().map(|(f, _)| f.size).collect(),
        made: std::sync::Mutex::new(vec![false; files.len()]),
    });
    let bytes_total: u64 = files.iter().map(|(f, _)| f.size).sum();
    let mut bytes_done = 0u64;
    progress(0, bytes_total);
    let wanted = std::sync::Arc::new(wanted);
    let result = async {
        // Several packs at once, each fetched (from k friends in parallel),
        // decoded and written by one future: while one pack is written the
        // others keep fetching (a lazy stream of fetches followed by a
        // wait for the writers left the links idle).
        let mut jobs = by_pack.iter().map(|(p, c)| (*p, c.iter().copied().collect::<Vec<ChunkId>>()));
        let one_pack = |pack: PackId, chunks: Vec<ChunkId>| {
            let keys = keys.clone();
            let (wanted, temps) = (wanted.clone(), temps.clone());
            async move {
                let mut problems = Vec::new();
                let result = async {
                    let record =
                        catalog.packs.get(&pack).ok_or_else(|| anyhow!("pack {} is not in the catalog", pack.hex()))?;
                    let mut bytes = fetch_pack(rpc, catalog, &pack, record, &BTreeSet::new(), &mut problems).await?;
                    let index: Vec<(ChunkId, u64, u32)> =
                        chunks.iter().filter_map(|c| catalog.index.get(c).map(|l| (*c, l.offset, l.len))).collect();
                    tokio::task::spawn_blocking(move || -> Result<()> {
                        let mut open_files: BTreeMap<usize, std::fs::File> = BTreeMap::new();
                        let mut plain = Vec::new();
                        for (c, off, len) in index {
                            // Each chunk once (`chunks` is a set): opened in place.
                            let sealed = bytes
                                .get_mut(off as usize..off as usize + len as usize)
                                .ok_or_else(|| anyhow!("chunk {} lies outside its pack", c.hex()))?;
                            chunk::open_in_place(&keys, &c, sealed, &mut plain)?;
                            for (i, at) in wanted.get(&c).into_iter().flatten() {
                                if !open_files.contains_key(i) {
                                    open_files.insert(*i, temps.open(*i)?);
                                }
                                if let Some(file) = open_files.get(i) {
                                    file.write_all_at(&plain, *at)?;
                                }
                            }
                        }
                        Ok(())
                    })
                    .await
                    .map_err(|e| anyhow!("writing chunks failed: {e}"))?
                }
                .await;
                (chunks, result, problems)
            }
        };
        let mut inflight = futures::stream::FuturesUnordered::new();
        loop {
            while inflight.len() < PACKS_IN_FLIGHT {
                match jobs.next() {
                    Some((pack, chunks)) => inflight.push(one_pack(pack, chunks)),
                    None => break,
                }
            }
            let Some((chunks, result, problems)) = inflight.next().await else { break };
            report.problems.extend(problems);
            result?;
            report.packs += 1;
            bytes_done += chunks
                .iter()
                .map(|c| chunk_len.get(c).copied().unwrap_or(0) * wanted.get(c).map_or(0, |w| w.len() as u64))
                .sum::<u64>();
            progress(bytes_done.min(bytes_total), bytes_total);
        }
        temps.make_missing()?;
        // One flush per file system written to, not an fsync per file.
        let mut devices = BTreeSet::new();
        for t in &temps.paths {
            let dir = t.parent().unwrap_or(Path::new("."));
            let dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(dir)?);
            if devices.insert(dev) {
                crate::blobs::store::sync_fs_of(dir).map_err(|e| anyhow!("{e}"))?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            for (i, (f, dest)) in files.iter().enumerate() {
                std::fs::rename(&temps.paths[i], dest)
                    .with_context(|| format!("cannot put {} in place", dest.display()))?;
                let _ = std::fs::set_permissions(dest, std::os::unix::fs::PermissionsExt::from_mode(f.mode & 0o7777));
                report.bytes += f.size;
            }
            report.files += files.len() as u64;
            Ok(())
        }
        Err(e) => {
            for t in &temps.paths {
                let _ = std::fs::remove_file(t);
            }
            Err(e)
        }
    }
}

/// The files of `snapshot` under `prefix`, with their destinations.
pub fn select(snapshot: &Snapshot, prefix: Option<&str>, target: &Target) -> Vec<(FileEntry, PathBuf)> {
    snapshot
        .files
        .iter()
        .filter(|f| prefix.is_none_or(|p| f.path == p || f.path.starts_with(&format!("{}/", p.trim_end_matches('/')))))
        .map(|f| (f.clone(), destination(target, &f.path)))
        .collect()
}

/// Fetches the newest catalog any of `peers` holds that opens with `keys`.
pub async fn fetch_catalog(rpc: &Rpc, keys: &Keys, peers: &[(PeerId, Vec<Multiaddr>)]) -> Result<Catalog> {
    let mut best: Option<Catalog> = None;
    let mut errors = Vec::new();
    let mut wrong_key = 0;
    for (peer, addrs) in peers {
        let fetched = rpc
            .download(*peer, addrs, MAX_CATALOG, |offset, len| BackupRequest::MetaGet {
                name: CATALOG_OBJECT.into(),
                offset,
                len,
            })
            .await;
        match fetched.map(|b| Catalog::open(keys, &b)) {
            Ok(Ok(c)) => {
                if best.as_ref().is_none_or(|b| c.generation > b.generation) {
                    best = Some(c);
                }
            }
            Ok(Err(e)) => {
                wrong_key += 1;
                errors.push(format!("{peer}: {e}"));
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    match best {
        Some(c) => Ok(c),
        None if wrong_key > 0 => bail!("wrong recovery key: the backup metadata does not open with it ({})", errors.join("; ")),
        None => bail!(
            "no friend gave the backup metadata: the recovery key is wrong or these friends do not host your backup ({})",
            errors.join("; ")
        ),
    }
}

/// Connects to every host of the catalog at once (a `direct_port`
/// question, bounded), returning once enough of them answered to serve
/// every pack (`k` of the largest coding) or all were tried: the shards
/// are then asked of the friends that answered first, and a friend that
/// is away costs one dial attempt, in the background, instead of holding
/// up the first packs.
async fn reach_hosts(rpc: &Rpc, catalog: &Catalog) {
    let hosts: BTreeSet<Vec<u8>> =
        catalog.packs.values().flat_map(|r| r.shards.iter().map(|s| s.host.clone())).collect();
    let needed = catalog.packs.values().map(|r| r.k as usize).max().unwrap_or(0);
    let mut asks: futures::stream::FuturesUnordered<_> = hosts
        .into_iter()
        .filter_map(|h| PeerId::from_bytes(&h).ok().map(|p| (p, catalog_addrs(catalog, &h))))
        .map(|(peer, addrs)| async move {
            let asked = tokio::time::timeout(REACH_TIMEOUT, rpc.call(peer, addrs, BackupRequest::DirectPort)).await;
            (peer, matches!(asked, Ok(Ok(_))))
        })
        .collect();
    let mut answered = 0;
    while let Some((peer, ok)) = asks.next().await {
        if ok {
            answered += 1;
            if answered >= needed {
                break;
            }
        } else {
            info!(%peer, "a friend holding shards is not reachable now; the others are asked first");
        }
    }
}

/// Longest wait for a friend's first answer in [`reach_hosts`].
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `RpcMsg`s on a temporary swarm (the fresh-restore driver), with
/// a dial-only direct endpoint for `/hearth/backup/2` when one could be made.
async fn drive(
    mut swarm: libp2p::Swarm<crate::net::Behaviour>,
    mut rx: tokio::sync::mpsc::Receiver<RpcMsg>,
    keypair: libp2p::identity::Keypair,
) {
    let mut calls: BTreeMap<OutboundRequestId, oneshot::Sender<Result<BackupResponse, String>>> = BTreeMap::new();
    let direct = match crate::net::direct::Direct::client_only(&keypair) {
        Ok(d) => Some(d),
        Err(e) => {
            warn!("no direct connections for the restore ({e:#}); shards come over the swarm");
            None
        }
    };
    let mut ips: BTreeMap<PeerId, std::net::IpAddr> = BTreeMap::new();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                None => break,
                Some(RpcMsg::Online(reply)) => {
                    let _ = reply.send(swarm.connected_peers().copied().collect());
                }
                Some(RpcMsg::Call { peer, addrs, request, reply }) => {
                    for a in addrs {
                        swarm.add_peer_address(peer, a);
                    }
                    let id = swarm.behaviour_mut().backup.send_request(&peer, Wire::Msg(request));
                    calls.insert(id, reply);
                }
                Some(RpcMsg::DirectTarget { peer, reply }) => {
                    let target = direct.clone().zip(ips.get(&peer).copied()).map(|(d, ip)| (d, ip, None));
                    let _ = reply.send(target);
                }
            },
            event = swarm.select_next_some() => {
                if let SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } = &event {
                    let ip = endpoint.get_remote_address().iter().find_map(|p| match p {
                        libp2p::multiaddr::Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
                        _ => None,
                    });
                    if let Some(ip) = ip {
                        ips.insert(*peer_id, ip);
                    }
                }
                if let SwarmEvent::Behaviour(BehaviourEvent::Backup(e)) = event {
                    match e {
                        request_response::Event::Message { message: request_response::Message::Response { request_id, response }, .. } => {
                            if let Some(r) = calls.remove(&request_id) {
                                let _ = r.send(Ok(response));
                            }
                        }
                        request_response::Event::OutboundFailure { request_id, error, .. } => {
                            if let Some(r) = calls.remove(&request_id) {
                                let _ = r.send(Err(error.to_string()));
                            }
                        }
                        request_response::Event::Message { message: request_response::Message::Request { channel, .. }, .. } => {
                            let _ = swarm.behaviour_mut().backup.send_response(
                                channel,
                                BackupResponse::refused(hearth_protocol::backup::wire::Refusal::NotAFriend, "a restoring node hosts nothing"),
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Parses a friend given with `--from`: its full address `ADDR/p2p/PEER`,
/// or an invitation token it printed (`hearth invite`), which carries its
/// peer id and addresses (the token is only read, never redeemed).
pub fn parse_from(text: &str) -> Result<(PeerId, Vec<Multiaddr>)> {
    let text = text.trim();
    if !text.starts_with('/') {
        let invitation = hearth_protocol::token::Invitation::decode(text).map_err(|e| {
            anyhow!("{text:?} is neither a friend's address (/ip4/.../p2p/PEER_ID) nor an invitation token: {e}")
        })?;
        let peer =
            PeerId::from_bytes(&invitation.inviter).map_err(|e| anyhow!("the token names no valid peer: {e}"))?;
        let addrs: Vec<Multiaddr> = invitation
            .addrs
            .iter()
            .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
            .filter_map(|a| crate::net::dialable(&a))
            .collect();
        if addrs.is_empty() {
            bail!("the invitation token of {} carries no address to reach it", invitation.inviter_name);
        }
        return Ok((peer, addrs));
    }
    let addr: Multiaddr = text.parse().map_err(|e| anyhow!("{text:?} is not a multiaddress: {e}"))?;
    let peer = addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .ok_or_else(|| anyhow!("{text:?} has no /p2p/PEER_ID part: give the friend's full address"))?;
    let bare = crate::net::dialable(&addr).ok_or_else(|| anyhow!("{text:?} is not dialable"))?;
    Ok((peer, vec![bare]))
}

/// Whether `home` may receive a whole restored instance: nothing there, or
/// only what `hearth init` made (an identity nobody knows yet: no contact,
/// no share, no backup), which the restored one replaces.
fn check_fresh_home(home: &Home) -> Result<()> {
    if !home.db_path().exists() {
        if home.path("identity.key").exists() {
            bail!(
                "{} holds an identity but no database; restore into a fresh home (`--home NEW_DIR`)",
                home.root().display()
            );
        }
        return Ok(());
    }
    let store = crate::store::Store::open(&home.db_path())
        .with_context(|| format!("cannot check {} (stop the node running on it first)", home.root().display()))?;
    let used = !store.contacts()?.is_empty()
        || !store.shares()?.is_empty()
        || store.meta::<serde_bytes::ByteBuf>("backup_root")?.is_some();
    if used {
        bail!(
            "{} already holds a node in use (contacts, shares or a backup); restore into a fresh home (`hearth --home NEW_DIR init`) so nothing is overwritten",
            home.root().display()
        );
    }
    Ok(())
}

/// What a fresh install restores with.
pub enum Secret {
    /// The recovery key.
    Key(String),
    /// The passphrase, and the Argon2id cost it was set with.
    Passphrase(String, KdfParams),
    /// Recovery shares friends handed back (social recovery).
    Shares(Vec<String>),
}

/// Fetches the passphrase-wrapped root from the friends under the
/// passphrase identity, and opens it.
async fn unwrap_with_passphrase(
    passphrase: &str,
    params: KdfParams,
    peers: &[(PeerId, Vec<Multiaddr>)],
) -> Result<RootSecret> {
    let pass = passphrase.to_owned();
    let seed = tokio::task::spawn_blocking(move || passphrase_identity_seed(&pass, params))
        .await
        .map_err(|e| anyhow!("{e}"))??;
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(seed).map_err(|e| anyhow!("{e}"))?;
    let swarm = crate::net::build_swarm(keypair.clone(), false, crate::net::ReachOptions::client_only())?;
    let (rpc, rx) = Rpc::channel();
    let driver = tokio::spawn(drive(swarm, rx, keypair));
    let mut errors = Vec::new();
    let mut root = None;
    for (peer, addrs) in peers {
        let got = rpc
            .download(*peer, addrs, 4096, |offset, len| BackupRequest::MetaGet {
                name: WRAPPED_ROOT.into(),
                offset,
                len,
            })
            .await;
        match got.and_then(|b| hearth_protocol::frame::from_cbor::<WrappedRoot>(&b).map_err(|e| anyhow!("{e}"))) {
            Ok(w) => {
                let pass = passphrase.to_owned();
                match tokio::task::spawn_blocking(move || w.unwrap_root(&pass)).await.map_err(|e| anyhow!("{e}"))? {
                    Ok(r) => {
                        root = Some(r);
                        break;
                    }
                    Err(e) => errors.push(format!("{peer}: {e}")),
                }
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    drop(rpc);
    let _ = tokio::time::timeout(Duration::from_secs(2), driver).await;
    root.ok_or_else(|| {
        anyhow!(
            "no friend gave a wrapped key that opens with this passphrase: it is wrong, or none was set ({})",
            errors.join("; ")
        )
    })
}

/// Restores a whole instance into the fresh home `home`, from friends at
/// `from` (`ADDR/p2p/PEER`), with only the recovery key (or passphrase).
/// Files go back to their original paths, or under `to`.
pub async fn restore_fresh(home: &Home, secret: Secret, from: &[String], to: Option<PathBuf>) -> Result<RestoreReport> {
    restore_fresh_with_progress(home, secret, from, to, &|_, _| {}).await
}

/// [`restore_fresh`], calling `progress(bytes_done, bytes_total)` as packs
/// arrive.
pub async fn restore_fresh_with_progress(
    home: &Home,
    secret: Secret,
    from: &[String],
    to: Option<PathBuf>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<RestoreReport> {
    if let Secret::Key(key) = &secret {
        RootSecret::from_recovery_key(key)?;
    }
    check_fresh_home(home)?;
    if from.is_empty() {
        bail!("name at least one friend with --from: its address ADDR/p2p/PEER_ID or an invitation token it printed");
    }
    let peers: Vec<(PeerId, Vec<Multiaddr>)> = from.iter().map(|t| parse_from(t)).collect::<Result<_>>()?;
    crate::node::install_crypto_provider();
    let root = match secret {
        Secret::Key(key) => RootSecret::from_recovery_key(&key)?,
        Secret::Passphrase(p, params) => unwrap_with_passphrase(&p, params, &peers).await?,
        Secret::Shares(texts) => super::social::combine(&texts)?,
    };
    let keypair = restore_keypair(&root)?;
    info!(restore_peer = %keypair.public().to_peer_id(), "restoring from {} friend(s)", peers.len());
    let swarm = crate::net::build_swarm(keypair.clone(), false, crate::net::ReachOptions::client_only())?;
    let (rpc, rx) = Rpc::channel();
    let driver = tokio::spawn(drive(swarm, rx, keypair));
    let keys = root.keys();
    let result = async {
        let catalog = fetch_catalog(&rpc, &keys, &peers).await?;
        reach_hosts(&rpc, &catalog).await;
        let snapshot = catalog.latest().ok_or_else(|| anyhow!("the backup has no snapshot yet"))?.clone();
        let target = match &to {
            Some(d) => Target::Under(d.clone()),
            None => Target::Original,
        };
        let mut files = select(&snapshot, None, &target);
        for f in &snapshot.state {
            files.push((f.clone(), home.path(&f.path)));
        }
        std::fs::create_dir_all(home.root())?;
        let mut report = RestoreReport { snapshot: snapshot.id.clone(), ..Default::default() };
        restore_files(&rpc, &keys, &catalog, files, &mut report, progress).await?;
        // The database came from the snapshot, whose catalog predates the
        // snapshot itself: keep the newest catalog, which knows them all.
        {
            let store = crate::store::Store::open(&home.db_path())?;
            super::store::set_catalog(&store, &catalog)?;
        }
        // The API token and anything else missing is made anew.
        home.init(None)?;
        Ok(report)
    }
    .await;
    drop(rpc);
    let _ = tokio::time::timeout(Duration::from_secs(2), driver).await;
    if let Err(e) = &result {
        warn!("restore failed: {e:#}");
    }
    result
}

impl super::Engine {
    /// Restores (part of) a snapshot under `to`, from a running node.
    pub async fn restore_to(&self, snapshot: Option<&str>, path: Option<&str>, to: &str) -> Result<RestoreReport> {
        let to = PathBuf::from(to);
        if !to.is_absolute() {
            bail!("give an absolute target directory ({} is relative)", to.display());
        }
        let catalog = super::store::catalog(&self.store)?;
        let snap = match snapshot {
            Some(id) => catalog.snapshots.iter().find(|s| s.id == id),
            None => catalog.latest(),
        }
        .ok_or_else(|| anyhow!("no such snapshot; see `hearth backup snapshots`"))?
        .clone();
        let files = select(&snap, path, &Target::Under(to));
        if files.is_empty() {
            bail!("nothing in snapshot {} matches {}", snap.id, path.unwrap_or("/"));
        }
        let keys = super::store::root(&self.store)?.keys();
        let mut report = RestoreReport { snapshot: snap.id.clone(), ..Default::default() };
        self.set_phase("restoring");
        let progress = self.progress.clone();
        let result = restore_files(&self.rpc, &keys, &catalog, files, &mut report, &move |done, total| {
            if let Ok(mut p) = progress.lock() {
                p.bytes_done = done;
                p.bytes_total = total;
            }
        })
        .await;
        self.set_phase("idle");
        result.map(|()| report)
    }
}
