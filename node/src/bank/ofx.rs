//! OFX statements: 1.x (SGML, where leaf elements have no closing tag),
//! 2.x (XML) and Quicken's QFX (OFX 1.x with Intuit extensions), read by
//! one tokenizer.
//!
//! An element followed by text is a leaf (`<TRNAMT>-6.60`, its `</TRNAMT>`
//! optional); an element followed by another tag is an aggregate, which
//! must be closed. A closing tag closes the innermost open aggregate of
//! that name (SGML leaves written with an empty value are closed with it).
//! The whole file must end with every aggregate closed: a truncated file is
//! refused with the element it was cut in, and the line it was opened at.
//!
//! Read: bank (`STMTRS`) and credit-card (`CCSTMTRS`) statements, any
//! number per file; each `STMTTRN` (TRNTYPE, DTPOSTED, DTAVAIL, TRNAMT,
//! FITID, NAME or PAYEE/NAME, MEMO, CURRENCY/ORIGCURRENCY); `LEDGERBAL` as
//! the balance. Amounts use `.` as the decimal mark; `,` alone is also taken
//! (OFX files from French banks write it), but never both.

use std::borrow::Cow;

use super::model::{Amount, Balance, Currency, Date};
use super::statement::{Format, ImportError, ParsedOp, Statement, StatementAccount};

const F: Format = Format::Ofx;

/// A token of the OFX body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    /// `<NAME>` followed by a non-empty value, its closing tag consumed if present.
    Leaf { name: &'a str, value: Cow<'a, str>, line: usize },
    /// `<NAME>` followed by another tag.
    Open { name: &'a str, line: usize },
    /// `</NAME>`.
    Close { name: &'a str, line: usize },
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn advance_to(&mut self, to: usize) {
        self.line += self.text.as_bytes()[self.pos..to].iter().filter(|&&b| b == b'\n').count();
        self.pos = to;
    }

    /// The next tag: (is closing, name, line), skipping comments and
    /// processing instructions; `None` at the end.
    fn tag(&mut self) -> Result<Option<(bool, &'a str, usize)>, ImportError> {
        loop {
            let rest = &self.text[self.pos..];
            let Some(lt) = rest.find('<') else {
                if !rest.trim().is_empty() {
                    return Err(ImportError::at(F, format!("line {}", self.line), "text after the last element"));
                }
                self.advance_to(self.text.len());
                return Ok(None);
            };
            self.advance_to(self.pos + lt);
            let rest = &self.text[self.pos..];
            if rest.starts_with("<!--") {
                let end = rest.find("-->").ok_or_else(|| self.cut("a comment"))?;
                self.advance_to(self.pos + end + 3);
                continue;
            }
            if rest.starts_with("<?") {
                let end = rest.find("?>").ok_or_else(|| self.cut("a processing instruction"))?;
                self.advance_to(self.pos + end + 2);
                continue;
            }
            let gt = rest.find('>').ok_or_else(|| self.cut("a tag"))?;
            let inner = &rest[1..gt];
            let (closing, name) = match inner.strip_prefix('/') {
                Some(n) => (true, n.trim()),
                None => (false, inner.trim()),
            };
            let line = self.line;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_') {
                return Err(ImportError::at(F, format!("line {line}"), format!("<{inner}> is not an OFX tag")));
            }
            self.advance_to(self.pos + gt + 1);
            return Ok(Some((closing, name, line)));
        }
    }

    fn cut(&self, what: &str) -> ImportError {
        ImportError::at(F, format!("line {}", self.line), format!("the file ends inside {what} (truncated?)"))
    }

    /// Text up to the next `<` (or the end), trimmed; consumed.
    fn value(&mut self) -> &'a str {
        let text = self.text;
        let rest = &text[self.pos..];
        let end = rest.find('<').unwrap_or(rest.len());
        let value = rest[..end].trim();
        self.advance_to(self.pos + end);
        value
    }
}

fn unescape(value: &str) -> Cow<'_, str> {
    if !value.contains('&') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let entity = after.find(';').filter(|&e| e <= 10).map(|e| &after[1..e]);
        let decoded = match entity {
            Some("amp") => Some('&'),
            Some("lt") => Some('<'),
            Some("gt") => Some('>'),
            Some("quot") => Some('"'),
            Some("apos") => Some('\''),
            Some(e) if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            Some(e) if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match (decoded, entity) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = &after[e.len() + 2..];
            }
            _ => {
                // A bare `&` (common in SGML files: "AT&T") stays as is.
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Splits the body into tokens, checking that aggregates nest and close.
fn tokens(text: &str, start_line: usize) -> Result<Vec<Token<'_>>, ImportError> {
    let mut lx = Lexer { text, pos: 0, line: start_line };
    let mut out = Vec::new();
    let mut stack: Vec<(&str, usize)> = Vec::new();
    let mut pending: Option<(&str, usize)> = None;
    let mut ended = false;
    while let Some((closing, name, line)) = lx.tag()? {
        if ended {
            return Err(ImportError::at(F, format!("line {line}"), format!("<{name}> after the closing </OFX>")));
        }
        if let Some((open, open_line)) = pending.take() {
            // `<OPEN>` was followed by a tag, not a value.
            if closing && name == open {
                continue; // `<MEMO></MEMO>`: an empty leaf.
            }
            stack.push((open, open_line));
            out.push(Token::Open { name: open, line: open_line });
        }
        if closing {
            let Some(depth) = stack.iter().rposition(|(n, _)| *n == name) else {
                return Err(ImportError::at(
                    F,
                    format!("line {line}"),
                    format!("</{name}> closes nothing that is open{}", innermost(&stack)),
                ));
            };
            stack.truncate(depth);
            out.push(Token::Close { name, line });
            ended = stack.is_empty();
            continue;
        }
        let value = lx.value();
        if value.is_empty() {
            pending = Some((name, line));
            continue;
        }
        out.push(Token::Leaf { name, value: unescape(value), line });
        // An XML leaf's own closing tag.
        let save = (lx.pos, lx.line);
        match lx.tag()? {
            Some((true, n, _)) if n == name => {}
            _ => (lx.pos, lx.line) = save,
        }
    }
    if let Some((open, line)) = pending {
        stack.push((open, line));
    }
    if let Some((name, line)) = stack.last() {
        return Err(ImportError::at(
            F,
            format!("line {}", lx.line),
            format!("the file ends inside <{name}> opened at line {line} (truncated?)"),
        ));
    }
    Ok(out)
}

fn innermost(stack: &[(&str, usize)]) -> String {
    match stack.last() {
        Some((n, l)) => format!(" (the innermost open element is <{n}> from line {l})"),
        None => String::new(),
    }
}

/// Where the `<OFX>` body starts, after the 1.x colon header or the 2.x XML
/// declaration; `None` if this is not OFX.
fn body_start(text: &str) -> Option<(usize, usize)> {
    let upper_head: String = text.chars().take(4096).collect::<String>().to_ascii_uppercase();
    let at = upper_head.find("<OFX>")?;
    let head = &text[..at];
    let trimmed = head.trim_start();
    let ok = trimmed.is_empty()
        || trimmed.to_ascii_uppercase().starts_with("OFXHEADER")
        || trimmed.starts_with("<?xml")
        || trimmed.starts_with("<?OFX");
    ok.then(|| (at, 1 + head.bytes().filter(|&b| b == b'\n').count()))
}

#[derive(Default)]
struct OpBuilder {
    line: usize,
    kind: Option<String>,
    posted: Option<Date>,
    avail: Option<Date>,
    amount: Option<Amount>,
    fitid: Option<String>,
    name: Option<String>,
    payee: Option<String>,
    memo: Option<String>,
    orig_currency: Option<Currency>,
    currency_is_original: bool,
    rate: Option<Amount>,
}

/// Parses an OFX file into its statements.
pub fn parse(text: &str) -> Result<Vec<Statement>, ImportError> {
    let (start, line) = body_start(text).ok_or_else(|| {
        ImportError::NotAStatement("this file has no <OFX> element in its first 4 KiB: it is not an OFX file".into())
    })?;
    let header = &text[..start];
    if header.contains("DATA:") && !header.contains("DATA:OFXSGML") {
        return Err(ImportError::at(F, "line 1", "the header's DATA is not OFXSGML"));
    }
    let toks = tokens(&text[start..], line)?;

    let mut statements = Vec::new();
    let mut stmt: Option<Statement> = None;
    let mut op: Option<OpBuilder> = None;
    let mut path: Vec<&str> = Vec::new();
    let mut bal: (Option<Amount>, Option<Date>) = (None, None);
    for tok in &toks {
        match tok {
            Token::Open { name, line } => {
                match *name {
                    "STMTRS" => {
                        stmt = Some(Statement {
                            account: StatementAccount { kind: Some("Checkings".into()), ..Default::default() },
                            ..Default::default()
                        })
                    }
                    "CCSTMTRS" => {
                        stmt = Some(Statement {
                            account: StatementAccount { kind: Some("CreditCard".into()), ..Default::default() },
                            ..Default::default()
                        })
                    }
                    "STMTTRN" if stmt.is_some() => op = Some(OpBuilder { line: *line, ..Default::default() }),
                    "LEDGERBAL" => bal = (None, None),
                    _ => {}
                }
                path.push(name);
            }
            Token::Close { name, line } => {
                while let Some(top) = path.pop() {
                    if top == *name {
                        break;
                    }
                }
                match *name {
                    "STMTTRN" => {
                        if let (Some(b), Some(s)) = (op.take(), stmt.as_mut()) {
                            s.operations.push(finish_op(b)?);
                        }
                    }
                    "LEDGERBAL" => {
                        if let (Some(s), (Some(amount), Some(date))) = (stmt.as_mut(), bal) {
                            s.balance = Some(Balance { amount, date });
                        } else if stmt.is_some() {
                            return Err(ImportError::at(
                                F,
                                format!("line {line}, </LEDGERBAL>"),
                                "the ledger balance lacks <BALAMT> or <DTASOF>",
                            ));
                        }
                    }
                    "STMTRS" | "CCSTMTRS" => {
                        if let Some(s) = stmt.take() {
                            if s.account.currency.is_none() {
                                return Err(ImportError::at(
                                    F,
                                    format!("line {line}, </{name}>"),
                                    "the statement has no <CURDEF> (its currency)",
                                ));
                            }
                            statements.push(s);
                        }
                    }
                    _ => {}
                }
            }
            Token::Leaf { name, value, line } => {
                let at = || format!("line {line}, <{name}>");
                let parent = path.last().copied().unwrap_or("");
                let Some(s) = stmt.as_mut() else { continue };
                if let Some(b) = op.as_mut() {
                    match (parent, *name) {
                        ("STMTTRN", "TRNTYPE") => b.kind = Some(value.to_string()),
                        ("STMTTRN", "DTPOSTED") => {
                            b.posted = Some(Date::parse_ofx(value).map_err(|e| ImportError::at(F, at(), e))?)
                        }
                        ("STMTTRN", "DTAVAIL") => {
                            b.avail = Some(Date::parse_ofx(value).map_err(|e| ImportError::at(F, at(), e))?)
                        }
                        ("STMTTRN", "TRNAMT") => {
                            b.amount = Some(ofx_amount(value).map_err(|e| ImportError::at(F, at(), e))?)
                        }
                        ("STMTTRN", "FITID") => b.fitid = Some(value.to_string()),
                        ("STMTTRN", "NAME") => b.name = Some(value.to_string()),
                        ("PAYEE", "NAME") => b.payee = Some(value.to_string()),
                        ("STMTTRN", "MEMO") => b.memo = Some(value.to_string()),
                        ("CURRENCY" | "ORIGCURRENCY", "CURSYM") => {
                            b.orig_currency = Some(Currency::parse(value).map_err(|e| ImportError::at(F, at(), e))?);
                            b.currency_is_original = parent == "ORIGCURRENCY";
                        }
                        ("CURRENCY" | "ORIGCURRENCY", "CURRATE") => {
                            b.rate = Some(ofx_amount(value).map_err(|e| ImportError::at(F, at(), e))?)
                        }
                        _ => {}
                    }
                    continue;
                }
                match (parent, *name) {
                    ("STMTRS" | "CCSTMTRS", "CURDEF") => {
                        s.account.currency = Some(Currency::parse(value).map_err(|e| ImportError::at(F, at(), e))?)
                    }
                    ("BANKACCTFROM", "BANKID") => s.account.institution = Some(value.to_string()),
                    ("BANKACCTFROM" | "CCACCTFROM", "ACCTID") => s.account.number = Some(value.to_string()),
                    ("BANKACCTFROM", "ACCTTYPE") => s.account.kind = Some(account_kind(value).into()),
                    ("LEDGERBAL", "BALAMT") => {
                        bal.0 = Some(ofx_amount(value).map_err(|e| ImportError::at(F, at(), e))?)
                    }
                    ("LEDGERBAL", "DTASOF") => {
                        bal.1 = Some(Date::parse_ofx(value).map_err(|e| ImportError::at(F, at(), e))?)
                    }
                    _ => {}
                }
            }
        }
    }
    if statements.is_empty() {
        return Err(ImportError::NotAStatement(
            "this OFX file holds no bank or credit-card statement (STMTRS / CCSTMTRS)".into(),
        ));
    }
    Ok(statements)
}

fn ofx_amount(value: &str) -> Result<Amount, super::model::AmountError> {
    if value.contains(',') && !value.contains('.') {
        Amount::parse(value, ',')
    } else {
        Amount::parse(value, '.')
    }
}

fn finish_op(b: OpBuilder) -> Result<ParsedOp, ImportError> {
    let at = format!("line {}, <STMTTRN>", b.line);
    let date = b.posted.ok_or_else(|| ImportError::at(F, at.clone(), "the transaction has no <DTPOSTED>"))?;
    let amount = b.amount.ok_or_else(|| ImportError::at(F, at.clone(), "the transaction has no <TRNAMT>"))?;
    let label = b.name.clone().or(b.payee.clone()).or(b.memo.clone()).unwrap_or_else(|| "(no label)".into());
    let original_label = match (&b.name, &b.memo) {
        (Some(_), Some(m)) => Some(m.clone()),
        _ => None,
    };
    let mut op = ParsedOp::new(b.line, date, amount, label);
    op.bank_id = b.fitid.filter(|f| !f.is_empty());
    op.value_date = b.avail;
    op.original_label = original_label;
    op.kind = operation_kind(b.kind.as_deref().unwrap_or("OTHER")).into();
    if let Some(c) = b.orig_currency {
        let rate = b.rate.filter(|r| *r != Amount::ZERO);
        if b.currency_is_original {
            // ORIGCURRENCY: TRNAMT is already in CURDEF; CURRATE converts
            // the original into it.
            let original = rate.and_then(|r| convert(&amount, &r, false)).unwrap_or(amount);
            op.original = Some((c, original));
        } else {
            // CURRENCY: TRNAMT is in CURSYM; CURRATE converts it into CURDEF.
            let Some(rate) = rate else {
                return Err(ImportError::at(F, at, "a <CURRENCY> transaction needs a non-zero <CURRATE>"));
            };
            op.amount = convert(&amount, &rate, true)
                .ok_or_else(|| ImportError::at(F, at.clone(), "the converted amount is out of range"))?;
            op.original = Some((c, amount));
        }
    }
    Ok(op)
}

/// `a * rate` or `a / rate`, rounded half away from zero to 2 decimals
/// (OFX gives no more precision for converted amounts).
fn convert(a: &Amount, rate: &Amount, multiply: bool) -> Option<Amount> {
    let pow = |n: i64| 10i128.checked_pow(u32::try_from(n).ok()?);
    let (num, den) = if multiply {
        // a.u * r.u / 10^(a.s + r.s), wanted in thousandths.
        let n = i128::from(a.units()) * i128::from(rate.units());
        let shift = i64::from(a.scale()) + i64::from(rate.scale()) - 3;
        if shift >= 0 {
            (n, pow(shift)?)
        } else {
            (n * pow(-shift)?, 1)
        }
    } else {
        // (a.u / 10^a.s) / (r.u / 10^r.s), in thousandths.
        (
            i128::from(a.units()) * pow(i64::from(rate.scale()) + 3)?,
            i128::from(rate.units()) * pow(i64::from(a.scale()))?,
        )
    };
    if den == 0 {
        return None;
    }
    let thousandths = num / den;
    let rounded = if thousandths >= 0 { (thousandths + 5) / 10 } else { (thousandths - 5) / 10 };
    i64::try_from(rounded).ok().map(|u| Amount::new(u, 2))
}

fn account_kind(acct_type: &str) -> &'static str {
    match acct_type {
        "CHECKING" => "Checkings",
        "SAVINGS" | "MONEYMRKT" => "Savings",
        "CREDITLINE" => "Loan",
        _ => "Other",
    }
}

/// OFX TRNTYPE to Cozy's operation type.
pub fn operation_kind(trntype: &str) -> &'static str {
    match trntype {
        "POS" => "credit card",
        "ATM" | "CASH" => "cash",
        "CHECK" => "check",
        "XFER" => "transfer",
        "DIRECTDEBIT" | "REPEATPMT" => "direct debit",
        "DEP" | "DIRECTDEP" => "deposit",
        "FEE" | "SRVCHG" => "fee",
        "INT" | "DIV" => "interest",
        "PAYMENT" => "payment",
        "CREDIT" => "credit",
        "DEBIT" => "debit",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SGML: &str = "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nCHARSET:1252\n\n<OFX><BANKMSGSRSV1><STMTTRNRS>\
<STMTRS><CURDEF>EUR<BANKACCTFROM><BANKID>30004<ACCTID>0001234<ACCTTYPE>CHECKING</BANKACCTFROM>\n\
<BANKTRANLIST><DTSTART>20240101<DTEND>20240131\n\
<STMTTRN><TRNTYPE>POS<DTPOSTED>20240105120000.000[+1:CET]<TRNAMT>-6.60<FITID>A1<NAME>CAFE &amp; CO<MEMO>CB 04/01</STMTTRN>\n\
<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20240107<TRNAMT>1500,00<FITID>A2<NAME>SALAIRE</STMTTRN>\n\
</BANKTRANLIST><LEDGERBAL><BALAMT>1493.40<DTASOF>20240131</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n";

    #[test]
    fn sgml_statement() {
        let s = parse(SGML).expect("parse");
        assert_eq!(s.len(), 1);
        let st = &s[0];
        assert_eq!(st.account.number.as_deref(), Some("0001234"));
        assert_eq!(st.account.currency, Currency::parse("EUR").ok());
        assert_eq!(st.operations.len(), 2);
        assert_eq!(st.operations[0].label, "CAFE & CO");
        assert_eq!(st.operations[0].amount.to_string(), "-6.60");
        assert_eq!(st.operations[0].kind, "credit card");
        assert_eq!(st.operations[0].line, 8);
        assert_eq!(st.operations[1].amount.to_string(), "1500.00");
        assert_eq!(st.balance.as_ref().map(|b| b.amount.to_string()), Some("1493.40".into()));
    }

    #[test]
    fn xml_statement_with_foreign_currency() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE"?>
<OFX><CREDITCARDMSGSRSV1><CCSTMTTRNRS><CCSTMTRS><CURDEF>USD</CURDEF>
<CCACCTFROM><ACCTID>4111</ACCTID></CCACCTFROM><BANKTRANLIST>
<STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20240301</DTPOSTED><TRNAMT>-110.00</TRNAMT><FITID>X</FITID>
<PAYEE><NAME>Hotel Lisboa</NAME></PAYEE><MEMO></MEMO><ORIGCURRENCY><CURRATE>1.1</CURRATE><CURSYM>EUR</CURSYM></ORIGCURRENCY></STMTTRN>
<STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20240302</DTPOSTED><TRNAMT>-20.00</TRNAMT><FITID>Y</FITID>
<NAME>Taxi</NAME><CURRENCY><CURRATE>1.085</CURRATE><CURSYM>EUR</CURSYM></CURRENCY></STMTTRN>
</BANKTRANLIST></CCSTMTRS></CCSTMTTRNRS></CREDITCARDMSGSRSV1></OFX>"#;
        let s = parse(xml).expect("parse");
        let op = &s[0].operations[0];
        assert_eq!(op.label, "Hotel Lisboa");
        assert_eq!(s[0].account.kind.as_deref(), Some("CreditCard"));
        let (c, a) = op.original.expect("original");
        assert_eq!((c.code(), a.to_string()), ("EUR", "-100.00".to_string()));
        let taxi = &s[0].operations[1];
        assert_eq!(taxi.amount.to_string(), "-21.70");
        assert_eq!(
            taxi.original.map(|(c, a)| (c.code().to_owned(), a.to_string())),
            Some(("EUR".into(), "-20.00".into()))
        );
        assert_eq!(s[0].balance, None);
    }

    #[test]
    fn truncation_is_located() {
        let cut = &SGML[..SGML.find("<TRNAMT>1500").expect("find") + 10];
        let err = parse(cut).expect_err("truncated").to_string();
        assert!(err.contains("line 9") && err.contains("<STMTTRN> opened at line 9"), "{err}");
        let cut = &SGML[..SGML.find("</BANKTRANLIST>").expect("find") + 3];
        let err = parse(cut).expect_err("truncated").to_string();
        assert!(err.contains("inside a tag"), "{err}");
    }

    #[test]
    fn bad_values_are_located() {
        let bad = SGML.replace("<TRNAMT>-6.60", "<TRNAMT>-6.6.0");
        let err = parse(&bad).expect_err("bad amount").to_string();
        assert!(err.contains("line 8, <TRNAMT>") && err.contains("-6.6.0"), "{err}");
        let bad = SGML.replace("<CURDEF>EUR", "<CURDEF>EUX");
        let err = parse(&bad).expect_err("bad currency").to_string();
        assert!(err.contains("<CURDEF>") && err.contains("EUX") && err.contains("ISO 4217"), "{err}");
        let bad = SGML.replace("<DTPOSTED>20240107", "<DTPOSTED>20240231");
        assert!(parse(&bad).expect_err("bad date").to_string().contains("line 9, <DTPOSTED>"));
        let bad = SGML.replace("</STMTRS>", "</STMTRX>");
        assert!(parse(&bad).expect_err("bad close").to_string().contains("</STMTRX> closes nothing"));
        assert!(matches!(parse("hello world"), Err(ImportError::NotAStatement(_))));
    }
}
