//! `hearth bank ...` as a person runs it: import statements, list accounts
//! and operations (text and `--json`), export to the Cozy shape and import
//! that into another node, and the error a person sees for a broken file.

mod common;

use std::path::Path;

use common::{set_network, Runner};

fn loopback_only(home: &Path) {
    set_network(home, &["/ip4/127.0.0.1/udp/0/quic-v1".into(), "/ip4/127.0.0.1/tcp/0".into()], false);
}

const CAMT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>1</MsgId><CreDtTm>2024-03-01T00:00:00</CreDtTm></GrpHdr>
<Stmt><Id>1</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN></Id><Ccy>CHF</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CHF">1200.05</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-02-29</Dt></Dt></Bal>
<Ntry><Amt Ccy="CHF">99.95</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2024-02-10</Dt></BookgDt><AcctSvcrRef>C-1</AcctSvcrRef><AddtlNtryInf>Migros</AddtlNtryInf></Ntry>
<Ntry><Amt Ccy="CHF">1300.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2024-02-25</Dt></BookgDt><AcctSvcrRef>C-2</AcctSvcrRef><AddtlNtryInf>AHV Rente</AddtlNtryInf></Ntry>
</Stmt></BkToCstmrStmt></Document>
"#;

#[test]
fn import_list_export_reimport_with_the_cli() {
    let hearth = Runner::direct();
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("A"), dir.path().join("B"));
    for (home, name) in [(&a, "anna"), (&b, "ben")] {
        hearth.ok(home, &["init", "--name", name]);
        loopback_only(home);
    }
    let _up_a = hearth.up(&a);
    let _up_b = hearth.up(&b);

    let camt = dir.path().join("feb.xml");
    std::fs::write(&camt, CAMT).expect("write");
    let camt_path = camt.to_str().expect("utf-8");
    let out = hearth.ok(&a, &["bank", "import", camt_path, "--account", "Konto"]);
    assert!(out.contains("Konto (new account): 2 operation(s) added, 0 already known; balance 1200.05"), "{out}");
    let out = hearth.ok(&a, &["bank", "import", camt_path]);
    assert!(out.contains("Konto: 0 operation(s) added, 2 already known"), "{out}");

    let csv = dir.path().join("export.csv");
    std::fs::write(&csv, "Posting Date,Description,Amount,Type,Balance\n03/01/2024,COFFEE,-4.50,DEBIT_CARD,95.50\n")
        .expect("write");
    let out =
        hearth.ok(&a, &["bank", "import", csv.to_str().expect("utf-8"), "--account", "Chase", "--csv-preset", "chase"]);
    assert!(out.contains("Chase (new account): 1 operation(s) added") && out.contains("balance 95.50"), "{out}");

    let accounts: serde_json::Value =
        serde_json::from_str(&hearth.ok(&a, &["bank", "accounts", "--json"])).expect("json");
    let konto = accounts.as_array().expect("array").iter().find(|x| x["name"] == "Konto").expect("konto");
    assert_eq!((konto["balance"].as_str(), konto["currency"].as_str()), (Some("1200.05"), Some("CHF")));
    assert!(konto["id"].as_str().is_some_and(|id| id.len() == 16));
    let text = hearth.ok(&a, &["bank", "accounts"]);
    assert!(text.contains("Konto") && text.contains("1200.05") && text.contains("Chase"), "{text}");

    let ops: serde_json::Value =
        serde_json::from_str(&hearth.ok(&a, &["bank", "operations", "Konto", "--since", "2024-02-11", "--json"]))
            .expect("json");
    assert_eq!(ops.as_array().map(Vec::len), Some(1));
    assert_eq!(
        (ops[0]["date"].as_str(), ops[0]["amount"].as_str(), ops[0]["label"].as_str()),
        (Some("2024-02-25"), Some("1300.00"), Some("AHV Rente"))
    );
    let text = hearth.ok(&a, &["bank", "operations", "Konto"]);
    assert!(text.contains("2024-02-10        -99.95 CHF  Migros"), "{text}");

    // A truncated file: a clear error naming the place, and nothing stored.
    let cut = dir.path().join("cut.xml");
    std::fs::write(&cut, &CAMT[..CAMT.find("<AddtlNtryInf>AHV").expect("find")]).expect("write");
    let err = hearth.fails(&a, &["bank", "import", cut.to_str().expect("utf-8")]);
    assert!(
        err.contains("camt.053 file, line 7") && err.contains("truncated") && err.contains("nothing was imported"),
        "{err}"
    );
    let err = hearth.fails(&a, &["bank", "operations", "Nope"]);
    assert!(err.contains("no bank account or view named \"Nope\""), "{err}");

    // Export, then import on another node: the same account and operations.
    let out = dir.path().join("konto.json");
    hearth.ok(&a, &["bank", "export", "Konto", "--format", "cozy-json", "--out", out.to_str().expect("utf-8")]);
    let exported = std::fs::read_to_string(&out).expect("read");
    assert!(exported.contains("\"amount\": -99.95") && exported.contains("\"io.cozy.bank.accounts\""), "{exported}");
    assert!(exported.contains("\"iban\": \"CH9300762011623852957\""), "{exported}");
    let imported = hearth.ok(&b, &["bank", "import", out.to_str().expect("utf-8")]);
    assert!(imported.contains("Konto (new account): 2 operation(s) added"), "{imported}");
    assert_eq!(
        hearth.ok(&b, &["bank", "operations", "Konto", "--json"]),
        hearth.ok(&a, &["bank", "operations", "Konto", "--json"])
    );
}
