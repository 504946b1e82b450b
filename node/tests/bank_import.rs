//! Bank statement import into a real redb store: each format from fixtures
//! written here after the public specifications (OFX 1.6 SGML, OFX 2.2
//! XML, ISO 20022 camt.053.001.02, bank CSV exports), re-imports that never
//! duplicate, and bad input that stores nothing at all.

use hearth_node::bank::store::{accounts, import, operations, AccountRecord};
use hearth_node::bank::{parse_file, ImportError, ImportOptions, Operation};
use hearth_node::store::Store;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb")).expect("open");
    (dir, store)
}

fn run(store: &Store, bytes: &[u8], options: ImportOptions) -> Result<hearth_node::bank::ImportReport, ImportError> {
    let parsed = parse_file(bytes, &options)?;
    import(store, parsed, options.account.as_deref()).map(|i| i.report)
}

fn named(account: &str) -> ImportOptions {
    ImportOptions { account: Some(account.into()), ..Default::default() }
}

/// Everything the bank tables hold.
fn dump(store: &Store) -> Vec<(AccountRecord, Vec<Operation>)> {
    accounts(store)
        .expect("accounts")
        .into_iter()
        .map(|a| {
            let ops = operations(store, &a.account.id, None).expect("operations");
            (a, ops)
        })
        .collect()
}

/// An OFX 1.x SGML statement (no closing tags on leaves) for account
/// `acct`, with `(fitid, date, amount, name)` transactions.
fn ofx_sgml(acct: &str, txns: &[(&str, &str, &str, &str)], balance: &str, asof: &str) -> String {
    let mut s = String::from(
        "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:160\r\nSECURITY:NONE\r\nENCODING:USASCII\r\nCHARSET:1252\r\n\
         COMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n<OFX>\r\n<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0\
         <SEVERITY>INFO</STATUS><DTSERVER>20240201<LANGUAGE>FRA</SONRS></SIGNONMSGSRSV1>\r\n<BANKMSGSRSV1>\r\n\
         <STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>\r\n<STMTRS>\r\n<CURDEF>EUR\r\n",
    );
    s += &format!("<BANKACCTFROM>\r\n<BANKID>30004\r\n<BRANCHID>00001\r\n<ACCTID>{acct}\r\n<ACCTTYPE>CHECKING\r\n</BANKACCTFROM>\r\n");
    s += "<BANKTRANLIST>\r\n<DTSTART>20240101\r\n<DTEND>20240131\r\n";
    for (fitid, date, amount, name) in txns {
        let kind = if amount.starts_with('-') { "DEBIT" } else { "CREDIT" };
        s += &format!(
            "<STMTTRN>\r\n<TRNTYPE>{kind}\r\n<DTPOSTED>{date}120000[+1:CET]\r\n<TRNAMT>{amount}\r\n<FITID>{fitid}\r\n<NAME>{name}\r\n</STMTTRN>\r\n"
        );
    }
    s += &format!(
        "</BANKTRANLIST>\r\n<LEDGERBAL>\r\n<BALAMT>{balance}\r\n<DTASOF>{asof}\r\n</LEDGERBAL>\r\n</STMTRS>\r\n</STMTTRNRS>\r\n</BANKMSGSRSV1>\r\n</OFX>\r\n"
    );
    s
}

fn ofx_xml() -> String {
    r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>
<OFX>
  <SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS><DTSERVER>20240301</DTSERVER><LANGUAGE>ENG</LANGUAGE></SONRS></SIGNONMSGSRSV1>
  <CREDITCARDMSGSRSV1><CCSTMTTRNRS><TRNUID>1</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
    <CCSTMTRS><CURDEF>USD</CURDEF><CCACCTFROM><ACCTID>4111111111111111</ACCTID></CCACCTFROM>
      <BANKTRANLIST><DTSTART>20240201</DTSTART><DTEND>20240229</DTEND>
        <STMTTRN><TRNTYPE>POS</TRNTYPE><DTPOSTED>20240203</DTPOSTED><TRNAMT>-42.10</TRNAMT><FITID>CC-1</FITID><NAME>Grocer &amp; Sons</NAME></STMTTRN>
        <STMTTRN><TRNTYPE>PAYMENT</TRNTYPE><DTPOSTED>20240220</DTPOSTED><TRNAMT>500.00</TRNAMT><FITID>CC-2</FITID><NAME>Payment, thank you</NAME></STMTTRN>
      </BANKTRANLIST>
      <LEDGERBAL><BALAMT>-1234.56</BALAMT><DTASOF>20240229</DTASOF></LEDGERBAL>
    </CCSTMTRS></CCSTMTTRNRS></CREDITCARDMSGSRSV1>
</OFX>
"#
    .to_owned()
}

fn camt(entries: &[(&str, &str, &str, &str)], closing: &str) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
<BkToCstmrStmt>
<GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2024-02-01T06:00:00</CreDtTm></GrpHdr>
<Stmt>
<Id>STMT-1</Id><CreDtTm>2024-02-01T06:00:00</CreDtTm>
<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy><Svcr><FinInstnId><BIC>COBADEFFXXX</BIC></FinInstnId></Svcr></Acct>
"#,
    );
    s += &format!(
        "<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{closing}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-01-31</Dt></Dt></Bal>\n"
    );
    for (reference, date, amount, who) in entries {
        let (ind, abs) = match amount.strip_prefix('-') {
            Some(a) => ("DBIT", a),
            None => ("CRDT", *amount),
        };
        let party = if ind == "DBIT" { "Cdtr" } else { "Dbtr" };
        s += &format!(
            "<Ntry><Amt Ccy=\"EUR\">{abs}</Amt><CdtDbtInd>{ind}</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>{date}</Dt></BookgDt>\
             <ValDt><Dt>{date}</Dt></ValDt><AcctSvcrRef>{reference}</AcctSvcrRef>\
             <NtryDtls><TxDtls><RltdPties><{party}><Nm>{who}</Nm></{party}></RltdPties></TxDtls></NtryDtls></Ntry>\n"
        );
    }
    s += "</Stmt>\n</BkToCstmrStmt>\n</Document>\n";
    s
}

const JAN: &[(&str, &str, &str, &str)] = &[
    ("T1", "20240103", "-12.50", "BOULANGERIE"),
    ("T2", "20240105", "2100.00", "SALAIRE"),
    ("T3", "20240110", "-64.99", "EDF"),
];
const JAN_FEB: &[(&str, &str, &str, &str)] =
    &[("T3", "20240110", "-64.99", "EDF"), ("T4", "20240202", "-8.00", "CINEMA")];

#[test]
fn ofx_sgml_import_then_overlapping_reimport() {
    let (_d, store) = open();
    let r =
        run(&store, ofx_sgml("0001234567", JAN, "2022.51", "20240131").as_bytes(), Default::default()).expect("import");
    assert_eq!((r.format.as_str(), r.accounts.len()), ("OFX", 1));
    let a = &r.accounts[0];
    assert!(a.created);
    assert_eq!((a.added, a.duplicates, a.name.as_str()), (3, 0, "checkings-4567"));
    assert_eq!(a.balance.as_deref(), Some("2022.51"));
    // The next statement overlaps by one operation and has a newer balance.
    let r = run(&store, ofx_sgml("0001234567", JAN_FEB, "2014.51", "20240229").as_bytes(), Default::default())
        .expect("import");
    assert_eq!((r.accounts[0].added, r.accounts[0].duplicates, r.accounts[0].created), (1, 1, false));
    // An older statement imported late does not move the balance back.
    run(&store, ofx_sgml("0001234567", JAN, "2022.51", "20240131").as_bytes(), Default::default()).expect("again");
    let all = dump(&store);
    assert_eq!(all.len(), 1);
    let (account, ops) = &all[0];
    assert_eq!(account.account.balance.as_ref().map(|b| b.amount.to_string()), Some("2014.51".into()));
    assert_eq!(account.account.currency.code(), "EUR");
    let got: Vec<(String, String, String)> =
        ops.iter().map(|o| (o.date.to_string(), o.amount.to_string(), o.label.clone())).collect();
    assert_eq!(
        got,
        vec![
            ("2024-01-03".into(), "-12.50".into(), "BOULANGERIE".into()),
            ("2024-01-05".into(), "2100.00".into(), "SALAIRE".into()),
            ("2024-01-10".into(), "-64.99".into(), "EDF".into()),
            ("2024-02-02".into(), "-8.00".into(), "CINEMA".into()),
        ]
    );
    assert_eq!(account.op_count, 4);
    assert_eq!(account.op_sum.to_string(), "2014.51");
    // --since
    let since = operations(&store, &account.account.id, Some("2024-01-10".parse().expect("date"))).expect("ops");
    assert_eq!(since.len(), 2);
}

#[test]
fn ofx_xml_credit_card_and_camt() {
    let (_d, store) = open();
    let r = run(&store, ofx_xml().as_bytes(), Default::default()).expect("ofx xml");
    assert_eq!((r.accounts[0].added, r.accounts[0].balance.as_deref()), (2, Some("-1234.56")));
    let camt_text = camt(
        &[("R-1", "2024-01-04", "-30.00", "Pharmacie"), ("R-2", "2024-01-20", "1500.00", "Caisse de retraite")],
        "3470.00",
    );
    let r = run(&store, camt_text.as_bytes(), named("Pension")).expect("camt");
    assert_eq!(r.format, "camt.053");
    assert_eq!((r.accounts[0].name.as_str(), r.accounts[0].added), ("Pension", 2));
    // The same file again: nothing new.
    let r = run(&store, camt_text.as_bytes(), Default::default()).expect("camt again");
    assert_eq!((r.accounts[0].name.as_str(), r.accounts[0].added, r.accounts[0].duplicates), ("Pension", 0, 2));
    let all = dump(&store);
    assert_eq!(all.len(), 2);
    let pension = all.iter().find(|(a, _)| a.account.label == "Pension").expect("pension");
    assert_eq!(pension.0.account.number.as_deref(), Some("DE89370400440532013000"));
    assert_eq!(pension.1[0].label, "Pharmacie");
    assert_eq!(pension.1[0].bank_id.as_deref(), Some("R-1"));
    let card = all.iter().find(|(a, _)| a.account.kind == "CreditCard").expect("card");
    assert_eq!(card.1[0].label, "Grocer & Sons");
}

#[test]
fn csv_with_preset_and_mapping_dedups_by_fingerprint() {
    let (_d, store) = open();
    let text = "Date;Libellé;Montant\n03/01/2024;CB BOULANGERIE;-2,40\n03/01/2024;CB BOULANGERIE;-2,40\n05/01/2024;VIR RETRAITE;1 500,00\n";
    // CSV says nothing of the account: --account is required.
    let err = run(&store, text.as_bytes(), Default::default()).expect_err("no account");
    assert!(err.to_string().contains("--account"), "{err}");
    let r = run(&store, text.as_bytes(), named("Maman")).expect("csv");
    assert_eq!(r.accounts[0].added, 3, "two identical coffees are two operations");
    // A later export that repeats the 5th and adds one: one new operation.
    let later = "Date;Libellé;Montant\n05/01/2024;VIR RETRAITE;1 500,00\n08/01/2024;PHARMACIE;-15,20\n";
    let r = run(&store, later.as_bytes(), named("Maman")).expect("csv 2");
    assert_eq!((r.accounts[0].added, r.accounts[0].duplicates), (1, 1));
    // The first file again, through an explicit mapping: nothing new.
    let options = ImportOptions {
        account: Some("Maman".into()),
        csv_map: Some(
            "date=Date,label=Libellé,amount=Montant,delimiter=semicolon,decimal=comma,thousands=space,dates=dmy,currency_code=EUR"
                .into(),
        ),
        ..Default::default()
    };
    let r = run(&store, text.as_bytes(), options).expect("csv 3");
    assert_eq!((r.accounts[0].added, r.accounts[0].duplicates), (0, 3));
    let (account, ops) = &dump(&store)[0];
    assert_eq!(ops.len(), 4);
    assert_eq!(account.view().balance.as_deref(), Some("1480.00"));
    assert_eq!(account.view().balance_source.as_deref(), Some("operations"));
}

#[test]
fn bad_files_store_nothing() {
    let (_d, store) = open();
    run(&store, ofx_sgml("0001234567", JAN, "2022.51", "20240131").as_bytes(), Default::default()).expect("import");
    let before = dump(&store);

    let full = ofx_sgml("0001234567", JAN_FEB, "2014.51", "20240229");
    // Truncated in the middle of the last transaction: T3 is a duplicate and
    // T4 is new, and still nothing is stored.
    let cut = &full[..full.find("<NAME>CINEMA").expect("find")];
    let err = run(&store, cut.as_bytes(), Default::default()).expect_err("truncated").to_string();
    assert!(err.contains("<STMTTRN> opened at line") && err.contains("truncated"), "{err}");
    assert_eq!(dump(&store), before);

    // Conflicting transaction id: T3 with another amount.
    let conflicting = ofx_sgml(
        "0001234567",
        &[("T4", "20240202", "-8.00", "CINEMA"), ("T3", "20240110", "-69.99", "EDF")],
        "0",
        "20240229",
    );
    let err = run(&store, conflicting.as_bytes(), Default::default()).expect_err("conflict");
    assert!(matches!(err, ImportError::Conflict { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("\"T3\"") && text.contains("-64.99") && text.contains("-69.99"), "{text}");
    assert_eq!(dump(&store), before);

    // The same id twice in one file with different amounts.
    let twice =
        ofx_sgml("0009999999", &[("D1", "20240101", "-1.00", "A"), ("D1", "20240101", "-2.00", "A")], "0", "20240101");
    assert!(matches!(run(&store, twice.as_bytes(), Default::default()), Err(ImportError::Conflict { .. })));
    assert_eq!(dump(&store), before);

    // Unknown currency, wrong decimal separator, invalid date.
    let unknown = full.replace("<CURDEF>EUR", "<CURDEF>EUX");
    let err = run(&store, unknown.as_bytes(), Default::default()).expect_err("currency").to_string();
    assert!(err.contains("<CURDEF>") && err.contains("ISO 4217"), "{err}");
    let camt_comma = camt(&[("R-9", "2024-01-04", "-30,00", "X")], "1.00");
    let err = run(&store, camt_comma.as_bytes(), named("x")).expect_err("comma").to_string();
    assert!(err.contains("<Amt>") && err.contains("decimal mark"), "{err}");
    let csv_dot = "Date;Libellé;Montant\n03/01/2024;CB;-2.40\n";
    let err = run(&store, csv_dot.as_bytes(), named("Maman")).expect_err("dot").to_string();
    assert!(err.contains("line 2") && err.contains("decimal mark"), "{err}");
    let bad_date = full.replace("<DTPOSTED>20240202", "<DTPOSTED>20240231");
    assert!(run(&store, bad_date.as_bytes(), Default::default()).is_err());

    // Files that are not statements at all.
    for not_bank in [
        &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..],
        b"<html><head><title>Login</title></head><body>Session expired</body></html>",
        b"Dear Sir,\nplease find attached\n",
        b"name,email\nbob,bob@example.org\n",
        b"",
    ] {
        let err = run(&store, not_bank, Default::default()).expect_err("not a statement");
        assert!(matches!(err, ImportError::NotAStatement(_)), "{err}");
    }
    // A camt file whose currency differs from the existing account's.
    let usd = camt(&[("R-1", "2024-01-04", "-30.00", "X")], "1.00").replace("EUR", "USD");
    run(&store, usd.as_bytes(), Default::default()).expect("new USD account");
    let before = dump(&store);
    let eur_again = camt(&[("R-2", "2024-01-05", "-1.00", "X")], "1.00");
    let err = run(&store, eur_again.as_bytes(), Default::default()).expect_err("currency change").to_string();
    assert!(err.contains("is in USD"), "{err}");
    assert_eq!(dump(&store), before);
}

#[test]
fn cozy_json_export_round_trips_exactly() {
    let (_d, store) = open();
    run(&store, ofx_sgml("0001234567", JAN, "2022.51", "20240131").as_bytes(), Default::default()).expect("import");
    let (account, ops) = dump(&store).remove(0);
    let doc = hearth_node::bank::cozy::export(&account.account, &ops);
    let text = serde_json::to_string(&doc).expect("json");
    assert!(text.contains("\"amount\":-12.50") && text.contains("\"balance\":2022.51"), "{text}");
    assert!(text.contains("\"io.cozy.bank.operations\"") && text.contains("\"label\":\"BOULANGERIE\""));
    // Into another node: the same account, the same operations and keys.
    let (_d2, other) = open();
    run(&other, text.as_bytes(), Default::default()).expect("cozy import");
    let (a2, ops2) = dump(&other).remove(0);
    assert_eq!(a2.account, account.account);
    assert_eq!(ops2, ops);
    // And back into the first: all duplicates.
    let r = run(&store, text.as_bytes(), Default::default()).expect("cozy again");
    assert_eq!((r.accounts[0].added, r.accounts[0].duplicates), (0, 3));
}

/// Every cut of a statement before its last closing tag is refused (a
/// truncated download never imports part of a file), and no mangled byte
/// makes a parser panic.
#[test]
fn every_truncation_is_refused_and_nothing_panics() {
    let ofx = ofx_sgml("0001234567", JAN, "2022.51", "20240131");
    let xml = ofx_xml();
    let camt_text =
        camt(&[("R-1", "2024-01-04", "-30.00", "Pharmacie"), ("R-2", "2024-01-20", "1500.00", "Retraite")], "1.00");
    for (name, text, end) in [("ofx", &ofx, "</OFX>"), ("ofx xml", &xml, "</OFX>"), ("camt", &camt_text, "</Document>")]
    {
        let complete = text.rfind(end).expect("closing tag") + end.len();
        assert!(parse_file(text.as_bytes(), &named("x")).is_ok(), "{name} complete");
        for cut in (1..complete).filter(|&i| text.is_char_boundary(i)) {
            assert!(parse_file(&text.as_bytes()[..cut], &named("x")).is_err(), "{name} cut at {cut} was accepted");
        }
    }
    let csv = "Date;Libellé;Montant\n03/01/2024;CB BOULANGERIE;-2,40\n05/01/2024;VIR RETRAITE;1 500,00\n";
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for text in [&ofx, &xml, &camt_text, &csv.to_string()] {
        for _ in 0..300 {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..3 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng as usize) % bytes.len();
                bytes[i] = (rng >> 32) as u8;
            }
            let _ = parse_file(&bytes, &named("x"));
        }
    }
}
