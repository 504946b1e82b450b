//! The Cozy Banks shape: `{"io.cozy.bank.accounts": [...],
//! "io.cozy.bank.operations": [...]}` with Cozy's field names where Hearth
//! and Cozy overlap (`label`, `amount`, `date`, `currency`, `balance`,
//! `type`, `number`, `institutionLabel`, `originalBankLabel`,
//! `manualCategoryId`, `account`).
//!
//! Cozy writes amounts as JSON numbers. They are written and read here as
//! the exact decimal text of the number (serde_json's raw values), so no
//! amount ever goes through a float. Hearth's own fields (the dedup key,
//! the note, the private flag of a category) go under `hearth`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::model::{Account, Amount, Currency, Date, Operation};
use super::statement::{Format, ImportError, KeyedStatement, ParsedOp, Statement, StatementAccount};

const F: Format = Format::CozyJson;

/// The document.
#[derive(Debug, Serialize, Deserialize)]
pub struct CozyExport {
    /// Accounts.
    #[serde(rename = "io.cozy.bank.accounts", default)]
    pub accounts: Vec<CozyAccount>,
    /// Operations.
    #[serde(rename = "io.cozy.bank.operations", default)]
    pub operations: Vec<CozyOperation>,
}

/// `io.cozy.bank.accounts`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CozyAccount {
    /// Id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Name.
    pub label: String,
    /// Bank.
    #[serde(rename = "institutionLabel", default, skip_serializing_if = "Option::is_none")]
    pub institution: Option<String>,
    /// Account number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// IBAN, when the account number is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    /// Checkings, Savings, ...
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// ISO 4217.
    pub currency: String,
    /// Balance, a JSON number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Box<RawValue>>,
    /// Day of the balance.
    #[serde(rename = "balanceDate", default, skip_serializing_if = "Option::is_none")]
    pub balance_date: Option<String>,
}

/// `io.cozy.bank.operations`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CozyOperation {
    /// The account's `_id`.
    pub account: String,
    /// Label.
    pub label: String,
    /// Full bank label.
    #[serde(rename = "originalBankLabel", default, skip_serializing_if = "Option::is_none")]
    pub original_label: Option<String>,
    /// Amount, a JSON number.
    pub amount: Box<RawValue>,
    /// ISO 4217.
    pub currency: String,
    /// `YYYY-MM-DDT00:00:00Z` (a bare date is accepted).
    pub date: String,
    /// Value date.
    #[serde(rename = "valueDate", default, skip_serializing_if = "Option::is_none")]
    pub value_date: Option<String>,
    /// Operation type.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The bank's transaction id.
    #[serde(rename = "vendorId", default, skip_serializing_if = "Option::is_none")]
    pub bank_id: Option<String>,
    /// Category.
    #[serde(rename = "manualCategoryId", default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Hearth's own fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hearth: Option<HearthFields>,
}

/// Hearth-only fields of an operation.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HearthFields {
    /// The dedup key.
    #[serde(default)]
    pub key: Option<String>,
    /// Private note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The category is private.
    #[serde(default)]
    pub category_private: bool,
}

/// Two letters, two digits, then 11 to 30 letters or digits.
fn looks_like_iban(n: &str) -> bool {
    let b = n.as_bytes();
    (15..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..].iter().all(u8::is_ascii_alphanumeric)
}

fn raw(amount: &Amount) -> Box<RawValue> {
    // An amount's text is always a valid JSON number.
    RawValue::from_string(amount.to_string()).unwrap_or_else(|_| RawValue::from_string("0".into()).expect("0 is JSON"))
}

/// Writes one account and its operations in the Cozy shape.
pub fn export(account: &Account, operations: &[Operation]) -> CozyExport {
    CozyExport {
        accounts: vec![CozyAccount {
            id: account.id.clone(),
            label: account.label.clone(),
            institution: account.institution.clone(),
            number: account.number.clone(),
            iban: account.number.clone().filter(|n| looks_like_iban(n)),
            kind: Some(account.kind.clone()),
            currency: account.currency.code().into(),
            balance: account.balance.as_ref().map(|b| raw(&b.amount)),
            balance_date: account.balance.as_ref().map(|b| b.date.to_string()),
        }],
        operations: operations
            .iter()
            .map(|op| CozyOperation {
                account: account.id.clone(),
                label: op.label.clone(),
                original_label: op.original_label.clone(),
                amount: raw(&op.amount),
                currency: op.currency.code().into(),
                date: format!("{}T00:00:00Z", op.date),
                value_date: op.value_date.map(|d| format!("{d}T00:00:00Z")),
                kind: Some(op.kind.clone()),
                bank_id: op.bank_id.clone(),
                category: op.category.clone(),
                hearth: Some(HearthFields {
                    key: Some(op.key.clone()),
                    note: op.note.clone(),
                    category_private: op.category_private,
                }),
            })
            .collect(),
    }
}

/// Reads the Cozy shape into one statement per account. Each operation
/// keeps its Hearth dedup key when it has one (an export re-imported is
/// recognised as the same operations).
pub fn parse(text: &str) -> Result<Vec<KeyedStatement>, ImportError> {
    let doc: CozyExport = serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ImportError::at(F, format!("line {}, column {}", e.line(), e.column()), e)
        } else {
            ImportError::at(F, format!("line {}", e.line()), format!("not the io.cozy.bank shape: {e}"))
        }
    })?;
    if doc.accounts.is_empty() {
        return Err(ImportError::NotAStatement("this JSON has no io.cozy.bank.accounts".into()));
    }
    let mut out = Vec::new();
    for a in &doc.accounts {
        let at = |field: &str| format!("account {:?}, {field}", a.id);
        let currency = Currency::parse(&a.currency).map_err(|e| ImportError::at(F, at("currency"), e))?;
        let balance = match (&a.balance, &a.balance_date) {
            (Some(b), Some(d)) => Some(super::model::Balance {
                amount: Amount::parse(b.get(), '.').map_err(|e| ImportError::at(F, at("balance"), e))?,
                date: Date::parse_iso(d).map_err(|e| ImportError::at(F, at("balanceDate"), e))?,
            }),
            _ => None,
        };
        let mut statement = Statement {
            account: StatementAccount {
                institution: a.institution.clone(),
                number: a.number.clone().or_else(|| a.iban.clone()),
                kind: a.kind.clone(),
                currency: Some(currency),
                label: Some(a.label.clone()),
            },
            operations: Vec::new(),
            balance,
        };
        let mut keys = Vec::new();
        for (i, o) in doc.operations.iter().enumerate().filter(|(_, o)| o.account == a.id) {
            let at = |field: &str| format!("operation {}, {field}", i + 1);
            let c = Currency::parse(&o.currency).map_err(|e| ImportError::at(F, at("currency"), e))?;
            if c != currency {
                return Err(ImportError::at(F, at("currency"), format!("{c} differs from the account's {currency}")));
            }
            let amount = Amount::parse(o.amount.get(), '.').map_err(|e| ImportError::at(F, at("amount"), e))?;
            let date = Date::parse_iso(&o.date).map_err(|e| ImportError::at(F, at("date"), e))?;
            let mut op = ParsedOp::new(i + 1, date, amount, o.label.clone());
            op.original_label = o.original_label.clone();
            op.value_date = o.value_date.as_deref().and_then(|d| Date::parse_iso(d).ok());
            op.kind = o.kind.clone().unwrap_or_else(|| "other".into());
            op.bank_id = o.bank_id.clone();
            op.category = o.category.clone();
            let hearth = o.hearth.as_ref();
            op.note = hearth.and_then(|h| h.note.clone());
            op.category_private = hearth.is_some_and(|h| h.category_private);
            keys.push(hearth.and_then(|h| h.key.clone()));
            statement.operations.push(op);
        }
        out.push((statement, keys));
    }
    let known: Vec<&str> = doc.accounts.iter().map(|a| a.id.as_str()).collect();
    if let Some((i, o)) = doc.operations.iter().enumerate().find(|(_, o)| !known.contains(&o.account.as_str())) {
        return Err(ImportError::at(
            F,
            format!("operation {}, account", i + 1),
            format!("{:?} is not one of the file's accounts", o.account),
        ));
    }
    Ok(out)
}
