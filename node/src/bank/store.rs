//! The bank tables (`store/tables.rs`: `bank-accounts-1`, `bank-ops-1`)
//! and the one-transaction import.
//!
//! Invariant: an account record's `op_count` / `op_sum` are the count and
//! exact sum of its operations in `bank-ops-1`. Every write keeps them
//! together in one transaction.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::model::{Account, Amount, Balance, Currency, Date, Operation};
use super::statement::{ImportError, Statement};
use super::{dedup, AccountImport, AccountView, ImportReport, Parsed};
use crate::store::tables::{BANK_ACCOUNTS, BANK_OPS};
use crate::store::{decode, encode, Store};

/// An account with its running totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The account.
    pub account: Account,
    /// Number of operations.
    pub op_count: u64,
    /// Exact sum of the operations.
    pub op_sum: Amount,
}

impl AccountRecord {
    /// The API view (`shared_with` filled by the caller).
    pub fn view(&self) -> AccountView {
        let a = &self.account;
        let exp = a.currency.exponent();
        let (balance, date, source) = match &a.balance {
            Some(b) => (Some(b.amount.display_with(exp)), Some(b.date.to_string()), Some("statement".to_owned())),
            None if self.op_count > 0 => (Some(self.op_sum.display_with(exp)), None, Some("operations".to_owned())),
            None => (None, None, None),
        };
        AccountView {
            id: a.id.clone(),
            name: a.label.clone(),
            balance,
            currency: a.currency.code().into(),
            balance_date: date,
            balance_source: source,
            operations: self.op_count,
            kind: a.kind.clone(),
            number: a.number.clone(),
            shared_with: Vec::new(),
        }
    }
}

fn op_key(account: &str, key: &str) -> String {
    let mut k = String::with_capacity(account.len() + 1 + key.len());
    k.push_str(account);
    k.push('\0');
    k.push_str(key);
    k
}

fn store_err(e: impl std::fmt::Display) -> ImportError {
    ImportError::Store(e.to_string())
}

/// The account id for a bank account number: stable across imports and
/// nodes, and not the number itself (ids appear in URLs and logs).
fn account_id_for(institution: Option<&str>, number: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"hearth bank account id\0");
    h.update(institution.unwrap_or("").as_bytes());
    h.update(b"\0");
    h.update(number.as_bytes());
    hex::encode(&h.finalize().as_bytes()[..8])
}

fn default_label(statement: &Statement) -> String {
    if let Some(l) = &statement.account.label {
        return l.clone();
    }
    let kind = statement.account.kind.as_deref().unwrap_or("account").to_lowercase();
    match &statement.account.number {
        Some(n) => {
            let digits: Vec<char> = n.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
            format!("{kind}-{tail}")
        }
        None => kind,
    }
}

/// All accounts, ordered by id.
pub fn accounts(store: &Store) -> anyhow::Result<Vec<AccountRecord>> {
    let txn = store.db().begin_read()?;
    let table = txn.open_table(BANK_ACCOUNTS)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (_, v) = row?;
        out.push(decode(v.value(), "bank account")?);
    }
    Ok(out)
}

/// The account named or identified by `name_or_id`.
pub fn find_account(store: &Store, name_or_id: &str) -> anyhow::Result<Option<AccountRecord>> {
    Ok(accounts(store)?.into_iter().find(|a| a.account.id == name_or_id || a.account.label == name_or_id))
}

/// One account's operations on or after `since`, oldest first (same day:
/// by key).
pub fn operations(store: &Store, account: &str, since: Option<Date>) -> anyhow::Result<Vec<Operation>> {
    let txn = store.db().begin_read()?;
    let table = txn.open_table(BANK_OPS)?;
    let start = format!("{account}\0");
    let end = format!("{account}\u{1}");
    let mut out: Vec<Operation> = Vec::new();
    for row in table.range(start.as_str()..end.as_str())? {
        let (_, v) = row?;
        let op: Operation = decode(v.value(), "bank operation")?;
        if since.is_none_or(|s| op.date >= s) {
            out.push(op);
        }
    }
    out.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.key.cmp(&b.key)));
    Ok(out)
}

/// What an import stored: the report and the operations added (for alerts
/// and viewers).
pub struct Imported {
    /// Per-account summary.
    pub report: ImportReport,
    /// (account id, operation) of every operation added.
    pub added: Vec<(String, Operation)>,
}

/// Stores a parsed file in one write transaction. `account_name` names the
/// account (required when the file gives no account number). Any error
/// aborts the transaction: nothing is stored.
pub fn import(store: &Store, parsed: Parsed, account_name: Option<&str>) -> Result<Imported, ImportError> {
    if account_name.is_some() && parsed.statements.len() > 1 {
        return Err(ImportError::Account(format!(
            "the file holds {} accounts; import it without --account (each account gets a name from its number)",
            parsed.statements.len()
        )));
    }
    let txn = store.db().begin_write().map_err(store_err)?;
    let mut report = ImportReport { format: parsed.format.to_string(), accounts: Vec::new() };
    let mut added_ops = Vec::new();
    {
        let mut accounts_t = txn.open_table(BANK_ACCOUNTS).map_err(store_err)?;
        let mut ops_t = txn.open_table(BANK_OPS).map_err(store_err)?;
        let mut existing: Vec<AccountRecord> = Vec::new();
        for row in accounts_t.iter().map_err(store_err)? {
            let (_, v) = row.map_err(store_err)?;
            existing.push(decode(v.value(), "bank account").map_err(store_err)?);
        }
        for (statement, given) in parsed.statements {
            let currency = statement
                .account
                .currency
                .ok_or_else(|| ImportError::Account("the statement states no currency".into()))?;
            let (mut record, created) = resolve(&existing, &statement, account_name, currency)?;
            let id = record.account.id.clone();
            let keys = dedup::keys(&id, &statement.operations, &given);
            let (mut added, mut duplicates) = (0u64, 0u64);
            for (op, key) in statement.operations.into_iter().zip(keys) {
                let okey = op_key(&id, &key);
                let known = ops_t.get(okey.as_str()).map_err(store_err)?.map(|v| v.value().to_vec());
                if let Some(bytes) = known {
                    let stored: Operation = decode(&bytes, "bank operation").map_err(store_err)?;
                    if stored.amount != op.amount || stored.date != op.date {
                        return Err(ImportError::Conflict {
                            bank_id: op.bank_id.clone().unwrap_or_else(|| key.clone()),
                            at: format!("line {}", op.line),
                            account: record.account.label.clone(),
                            stored: format!("{} {}", stored.date, stored.amount),
                            new: format!("{} {}", op.date, op.amount),
                        });
                    }
                    duplicates += 1;
                    continue;
                }
                let operation = Operation {
                    key: key.clone(),
                    bank_id: op.bank_id,
                    date: op.date,
                    value_date: op.value_date,
                    amount: op.amount,
                    currency,
                    label: op.label,
                    original_label: op.original_label,
                    kind: op.kind,
                    original: op.original,
                    note: op.note,
                    category: op.category,
                    category_private: op.category_private,
                };
                ops_t.insert(okey.as_str(), encode(&operation).map_err(store_err)?.as_slice()).map_err(store_err)?;
                record.op_count += 1;
                record.op_sum = record
                    .op_sum
                    .checked_add(&operation.amount)
                    .ok_or_else(|| ImportError::Account("the account's total overflows".into()))?;
                added += 1;
                added_ops.push((id.clone(), operation));
            }
            if let Some(b) = statement.balance {
                let newer = record.account.balance.as_ref().is_none_or(|old| b.date >= old.date);
                if newer {
                    record.account.balance = Some(Balance { amount: b.amount, date: b.date });
                }
            }
            accounts_t.insert(id.as_str(), encode(&record).map_err(store_err)?.as_slice()).map_err(store_err)?;
            report.accounts.push(AccountImport {
                id: id.clone(),
                name: record.account.label.clone(),
                created,
                added,
                duplicates,
                balance: record.view().balance,
            });
            existing.retain(|r| r.account.id != id);
            existing.push(record);
        }
    }
    txn.commit().map_err(store_err)?;
    Ok(Imported { report, added: added_ops })
}

/// Finds (or makes) the account a statement goes to.
fn resolve(
    existing: &[AccountRecord],
    statement: &Statement,
    name: Option<&str>,
    currency: Currency,
) -> Result<(AccountRecord, bool), ImportError> {
    let by_name = name.and_then(|n| existing.iter().find(|r| r.account.label == n || r.account.id == n));
    let found =
        match &statement.account.number {
            Some(number) => {
                let id = account_id_for(statement.account.institution.as_deref(), number);
                let by_number = existing.iter().find(|r| r.account.id == id);
                if let (Some(named), Some(numbered)) = (by_name, by_number) {
                    if named.account.id != numbered.account.id {
                        return Err(ImportError::Account(format!(
                            "the file is for account number {number}, which is your account {:?}, not {:?}",
                            numbered.account.label, named.account.label
                        )));
                    }
                }
                if let (Some(named), None) = (by_name, by_number) {
                    return Err(ImportError::Account(format!(
                        "the file is for account number {number}, but your account {:?} has number {}",
                        named.account.label,
                        named.account.number.as_deref().unwrap_or("(none)")
                    )));
                }
                by_number.cloned().ok_or(id)
            }
            None => match (by_name, name) {
                (Some(r), _) => Ok(r.clone()),
                (None, Some(_)) => Err(hex::encode(rand::random::<[u8; 8]>())),
                (None, None) => return Err(ImportError::Account(
                    "this file does not say which account it is: give --account NAME (a new name creates the account)"
                        .into(),
                )),
            },
        };
    match found {
        Ok(record) => {
            if record.account.currency != currency {
                return Err(ImportError::Account(format!(
                    "the file is in {currency} but account {:?} is in {}",
                    record.account.label, record.account.currency
                )));
            }
            Ok((record, false))
        }
        Err(id) => {
            let wanted = name.map(str::to_owned).unwrap_or_else(|| default_label(statement));
            let label = hearth_protocol::names::unique_name(&wanted, |n| existing.iter().any(|r| r.account.label == n));
            let account = Account {
                id,
                label,
                institution: statement.account.institution.clone(),
                number: statement.account.number.clone(),
                kind: statement.account.kind.clone().unwrap_or_else(|| "Checkings".into()),
                currency,
                balance: None,
            };
            Ok((AccountRecord { account, op_count: 0, op_sum: Amount::ZERO }, true))
        }
    }
}

/// Sets the owner's note and category of one operation (`None` leaves a
/// field as it is; an empty text clears it). Returns the updated operation.
pub fn annotate(
    store: &Store,
    account: &str,
    key: &str,
    note: Option<String>,
    category: Option<String>,
    private: Option<bool>,
) -> anyhow::Result<Option<Operation>> {
    let txn = store.db().begin_write()?;
    let updated = {
        let mut ops = txn.open_table(BANK_OPS)?;
        let k = op_key(account, key);
        let current: Option<Operation> =
            ops.get(k.as_str())?.map(|v| decode(v.value(), "bank operation")).transpose()?;
        match current {
            None => None,
            Some(mut op) => {
                if let Some(n) = note {
                    op.note = (!n.is_empty()).then_some(n);
                }
                if let Some(c) = category {
                    op.category = (!c.is_empty()).then_some(c);
                }
                if let Some(p) = private {
                    op.category_private = p;
                }
                ops.insert(k.as_str(), encode(&op)?.as_slice())?;
                Some(op)
            }
        }
    };
    txn.commit()?;
    Ok(updated)
}
