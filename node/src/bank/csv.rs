//! CSV exports: a column mapping (which column is the date, the amount, ...,
//! with the delimiter, decimal mark and date order), given as a preset for
//! common bank exports or as `--csv-map`. Without either, the header is
//! matched against the presets.
//!
//! `--csv-map` is a comma-separated list of `key=value`:
//! - columns, by header name (case-insensitive) or 1-based `#N`: `date`,
//!   `label`, `amount` (or `debit` and `credit`), and optionally
//!   `value_date`, `memo`, `balance`, `id`, `currency`, `type`;
//! - `delimiter=comma|semicolon|tab`, `decimal=dot|comma`,
//!   `thousands=none|space|dot|comma|apostrophe`, `dates=ymd|dmy|mdy`,
//!   `currency_code=EUR` (when no column gives it), `skip=N` lines before
//!   the header.
//!
//! Example: `date=Date,label=Libellé,amount=Montant,delimiter=semicolon,decimal=comma,dates=dmy,currency_code=EUR`.

use super::model::{Amount, Balance, Currency, Date};
use super::statement::{Format, ImportError, ParsedOp, Statement, StatementAccount};

const F: Format = Format::Csv;

/// A column, by any of several header names or by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// Header names, any of which (case-insensitive, trimmed).
    Names(Vec<String>),
    /// 0-based position.
    Index(usize),
}

impl Column {
    fn named(names: &[&str]) -> Self {
        Column::Names(names.iter().map(|s| s.to_string()).collect())
    }

    fn parse(value: &str) -> Result<Self, String> {
        match value.strip_prefix('#') {
            Some(n) => match n.parse::<usize>() {
                Ok(i) if i >= 1 => Ok(Column::Index(i - 1)),
                _ => Err(format!("#{n} is not a column number (they start at #1)")),
            },
            None if value.trim().is_empty() => Err("an empty column name".into()),
            None => Ok(Column::Names(vec![value.trim().to_owned()])),
        }
    }

    fn find(&self, header: &[String]) -> Option<usize> {
        match self {
            Column::Index(i) => (*i < header.len()).then_some(*i),
            Column::Names(names) => header.iter().position(|h| names.iter().any(|n| n.eq_ignore_ascii_case(h.trim()))),
        }
    }

    fn describe(&self) -> String {
        match self {
            Column::Index(i) => format!("#{}", i + 1),
            Column::Names(n) => n.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(" or "),
        }
    }
}

/// Day, month and year order of the date column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    /// 2024-01-31 (a time after it is ignored).
    Ymd,
    /// 31/01/2024.
    Dmy,
    /// 01/31/2024.
    Mdy,
}

/// How to read one bank's CSV export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvMapping {
    /// Field delimiter.
    pub delimiter: u8,
    /// Decimal mark of amounts.
    pub decimal: char,
    /// Thousands separator allowed in amounts.
    pub thousands: Option<char>,
    /// Date order.
    pub dates: DateOrder,
    /// Lines before the header.
    pub skip: usize,
    /// Booking date.
    pub date: Column,
    /// Value date.
    pub value_date: Option<Column>,
    /// Label.
    pub label: Column,
    /// Longer description.
    pub memo: Option<Column>,
    /// Signed amount...
    pub amount: Option<Column>,
    /// ... or a debit column and a credit column.
    pub debit: Option<Column>,
    /// Credit column.
    pub credit: Option<Column>,
    /// Balance after the operation.
    pub balance: Option<Column>,
    /// The bank's transaction id.
    pub id: Option<Column>,
    /// Currency column.
    pub currency: Option<Column>,
    /// Currency when no column gives it.
    pub currency_code: Option<Currency>,
    /// Operation type column.
    pub kind: Option<Column>,
    /// Rows to keep: (column, value); others are skipped (pending ones).
    pub only: Option<(Column, String)>,
}

impl CsvMapping {
    fn base(date: Column, label: Column, amount: Column) -> Self {
        CsvMapping {
            delimiter: b',',
            decimal: '.',
            thousands: None,
            dates: DateOrder::Ymd,
            skip: 0,
            date,
            value_date: None,
            label,
            memo: None,
            amount: Some(amount),
            debit: None,
            credit: None,
            balance: None,
            id: None,
            currency: None,
            currency_code: None,
            kind: None,
            only: None,
        }
    }

    /// Parses a `--csv-map` text (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut m = CsvMapping::base(Column::Index(0), Column::Index(1), Column::Index(2));
        let (mut date, mut label, mut amount) = (false, false, false);
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value"))?;
            let (key, value) = (key.trim(), value.trim());
            match key {
                "date" => (m.date, date) = (Column::parse(value)?, true),
                "label" => (m.label, label) = (Column::parse(value)?, true),
                "amount" => (m.amount, amount) = (Some(Column::parse(value)?), true),
                "debit" => m.debit = Some(Column::parse(value)?),
                "credit" => m.credit = Some(Column::parse(value)?),
                "value_date" => m.value_date = Some(Column::parse(value)?),
                "memo" => m.memo = Some(Column::parse(value)?),
                "balance" => m.balance = Some(Column::parse(value)?),
                "id" => m.id = Some(Column::parse(value)?),
                "currency" => m.currency = Some(Column::parse(value)?),
                "type" => m.kind = Some(Column::parse(value)?),
                "currency_code" => m.currency_code = Some(Currency::parse(value).map_err(|e| e.to_string())?),
                "delimiter" => {
                    m.delimiter = match value {
                        "comma" | "," => b',',
                        "semicolon" | ";" => b';',
                        "tab" => b'\t',
                        "pipe" | "|" => b'|',
                        _ => return Err(format!("delimiter={value}: use comma, semicolon, tab or pipe")),
                    }
                }
                "decimal" => {
                    m.decimal = match value {
                        "dot" | "." => '.',
                        "comma" => ',',
                        _ => return Err(format!("decimal={value}: use dot or comma")),
                    }
                }
                "thousands" => {
                    m.thousands = match value {
                        "none" => None,
                        "space" => Some(' '),
                        "dot" | "." => Some('.'),
                        "comma" => Some(','),
                        "apostrophe" | "'" => Some('\''),
                        _ => return Err(format!("thousands={value}: use none, space, dot, comma or apostrophe")),
                    }
                }
                "dates" => {
                    m.dates = match value {
                        "ymd" => DateOrder::Ymd,
                        "dmy" => DateOrder::Dmy,
                        "mdy" => DateOrder::Mdy,
                        _ => return Err(format!("dates={value}: use ymd, dmy or mdy")),
                    }
                }
                "skip" => m.skip = value.parse().map_err(|_| format!("skip={value} is not a number"))?,
                other => return Err(format!("unknown key {other:?} in the column mapping")),
            }
        }
        if !amount {
            m.amount = None;
        }
        if !date || !label || (m.amount.is_none() && (m.debit.is_none() || m.credit.is_none())) {
            return Err("a column mapping needs date=, label= and amount= (or debit= and credit=)".into());
        }
        if m.thousands == Some(m.decimal) {
            return Err("the thousands separator cannot be the decimal mark".into());
        }
        Ok(m)
    }
}

/// Preset names, for help and errors.
pub const PRESETS: &[&str] = &["generic", "generic-fr", "boursorama", "n26", "revolut", "chase"];

/// A preset mapping by name.
pub fn preset(name: &str) -> Option<CsvMapping> {
    let eur = Currency::parse("EUR").ok();
    Some(match name {
        // date,label,amount[,currency][,balance][,id]
        "generic" => CsvMapping {
            balance: Some(Column::named(&["balance"])),
            id: Some(Column::named(&["id"])),
            currency: Some(Column::named(&["currency"])),
            ..CsvMapping::base(Column::named(&["date"]), Column::named(&["label"]), Column::named(&["amount"]))
        },
        // Date;Libellé;Montant as many French banks export it.
        "generic-fr" => CsvMapping {
            delimiter: b';',
            decimal: ',',
            thousands: Some(' '),
            dates: DateOrder::Dmy,
            currency_code: eur,
            value_date: Some(Column::named(&["Date de valeur"])),
            ..CsvMapping::base(
                Column::named(&["Date", "Date opération", "Date operation"]),
                Column::named(&["Libellé", "Libelle"]),
                Column::named(&["Montant", "Montant (EUR)"]),
            )
        },
        "boursorama" => CsvMapping {
            delimiter: b';',
            decimal: ',',
            thousands: Some(' '),
            currency_code: eur,
            value_date: Some(Column::named(&["dateVal"])),
            kind: Some(Column::named(&["category"])),
            ..CsvMapping::base(Column::named(&["dateOp"]), Column::named(&["label"]), Column::named(&["amount"]))
        },
        "n26" => CsvMapping {
            currency_code: eur,
            value_date: Some(Column::named(&["Value Date"])),
            memo: Some(Column::named(&["Payment reference", "Payment Reference"])),
            kind: Some(Column::named(&["Transaction type", "Type"])),
            ..CsvMapping::base(
                Column::named(&["Date", "Booking Date"]),
                Column::named(&["Payee", "Partner Name"]),
                Column::named(&["Amount (EUR)"]),
            )
        },
        "revolut" => CsvMapping {
            currency: Some(Column::named(&["Currency"])),
            balance: Some(Column::named(&["Balance"])),
            kind: Some(Column::named(&["Type"])),
            only: Some((Column::named(&["State"]), "COMPLETED".into())),
            ..CsvMapping::base(
                Column::named(&["Completed Date"]),
                Column::named(&["Description"]),
                Column::named(&["Amount"]),
            )
        },
        "chase" => CsvMapping {
            dates: DateOrder::Mdy,
            currency_code: Currency::parse("USD").ok(),
            balance: Some(Column::named(&["Balance"])),
            kind: Some(Column::named(&["Type"])),
            ..CsvMapping::base(
                Column::named(&["Posting Date"]),
                Column::named(&["Description"]),
                Column::named(&["Amount"]),
            )
        },
        _ => return None,
    })
}

fn parse_date(text: &str, order: DateOrder) -> Option<Date> {
    let t = text.trim();
    let t = t.split([' ', 'T']).next().unwrap_or("");
    let sep = t.chars().find(|c| matches!(c, '-' | '/' | '.'))?;
    let parts: Vec<&str> = t.split(sep).collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let n = |s: &str| s.parse::<u16>().ok();
    let (y, m, d) = match order {
        DateOrder::Ymd => (n(parts[0])?, n(parts[1])?, n(parts[2])?),
        DateOrder::Dmy => (n(parts[2])?, n(parts[1])?, n(parts[0])?),
        DateOrder::Mdy => (n(parts[2])?, n(parts[0])?, n(parts[1])?),
    };
    if y < 1000 {
        return None; // two-digit years are ambiguous
    }
    Date::new(y, u8::try_from(m).ok()?, u8::try_from(d).ok()?)
}

struct Resolved {
    date: usize,
    value_date: Option<usize>,
    label: usize,
    memo: Option<usize>,
    amount: Option<usize>,
    debit: Option<usize>,
    credit: Option<usize>,
    balance: Option<usize>,
    id: Option<usize>,
    currency: Option<usize>,
    kind: Option<usize>,
    only: Option<(usize, String)>,
}

fn resolve(m: &CsvMapping, header: &[String]) -> Result<Resolved, String> {
    let need = |c: &Column| c.find(header).ok_or_else(|| format!("no column {} in the header", c.describe()));
    let opt = |c: &Option<Column>| c.as_ref().and_then(|c| c.find(header));
    let r = Resolved {
        date: need(&m.date)?,
        value_date: opt(&m.value_date),
        label: need(&m.label)?,
        memo: opt(&m.memo),
        amount: match &m.amount {
            Some(c) => Some(need(c)?),
            None => None,
        },
        debit: opt(&m.debit),
        credit: opt(&m.credit),
        balance: opt(&m.balance),
        id: opt(&m.id),
        currency: opt(&m.currency),
        kind: opt(&m.kind),
        only: match &m.only {
            Some((c, v)) => Some((need(c)?, v.clone())),
            None => None,
        },
    };
    if r.amount.is_none() && (r.debit.is_none() || r.credit.is_none()) {
        return Err("no amount column, nor both a debit and a credit column".into());
    }
    Ok(r)
}

fn reader(text: &str, m: &CsvMapping) -> ::csv::Reader<std::io::Cursor<Vec<u8>>> {
    let body: String = text.split_inclusive('\n').skip(m.skip).collect();
    ::csv::ReaderBuilder::new()
        .delimiter(m.delimiter)
        .has_headers(true)
        .flexible(false)
        .trim(::csv::Trim::None)
        .from_reader(std::io::Cursor::new(body.into_bytes()))
}

fn header(text: &str, m: &CsvMapping) -> Result<Vec<String>, ImportError> {
    let mut r = reader(text, m);
    let h = r.headers().map_err(|e| ImportError::at(F, "the header", e))?;
    Ok(h.iter().map(|s| s.trim().to_owned()).collect())
}

/// The preset whose columns the file's header has, if exactly... the first.
pub fn detect_preset(text: &str) -> Option<&'static str> {
    PRESETS.iter().copied().find(|name| {
        preset(name).is_some_and(|m| {
            let first = text.split_inclusive('\n').nth(m.skip).unwrap_or("");
            let delimiter = char::from(m.delimiter);
            first.contains(delimiter) && header(text, &m).is_ok_and(|h| resolve(&m, &h).is_ok())
        })
    })
}

/// Parses a CSV export with `mapping` into one statement (a CSV file holds
/// one account, and does not say which: the caller names it).
pub fn parse(text: &str, mapping: &CsvMapping) -> Result<Statement, ImportError> {
    let header = header(text, mapping)?;
    let cols = resolve(mapping, &header).map_err(|e| {
        ImportError::at(
            F,
            format!("line {}, the header", mapping.skip + 1),
            format!("{e} (header: {})", header.join(", ")),
        )
    })?;
    let mut r = reader(text, mapping);
    let mut ops = Vec::new();
    let mut balances: Vec<(Date, Amount)> = Vec::new();
    let mut currency = mapping.currency_code;
    let mut column_currency: Option<Currency> = None;
    for record in r.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize + mapping.skip).unwrap_or(0);
            ImportError::at(F, format!("line {line}"), e)
        })?;
        let line = record.position().map(|p| p.line() as usize + mapping.skip).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let at = |i: usize| format!("line {line}, column {:?}", header.get(i).map(String::as_str).unwrap_or(""));
        if let Some((i, keep)) = &cols.only {
            if cell(*i) != keep {
                continue;
            }
        }
        let amount_of = |i: usize| {
            Amount::parse_grouped(cell(i), mapping.decimal, mapping.thousands).map_err(|e| ImportError::at(F, at(i), e))
        };
        let date = parse_date(cell(cols.date), mapping.dates).ok_or_else(|| {
            ImportError::at(
                F,
                at(cols.date),
                format!("{:?} is not a date in {:?} order", cell(cols.date), mapping.dates),
            )
        })?;
        let amount = match (cols.amount, cols.debit, cols.credit) {
            (Some(a), _, _) => amount_of(a)?,
            (None, Some(d), Some(c)) => match (cell(d).is_empty(), cell(c).is_empty()) {
                (false, true) => {
                    let a = amount_of(d)?;
                    if a.is_negative() {
                        a
                    } else {
                        a.neg()
                    }
                }
                (true, false) => amount_of(c)?,
                _ => {
                    return Err(ImportError::at(
                        F,
                        format!("line {line}"),
                        "exactly one of the debit and credit columns must hold an amount",
                    ))
                }
            },
            _ => unreachable!("resolve() checked the amount columns"),
        };
        if let Some(i) = cols.currency {
            let c = Currency::parse(cell(i)).map_err(|e| ImportError::at(F, at(i), e))?;
            match column_currency {
                Some(prev) if prev != c => {
                    return Err(ImportError::at(
                        F,
                        at(i),
                        format!("the file mixes {prev} and {c}; export one account (one currency) at a time"),
                    ))
                }
                _ => column_currency = Some(c),
            }
        }
        let label = cell(cols.label);
        let mut op =
            ParsedOp::new(line, date, amount, if label.is_empty() { "(no label)".into() } else { label.into() });
        if let Some(i) = cols.value_date {
            op.value_date = parse_date(cell(i), mapping.dates);
        }
        op.original_label = cols.memo.map(cell).filter(|s| !s.is_empty()).map(str::to_owned);
        op.bank_id = cols.id.map(cell).filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(i) = cols.kind {
            op.kind = kind_of(cell(i)).into();
        }
        if let Some(i) = cols.balance {
            if !cell(i).is_empty() {
                balances.push((date, amount_of(i)?));
            }
        }
        ops.push(op);
    }
    if let Some(c) = column_currency {
        currency = Some(c);
    }
    let Some(currency) = currency else {
        return Err(ImportError::at(
            F,
            "the header",
            "the file does not say its currency: add currency_code=EUR (or the right code) to --csv-map",
        ));
    };
    // The balance after the most recent operation: files list operations
    // oldest first or newest first; look at the order the dates take.
    let newest_first = balances.first().zip(balances.last()).is_some_and(|(a, b)| a.0 > b.0);
    let balance = if newest_first { balances.first() } else { balances.last() }
        .map(|(date, amount)| Balance { amount: *amount, date: *date });
    Ok(Statement {
        account: StatementAccount { currency: Some(currency), kind: Some("Checkings".into()), ..Default::default() },
        operations: ops,
        balance,
    })
}

fn kind_of(text: &str) -> &'static str {
    let t = text.to_lowercase();
    if t.contains("card") || t.contains("carte") || t == "mastercard payment" {
        "credit card"
    } else if t.contains("transfer") || t.contains("virement") {
        "transfer"
    } else if t.contains("direct debit") || t.contains("prélèvement") || t.contains("prelevement") {
        "direct debit"
    } else if t.contains("atm") || t.contains("retrait") || t.contains("cash") {
        "cash"
    } else if t.contains("fee") || t.contains("frais") {
        "fee"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_export_with_preset() {
        let text = "Date;Libellé;Montant\n05/01/2024;CB CARREFOUR;-1 234,56\n06/01/2024;VIR SALAIRE;2 000,00\n";
        let m = preset("generic-fr").expect("preset");
        let s = parse(text, &m).expect("parse");
        assert_eq!(s.operations.len(), 2);
        assert_eq!(s.operations[0].amount.to_string(), "-1234.56");
        assert_eq!(s.operations[0].date.to_string(), "2024-01-05");
        assert_eq!(s.operations[0].line, 2);
        assert_eq!(s.account.currency, Currency::parse("EUR").ok());
        assert_eq!(detect_preset(text), Some("generic-fr"));
    }

    #[test]
    fn wrong_decimal_mark_is_refused_where_it_is() {
        let text = "date,label,amount,currency\n2024-01-05,Coffee,-3.20,EUR\n2024-01-06,Rent,\"-1,200.00\",EUR\n";
        let m = preset("generic").expect("preset");
        let err = parse(text, &m).expect_err("comma").to_string();
        assert!(err.contains("line 3, column \"amount\"") && err.contains("decimal mark"), "{err}");
        let fr = "Date;Libellé;Montant\n05/01/2024;CB;-12.50\n";
        let err = parse(fr, &preset("generic-fr").expect("preset")).expect_err("dot").to_string();
        assert!(err.contains("line 2") && err.contains("decimal mark is ','"), "{err}");
    }

    #[test]
    fn custom_mapping_debit_credit_and_balance() {
        let m = CsvMapping::parse(
            "date=#1,label=#2,debit=Debit,credit=Credit,balance=Solde,delimiter=semicolon,decimal=comma,dates=dmy,currency_code=CHF,skip=2",
        )
        .expect("mapping");
        let text = "Export\nCompte 42\nDate;Text;Debit;Credit;Solde\n31.01.2024;Miete;1500,00;;500,00\n30.01.2024;Lohn;;2000,00;2000,00\n";
        let s = parse(text, &m).expect("parse");
        assert_eq!(s.operations[0].amount.to_string(), "-1500.00");
        assert_eq!(s.operations[1].amount.to_string(), "2000.00");
        assert_eq!(s.operations[0].line, 4);
        // Newest first: the balance is the first row's.
        assert_eq!(
            s.balance.map(|b| (b.amount.to_string(), b.date.to_string())),
            Some(("500.00".into(), "2024-01-31".into()))
        );
        assert!(CsvMapping::parse("date=Date,label=L").is_err());
        assert!(CsvMapping::parse("date=Date,label=L,amount=A,currency_code=EURO").is_err());
    }

    #[test]
    fn bad_rows() {
        let m = preset("generic").expect("preset");
        let err = parse("date,label,amount,currency\n2024-13-01,X,1.00,EUR\n", &m).expect_err("date").to_string();
        assert!(err.contains("line 2, column \"date\""), "{err}");
        let err = parse("date,label,amount,currency\n2024-01-01,X,1.00,EUX\n", &m).expect_err("ccy").to_string();
        assert!(err.contains("EUX") && err.contains("ISO 4217"), "{err}");
        let err = parse("date,label,amount,currency\n2024-01-01,X,1.00\n", &m).expect_err("short").to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = parse("name,email\nbob,bob@example.org\n", &m).expect_err("not bank").to_string();
        assert!(err.contains("no column \"date\""), "{err}");
        assert_eq!(detect_preset("name,email\nbob,bob@example.org\n"), None);
    }
}
