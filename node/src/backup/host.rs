//! The host's side of `/hearth/backup/1`: hosting requests, and the shards
//! and metadata objects of the owners it accepted, kept opaque under
//! `HOME/blobs/hosted/<owner hex>/{shards,meta}/`.
//!
//! Every request is answered by [`answer`], which blocks on disk and runs
//! off the event loop. Owners are told apart by their peer id; an owner's
//! restore identity may read (never write) that owner's objects; nobody
//! reaches another owner's directory. Uploads land in `NAME.part` and are
//! renamed into place only complete (and, for shards, only when they hash
//! to their id), so an interrupted upload resumes and never replaces a
//! good object with half of one.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_protocol::backup::erasure::ShardId;
use hearth_protocol::backup::hosting::{decide_put_limit, Agreement, PutAction};
use hearth_protocol::backup::wire::{
    valid_name, BackupRequest, BackupResponse, Refusal, MAX_PIECE, MAX_SHARD, WRAPPED_ROOT,
};
use tracing::{info, warn};

use super::store::{self as bstore, HostingRecord};
use crate::store::Store;

/// What a host needs to answer.
#[derive(Clone)]
pub struct Host {
    /// The database.
    pub store: Arc<Store>,
    /// `HOME/blobs/hosted`.
    pub dir: PathBuf,
    /// UDP port of this node's `/hearth/backup/2` endpoint (0: none), told
    /// to restoring nodes that ask (`direct_port`).
    pub direct_port: Arc<std::sync::atomic::AtomicU16>,
}

/// Who is asking, relative to the objects it may reach.
enum Access {
    /// The owner itself (hosting record under its own id).
    Owner(HostingRecord),
    /// The owner's restore identity: read only.
    Restore,
    /// The owner's passphrase identity: the wrapped root only.
    Passphrase,
}

fn refused(code: Refusal, message: impl Into<String>) -> BackupResponse {
    BackupResponse::refused(code, message)
}

fn internal(err: impl std::fmt::Display) -> BackupResponse {
    warn!("backup hosting failed: {err}");
    refused(Refusal::Internal, format!("the host failed: {err}"))
}

impl Host {
    /// A host keeping objects under `dir`.
    pub fn new(store: Arc<Store>, dir: PathBuf) -> Self {
        Self { store, dir, direct_port: Default::default() }
    }

    fn owner_dir(&self, owner: &[u8]) -> PathBuf {
        self.dir.join(hex::encode(owner))
    }

    fn access(&self, peer: &[u8]) -> anyhow::Result<Option<(Vec<u8>, Access)>> {
        // An owner is served only while it is a contact: removing the
        // contact stops the hosting at once (the space is freed after the
        // grace period, see `Engine::audit`).
        if let Some(record) = bstore::hosting(&self.store, peer)? {
            if self.store.contact(peer)?.is_some() {
                return Ok(Some((peer.to_vec(), Access::Owner(record))));
            }
            return Ok(None);
        }
        for (owner, record) in bstore::hostings(&self.store)? {
            if !matches!(record.agreement, Agreement::Accepted { .. }) {
                continue;
            }
            if record.restore_peer == peer {
                return Ok(Some((owner, Access::Restore)));
            }
            if record.passphrase_peer.as_deref() == Some(peer) {
                return Ok(Some((owner, Access::Passphrase)));
            }
        }
        Ok(None)
    }

    /// Whether `peer` is the restore identity of an owner this node hosts
    /// (such a peer is not a contact, yet must not be disconnected).
    pub fn is_restore_peer(&self, peer: &[u8]) -> bool {
        bstore::hostings(&self.store)
            .map(|all| {
                all.iter().any(|(_, r)| {
                    (r.restore_peer == peer || r.passphrase_peer.as_deref() == Some(peer))
                        && r.agreement != Agreement::Declined
                })
            })
            .unwrap_or(false)
    }

    /// Answers one request from `peer` at Unix time `now`.
    pub fn answer(&self, peer: &[u8], request: BackupRequest, now: u64) -> BackupResponse {
        match self.try_answer(peer, request, now) {
            Ok(r) => r,
            Err(e) => internal(format!("{e:#}")),
        }
    }

    fn try_answer(&self, peer: &[u8], request: BackupRequest, now: u64) -> anyhow::Result<BackupResponse> {
        let is_contact = self.store.contact(peer)?.is_some();
        match request {
            BackupRequest::Hosting { offer, restore_peer, passphrase_peer } => {
                let passphrase_peer = passphrase_peer.map(|p| p.into_vec());
                if !is_contact {
                    return Ok(refused(Refusal::NotAFriend, hearth_protocol::contact::NOT_A_CONTACT));
                }
                let record = bstore::update_hosting(&self.store, peer, |r| {
                    Some(match r {
                        Some(mut r) => {
                            if r.agreement == Agreement::Declined {
                                r.agreement = Agreement::Pending { offer };
                            }
                            r.restore_peer = restore_peer;
                            r.passphrase_peer = passphrase_peer;
                            r.last_contact = Some(now);
                            r
                        }
                        None => HostingRecord {
                            agreement: Agreement::Pending { offer },
                            restore_peer,
                            passphrase_peer,
                            used: 0,
                            since: now,
                            last_contact: Some(now),
                        },
                    })
                })?;
                let a = record.map(|r| r.agreement).unwrap_or(Agreement::Declined);
                if matches!(a, Agreement::Pending { .. }) {
                    info!(peer = %hex::encode(peer), "a contact asks us to host its backup (offering {offer} bytes); answer with `hearth backup hosting accept|decline`");
                }
                return Ok(BackupResponse::Hosting { state: a.name().into(), quota: a.quota() });
            }
            BackupRequest::HostingAnswer { accepted, quota } => {
                let updated = bstore::update_friend(&self.store, peer, |f| {
                    f.map(|mut f| {
                        f.state = if accepted { "accepted".into() } else { "declined".into() };
                        f.quota = if accepted { quota } else { 0 };
                        f.last_contact = Some(now);
                        f
                    })
                })?;
                return Ok(match updated {
                    Some(_) => {
                        info!(peer = %hex::encode(peer), accepted, quota, "a friend answered our hosting request");
                        BackupResponse::Ok
                    }
                    None => refused(Refusal::NotAFriend, "we did not ask you to host our backup"),
                });
            }
            _ => {}
        }
        let Some((owner, access)) = self.access(peer)? else {
            warn!(peer = %hex::encode(peer), "refused a backup request from a node we host nothing for");
            return Ok(refused(Refusal::NotAFriend, "this node hosts no backup for you"));
        };
        if let BackupRequest::DirectPort = request {
            let port = self.direct_port.load(std::sync::atomic::Ordering::Relaxed);
            return Ok(BackupResponse::DirectPort { port: (port != 0).then_some(port) });
        }
        let dir = self.owner_dir(&owner);
        let write = match &access {
            Access::Owner(r) => Some(r.clone()),
            Access::Restore => None,
            Access::Passphrase => {
                return Ok(match request {
                    BackupRequest::MetaGet { name, offset, len } if name == WRAPPED_ROOT => {
                        read_range(&dir.join("meta").join(&name), offset, len)?
                    }
                    _ => refused(Refusal::NotAFriend, "a passphrase identity may only read the wrapped root"),
                });
            }
        };
        if let Access::Owner(r) = &access {
            if r.last_contact.is_none_or(|t| now >= t + 60) {
                let _ = bstore::touch_hosting(&self.store, &owner, |r| {
                    r.map(|mut r| {
                        r.last_contact = Some(now);
                        r
                    })
                });
            }
        }
        Ok(match request {
            BackupRequest::PutShard { shard, offset, total, data } => {
                let Some(record) = write else { return Ok(read_only()) };
                self.put(
                    &owner,
                    &record,
                    &dir.join("shards"),
                    &shard.hex(),
                    Some(shard),
                    offset,
                    total,
                    &data,
                    MAX_PIECE,
                )?
            }
            BackupRequest::MetaPut { name, offset, total, data } => {
                let Some(record) = write else { return Ok(read_only()) };
                if !valid_name(&name) {
                    return Ok(refused(Refusal::BadRequest, format!("bad object name {name:?}")));
                }
                self.put(&owner, &record, &dir.join("meta"), &name, None, offset, total, &data, MAX_PIECE)?
            }
            BackupRequest::GetShard { shard, offset, len } => {
                read_range(&dir.join("shards").join(shard.hex()), offset, len)?
            }
            BackupRequest::MetaGet { name, offset, len } => {
                if !valid_name(&name) {
                    return Ok(refused(Refusal::BadRequest, format!("bad object name {name:?}")));
                }
                read_range(&dir.join("meta").join(&name), offset, len)?
            }
            BackupRequest::List => {
                let mut shards = Vec::new();
                if let Ok(entries) = fs::read_dir(dir.join("shards")) {
                    for e in entries.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let Ok(bytes) = hex::decode(&name) else { continue };
                        let Ok(id) = <[u8; 32]>::try_from(bytes) else { continue };
                        shards.push((ShardId(id), e.metadata().map(|m| m.len()).unwrap_or(0)));
                    }
                }
                shards.sort();
                let record = bstore::hosting(&self.store, &owner)?;
                let (used, quota) = record.map(|r| (r.used, r.agreement.quota())).unwrap_or((0, 0));
                BackupResponse::Shards { shards, used, quota }
            }
            BackupRequest::Audit(c) => {
                if write.is_none() {
                    return Ok(read_only());
                }
                match read_range(&dir.join("shards").join(c.shard.hex()), c.offset, c.len)? {
                    BackupResponse::Data { data, .. } => BackupResponse::Proof { nonce: c.nonce.to_vec(), data },
                    other => other,
                }
            }
            BackupRequest::Delete { shards } => {
                if write.is_none() {
                    return Ok(read_only());
                }
                let (mut count, mut freed) = (0u32, 0u64);
                for s in shards {
                    let path = dir.join("shards").join(s.hex());
                    if let Ok(m) = fs::metadata(&path) {
                        if fs::remove_file(&path).is_ok() {
                            count += 1;
                            freed += m.len();
                        }
                    }
                }
                bstore::update_hosting(&self.store, &owner, |r| {
                    r.map(|mut r| {
                        r.used = r.used.saturating_sub(freed);
                        r
                    })
                })?;
                info!(owner = %hex::encode(&owner), count, freed, "deleted hosted shards at the owner's request");
                BackupResponse::Deleted { count, freed }
            }
            BackupRequest::Hosting { .. } | BackupRequest::HostingAnswer { .. } | BackupRequest::DirectPort => {
                BackupResponse::Ok
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        owner: &[u8],
        record: &HostingRecord,
        dir: &Path,
        name: &str,
        shard: Option<ShardId>,
        offset: u64,
        total: u64,
        data: &[u8],
        max_piece: usize,
    ) -> anyhow::Result<BackupResponse> {
        let done = dir.join(name);
        let part = dir.join(format!("{name}.part"));
        let mut complete_len = fs::metadata(&done).map(|m| m.len()).ok();
        if let (Some(id), Some(len), 0) = (shard, complete_len, offset) {
            // The owner is (re)placing a shard this host already holds:
            // "already have" is only true of a copy that still hashes to its
            // id. A rotten one (bit rot, a damaged disk) is dropped and the
            // upload goes on from scratch (found by the simulator, bug 5).
            if !hashes_to(&done, &id)? {
                warn!(owner = %hex::encode(owner), shard = %id.hex(), "a held shard no longer hashes to its id; taking the new upload");
                fs::remove_file(&done)?;
                bstore::update_hosting(&self.store, owner, |r| {
                    r.map(|mut r| {
                        r.used = r.used.saturating_sub(len);
                        r
                    })
                })?;
                complete_len = None;
            }
        }
        let mut partial_len = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if offset == 0 && partial_len > 0 {
            // An upload that starts over: drop what an interrupted one left.
            fs::remove_file(&part)?;
            bstore::update_hosting(&self.store, owner, |r| {
                r.map(|mut r| {
                    r.used = r.used.saturating_sub(partial_len);
                    r
                })
            })?;
            partial_len = 0;
        }
        let record = &bstore::hosting(&self.store, owner)?.unwrap_or_else(|| record.clone());
        // A shard is immutable (named by its hash); a metadata object is
        // replaced by a new upload.
        let (have, complete, replaces) = match (shard, complete_len) {
            (Some(_), Some(len)) => (len, true, 0),
            (None, Some(len)) => (partial_len, false, len),
            (_, None) => (partial_len, false, 0),
        };
        let action = match decide_put_limit(
            Some(&record.agreement),
            record.used,
            have,
            complete,
            replaces,
            offset,
            total,
            data.len(),
            max_piece,
        ) {
            Ok(a) => a,
            Err((code, message)) => {
                warn!(owner = %hex::encode(owner), "refused a backup upload: {message}");
                return Ok(refused(code, message));
            }
        };
        if action == PutAction::AlreadyHave {
            return Ok(BackupResponse::Stored { have });
        }
        fs::create_dir_all(dir)?;
        let complete = action == PutAction::Append { complete: true };
        if shard.is_some() && complete && offset == 0 {
            // A whole shard: written past the page cache (this host does
            // not read it back before an audit or a restore) and flushed.
            crate::blobs::uncached::write_whole(&part, data)?;
        } else {
            let mut file = OpenOptions::new().create(true).append(true).open(&part)?;
            file.write_all(data)?;
            if complete {
                file.sync_all()?;
            }
        }
        bstore::touch_hosting(&self.store, owner, |r| {
            r.map(|mut r| {
                r.used += data.len() as u64;
                r
            })
        })?;
        if !complete {
            return Ok(BackupResponse::Stored { have: offset + data.len() as u64 });
        }
        if let Some(id) = shard {
            // A shard sent whole is hashed from memory, else from the file.
            let hash = if offset == 0 && data.len() as u64 == total {
                blake3::hash(data)
            } else {
                let mut hasher = blake3::Hasher::new();
                hasher.update_reader(fs::File::open(&part)?)?;
                hasher.finalize()
            };
            if hash.as_bytes() != &id.0 {
                fs::remove_file(&part)?;
                bstore::update_hosting(&self.store, owner, |r| {
                    r.map(|mut r| {
                        r.used = r.used.saturating_sub(total);
                        r
                    })
                })?;
                warn!(owner = %hex::encode(owner), shard = %id.hex(), "refused an uploaded shard: it does not hash to its id");
                return Ok(refused(
                    Refusal::Corrupt,
                    format!("shard {} does not hash to its id; upload it again", id.hex()),
                ));
            }
        }
        fs::rename(&part, &done)?;
        if replaces > 0 {
            bstore::update_hosting(&self.store, owner, |r| {
                r.map(|mut r| {
                    r.used = r.used.saturating_sub(replaces);
                    r
                })
            })?;
        }
        Ok(BackupResponse::Stored { have: total })
    }
}

/// The host's side of `/hearth/backup/2` (the streams are driven by
/// `net::direct`): the same access rules and files as `/hearth/backup/1`.
impl Host {
    /// Whether `peer` may open a `/hearth/backup/2` connection: an owner
    /// hosted here (and still a contact) or an owner's restore identity.
    pub fn may_connect(&self, peer: &[u8]) -> bool {
        matches!(self.access(peer), Ok(Some((_, Access::Owner(_) | Access::Restore))))
    }

    /// First answer to `put_shard {shard, total}`: where the upload
    /// resumes (`stored {have}`), or a refusal.
    pub fn direct_put_start(&self, peer: &[u8], shard: ShardId, total: u64) -> BackupResponse {
        let result = (|| -> anyhow::Result<BackupResponse> {
            let Some((owner, Access::Owner(record))) = self.access(peer)? else {
                return Ok(refused(Refusal::NotAFriend, "only the owner may store shards here"));
            };
            if total == 0 || total > MAX_SHARD {
                return Ok(refused(Refusal::BadRequest, format!("a shard of {total} bytes (at most {MAX_SHARD})")));
            }
            let dir = self.owner_dir(&owner).join("shards");
            if fs::metadata(dir.join(shard.hex())).is_ok_and(|m| m.len() == total) {
                return Ok(BackupResponse::Stored { have: total });
            }
            let partial = fs::metadata(dir.join(format!("{}.part", shard.hex()))).map(|m| m.len()).unwrap_or(0);
            let have = if partial < total { partial } else { 0 };
            // The quota is checked on the first bytes, as on /hearth/backup/1.
            if have == 0 {
                let after = record.used + total;
                if after > record.agreement.quota() {
                    return Ok(refused(
                        Refusal::OverQuota,
                        format!("over quota: {total} more bytes would make {after} of the {} granted; ask for a larger quota", record.agreement.quota()),
                    ));
                }
            }
            Ok(BackupResponse::Stored { have })
        })();
        result.unwrap_or_else(|e| internal(format!("{e:#}")))
    }

    /// The rest of a shard, bytes `offset..total`, sent on
    /// `/hearth/backup/2`: stored like one piece of `/hearth/backup/1`.
    pub fn direct_put(&self, peer: &[u8], shard: ShardId, offset: u64, total: u64, data: &[u8]) -> BackupResponse {
        let result = (|| -> anyhow::Result<BackupResponse> {
            let Some((owner, Access::Owner(record))) = self.access(peer)? else {
                return Ok(refused(Refusal::NotAFriend, "only the owner may store shards here"));
            };
            let dir = self.owner_dir(&owner).join("shards");
            self.put(&owner, &record, &dir, &shard.hex(), Some(shard), offset, total, data, MAX_SHARD as usize)
        })();
        result.unwrap_or_else(|e| internal(format!("{e:#}")))
    }

    /// Opens shard `shard` for `/hearth/backup/2`: the file and its length,
    /// or the refusal to send.
    pub fn direct_get(&self, peer: &[u8], shard: ShardId, offset: u64) -> Result<(fs::File, u64), BackupResponse> {
        let owner = match self.access(peer) {
            Ok(Some((owner, Access::Owner(_) | Access::Restore))) => owner,
            Ok(_) => return Err(refused(Refusal::NotAFriend, "this node hosts no backup for you")),
            Err(e) => return Err(internal(format!("{e:#}"))),
        };
        let path = self.owner_dir(&owner).join("shards").join(shard.hex());
        let mut file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(refused(Refusal::NotFound, "no such object here"));
            }
            Err(e) => return Err(internal(e)),
        };
        let total = file.metadata().map_err(internal)?.len();
        if offset > total {
            return Err(refused(Refusal::BadRequest, format!("offset {offset} outside 0..{total}")));
        }
        file.seek(SeekFrom::Start(offset)).map_err(internal)?;
        Ok((file, total))
    }
}

fn read_only() -> BackupResponse {
    refused(Refusal::NotAFriend, "a restore identity may only read")
}

/// Whether the file at `path` hashes (BLAKE3) to `id`.
fn hashes_to(path: &Path, id: &ShardId) -> std::io::Result<bool> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(fs::File::open(path)?)?;
    Ok(hasher.finalize().as_bytes() == &id.0)
}

fn read_range(path: &Path, offset: u64, len: u32) -> anyhow::Result<BackupResponse> {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(refused(Refusal::NotFound, "no such object here"));
        }
        Err(e) => return Err(e.into()),
    };
    let total = file.metadata()?.len();
    if offset > total || len as usize > MAX_PIECE {
        return Ok(refused(Refusal::BadRequest, format!("range {offset}+{len} outside 0..{total}")));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::with_capacity(len as usize);
    file.take(len as u64).read_to_end(&mut data)?;
    Ok(BackupResponse::Data { total, data })
}

#[cfg(test)]
mod tests {
    //! `/hearth/backup/1` requests that must be refused: at the codec (cut,
    //! oversized, garbage frames become `Wire::Bad`, answered `bad_request`
    //! by the event loop) and at the host (strangers, another owner's
    //! shards, pieces out of order or too large), nothing stored changing.
    use super::*;
    use crate::net::codec::{FrameCodec, Wire};
    use crate::store::{ContactRecord, Origin};
    use hearth_protocol::backup::wire::MAX_MESSAGE;
    use libp2p::request_response::Codec;

    fn contact(name: &str) -> ContactRecord {
        ContactRecord {
            name: name.into(),
            their_name: name.into(),
            origin: Origin::Joined,
            added_at: 1,
            last_seen: None,
            addrs: vec![],
            last_link: None,
        }
    }

    /// `peer` as a contact this host keeps 1 MiB for.
    fn befriend(store: &Store, peer: &[u8], name: &str) {
        store.add_contact(peer, contact(name)).expect("contact");
        bstore::update_hosting(store, peer, |_| {
            Some(HostingRecord {
                agreement: Agreement::Accepted { quota: 1 << 20 },
                restore_peer: vec![],
                passphrase_peer: None,
                used: 0,
                since: 0,
                last_contact: None,
            })
        })
        .expect("agreement");
    }

    async fn read(bytes: Vec<u8>) -> Wire<BackupRequest> {
        let mut codec = FrameCodec::<BackupRequest, BackupResponse>::new(MAX_MESSAGE);
        let protocol = libp2p::StreamProtocol::new(hearth_protocol::backup::wire::PROTOCOL);
        let mut io = futures::io::Cursor::new(bytes);
        codec.read_request(&protocol, &mut io).await.expect("a frame, good or bad")
    }

    #[tokio::test]
    async fn bad_frames_are_refused_at_the_codec() {
        assert!(matches!(read(vec![0, 0, 0, 10, 1, 2]).await, Wire::Bad(_)), "cut");
        assert!(matches!(read(vec![0, 0]).await, Wire::Bad(_)), "cut prefix");
        assert!(matches!(read([(64u32 << 20).to_be_bytes().to_vec(), vec![0; 8]].concat()).await, Wire::Bad(_)));
        assert!(matches!(read(vec![0, 0, 0, 3, 0xff, 0xff, 0xff]).await, Wire::Bad(_)), "garbage CBOR");
        let list = hearth_protocol::frame::encode(&BackupRequest::List, MAX_MESSAGE).expect("frame");
        assert_eq!(read(list).await, Wire::Msg(BackupRequest::List));
    }

    #[test]
    fn strangers_and_other_owners_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join("db.redb")).expect("store"));
        let host = Host::new(store.clone(), dir.path().join("hosted"));
        let (owner, eve, stranger) = (b"owner-peer".to_vec(), b"eve-peer".to_vec(), b"stranger".to_vec());
        for (peer, name) in [(&owner, "owner"), (&eve, "eve")] {
            befriend(&store, peer, name);
        }
        let data = b"a shard of the owner".to_vec();
        let shard = ShardId::of(&data);
        let put = |offset: u64, data: Vec<u8>| BackupRequest::PutShard { shard, offset, total: 20, data };
        assert_eq!(host.answer(&owner, put(0, data.clone()), 1), BackupResponse::Stored { have: 20 });
        let code = |r: BackupResponse| match r {
            BackupResponse::Refused { code, .. } => Some(code),
            _ => None,
        };
        let get = BackupRequest::GetShard { shard, offset: 0, len: 20 };
        assert_eq!(code(host.answer(&stranger, get.clone(), 1)), Some(Refusal::NotAFriend));
        assert_eq!(code(host.answer(&eve, get.clone(), 1)), Some(Refusal::NotFound), "namespaced by owner");
        assert_eq!(code(host.answer(&eve, BackupRequest::Delete { shards: vec![shard] }, 1)), None);
        assert_eq!(host.answer(&owner, get.clone(), 1), BackupResponse::Data { total: 20, data: data.clone() });
        // Pieces out of order, too large, or beyond the total.
        let other = ShardId([3; 32]);
        let piece =
            |offset: u64, len: usize| BackupRequest::PutShard { shard: other, offset, total: 10, data: vec![1; len] };
        assert_eq!(code(host.answer(&owner, piece(4, 2), 1)), Some(Refusal::BadRequest));
        assert_eq!(code(host.answer(&owner, piece(0, 11), 1)), Some(Refusal::BadRequest));
        let big = BackupRequest::PutShard { shard: other, offset: 0, total: 1 << 30, data: vec![0; MAX_PIECE + 1] };
        assert_eq!(code(host.answer(&owner, big, 1)), Some(Refusal::BadRequest));
        let bad_range = BackupRequest::GetShard { shard, offset: 0, len: MAX_PIECE as u32 + 1 };
        assert_eq!(code(host.answer(&owner, bad_range, 1)), Some(Refusal::BadRequest));
        // Nothing stored changed: eve's delete reached her own space only.
        assert_eq!(host.answer(&owner, get, 1), BackupResponse::Data { total: 20, data });
    }

    /// Bug 5 of the simulator: a host held a rotten copy of a shard and
    /// answered "already have" when the owner placed that shard again, so
    /// the owner counted a shard nobody could decode from.
    #[test]
    fn a_rotten_copy_is_replaced_not_reported_as_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join("db.redb")).expect("store"));
        let host = Host::new(store.clone(), dir.path().join("hosted"));
        let owner = b"owner-peer".to_vec();
        befriend(&store, &owner, "owner");
        let data = b"a shard that will rot".to_vec();
        let (shard, total) = (ShardId::of(&data), data.len() as u64);
        let put = BackupRequest::PutShard { shard, offset: 0, total, data: data.clone() };
        assert_eq!(host.answer(&owner, put.clone(), 1), BackupResponse::Stored { have: total });
        // A sound copy is held: "already have", nothing written again.
        assert_eq!(host.answer(&owner, put.clone(), 1), BackupResponse::Stored { have: total });
        let used = || bstore::hosting(&store, &owner).expect("read").expect("record").used;
        assert_eq!(used(), total);
        // The disk flips a bit of it.
        let held = walkdir(&dir.path().join("hosted"), &shard.hex()).expect("the shard's file");
        let mut rotten = data.clone();
        rotten[3] ^= 0x40;
        std::fs::write(&held, &rotten).expect("rot");
        // Placing it again stores the good bytes, counted once.
        assert_eq!(host.answer(&owner, put, 1), BackupResponse::Stored { have: total });
        assert_eq!(std::fs::read(&held).expect("read"), data);
        assert_eq!(used(), total);
        let get = BackupRequest::GetShard { shard, offset: 0, len: total as u32 };
        assert_eq!(host.answer(&owner, get, 1), BackupResponse::Data { total, data });
    }

    fn walkdir(dir: &Path, name: &str) -> Option<PathBuf> {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let path = e.path();
            if path.is_dir() {
                if let Some(found) = walkdir(&path, name) {
                    return Some(found);
                }
            } else if e.file_name().to_string_lossy() == name {
                return Some(path);
            }
        }
        None
    }
}
