//! The web interface in a real browser: three real nodes on loopback
//! (alice, bob, carol), each browser a headless Chromium of its own with a
//! fresh profile (alice's asks for English, bob's for French), driven
//! through WebDriver like a person would: clicks and typing.
//!
//! Through the pages only: alice and bob pair (invitation made in one page,
//! pasted in the other), alice shares a folder and bob sees a file appear
//! in his page; an offline edit on both sides shows as a conflict with both
//! versions; alice imports a statement and shows the account to bob, whose
//! page draws its balance chart and, after a large debit, shows the alert;
//! bob and carol host alice's backup and her page turns to "restorable".
//! Every change on another node reaches an open page without a reload
//! (server-sent events). Screenshots of each page at desktop (1280x800)
//! and phone (390x844) widths go to `TARGET/ui-screenshots/`; on the phone
//! width no page may be wider than the screen, and no page may raise a
//! script error.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use hearth_node::backup::BackupOp;
use hearth_tests::browser::{screenshot_dir, Browser, Driver};
use hearth_tests::TestNode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const ONLINE: Duration = Duration::from_secs(20);

/// Opens a one-time login link, as printed by `hearth ui`, in `browser`.
async fn login(browser: &Browser, node: &TestNode) -> Result<()> {
    let link = node.client()?.ui_login_link().await?;
    browser.goto(&link.url).await?;
    browser.wait_text("#node-name", &node.name, WAIT).await?;
    browser.wait_for("#live[data-state=live]", WAIT).await?;
    Ok(())
}

async fn open(browser: &Browser, node: &TestNode, page: &str) -> Result<()> {
    browser.goto(&format!("{}/ui/#/{page}", node.api_base()?)).await?;
    let name = match page.split('/').next() {
        None | Some("") => "overview",
        Some(name) => name,
    };
    browser.wait_for(&format!("#main[data-page=\"{name}\"]"), WAIT).await?;
    Ok(())
}

/// Day `days_ago` days before today, `YYYY-MM-DD`.
fn day(days_ago: u64) -> String {
    hearth_node::views::rfc3339(hearth_node::now_unix() - days_ago * 86400)[..10].to_owned()
}

/// An OFX statement of "Compte courant" with `(fitid, day, amount, label)`.
fn statement(txns: &[(&str, String, &str, &str)], balance: &str, asof: &str) -> String {
    let mut s = String::from(
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nCHARSET:1252\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS>\
         <CURDEF>EUR<BANKACCTFROM><BANKID>30004<ACCTID>00012345678<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>\n",
    );
    for (fitid, date, amount, name) in txns {
        let date = date.replace('-', "");
        s += &format!("<STMTTRN><TRNTYPE>OTHER<DTPOSTED>{date}<TRNAMT>{amount}<FITID>{fitid}<NAME>{name}</STMTTRN>\n");
    }
    let asof = asof.replace('-', "");
    s += &format!("</BANKTRANLIST><LEDGERBAL><BALAMT>{balance}<DTASOF>{asof}</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n");
    s
}

/// Screenshots of `pages` at desktop and phone widths; on the phone, the
/// page must fit the screen's width.
async fn screenshots(browser: &Browser, node: &TestNode, who: &str, pages: &[(&str, &str)]) -> Result<()> {
    let dir = screenshot_dir();
    for (width, height, mobile, label) in [(1280, 800, false, "desktop"), (390, 844, true, "phone")] {
        browser.set_screen(width, height, mobile).await?;
        for (name, page) in pages {
            open(browser, node, page).await?;
            // The page has fetched and drawn its data; then a moment for
            // the layout to settle.
            browser.wait_for("#main[data-ready=true]", WAIT).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let path = dir.join(format!("{who}-{name}-{label}.png"));
            browser
                .screenshot(&path, width, height, mobile)
                .await
                .with_context(|| format!("screenshot {}", path.display()))?;
            let overflow = browser
                .eval("return document.documentElement.scrollWidth - window.innerWidth;", vec![])
                .await?
                .as_i64()
                .unwrap_or(0);
            ensure!(overflow <= 0, "{who}'s {name} page is {overflow} px wider than a {width} px screen");
            no_script_errors(browser, who).await?;
        }
    }
    browser.set_screen(1280, 800, false).await
}

/// No script error, and no failure shown to the person (a refused action
/// or a request that did not get through).
async fn no_script_errors(browser: &Browser, who: &str) -> Result<()> {
    let errors =
        browser.eval("return (window.hearthErrors || []).concat(window.hearthProblems || []);", vec![]).await?;
    ensure!(errors.as_array().is_some_and(|e| e.is_empty()), "problems in {who}'s page: {errors}");
    Ok(())
}

/// On failure: what each page showed (a screenshot and its text).
async fn post_mortem(browsers: &[(&Browser, &str)]) {
    for (browser, who) in browsers {
        let path = screenshot_dir().join(format!("FAILED-{who}.png"));
        let _ = browser.screenshot(&path, 1280, 800, false).await;
        let text = browser.text("body").await.unwrap_or_default();
        let errors = browser.eval("return (window.hearthErrors || []).concat(window.hearthProblems || []);", vec![]);
        let errors = errors.await.unwrap_or_default();
        eprintln!("--- {who}'s page ({}), script errors {errors}:\n{text}\n---", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_node_in_a_real_browser() -> Result<()> {
    let driver = Driver::start().await?;
    for old in std::fs::read_dir(screenshot_dir()).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(old.path());
    }
    let a = driver.browser("en-GB").await?;
    let b = driver.browser("fr-FR").await?;
    let alice = TestNode::start_new("alice").await?;
    let mut bob = TestNode::start_new("bob").await?;
    let carol = TestNode::start_new("carol").await?;
    // The nodes outlive the scenario, so that a failure's pages are still live.
    let result = scenario(&a, &b, &alice, &mut bob, &carol).await;
    if result.is_err() {
        post_mortem(&[(&a, "alice"), (&b, "bob")]).await;
    }
    result?;
    a.close().await?;
    b.close().await
}

async fn scenario(a: &Browser, b: &Browser, alice: &TestNode, bob: &mut TestNode, carol: &TestNode) -> Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;

    // Nothing without logging in; the link works once.
    a.goto(&format!("{}/ui/", alice.api_base()?)).await?;
    a.wait_text("h1", "Please log in", WAIT).await?;
    let link = alice.client()?.ui_login_link().await?;
    a.goto(&link.url).await?;
    a.wait_text("#node-name", "alice", WAIT).await?;
    b.goto(&link.url).await?;
    b.wait_text("#message", "déjà servi", WAIT).await?;
    login(b, bob).await?;
    // Each page speaks its browser's language; alice can switch.
    b.wait_text("#nav", "Sauvegardes", WAIT).await?;
    a.wait_text("#nav", "Backups", WAIT).await?;
    a.click("#lang-toggle", WAIT).await?;
    a.wait_text("#nav", "Sauvegardes", WAIT).await?;
    a.click("#lang-toggle", WAIT).await?;
    a.wait_text("#nav", "Backups", WAIT).await?;
    // The page's Content-Security-Policy refuses inline script: text from
    // another node could never run, even if the page failed to escape it.
    let injected = a
        .eval(
            "const s = document.createElement('script'); s.textContent = 'window.injected = 1'; \
             document.body.append(s); return window.injected === undefined;",
            vec![],
        )
        .await?;
    ensure!(injected == true, "an inline script ran");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = a.eval("const e = window.hearthErrors || []; window.hearthErrors = []; return e;", vec![]).await?;
    ensure!(refused.to_string().contains("CSP refused script-src"), "the page reports CSP refusals: {refused}");
    eprintln!("[{:>5.1?}] logged in", started.elapsed());

    // 1. Pairing through the pages: alice makes an invitation, bob pastes it.
    open(a, alice, "contacts").await?;
    // Set on alice's open page: still there at the end of the pairing, so
    // the page was updated in place, not reloaded.
    a.eval("window.hearthMarker = 'no reload';", vec![]).await?;
    a.click("#invite-create", WAIT).await?;
    a.wait_for("#invite-token", WAIT).await?;
    let token = a.eval("return document.querySelector('#invite-token').value;", vec![]).await?;
    let token = token.as_str().unwrap_or_default().to_owned();
    ensure!(token.starts_with("hearth1"), "invitation token {token:?}");
    open(b, bob, "contacts").await?;
    b.type_into("#join-token", &token, WAIT).await?;
    b.click("#join-submit", WAIT).await?;
    b.wait_text("#join-form .form-msg", "alice", WAIT).await?;
    b.wait_for("li[data-contact=alice][data-online=true]", WAIT).await?;
    a.wait_for("li[data-contact=bob][data-online=true]", WAIT).await?;
    ensure!(a.eval("return window.hearthMarker;", vec![]).await? == "no reload", "alice's page reloaded");
    // Carol pairs with alice outside the pages; alice's page shows her too.
    alice.pair_with(carol).await?;
    a.wait_for("li[data-contact=carol][data-online=true]", WAIT).await?;
    a.wait_text("#badge-contacts", "2/2", WAIT).await?;
    eprintln!("[{:>5.1?}] paired", started.elapsed());

    // 2. A shared folder: alice shares it, bob accepts, files appear.
    let family = dir.path().join("alice-family");
    std::fs::create_dir_all(&family)?;
    std::fs::write(family.join("hello.txt"), b"hello from alice\n")?;
    std::fs::write(family.join("notes.txt"), b"milk\n")?;
    let bob_family = dir.path().join("bob-family");
    open(a, alice, "shares").await?;
    a.type_into("#share-path", &family.to_string_lossy(), WAIT).await?;
    a.type_into("#share-name", "Family", WAIT).await?;
    a.click("#share-create-submit", WAIT).await?;
    a.click("li[data-share=Family] a", WAIT).await?;
    a.wait_text("#share-files", "hello.txt", WAIT).await?;
    a.select("#share-invite-contact", "bob", WAIT).await?;
    a.click("#share-invite-submit", WAIT).await?;
    a.wait_text("#share-members", "bob", WAIT).await?;

    open(b, bob, "shares").await?;
    b.type_into("li[data-share=Family][data-state=pending] .accept-path", &bob_family.to_string_lossy(), WAIT).await?;
    b.click("li[data-share=Family][data-state=pending] .accept-submit", WAIT).await?;
    b.wait_for("#share-files li[data-path=\"hello.txt\"][data-pending=false]", WAIT).await?;
    b.wait_text("#share-sync", "à jour", WAIT).await?;
    ensure!(std::fs::read(bob_family.join("hello.txt"))? == b"hello from alice\n");
    // A new file on alice's disk appears in bob's open page.
    std::fs::create_dir_all(family.join("photos"))?;
    std::fs::write(family.join("photos/beach.txt"), b"sand")?;
    b.wait_for("#share-files li[data-path=\"photos/beach.txt\"][data-pending=false]", WAIT).await?;
    // Alice makes bob read-only; bob's page follows.
    a.select("li[data-member=bob] .role-select", "read-only", WAIT).await?;
    b.wait_for("#share-members li[data-member=you][data-role=read-only]", WAIT).await?;
    a.select("li[data-member=bob] .role-select", "read-write", WAIT).await?;
    b.wait_for("#share-members li[data-member=you][data-role=read-write]", WAIT).await?;
    eprintln!("[{:>5.1?}] folder shared", started.elapsed());

    // Both edit notes.txt while bob's node is down: a conflict, both
    // versions shown. Bob's session outlives his node's restart (it is
    // bound to the node's token), at the node's new address.
    // His page stays open: an open page does not hold a node up.
    bob.stop().await?;
    std::fs::write(family.join("notes.txt"), b"milk, eggs (alice)\n")?;
    alice.client()?.share_scan("Family").await?;
    std::fs::write(bob_family.join("notes.txt"), b"milk, bread (bob)\n")?;
    bob.start().await?;
    alice.wait_online("bob", ONLINE).await?;
    let share_id = alice.client()?.shares().await?.into_iter().find(|s| s.name == "Family").map(|s| s.id);
    let share_id = share_id.context("the Family share")?;
    open(b, bob, &format!("shares/{share_id}")).await?;
    b.wait_for("#live[data-state=live]", WAIT).await?;
    b.wait_for("#share-conflicts .conflict .kept", WAIT).await?;
    b.wait_text("#share-conflicts .conflict .copy", "(conflict from", WAIT).await?;
    b.wait_text("#share-conflicts .conflict .kept", "notes.txt", WAIT).await?;
    eprintln!("[{:>5.1?}] conflict shown", started.elapsed());

    // 3. Bank: alice imports a statement through her page and shows the
    // account to bob; his page draws its chart, then shows an alert.
    let first = dir.path().join("january.ofx");
    std::fs::write(
        &first,
        statement(
            &[
                ("F1", day(40), "1450.00", "CAISSE RETRAITE"),
                ("F2", day(33), "-23.60", "PHARMACIE DU CENTRE"),
                ("F3", day(25), "-62.15", "SUPERMARCHE"),
                ("F4", day(12), "-120.00", "EDF ELECTRICITE"),
                ("F5", day(4), "-12.40", "BOULANGERIE"),
            ],
            "2349.01",
            &day(4),
        ),
    )?;
    open(a, alice, "bank").await?;
    a.type_into("#import-file", &first.to_string_lossy(), WAIT).await?;
    a.type_into("#import-account", "Compte courant", WAIT).await?;
    a.click("#import-submit", WAIT).await?;
    a.wait_text("#bank-import .form-msg", "5 added", WAIT).await?;
    a.wait_for(".account[data-account=\"Compte courant\"][data-mine=true]", WAIT).await?;
    a.wait_for("#balance-chart[data-points=\"6\"]", WAIT).await?;
    a.select("#bank-share-contact", "bob", WAIT).await?;
    a.click("#bank-share-submit", WAIT).await?;
    a.wait_text("#bank-detail", "bob", WAIT).await?;

    open(b, bob, "bank").await?;
    b.click(".account[data-account=\"Compte courant\"][data-mine=false]", WAIT).await?;
    b.wait_for("#balance-chart[data-points=\"6\"]", WAIT).await?;
    b.wait_text("#bank-ops", "BOULANGERIE", WAIT).await?;
    b.wait_text("#bank-balance", "349,01", WAIT).await?;
    b.select("#rule-kind", "large-debit", WAIT).await?;
    b.type_into("#rule-value", "1000", WAIT).await?;
    b.click("#rule-submit", WAIT).await?;
    b.wait_text("#bank-rules", "1000", WAIT).await?;
    // Bob looks at the overview while alice imports a large debit.
    open(b, bob, "").await?;
    let second = dir.path().join("today.ofx");
    std::fs::write(&second, statement(&[("F6", day(0), "-1950.00", "VIREMENT M. INCONNU")], "399.01", &day(0)))?;
    a.type_into("#import-file", &second.to_string_lossy(), WAIT).await?;
    a.type_into("#import-account", "Compte courant", WAIT).await?;
    a.click("#import-submit", WAIT).await?;
    a.wait_text("#bank-import .form-msg", "1 added", WAIT).await?;
    b.wait_text("#badge-bank", "1", WAIT).await?;
    // Bob's page is in French: the alert is said in French, from its facts.
    b.wait_text("#ov-bank .alert-item", "gros débit", WAIT).await?;
    b.wait_text("#ov-bank .alert-item", "950,00", WAIT).await?;
    open(b, bob, "bank").await?;
    b.wait_text("#bank-alerts .alert-item", "VIREMENT M. INCONNU", WAIT).await?;
    b.wait_text("#bank-alerts .alert-item", "gros débit", WAIT).await?;
    b.wait_for("#balance-chart[data-points=\"7\"]", WAIT).await?;
    b.wait_text("#bank-balance", "399,01", WAIT).await?;
    eprintln!("[{:>5.1?}] bank view and alert", started.elapsed());

    // 4. Backups: bob (through his page) and carol host alice's backup;
    // her page shows the run's progress and turns to restorable.
    let papers = dir.path().join("alice-papers");
    std::fs::create_dir_all(&papers)?;
    std::fs::write(papers.join("will.txt"), b"I leave my garden to whoever waters it.\n")?;
    // Large enough for the run to take a few seconds, so that its progress shows.
    std::fs::write(papers.join("photos.raw"), hearth_tests::noise_bytes(24 << 20, 3))?;
    open(a, alice, "backups").await?;
    a.wait_for("#restorable[data-restorable=false]", WAIT).await?;
    for friend in ["bob", "carol"] {
        a.select("#backup-friend-contact", friend, WAIT).await?;
        a.click("#backup-friend-submit", WAIT).await?;
        a.wait_for(&format!("li[data-friend={friend}][data-state=asked]"), WAIT).await?;
    }
    open(b, bob, "backups").await?;
    b.type_into("li[data-owner=alice][data-state=pending] .hosting-quota", "1G", WAIT).await?;
    b.click("li[data-owner=alice][data-state=pending] .hosting-accept", WAIT).await?;
    b.wait_for("li[data-owner=alice][data-state=accepted]", WAIT).await?;
    carol.client()?.backup(&BackupOp::HostingAnswer { contact: "alice".into(), accept: true, quota: 1 << 30 }).await?;
    a.wait_for("li[data-friend=bob][data-state=accepted]", WAIT).await?;
    a.wait_for("li[data-friend=carol][data-state=accepted]", WAIT).await?;
    a.type_into("#backup-path", &papers.to_string_lossy(), WAIT).await?;
    a.click("#backup-path-submit", WAIT).await?;
    a.wait_for(&format!("#backup-paths li[data-path=\"{}\"]", papers.display()), WAIT).await?;
    a.eval(
        "window.sawProgress = null; new MutationObserver(() => { const p = document.querySelector('#backup-progress'); \
         const bar = p && p.querySelector('.bar > span'); \
         if (p && bar.style.width && !window.sawProgress) window.sawProgress = p.dataset.phase; }).observe(document.body, { childList: true, subtree: true });",
        vec![],
    )
    .await?;
    a.click("#backup-run", WAIT).await?;
    a.wait_for("#restorable[data-restorable=true]", Duration::from_secs(120)).await?;
    a.wait_text("#restorable", "2 of 2 friends reachable, 1 needed", WAIT).await?;
    let saw = a.eval("return window.sawProgress;", vec![]).await?;
    ensure!(saw.is_string(), "alice's page never showed the run's progress");
    a.wait_text("#backup-friends", "holds", WAIT).await?;
    a.click("#backup-audit", WAIT).await?;
    a.wait_for("li[data-friend=bob][data-audit=ok]", WAIT).await?;
    a.wait_for("li[data-friend=carol][data-audit=ok]", WAIT).await?;
    a.click("#recovery-show", WAIT).await?;
    a.wait_for("#recovery-key", WAIT).await?;
    let shown = a.text("#recovery-key").await?;
    let key = alice.client()?.backup(&BackupOp::RecoveryKey).await?;
    ensure!(json!(shown.trim()) == key["recovery_key"], "the page shows the recovery key");
    b.wait_text("li[data-owner=alice]", "utilisés sur", WAIT).await?;
    eprintln!("[{:>5.1?}] backup restorable", started.elapsed());

    // Every page, on a desktop and on a phone.
    let share = format!("shares/{share_id}");
    let pages = [
        ("overview", ""),
        ("contacts", "contacts"),
        ("shares", "shares"),
        ("share", share.as_str()),
        ("bank", "bank"),
        ("backups", "backups"),
    ];
    screenshots(a, alice, "alice", &pages).await?;
    screenshots(b, bob, "bob", &pages).await?;
    no_script_errors(a, "alice").await?;
    no_script_errors(b, "bob").await?;
    eprintln!("[{:>5.1?}] screenshots in {}", started.elapsed(), screenshot_dir().display());

    // Logging out ends the session: the browser drops the cookie, and the
    // node refuses it from anyone who kept a copy.
    open(a, alice, "").await?;
    let cookie = a.cookies().await?.into_iter().find(|(name, _)| name.starts_with("hearth_"));
    let (name, value) = cookie.context("alice's browser holds a session cookie")?;
    let status = |cookie: String| async move {
        let response = reqwest::Client::new()
            .get(format!("{}/v1/status", alice.api_base()?))
            .header("cookie", cookie)
            .send()
            .await?;
        anyhow::Ok(response.status().as_u16())
    };
    ensure!(status(format!("{name}={value}")).await? == 200);
    a.click("#logout", WAIT).await?;
    a.wait_text("h1", "Please log in", WAIT).await?;
    ensure!(!a.cookies().await?.iter().any(|(n, _)| *n == name), "the browser still holds the cookie");
    ensure!(status(format!("{name}={value}")).await? == 401, "a logged-out session still works");

    eprintln!("[{:>5.1?}] done", started.elapsed());
    Ok(())
}
