//! The bank data model: exact decimal amounts, ISO 4217 currencies, calendar
//! dates, accounts and operations.
//!
//! Amounts are integers of minor units with their scale (`-1234` at scale 2
//! is -12.34): never floats, so sums and comparisons are exact and a
//! re-imported statement compares equal to the stored one. Field names follow
//! Cozy Banks' `io.cozy.bank.accounts` / `io.cozy.bank.operations` where the
//! two overlap (label, amount, date, currency, balance, type), so that
//! `bank export --format cozy-json` is a plain rename-free dump.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest scale (digits after the decimal mark) an amount may have.
pub const MAX_SCALE: u8 = 9;

/// An exact decimal: `units / 10^scale`.
#[derive(Debug, Clone, Copy)]
pub struct Amount {
    units: i64,
    scale: u8,
}

/// Why a piece of text is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Empty text.
    #[error("the amount is empty")]
    Empty,
    /// The other decimal mark than the one expected (e.g. `12,50` in a format
    /// whose amounts are `12.50`).
    #[error("{text:?} uses {found:?} where this format's decimal mark is {expected:?}")]
    WrongSeparator {
        /// The text.
        text: String,
        /// The mark found.
        found: char,
        /// The mark expected.
        expected: char,
    },
    /// Not a decimal number.
    #[error("{0:?} is not a decimal number")]
    Invalid(String),
    /// Too many digits.
    #[error("{0:?} has too many digits (at most 18, and 9 after the decimal mark)")]
    TooLarge(String),
}

impl Amount {
    /// Zero at scale 0.
    pub const ZERO: Amount = Amount { units: 0, scale: 0 };

    /// `units / 10^scale`.
    pub fn new(units: i64, scale: u8) -> Self {
        Self { units, scale: scale.min(MAX_SCALE) }
    }

    /// The integer of minor units.
    pub fn units(&self) -> i64 {
        self.units
    }

    /// Digits after the decimal mark.
    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// Parses `[+-]digits[<decimal>digits]`. The other common mark (`,` when
    /// `decimal` is `.` and the reverse) is refused with a message saying so,
    /// and so is any grouping of thousands: `1,234.56` is ambiguous between
    /// locales, and guessing wrong would change an amount by a factor of 1000.
    pub fn parse(text: &str, decimal: char) -> Result<Self, AmountError> {
        Self::parse_grouped(text, decimal, None)
    }

    /// Like [`Amount::parse`], also accepting `thousands` between groups of
    /// three digits of the integer part (CSV exports of some banks).
    pub fn parse_grouped(text: &str, decimal: char, thousands: Option<char>) -> Result<Self, AmountError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(AmountError::Empty);
        }
        let (negative, body) = match t.as_bytes()[0] {
            b'-' => (true, t[1..].trim_start()),
            b'+' => (false, t[1..].trim_start()),
            _ => (false, t),
        };
        let (int_part, frac_part) = match body.split_once(decimal) {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let int_digits: String = match thousands {
            Some(sep) if int_part.contains(sep) => {
                let groups: Vec<&str> = int_part.split(sep).collect();
                let ok = !groups[0].is_empty()
                    && groups[0].len() <= 3
                    && groups[1..].iter().all(|g| g.len() == 3)
                    && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
                if !ok {
                    return Err(AmountError::Invalid(text.to_owned()));
                }
                groups.concat()
            }
            _ => int_part.to_owned(),
        };
        let other = if decimal == '.' { ',' } else { '.' };
        if thousands != Some(other) && (int_digits.contains(other) || frac_part.is_some_and(|f| f.contains(other))) {
            return Err(AmountError::WrongSeparator { text: text.to_owned(), found: other, expected: decimal });
        }
        let frac = frac_part.unwrap_or("");
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int_digits.is_empty() && frac.is_empty())
            || !digits_ok(&int_digits)
            || !digits_ok(frac)
            || frac_part.is_some_and(str::is_empty)
        {
            return Err(AmountError::Invalid(text.to_owned()));
        }
        let significant = int_digits.trim_start_matches('0').len() + frac.len();
        if frac.len() > MAX_SCALE as usize || significant > 18 {
            return Err(AmountError::TooLarge(text.to_owned()));
        }
        let mut units: i64 = 0;
        for b in int_digits.bytes().chain(frac.bytes()) {
            units = units * 10 + i64::from(b - b'0');
        }
        Ok(Self { units: if negative { -units } else { units }, scale: frac.len() as u8 })
    }

    /// The value as `units` at `scale`, exactly, if `scale` loses no digit.
    pub fn at_scale(&self, scale: u8) -> Option<Amount> {
        if scale >= self.scale {
            let factor = 10i64.checked_pow(u32::from(scale - self.scale))?;
            Some(Amount { units: self.units.checked_mul(factor)?, scale })
        } else {
            let factor = 10i64.pow(u32::from(self.scale - scale));
            (self.units % factor == 0).then_some(Amount { units: self.units / factor, scale })
        }
    }

    /// Shown with at least `scale` decimals (a currency's minor unit), never
    /// dropping a digit.
    pub fn display_with(&self, scale: u8) -> String {
        self.at_scale(scale.max(self.scale)).unwrap_or(*self).to_string()
    }

    /// The same value without trailing zero decimals (`12.50` -> `12.5`).
    pub fn normalized(&self) -> Amount {
        let mut a = *self;
        while a.scale > 0 && a.units % 10 == 0 {
            a.units /= 10;
            a.scale -= 1;
        }
        a
    }

    /// Exact sum, `None` on overflow.
    pub fn checked_add(&self, other: &Amount) -> Option<Amount> {
        let scale = self.scale.max(other.scale);
        let a = self.at_scale(scale)?;
        let b = other.at_scale(scale)?;
        Some(Amount { units: a.units.checked_add(b.units)?, scale })
    }

    /// The value negated.
    pub fn neg(&self) -> Amount {
        Amount { units: -self.units, scale: self.scale }
    }

    /// True if below zero.
    pub fn is_negative(&self) -> bool {
        self.units < 0
    }

    fn widened(&self) -> i128 {
        i128::from(self.units) * 10i128.pow(u32::from(MAX_SCALE - self.scale))
    }
}

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.widened() == other.widened()
    }
}
impl Eq for Amount {}
impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Amount {
    fn cmp(&self, other: &Self) -> Ordering {
        self.widened().cmp(&other.widened())
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{abs}");
        }
        let factor = 10u64.pow(u32::from(self.scale));
        write!(f, "{sign}{}.{:0width$}", abs / factor, abs % factor, width = self.scale as usize)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse(s, '.')
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Amount::parse(&text, '.').map_err(serde::de::Error::custom)
    }
}

/// Active ISO 4217 codes with their minor-unit exponent (funds codes
/// included; precious metals and testing codes, which have no minor unit
/// and no bank accounts, are not). Sorted, for binary search.
#[rustfmt::skip]
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2),
    ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2), ("BHD", 3), ("BIF", 0),
    ("BMD", 2), ("BND", 2), ("BOB", 2), ("BOV", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2), ("BWP", 2),
    ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHE", 2), ("CHF", 2), ("CHW", 2), ("CLF", 4),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("COU", 2), ("CRC", 2), ("CUC", 2), ("CUP", 2), ("CVE", 2),
    ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2),
    ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2),
    ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2), ("IDR", 2),
    ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2), ("JOD", 3), ("JPY", 0),
    ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2),
    ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2),
    ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2),
    ("MVR", 2), ("MWK", 2), ("MXN", 2), ("MXV", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2),
    ("NIO", 2), ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2),
    ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2),
    ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2),
    ("SLE", 2), ("SLL", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2), ("SYP", 2),
    ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2), ("TTD", 2),
    ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2), ("USN", 2), ("UYI", 0), ("UYU", 2),
    ("UYW", 4), ("UZS", 2), ("VED", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0),
    ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
    ("ZWL", 2),
];

/// An ISO 4217 currency code known to this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

/// A code that is not an active ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ISO 4217 currency code (like EUR, USD, CHF)")]
pub struct UnknownCurrency(pub String);

impl Currency {
    /// The currency of code `code` (upper case, as ISO 4217 writes it; the
    /// surrounding spaces some exports add are ignored).
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        let c = code.trim();
        match ISO_4217.binary_search_by(|(k, _)| k.cmp(&c)) {
            Ok(i) => {
                let b = ISO_4217[i].0.as_bytes();
                Ok(Currency([b[0], b[1], b[2]]))
            }
            Err(_) => Err(UnknownCurrency(code.to_owned())),
        }
    }

    /// The three letters.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits of the minor unit (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u8 {
        ISO_4217.binary_search_by(|(k, _)| k.cmp(&self.code())).map(|i| ISO_4217[i].1).unwrap_or(2)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Currency::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A calendar date (the booking day of an operation; banks' times of day and
/// time zones are not meaningful for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

/// Not a valid date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid date (expected {1})")]
pub struct DateError(pub String, pub &'static str);

impl Date {
    /// A date, checked (year 1900..=2999, real day of the month).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        ((1900..=2999).contains(&year) && (1..=days).contains(&day)).then_some(Self { year, month, day })
    }

    /// `YYYY-MM-DD`, optionally followed by a time (`T...`), as ISO 8601 and
    /// camt.053 write it.
    pub fn parse_iso(text: &str) -> Result<Self, DateError> {
        let t = text.trim();
        let err = || DateError(text.to_owned(), "YYYY-MM-DD");
        let b = t.as_bytes();
        if b.len() < 10 || b[4] != b'-' || b[7] != b'-' || (b.len() > 10 && !matches!(b[10], b'T' | b' ')) {
            return Err(err());
        }
        let y = num(&t[0..4]).ok_or_else(err)?;
        let m = num(&t[5..7]).ok_or_else(err)?;
        let d = num(&t[8..10]).ok_or_else(err)?;
        Date::new(y as u16, m as u8, d as u8).ok_or_else(err)
    }

    /// `YYYYMMDD[HHMMSS[.XXX]][[gmt offset[:tz name]]]`, the OFX datetime;
    /// only the date is kept.
    pub fn parse_ofx(text: &str) -> Result<Self, DateError> {
        let t = text.trim();
        let err = || DateError(text.to_owned(), "YYYYMMDD[HHMMSS[.XXX][[offset:TZ]]]");
        if t.len() < 8 || !t.as_bytes()[..8].iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        let rest = &t[8..];
        let time = rest.split('[').next().unwrap_or("");
        let tz_ok = match rest.find('[') {
            Some(i) => rest.ends_with(']') && rest[i..].len() > 2,
            None => true,
        };
        if !time.bytes().all(|b| b.is_ascii_digit() || b == b'.') || !tz_ok {
            return Err(err());
        }
        let y = num(&t[0..4]).ok_or_else(err)?;
        let m = num(&t[4..6]).ok_or_else(err)?;
        let d = num(&t[6..8]).ok_or_else(err)?;
        Date::new(y as u16, m as u8, d as u8).ok_or_else(err)
    }

    /// The UTC day of a Unix time in seconds.
    pub fn from_unix(secs: u64) -> Self {
        // Days to civil date (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
        let z = (secs / 86_400) as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Date::new(year, month, day).unwrap_or(Date { year: 1970, month: 1, day: 1 })
    }

    /// Year, month, day.
    pub fn ymd(&self) -> (u16, u8, u8) {
        (self.year, self.month, self.day)
    }
}

fn num(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Date::parse_iso(s)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Date::parse_iso(&text).map_err(serde::de::Error::custom)
    }
}

/// A balance and the day it was true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The amount.
    pub amount: Amount,
    /// As of this day.
    pub date: Date,
}

/// An account as stored on its owner's node (`io.cozy.bank.accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Stable local id (16 hex digits), derived from the bank's account
    /// number when the statement has one.
    pub id: String,
    /// The owner's name for it (`label` in Cozy).
    pub label: String,
    /// Bank id (OFX BANKID, camt BIC), if known (`institutionLabel`).
    pub institution: Option<String>,
    /// Account number (OFX ACCTID, IBAN), if known (`number`).
    pub number: Option<String>,
    /// Cozy's account type: `Checkings`, `Savings`, `CreditCard`, `Loan`,
    /// `Business` or `Other`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Currency of the account.
    pub currency: Currency,
    /// The latest statement's booked (ledger) balance, if one was imported.
    pub balance: Option<Balance>,
}

/// An operation (`io.cozy.bank.operations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The deduplication key: `id:` + the bank's transaction id, or `fp:` +
    /// a fingerprint (see `bank::dedup`).
    pub key: String,
    /// The bank's transaction id (FITID, AcctSvcrRef, NtryRef), if any.
    pub bank_id: Option<String>,
    /// Booking date.
    pub date: Date,
    /// Value date, if the bank gives one.
    pub value_date: Option<Date>,
    /// Signed amount in the account's currency (negative = debit).
    pub amount: Amount,
    /// The account's currency.
    pub currency: Currency,
    /// Short label (payee name, or the bank's label).
    pub label: String,
    /// The bank's full label or memo (`originalBankLabel`).
    pub original_label: Option<String>,
    /// Cozy's operation type: `credit card`, `transfer`, `direct debit`,
    /// `check`, `cash`, `fee`, `interest`, `deposit`, `other`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The original currency and amount of an operation made in another
    /// currency (card payment abroad).
    pub original: Option<(Currency, Amount)>,
    /// The owner's private note; never leaves the owner's node.
    #[serde(default)]
    pub note: Option<String>,
    /// A category (Cozy's `manualCategoryId`).
    #[serde(default)]
    pub category: Option<String>,
    /// The category is private: never sent to viewers.
    #[serde(default)]
    pub category_private: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_and_strict() {
        let a = Amount::parse("-12.34", '.').expect("parse");
        assert_eq!((a.units(), a.scale()), (-1234, 2));
        assert_eq!(a.to_string(), "-12.34");
        assert_eq!(Amount::parse("12.5", '.').expect("p"), Amount::parse("12.50", '.').expect("p"));
        assert_eq!(Amount::parse("0.1", '.').expect("p").checked_add(&"0.2".parse().expect("p")), "0.3".parse().ok());
        assert_eq!(Amount::parse("+7", '.').expect("p").display_with(2), "7.00");
        assert_eq!(Amount::parse("-0.05", '.').expect("p").to_string(), "-0.05");
        assert_eq!(Amount::parse("12,50", ',').expect("p").to_string(), "12.50");
        assert!(matches!(Amount::parse("12,50", '.'), Err(AmountError::WrongSeparator { found: ',', .. })));
        assert!(matches!(Amount::parse("1,234.50", '.'), Err(AmountError::WrongSeparator { .. })));
        assert!(matches!(Amount::parse("1.234,50", ','), Err(AmountError::WrongSeparator { .. })));
        assert_eq!(Amount::parse_grouped("1 234,50", ',', Some(' ')).expect("p").to_string(), "1234.50");
        assert!(Amount::parse_grouped("12 34,50", ',', Some(' ')).is_err());
        for bad in ["", "-", "1.", ".", "1e3", "12.3.4", "abc", "1 2"] {
            assert!(Amount::parse(bad, '.').is_err(), "{bad:?} accepted");
        }
        assert!(matches!(Amount::parse("1234567890123456789", '.'), Err(AmountError::TooLarge(_))));
        assert_eq!(Amount::parse(".5", '.').expect("p").to_string(), "0.5");
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert!(ISO_4217.windows(2).all(|w| w[0].0 < w[1].0), "the table must stay sorted");
        assert_eq!(Currency::parse("EUR").expect("eur").exponent(), 2);
        assert_eq!(Currency::parse("JPY").expect("jpy").exponent(), 0);
        assert_eq!(Currency::parse("KWD").expect("kwd").exponent(), 3);
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("XYZ").is_err());
    }

    #[test]
    fn dates_are_checked() {
        assert_eq!(Date::parse_ofx("20090401122017.000[-5:EST]").expect("d").to_string(), "2009-04-01");
        assert_eq!(Date::parse_ofx("20110829").expect("d").to_string(), "2011-08-29");
        assert_eq!(Date::parse_iso("2013-01-05T16:20:26.673Z").expect("d").to_string(), "2013-01-05");
        assert!(Date::parse_ofx("20230230").is_err());
        assert!(Date::parse_ofx("2023-01-05").is_err());
        assert!(Date::parse_ofx("20é30105").is_err());
        assert!(Date::parse_iso("2024-02-29").is_ok());
        assert!(Date::parse_iso("2023-02-29").is_err());
        assert!(Date::parse_iso("05/01/2023").is_err());
        assert_eq!(Date::from_unix(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_unix(1_709_164_800).to_string(), "2024-02-29");
        assert_eq!(Date::from_unix(1_735_689_599).to_string(), "2024-12-31");
    }
}
