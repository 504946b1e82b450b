//! The node's database (redb): contacts, invitations and small node state.
//!
//! Every change is one redb write transaction, committed durably before the
//! network is told about it (e.g. a pairing is stored before the acceptance is
//! sent), so a crash never leaves one side believing in a contact the other
//! never recorded because of us.

pub mod tables;

use std::path::Path;

use anyhow::{bail, Context, Result};
use hearth_protocol::frame::{from_cbor, to_cbor};
use hearth_protocol::pairing::InvitationRecord;
use hearth_protocol::token::TokenId;
use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{de::DeserializeOwned, Serialize};

pub use tables::{ContactRecord, ListenPorts, Origin, ShareRecord};
use tables::{
    BACKUP_FILES, BACKUP_FRIENDS, BACKUP_HOSTING, BACKUP_PENDING_DELETES, BANK_ACCOUNTS, BANK_ALERT_RULES,
    BANK_NOTIFICATIONS, BANK_OPS, BANK_VIEWS, BANK_VIEW_LOG, CONTACTS, INVITATIONS, META, SCHEMA_VERSION, SHARES,
    SHARE_DOCS, SHARE_DOC_INCREMENTS, SHARE_INDEX, SHARE_SIGS,
};

/// Signatures of a share document's changes: (change hash, signature).
pub type Signatures = Vec<(Vec<u8>, Vec<u8>)>;

/// How a share's document is written by [`Store::put_share`].
#[derive(Debug, Clone, Copy)]
pub enum DocWrite<'a> {
    /// The whole document: replaces the stored one and its increments.
    Full(&'a [u8], &'a Signatures),
    /// Changes to append (see `tables::SHARE_DOC_INCREMENTS`), with their
    /// signatures.
    Append(&'a [u8], &'a Signatures),
}

/// A share's stored document: see [`Store::share_doc`].
#[derive(Debug, Clone, Default)]
pub struct StoredDoc {
    /// The last full save followed by every increment: loads as a whole.
    pub bytes: Vec<u8>,
    /// Signatures of all its changes.
    pub signatures: Signatures,
    /// Increments stored after the full save (a node compacts when there
    /// are many).
    pub increments: usize,
}

fn id_range(id: &[u8], width: usize) -> (Vec<u8>, Vec<u8>) {
    let mut end = id.to_vec();
    end.extend(std::iter::repeat_n(0xff, width + 1));
    (id.to_vec(), end)
}

/// Handle on the database; cheap to share behind an `Arc`.
pub struct Store {
    db: Database,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    to_cbor(value).map_err(|e| anyhow::anyhow!("cannot encode a record: {e}"))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    from_cbor(bytes).map_err(|e| anyhow::anyhow!("the stored {what} is corrupted: {e}"))
}

/// Memory redb may use for its page cache and write buffer.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self> {
        // redb caches up to 1 GiB by default; the node's working set
        // (share documents are loaded into memory anyway) needs far less.
        let db = redb::Builder::new().set_cache_size(CACHE_BYTES).create(path).with_context(|| {
            format!("cannot open the database {} (is another node running on this home?)", path.display())
        })?;
        let store = Self { db };
        store.migrate().with_context(|| format!("cannot prepare the database {}", path.display()))?;
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let version: u64 = match meta.get("schema_version")? {
                Some(v) => decode(v.value(), "schema version")?,
                None => 0,
            };
            if version > SCHEMA_VERSION {
                bail!("the database was written by a newer Hearth (schema {version}); update Hearth");
            }
            // Version 0 -> 1 -> 2: creating the tables is the whole
            // migration (2 added the document increments, which a Hearth
            // of schema 1 would ignore: it must refuse this database).
            txn.open_table(CONTACTS)?;
            txn.open_table(INVITATIONS)?;
            txn.open_table(SHARES)?;
            txn.open_table(SHARE_DOCS)?;
            txn.open_table(SHARE_SIGS)?;
            txn.open_table(SHARE_INDEX)?;
            txn.open_table(SHARE_DOC_INCREMENTS)?;
            // Also in 2: the bank tables, created empty.
            txn.open_table(BANK_ACCOUNTS)?;
            txn.open_table(BANK_OPS)?;
            txn.open_table(BANK_VIEWS)?;
            txn.open_table(BANK_ALERT_RULES)?;
            txn.open_table(BANK_NOTIFICATIONS)?;
            txn.open_table(BANK_VIEW_LOG)?;
            // 2 -> 3: the backup tables, created empty (no change to the
            // existing ones; a schema-2 Hearth must refuse the result, as
            // it would host and back up without them).
            txn.open_table(BACKUP_FRIENDS)?;
            txn.open_table(BACKUP_HOSTING)?;
            txn.open_table(BACKUP_FILES)?;
            txn.open_table(BACKUP_PENDING_DELETES)?;
            if version != SCHEMA_VERSION {
                meta.insert("schema_version", encode(&SCHEMA_VERSION)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The database, for the modules that own tables of their own (`bank`).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// All contacts, ordered by peer id bytes.
    pub fn contacts(&self) -> Result<Vec<(Vec<u8>, ContactRecord)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CONTACTS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_vec(), decode(v.value(), "contact")?));
        }
        Ok(out)
    }

    /// One contact by peer id.
    pub fn contact(&self, peer: &[u8]) -> Result<Option<ContactRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CONTACTS)?;
        table.get(peer)?.map(|v| decode(v.value(), "contact")).transpose()
    }

    /// Adds a contact under a unique local name derived from `record.name`;
    /// returns the name used. An existing record for the peer is replaced
    /// (its name kept), so pairing twice is harmless.
    pub fn add_contact(&self, peer: &[u8], record: ContactRecord) -> Result<ContactRecord> {
        let txn = self.db.begin_write()?;
        let stored = {
            let mut table = txn.open_table(CONTACTS)?;
            let stored = with_unique_name(&table, peer, record)?;
            table.insert(peer, encode(&stored)?.as_slice())?;
            stored
        };
        txn.commit()?;
        Ok(stored)
    }

    /// Read-modify-write of one contact in a single transaction. Returns the
    /// new record, or `None` if the peer is not a contact.
    pub fn update_contact(
        &self,
        peer: &[u8],
        change: impl FnOnce(&mut ContactRecord),
    ) -> Result<Option<ContactRecord>> {
        let txn = self.db.begin_write()?;
        let updated = {
            let mut table = txn.open_table(CONTACTS)?;
            let current: Option<ContactRecord> = table.get(peer)?.map(|v| decode(v.value(), "contact")).transpose()?;
            match current {
                None => None,
                Some(mut record) => {
                    change(&mut record);
                    table.insert(peer, encode(&record)?.as_slice())?;
                    Some(record)
                }
            }
        };
        txn.commit()?;
        Ok(updated)
    }

    /// Removes a contact and revokes the invitations it redeemed (so that
    /// replaying one cannot bring it back), in one transaction; returns the
    /// contact if it existed.
    pub fn remove_contact(&self, peer: &[u8]) -> Result<Option<ContactRecord>> {
        let txn = self.db.begin_write()?;
        let removed = {
            let mut contacts = txn.open_table(CONTACTS)?;
            let removed = contacts.remove(peer)?.map(|v| decode(v.value(), "contact")).transpose()?;
            let mut invitations = txn.open_table(INVITATIONS)?;
            let mut revoke = Vec::new();
            for row in invitations.iter()? {
                let (k, v) = row?;
                let record: InvitationRecord = decode(v.value(), "invitation")?;
                if record.used_by.as_ref().is_some_and(|u| u.peer == peer) && !record.revoked {
                    revoke.push((k.value().to_vec(), InvitationRecord { revoked: true, ..record }));
                }
            }
            for (id, record) in revoke {
                invitations.insert(id.as_slice(), encode(&record)?.as_slice())?;
            }
            removed
        };
        txn.commit()?;
        Ok(removed)
    }

    /// Stores a new invitation.
    pub fn add_invitation(&self, id: &TokenId, record: &InvitationRecord) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(INVITATIONS)?.insert(id.as_slice(), encode(record)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// One invitation by token id.
    pub fn invitation(&self, id: &[u8]) -> Result<Option<InvitationRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(INVITATIONS)?;
        table.get(id)?.map(|v| decode(v.value(), "invitation")).transpose()
    }

    /// All invitations with their ids.
    pub fn invitations(&self) -> Result<Vec<(Vec<u8>, InvitationRecord)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(INVITATIONS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_vec(), decode(v.value(), "invitation")?));
        }
        Ok(out)
    }

    /// The inviter's side of an accepted pairing, in one transaction: the
    /// invitation marked used and the joiner added as a contact.
    pub fn commit_pairing(
        &self,
        id: &[u8],
        invitation: &InvitationRecord,
        joiner: &[u8],
        contact: ContactRecord,
    ) -> Result<ContactRecord> {
        let txn = self.db.begin_write()?;
        let stored = {
            txn.open_table(INVITATIONS)?.insert(id, encode(invitation)?.as_slice())?;
            let mut table = txn.open_table(CONTACTS)?;
            let stored = with_unique_name(&table, joiner, contact)?;
            table.insert(joiner, encode(&stored)?.as_slice())?;
            stored
        };
        txn.commit()?;
        Ok(stored)
    }

    /// All shares, ordered by id.
    pub fn shares(&self) -> Result<Vec<(Vec<u8>, ShareRecord)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SHARES)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_vec(), decode(v.value(), "share")?));
        }
        Ok(out)
    }

    /// Stores a share record, and with `doc` its document and the new
    /// signatures, in one transaction.
    pub fn put_share(&self, id: &[u8], record: &ShareRecord, doc: Option<DocWrite>) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(SHARES)?.insert(id, encode(record)?.as_slice())?;
            let mut increments = txn.open_table(SHARE_DOC_INCREMENTS)?;
            let (start, end) = id_range(id, 8);
            let signatures = match doc {
                None => None,
                Some(DocWrite::Full(bytes, signatures)) => {
                    txn.open_table(SHARE_DOCS)?.insert(id, bytes)?;
                    increments.retain_in(start.as_slice()..end.as_slice(), |_, _| false)?;
                    Some(signatures)
                }
                Some(DocWrite::Append(bytes, signatures)) => {
                    if !bytes.is_empty() {
                        let last = match increments.range(start.as_slice()..end.as_slice())?.next_back() {
                            Some(row) => Some(row?.0.value().to_vec()),
                            None => None,
                        };
                        let next = match last {
                            Some(k) => {
                                let seq: [u8; 8] = k[id.len()..].try_into().context("a corrupted increment key")?;
                                u64::from_be_bytes(seq) + 1
                            }
                            None => 0,
                        };
                        let mut key = id.to_vec();
                        key.extend_from_slice(&next.to_be_bytes());
                        increments.insert(key.as_slice(), bytes)?;
                    }
                    Some(signatures)
                }
            };
            if let Some(signatures) = signatures {
                let mut sigs = txn.open_table(SHARE_SIGS)?;
                for (hash, sig) in signatures {
                    let mut key = id.to_vec();
                    key.extend_from_slice(hash);
                    sigs.insert(key.as_slice(), sig.as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// A share's stored document: the last full save, its increments and
    /// all signatures.
    pub fn share_doc(&self, id: &[u8]) -> Result<Option<StoredDoc>> {
        let txn = self.db.begin_read()?;
        let Some(mut bytes) = txn.open_table(SHARE_DOCS)?.get(id)?.map(|v| v.value().to_vec()) else {
            return Ok(None);
        };
        let (start, end) = id_range(id, 8);
        let mut increments = 0;
        for row in txn.open_table(SHARE_DOC_INCREMENTS)?.range(start.as_slice()..end.as_slice())? {
            bytes.extend_from_slice(row?.1.value());
            increments += 1;
        }
        let sigs = txn.open_table(SHARE_SIGS)?;
        let (start, end) = id_range(id, 32);
        let mut signatures = Vec::new();
        for row in sigs.range(start.as_slice()..end.as_slice())? {
            let (k, v) = row?;
            signatures.push((k.value()[id.len()..].to_vec(), v.value().to_vec()));
        }
        Ok(Some(StoredDoc { bytes, signatures, increments }))
    }

    /// A share's local index, as stored bytes.
    pub fn share_index(&self, id: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SHARE_INDEX)?;
        Ok(table.get(id)?.map(|v| v.value().to_vec()))
    }

    /// Stores a share's local index.
    pub fn put_share_index(&self, id: &[u8], bytes: &[u8]) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(SHARE_INDEX)?.insert(id, bytes)?;
        txn.commit()?;
        Ok(())
    }

    /// A node-wide value.
    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        table.get(key)?.map(|v| decode(v.value(), key)).transpose()
    }

    /// Sets a node-wide value.
    pub fn set_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(META)?.insert(key, encode(value)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }
}

/// For a peer that is already a contact (pairing again, or a joiner retrying
/// after a lost answer) keeps what we know: its local name, when it was added,
/// its addresses (new ones first) and when it was last seen. Otherwise makes
/// `record.name` unique among the other contacts.
fn with_unique_name(
    table: &redb::Table<&[u8], &[u8]>,
    peer: &[u8],
    mut record: ContactRecord,
) -> Result<ContactRecord> {
    let mut others = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        let existing: ContactRecord = decode(v.value(), "contact")?;
        if k.value() == peer {
            record.name = existing.name;
            record.added_at = existing.added_at;
            record.last_seen = record.last_seen.max(existing.last_seen);
            for addr in existing.addrs {
                if !record.addrs.contains(&addr) && record.addrs.len() < crate::net::MAX_CONTACT_ADDRS {
                    record.addrs.push(addr);
                }
            }
            return Ok(record);
        }
        others.push(existing.name);
    }
    record.name = hearth_protocol::names::unique_name(&record.name, |n| others.iter().any(|o| o == n));
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str) -> ContactRecord {
        ContactRecord {
            name: name.into(),
            their_name: name.into(),
            origin: Origin::Joined,
            added_at: 1,
            last_seen: None,
            addrs: vec!["/ip4/127.0.0.1/tcp/1".into()],
            last_link: None,
        }
    }

    #[test]
    fn a_schema_2_database_migrates_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.redb");
        let set_version = |v: u64| {
            let db = redb::Database::create(&path).expect("create");
            let txn = db.begin_write().expect("write");
            txn.open_table(META)
                .expect("meta")
                .insert("schema_version", encode(&v).expect("cbor").as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        };
        let version = |store: &Store| -> u64 {
            let txn = store.db.begin_read().expect("read");
            let meta = txn.open_table(META).expect("meta");
            decode(meta.get("schema_version").expect("get").expect("present").value(), "v").expect("decode")
        };
        set_version(2);
        {
            let store = Store::open(&path).expect("a schema-2 database opens");
            assert_eq!(version(&store), SCHEMA_VERSION);
            let txn = store.db.begin_read().expect("read");
            txn.open_table(BACKUP_PENDING_DELETES).expect("the migration created the backup tables");
        }
        set_version(SCHEMA_VERSION + 1);
        let err = Store::open(&path).err().expect("a newer schema is refused");
        assert!(format!("{err:#}").contains("newer Hearth"), "{err:#}");
    }

    #[test]
    fn contacts_survive_reopening_and_names_stay_unique() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).expect("open");
            assert_eq!(store.add_contact(b"p1", contact("bob")).expect("add").name, "bob");
            assert_eq!(store.add_contact(b"p2", contact("bob")).expect("add").name, "bob (2)");
            // Re-adding an existing peer keeps its local name and addresses.
            let mut again = contact("robert");
            again.addrs = vec![];
            let kept = store.add_contact(b"p2", again).expect("add");
            assert_eq!(kept.name, "bob (2)");
            assert_eq!(kept.addrs, vec!["/ip4/127.0.0.1/tcp/1".to_owned()]);
            store.update_contact(b"p1", |c| c.last_seen = Some(42)).expect("update");
        }
        let store = Store::open(&path).expect("reopen");
        let all = store.contacts().expect("list");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1.last_seen, Some(42));
        assert!(store.remove_contact(b"p1").expect("remove").is_some());
        assert!(store.remove_contact(b"p1").expect("remove").is_none());
        assert_eq!(store.update_contact(b"p1", |_| {}).expect("update"), None);
    }

    #[test]
    fn a_pairing_commits_invitation_and_contact_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.redb")).expect("open");
        let record =
            InvitationRecord { secret: vec![1; 32], created_at: 1, expires_at: 2, used_by: None, revoked: false };
        store.add_invitation(&[7; 16], &record).expect("add");
        let mut used = record.clone();
        used.used_by = Some(hearth_protocol::pairing::Redemption { peer: b"j".to_vec(), name: "j".into(), at: 2 });
        store.commit_pairing(&[7; 16], &used, b"j", contact("j")).expect("commit");
        assert_eq!(store.invitation(&[7; 16]).expect("get"), Some(used.clone()));
        assert!(store.contact(b"j").expect("get").is_some());
        // Removing the contact revokes the invitation it redeemed (simulator seed 1).
        assert!(store.remove_contact(b"j").expect("remove").is_some());
        assert_eq!(store.invitation(&[7; 16]).expect("get"), Some(InvitationRecord { revoked: true, ..used }));
    }
}
