//! ISO 20022 camt.053 (bank-to-customer statement), versions 001.02 to
//! 001.13, read with quick-xml; element names are matched without their
//! namespace prefix.
//!
//! Read per `Stmt`: the account (`Acct/Id/IBAN` or `Acct/Id/Othr/Id`,
//! `Acct/Ccy`, `Acct/Nm`, the servicer's BIC), the closing booked balance
//! (`Bal` of type `CLBD`) and every booked entry (`Ntry` with status
//! `BOOK`; pending and information-only entries are skipped, since the
//! bank books them later under their final reference). The entry's sign is
//! its `CdtDbtInd`: a reversal (`RvslInd`) is booked in the direction the
//! indicator gives. The transaction id is `AcctSvcrRef` (the bank's own
//! reference), else `NtryRef`, else the single transaction's
//! `Refs/AcctSvcrRef`. Amounts are XML Schema decimals: `.` only.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::model::{Amount, Balance, Currency, Date};
use super::statement::{Format, ImportError, ParsedOp, Statement};

const F: Format = Format::Camt053;

#[derive(Default)]
struct Entry {
    line: usize,
    amount: Option<(Amount, Option<Currency>, usize)>,
    credit: Option<bool>,
    status: Option<String>,
    booked: Option<Date>,
    value: Option<Date>,
    svcr_ref: Option<String>,
    ntry_ref: Option<String>,
    tx_refs: Vec<String>,
    creditor: Option<String>,
    debtor: Option<String>,
    unstructured: Vec<String>,
    additional: Option<String>,
    instructed: Option<(Currency, Amount)>,
    family: Option<String>,
}

#[derive(Default)]
struct Bal {
    code: Option<String>,
    amount: Option<Amount>,
    credit: Option<bool>,
    date: Option<Date>,
}

struct Lines<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, pos: usize) -> usize {
        let pos = pos.min(self.text.len());
        if pos > self.pos {
            self.line += self.text[self.pos..pos].iter().filter(|&&b| b == b'\n').count();
            self.pos = pos;
        }
        self.line
    }
}

fn ccy_attr(e: &BytesStart<'_>, line: usize) -> Result<Option<Currency>, ImportError> {
    match e.try_get_attribute("Ccy") {
        Ok(Some(a)) => {
            Currency::parse(&a.value).map(Some).map_err(|err| ImportError::at(F, format!("line {line}, <Amt>"), err))
        }
        _ => Ok(None),
    }
}

/// Parses a camt.053 document into its statements.
pub fn parse(text: &str) -> Result<Vec<Statement>, ImportError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut lines = Lines { text: text.as_bytes(), pos: 0, line: 1 };
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut buf = String::new();
    let mut statements = Vec::new();
    let mut stmt: Option<(Statement, usize)> = None;
    let mut entry: Option<(Entry, usize)> = None;
    let mut bal: Option<(Bal, usize)> = None;
    let mut pending_ccy: Option<Currency> = None;
    let mut seen_root = false;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| {
            let line = lines.at(reader.error_position() as usize);
            ImportError::at(F, format!("line {line}"), format!("not well-formed XML: {e}"))
        })?;
        let line = lines.at(before);
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if !seen_root {
                    seen_root = true;
                    if name != "Document" {
                        return Err(ImportError::NotAStatement(format!(
                            "this XML file's root is <{name}>, not a camt.053 <Document>"
                        )));
                    }
                }
                buf.clear();
                pending_ccy = if name == "Amt" { ccy_attr(&e, line)? } else { None };
                match name.as_str() {
                    "Stmt" if stack.last().is_some_and(|(p, _)| p == "BkToCstmrStmt") => {
                        stmt = Some((Statement::default(), stack.len()))
                    }
                    "Ntry" if stmt.is_some() => entry = Some((Entry { line, ..Default::default() }, stack.len())),
                    "Bal" if stmt.is_some() && entry.is_none() => bal = Some((Bal::default(), stack.len())),
                    _ => {}
                }
                stack.push((name, line));
            }
            Event::Empty(_) => {}
            Event::Text(t) => buf.push_str(&t.xml10_content()),
            Event::CData(t) => buf.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match r.xml10_content().as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    },
                };
                match c {
                    Some(c) => buf.push(c),
                    None => {
                        return Err(ImportError::at(
                            F,
                            format!("line {line}"),
                            format!("unknown entity &{};", r.xml10_content()),
                        ))
                    }
                }
            }
            Event::End(_) => {
                let depth = stack.len() - 1;
                let value = buf.trim().to_owned();
                buf.clear();
                let names: Vec<&str> = stack.iter().map(|(n, _)| n.as_str()).collect();
                let at = || format!("line {line}, <{}>", names[depth]);
                if let Some((e, d)) = entry.as_mut() {
                    let rel = &names[*d + 1..];
                    if rel.is_empty() {
                        let (e, _) = entry.take().expect("entry is open");
                        if let Some((s, _)) = stmt.as_mut() {
                            if let Some(op) = finish_entry(e, s.account.currency)? {
                                s.operations.push(op);
                            }
                        }
                    } else {
                        entry_field(e, rel, &value, pending_ccy, line).map_err(|m| ImportError::at(F, at(), m))?;
                    }
                } else if let Some((b, d)) = bal.as_mut() {
                    let rel = &names[*d + 1..];
                    match rel {
                        [] => {
                            let (b, bal_line) = (bal.take().expect("balance is open").0, line);
                            if let (Some((s, _)), Some("CLBD")) = (stmt.as_mut(), b.code.as_deref()) {
                                let (Some(amount), Some(credit), Some(date)) = (b.amount, b.credit, b.date) else {
                                    return Err(ImportError::at(
                                        F,
                                        format!("line {bal_line}, <Bal>"),
                                        "the closing balance lacks Amt, CdtDbtInd or Dt",
                                    ));
                                };
                                s.balance = Some(Balance { amount: if credit { amount } else { amount.neg() }, date });
                                if s.account.currency.is_none() {
                                    s.account.currency = pending_ccy;
                                }
                            }
                        }
                        ["Tp", "CdOrPrtry", "Cd"] => b.code = Some(value),
                        ["Amt"] => {
                            b.amount = Some(Amount::parse(&value, '.').map_err(|m| ImportError::at(F, at(), m))?);
                            if let (Some((s, _)), Some(c)) = (stmt.as_mut(), pending_ccy) {
                                s.account.currency.get_or_insert(c);
                            }
                        }
                        ["CdtDbtInd"] => b.credit = Some(indicator(&value).map_err(|m| ImportError::at(F, at(), m))?),
                        ["Dt", "Dt" | "DtTm"] => {
                            b.date = Some(Date::parse_iso(&value).map_err(|m| ImportError::at(F, at(), m))?)
                        }
                        _ => {}
                    }
                } else if let Some((s, d)) = stmt.as_mut() {
                    let rel = &names[*d + 1..];
                    match rel {
                        [] => {
                            let (s, _) = stmt.take().expect("statement is open");
                            if s.account.currency.is_none() {
                                return Err(ImportError::at(
                                    F,
                                    format!("line {line}, </Stmt>"),
                                    "the statement states no currency (Acct/Ccy or a balance's Ccy)",
                                ));
                            }
                            statements.push(s);
                        }
                        ["Acct", "Id", "IBAN"] | ["Acct", "Id", "Othr", "Id"] => s.account.number = Some(value),
                        ["Acct", "Ccy"] => {
                            s.account.currency = Some(Currency::parse(&value).map_err(|m| ImportError::at(F, at(), m))?)
                        }
                        ["Acct", "Nm"] => s.account.label = Some(value),
                        ["Acct", "Svcr", "FinInstnId", "BIC" | "BICFI"] => s.account.institution = Some(value),
                        _ => {}
                    }
                }
                pending_ccy = if names[depth] == "Amt" { pending_ccy } else { None };
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some((name, opened)) = stack.last() {
        return Err(ImportError::at(
            F,
            format!("line {}", lines.at(text.len())),
            format!("the file ends inside <{name}> opened at line {opened} (truncated?)"),
        ));
    }
    if !seen_root {
        return Err(ImportError::NotAStatement("this file has no XML element: it is not a camt.053 statement".into()));
    }
    if statements.is_empty() {
        return Err(ImportError::NotAStatement(
            "this XML document holds no camt.053 statement (BkToCstmrStmt/Stmt)".into(),
        ));
    }
    for s in &mut statements {
        s.account.kind.get_or_insert_with(|| "Checkings".into());
    }
    Ok(statements)
}

fn indicator(value: &str) -> Result<bool, String> {
    match value {
        "CRDT" => Ok(true),
        "DBIT" => Ok(false),
        other => Err(format!("{other:?} is neither CRDT nor DBIT")),
    }
}

fn entry_field(e: &mut Entry, rel: &[&str], value: &str, ccy: Option<Currency>, line: usize) -> Result<(), String> {
    let v = || value.to_owned();
    match rel {
        ["Amt"] => e.amount = Some((Amount::parse(value, '.').map_err(|m| m.to_string())?, ccy, line)),
        ["CdtDbtInd"] => e.credit = Some(indicator(value)?),
        ["Sts"] | ["Sts", "Cd"] => e.status = Some(v()),
        ["BookgDt", "Dt" | "DtTm"] => e.booked = Some(Date::parse_iso(value).map_err(|m| m.to_string())?),
        ["ValDt", "Dt" | "DtTm"] => e.value = Some(Date::parse_iso(value).map_err(|m| m.to_string())?),
        ["AcctSvcrRef"] => e.svcr_ref = Some(v()),
        ["NtryRef"] => e.ntry_ref = Some(v()),
        ["AddtlNtryInf"] => e.additional = Some(v()),
        ["BkTxCd", "Domn", "Fmly", "Cd"] => e.family = Some(v()),
        ["NtryDtls", "TxDtls", "Refs", "AcctSvcrRef"] => e.tx_refs.push(v()),
        ["NtryDtls", "TxDtls", "RmtInf", "Ustrd"] => e.unstructured.push(v()),
        ["NtryDtls", "TxDtls", "AmtDtls", "InstdAmt", "Amt"] => {
            if let Some(c) = ccy {
                e.instructed = Some((c, Amount::parse(value, '.').map_err(|m| m.to_string())?));
            }
        }
        ["NtryDtls", "TxDtls", "RltdPties", "Cdtr", .., "Nm"] => {
            e.creditor.get_or_insert_with(v);
        }
        ["NtryDtls", "TxDtls", "RltdPties", "Dbtr", .., "Nm"] => {
            e.debtor.get_or_insert_with(v);
        }
        _ => {}
    }
    Ok(())
}

fn finish_entry(e: Entry, account: Option<Currency>) -> Result<Option<ParsedOp>, ImportError> {
    let at = format!("line {}, <Ntry>", e.line);
    if e.status.as_deref().is_some_and(|s| s != "BOOK") {
        return Ok(None);
    }
    let (amount, ccy, amt_line) = e.amount.ok_or_else(|| ImportError::at(F, at.clone(), "the entry has no <Amt>"))?;
    if let (Some(c), Some(a)) = (ccy, account) {
        if c != a {
            return Err(ImportError::at(
                F,
                format!("line {amt_line}, <Amt>"),
                format!("the entry is in {c} but the account is in {a}; multi-currency accounts are not supported"),
            ));
        }
    }
    let credit = e.credit.ok_or_else(|| ImportError::at(F, at.clone(), "the entry has no <CdtDbtInd>"))?;
    let date = e.booked.or(e.value).ok_or_else(|| ImportError::at(F, at.clone(), "the entry has no <BookgDt>"))?;
    let amount = if credit { amount } else { amount.neg() };
    let counterparty = if credit { e.debtor.clone() } else { e.creditor.clone() };
    let remittance = (!e.unstructured.is_empty()).then(|| e.unstructured.join(" "));
    let label =
        counterparty.clone().or(remittance.clone()).or(e.additional.clone()).unwrap_or_else(|| "(no label)".into());
    let mut op = ParsedOp::new(e.line, date, amount, label);
    op.original_label = match (counterparty, remittance, e.additional) {
        (Some(_), Some(r), _) => Some(r),
        (_, _, Some(a)) => Some(a),
        _ => None,
    };
    op.value_date = e.value;
    op.bank_id = e.svcr_ref.or(e.ntry_ref).or(if e.tx_refs.len() == 1 { e.tx_refs.into_iter().next() } else { None });
    op.kind = match e.family.as_deref() {
        Some("RDDT") => "direct debit",
        Some("ICDT" | "RCDT") => "transfer",
        Some("CCRD" | "RCCN") => "credit card",
        Some("CNTR") => "cash",
        Some("CHRG") => "fee",
        _ => "other",
    }
    .into();
    op.original = e.instructed.map(|(c, a)| (c, if credit { a } else { a.neg() }));
    Ok(Some(op))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>M1</MsgId><CreDtTm>2024-02-01T08:00:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>S1</Id>
   <Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id><Ccy>EUR</Ccy><Nm>Compte courant</Nm>
    <Svcr><FinInstnId><BIC>AGRIFRPP</BIC></FinInstnId></Svcr></Acct>
   <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-01-01</Dt></Dt></Bal>
   <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1055.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-01-31</Dt></Dt></Bal>
   <Ntry>
    <Amt Ccy="EUR">44.50</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2024-01-10</Dt></BookgDt><ValDt><Dt>2024-01-09</Dt></ValDt>
    <AcctSvcrRef>REF-1</AcctSvcrRef>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RDDT</Cd><SubFmlyCd>ESDD</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls><TxDtls><RltdPties><Cdtr><Nm>EDF &amp; Co</Nm></Cdtr></RltdPties><RmtInf><Ustrd>Facture 42</Ustrd></RmtInf></TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2024-01-25</Dt></BookgDt><NtryRef>N2</NtryRef>
    <NtryDtls><TxDtls><RltdPties><Dbtr><Nm>Employer SA</Nm></Dbtr></RltdPties></TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>PDNG</Sts>
    <BookgDt><Dt>2024-01-31</Dt></BookgDt><AddtlNtryInf>pending</AddtlNtryInf>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>
"#;

    #[test]
    fn booked_entries_and_closing_balance() {
        let s = parse(SAMPLE).expect("parse");
        assert_eq!(s.len(), 1);
        let st = &s[0];
        assert_eq!(st.account.number.as_deref(), Some("FR7630006000011234567890189"));
        assert_eq!(st.account.institution.as_deref(), Some("AGRIFRPP"));
        assert_eq!(st.account.label.as_deref(), Some("Compte courant"));
        assert_eq!(
            st.balance.as_ref().map(|b| (b.amount.to_string(), b.date.to_string())),
            Some(("1055.50".into(), "2024-01-31".into()))
        );
        assert_eq!(st.operations.len(), 2, "the pending entry is skipped");
        let edf = &st.operations[0];
        assert_eq!((edf.label.as_str(), edf.amount.to_string()), ("EDF & Co", "-44.50".to_string()));
        assert_eq!(edf.bank_id.as_deref(), Some("REF-1"));
        assert_eq!(edf.original_label.as_deref(), Some("Facture 42"));
        assert_eq!(edf.kind, "direct debit");
        assert_eq!(edf.line, 11);
        assert_eq!(st.operations[1].bank_id.as_deref(), Some("N2"));
        assert_eq!(st.operations[1].label, "Employer SA");
    }

    #[test]
    fn broken_files_are_located() {
        let cut = &SAMPLE[..SAMPLE.find("<Sts>PDNG").expect("find")];
        let err = parse(cut).expect_err("truncated").to_string();
        assert!(err.contains("ends inside <Ntry> opened at line 23"), "{err}");
        let comma = SAMPLE.replace("<Amt Ccy=\"EUR\">44.50</Amt>", "<Amt Ccy=\"EUR\">44,50</Amt>");
        let err = parse(&comma).expect_err("comma").to_string();
        assert!(err.contains("line 12, <Amt>") && err.contains("decimal mark"), "{err}");
        let ccy = SAMPLE.replace("<Ccy>EUR</Ccy>", "<Ccy>EURO</Ccy>");
        assert!(parse(&ccy).expect_err("currency").to_string().contains("<Ccy>"));
        let mismatched = SAMPLE.replace("</BookgDt><NtryRef>", "</BookgDat><NtryRef>");
        assert!(parse(&mismatched).expect_err("xml").to_string().contains("not well-formed XML"));
        assert!(matches!(parse("<html><body/></html>"), Err(ImportError::NotAStatement(_))));
    }
}
