//! What every importer produces: statements (one account's operations and
//! balance, as the file states them), and the one error type of an import.
//!
//! Parsers only read; they never touch the store. A file is parsed to the
//! end before anything is written, so a file that breaks anywhere imports
//! nothing.

use std::fmt;

use super::model::{Amount, Balance, Currency, Date};

/// The formats `bank import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// OFX 1.x (SGML) or 2.x (XML), and Quicken's QFX.
    Ofx,
    /// ISO 20022 camt.053 (bank-to-customer statement).
    Camt053,
    /// Comma/semicolon separated values, with a preset or column mapping.
    Csv,
    /// The `bank export --format cozy-json` shape.
    CozyJson,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Ofx => "OFX",
            Format::Camt053 => "camt.053",
            Format::Csv => "CSV",
            Format::CozyJson => "cozy-json",
        })
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ofx" | "qfx" => Ok(Format::Ofx),
            "camt" | "camt053" | "camt.053" => Ok(Format::Camt053),
            "csv" => Ok(Format::Csv),
            "cozy-json" | "cozy" | "json" => Ok(Format::CozyJson),
            other => Err(format!("unknown format {other:?}: use ofx, camt053, csv or cozy-json")),
        }
    }
}

/// The account a statement is about, as the file describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementAccount {
    /// Bank id (OFX BANKID, camt servicer BIC).
    pub institution: Option<String>,
    /// Account number (OFX ACCTID, IBAN or other id).
    pub number: Option<String>,
    /// Cozy account type (`Checkings`, `Savings`, `CreditCard`, ...).
    pub kind: Option<String>,
    /// The statement's currency.
    pub currency: Option<Currency>,
    /// A name the file gives the account (camt `Acct/Nm`, cozy-json label).
    pub label: Option<String>,
}

/// One operation as read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOp {
    /// Where it is in the file (line, or CSV record line), for messages.
    pub line: usize,
    /// The bank's transaction id, if any.
    pub bank_id: Option<String>,
    /// Booking date.
    pub date: Date,
    /// Value date.
    pub value_date: Option<Date>,
    /// Signed amount in the statement's currency.
    pub amount: Amount,
    /// Short label.
    pub label: String,
    /// Full label / memo.
    pub original_label: Option<String>,
    /// Cozy operation type.
    pub kind: String,
    /// Original currency and amount (payment in another currency).
    pub original: Option<(Currency, Amount)>,
    /// Private note (cozy-json import only).
    pub note: Option<String>,
    /// Category (cozy-json import only).
    pub category: Option<String>,
    /// The category is private (cozy-json import only).
    pub category_private: bool,
}

impl ParsedOp {
    /// An operation with only the required fields.
    pub fn new(line: usize, date: Date, amount: Amount, label: String) -> Self {
        Self {
            line,
            bank_id: None,
            date,
            value_date: None,
            amount,
            label,
            original_label: None,
            kind: "other".into(),
            original: None,
            note: None,
            category: None,
            category_private: false,
        }
    }
}

/// One account's part of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statement {
    /// The account.
    pub account: StatementAccount,
    /// Its operations, in file order.
    pub operations: Vec<ParsedOp>,
    /// The booked / ledger / closing balance, where the file has one.
    pub balance: Option<Balance>,
}

/// A statement with, per operation, the dedup key the file brought along
/// (Cozy JSON exports of Hearth carry them; other formats none).
pub type KeyedStatement = (Statement, Vec<Option<String>>);

/// Why an import failed. Whatever the variant, nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file breaks at a given place.
    #[error("{format} file, {at}: {message}; nothing was imported")]
    Malformed {
        /// The format being read.
        format: Format,
        /// Where: `line N`, `line N, <ELEMENT>`, `record N, column C`.
        at: String,
        /// What is wrong there.
        message: String,
    },
    /// The file is none of the formats (or not the one asked for).
    #[error("{0}; nothing was imported")]
    NotAStatement(String),
    /// A transaction id already stored (or seen earlier in the same file)
    /// with another amount or date.
    #[error(
        "transaction id {bank_id:?} at {at} conflicts with the one already known for account {account:?} \
         ({stored}); the file says {new}. A bank never reuses an id, so this file or the earlier one is wrong; \
         nothing was imported"
    )]
    Conflict {
        /// The bank's transaction id.
        bank_id: String,
        /// Where in the file.
        at: String,
        /// Account name.
        account: String,
        /// What is stored (date and amount).
        stored: String,
        /// What the file says.
        new: String,
    },
    /// The account to import into is ambiguous or missing.
    #[error("{0}; nothing was imported")]
    Account(String),
    /// The database failed.
    #[error("cannot store the import: {0}; nothing was imported")]
    Store(String),
}

impl ImportError {
    /// A [`ImportError::Malformed`].
    pub fn at(format: Format, at: impl Into<String>, message: impl fmt::Display) -> Self {
        ImportError::Malformed { format, at: at.into(), message: message.to_string() }
    }
}

/// Text of a file: UTF-8 (a BOM is dropped), else Windows-1252, the
/// `CHARSET:1252` of OFX 1.x files and of many CSV exports.
pub fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| cp1252(b)).collect(),
    }
}

fn cp1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Guesses the format from the first bytes.
pub fn detect(text: &str) -> Option<Format> {
    let head: String = text.trim_start().chars().take(4096).collect();
    let upper = head.to_ascii_uppercase();
    let markup = head.starts_with('<');
    if upper.starts_with("OFXHEADER") || (markup && (upper.contains("<OFX>") || upper.contains("<?OFX"))) {
        return Some(Format::Ofx);
    }
    if markup && (head.contains("camt.053") || head.contains("<BkToCstmrStmt")) {
        return Some(Format::Camt053);
    }
    if head.starts_with('{') || head.starts_with('[') {
        return Some(Format::CozyJson);
    }
    if head.starts_with('<') {
        return None;
    }
    let first_line = head.lines().next().unwrap_or("");
    (first_line.contains(',') || first_line.contains(';') || first_line.contains('\t')).then_some(Format::Csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_utf8_or_windows_1252() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFcaf\xC3\xA9"), "café");
        assert_eq!(decode_text(b"caf\xE9 \x80"), "café €");
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(detect("\nOFXHEADER:100\nDATA:OFXSGML"), Some(Format::Ofx));
        assert_eq!(detect("<?xml version=\"1.0\"?>\n<?OFX OFXHEADER=\"200\"?><OFX>"), Some(Format::Ofx));
        assert_eq!(
            detect("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\">"),
            Some(Format::Camt053)
        );
        assert_eq!(detect("Date;Libelle;Montant\n"), Some(Format::Csv));
        assert_eq!(detect("{\"accounts\": []}"), Some(Format::CozyJson));
        assert_eq!(detect("<html><body>hello</body></html>"), None);
        assert_eq!(detect("just some words\nand more"), None);
        assert_eq!(detect("# Notes\nthe bank sends camt.053 and <OFX> files\n"), None);
    }
}
