//! Bank accounts on the owner's node: importers (OFX/QFX, camt.053, CSV,
//! Cozy JSON), deduplication and storage, and the views the API returns.
//!
//! An import is: read the whole file into [`Statement`]s (nothing stored
//! yet; any error names the line and element), give every operation its
//! dedup key ([`dedup`]), then store all statements in one redb write
//! transaction ([`store::import`]), which refuses a transaction id already
//! known with another date or amount. Whatever fails, nothing is stored.

pub mod alerts;
pub mod camt;
pub mod cozy;
pub mod csv;
pub mod dedup;
pub mod model;
pub mod ofx;
pub mod statement;
pub mod store;
pub mod views;

use serde::{Deserialize, Serialize};

pub use model::{Account, Amount, Balance, Currency, Date, Operation};
pub use statement::{Format, ImportError, Statement};

/// Largest statement file the API takes (a 100,000-operation OFX file is
/// about 25 MiB).
pub const MAX_IMPORT_BYTES: usize = 256 << 20;

/// How to read a file (`hearth bank import` options).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportOptions {
    /// The format; detected from the content when absent.
    pub format: Option<Format>,
    /// The account to import into, by name (required for CSV, which does
    /// not say which account it is; names a new account otherwise).
    pub account: Option<String>,
    /// A CSV preset (see [`csv::PRESETS`]).
    pub csv_preset: Option<String>,
    /// A CSV column mapping (see [`csv`]).
    pub csv_map: Option<String>,
}

/// A parsed file: its format and statements, with the dedup key each
/// operation brings along (Cozy JSON exports carry Hearth's keys).
#[derive(Debug)]
pub struct Parsed {
    /// The format read.
    pub format: Format,
    /// Statements, each with one optional given key per operation.
    pub statements: Vec<statement::KeyedStatement>,
}

/// Reads a file completely, without storing anything.
pub fn parse_file(bytes: &[u8], options: &ImportOptions) -> Result<Parsed, ImportError> {
    if bytes.is_empty() {
        return Err(ImportError::NotAStatement("the file is empty".into()));
    }
    if bytes.contains(&0) {
        return Err(ImportError::NotAStatement(
            "the file holds binary data (NUL bytes): it is not a bank statement export".into(),
        ));
    }
    let text = statement::decode_text(bytes);
    let csv_asked = options.csv_preset.is_some() || options.csv_map.is_some();
    let format = match options.format {
        Some(f) => f,
        None if csv_asked => Format::Csv,
        None => statement::detect(&text).ok_or_else(|| {
            ImportError::NotAStatement(
                "this file is not OFX, QFX, camt.053, a bank CSV export or Cozy JSON (give --format if it is)".into(),
            )
        })?,
    };
    let plain = |v: Vec<Statement>| v.into_iter().map(|s| (s, Vec::new())).collect();
    let statements = match format {
        Format::Ofx => plain(ofx::parse(&text)?),
        Format::Camt053 => plain(camt::parse(&text)?),
        Format::CozyJson => cozy::parse(&text)?,
        Format::Csv => {
            let mapping = match (&options.csv_preset, &options.csv_map) {
                (Some(_), Some(_)) => {
                    return Err(ImportError::Account("give --csv-preset or --csv-map, not both".into()));
                }
                (Some(p), None) => csv::preset(p).ok_or_else(|| {
                    ImportError::Account(format!("no CSV preset {p:?}; presets: {}", csv::PRESETS.join(", ")))
                })?,
                (None, Some(m)) => {
                    csv::CsvMapping::parse(m).map_err(|e| ImportError::Account(format!("--csv-map: {e}")))?
                }
                (None, None) => {
                    let name = csv::detect_preset(&text).ok_or_else(|| {
                        ImportError::NotAStatement(format!(
                            "this CSV header matches no preset ({}): give --csv-preset or --csv-map",
                            csv::PRESETS.join(", ")
                        ))
                    })?;
                    csv::preset(name).ok_or_else(|| ImportError::Account(format!("no CSV preset {name:?}")))?
                }
            };
            vec![(csv::parse(&text, &mapping)?, Vec::new())]
        }
    };
    Ok(Parsed { format, statements })
}

/// `hearth bank accounts` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Account id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Balance as exact decimal text, with the currency's minor digits.
    pub balance: Option<String>,
    /// ISO 4217.
    pub currency: String,
    /// Day of the balance.
    pub balance_date: Option<String>,
    /// `statement` (the bank's booked balance) or `operations` (the sum of
    /// the imported operations, when no statement gave a balance).
    pub balance_source: Option<String>,
    /// Number of operations.
    pub operations: u64,
    /// Cozy account type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Account number, if known.
    pub number: Option<String>,
    /// Contacts this account is shown to (owner side).
    #[serde(default)]
    pub shared_with: Vec<String>,
}

/// `hearth bank operations` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationView {
    /// Booking day, YYYY-MM-DD.
    pub date: String,
    /// Signed exact decimal text.
    pub amount: String,
    /// ISO 4217.
    pub currency: String,
    /// Label.
    pub label: String,
    /// Cozy operation type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The bank's transaction id, if any.
    pub bank_id: Option<String>,
    /// Dedup key.
    pub key: String,
    /// Original currency and amount of a foreign operation.
    pub original: Option<String>,
    /// The owner's note (owner only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Category (never a private one on a viewer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

impl OperationView {
    /// The view of a stored operation.
    pub fn of(op: &Operation) -> Self {
        let exp = op.currency.exponent();
        OperationView {
            date: op.date.to_string(),
            amount: op.amount.display_with(exp),
            currency: op.currency.code().into(),
            label: op.label.clone(),
            kind: op.kind.clone(),
            bank_id: op.bank_id.clone(),
            key: op.key.clone(),
            original: op.original.map(|(c, a)| format!("{} {c}", a.display_with(c.exponent()))),
            note: op.note.clone(),
            category: op.category.clone(),
        }
    }
}

/// What one import did, per account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportReport {
    /// The format read.
    pub format: String,
    /// One entry per account in the file.
    pub accounts: Vec<AccountImport>,
}

/// One account's part of an import.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountImport {
    /// Account id.
    pub id: String,
    /// Account name.
    pub name: String,
    /// The account was created by this import.
    pub created: bool,
    /// Operations added.
    pub added: u64,
    /// Operations already known (same id or fingerprint), skipped.
    pub duplicates: u64,
    /// The account's balance after the import.
    pub balance: Option<String>,
}

/// `POST /v1/bank/import` query (the body is the file).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportQuery {
    /// `ofx`, `camt053`, `csv` or `cozy-json`.
    pub format: Option<String>,
    /// Account name.
    pub account: Option<String>,
    /// CSV preset.
    pub csv_preset: Option<String>,
    /// CSV mapping.
    pub csv_map: Option<String>,
}

/// `POST /v1/bank/accounts/{account}/share` and `.../unshare` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BankShareRequest {
    /// The contact's name.
    pub contact: String,
    /// First day shown (share only).
    #[serde(default)]
    pub since: Option<String>,
}

/// `POST /v1/bank/accounts/{account}/operations/{key}` body: the owner's
/// annotations (absent: unchanged; empty text: cleared).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AnnotateRequest {
    /// Private note (never sent to viewers).
    pub note: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// The category is private (never sent to viewers).
    pub private: Option<bool>,
}

/// `POST /v1/bank/alerts` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertAddRequest {
    /// Account or view: name or id.
    pub on: String,
    /// `large-debit`, `low-balance`, `new-payee`, `busy-day`, `foreign`.
    pub rule: String,
    /// The rule's amount or count.
    pub value: Option<String>,
    /// Notifications hide amounts.
    #[serde(default)]
    pub hide_amounts: bool,
    /// Operations from this day on (default: today).
    pub from: Option<String>,
}

/// `POST /v1/bank/alerts/hook` body: `null` removes the hook.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HookRequest {
    /// The hook.
    pub hook: Option<alerts::Hook>,
}

/// `GET /v1/bank/accounts/{account}/operations` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OperationsQuery {
    /// Only operations on or after this day (YYYY-MM-DD).
    pub since: Option<String>,
}
