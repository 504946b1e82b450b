//! The `hearth` binary itself, as a person would run it: `init`, `up` in the
//! background, `invite` / `join` / `contacts --json` / `status`, SIGTERM,
//! restart of both nodes, and the errors a person sees when something is off.
//! Nodes listen on 127.0.0.1 only, with mDNS off.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{loopback_only, wait_for, Lines, Runner};

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn two_homes_pair_with_the_cli_and_survive_a_restart() {
    let hearth = Runner::direct();
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("A"), dir.path().join("B"));

    assert!(hearth.ok(&a, &["init", "--name", "alice"]).contains("created"));
    let identity = std::fs::read(a.join("identity.key")).expect("identity");
    // init is idempotent and never replaces the identity.
    assert!(hearth.ok(&a, &["init", "--name", "someone-else"]).contains("already initialised"));
    assert_eq!(std::fs::read(a.join("identity.key")).expect("identity"), identity);
    #[cfg(unix)]
    {
        assert_eq!(mode(&a.join("identity.key")), 0o600);
        assert_eq!(mode(&a.join("api-token")), 0o600);
    }
    hearth.ok(&b, &["init", "--name", "bob"]);
    loopback_only(&a);
    loopback_only(&b);

    // Commands need a running node, and say so.
    assert!(hearth.fails(&a, &["contacts"]).contains("no node is running"));

    let up_a = hearth.up(&a);
    let up_b = hearth.up(&b);
    let token = hearth.ok(&a, &["invite"]).trim().to_owned();
    assert!(token.starts_with("hearth1"));
    let started = Instant::now();
    assert!(hearth.ok(&b, &["join", &token]).contains("paired with alice"));
    wait_for(Duration::from_secs(15), || hearth.online(&a, "bob") && hearth.online(&b, "alice"));
    eprintln!("join to both sides online: {:?}", started.elapsed());

    let list = hearth.contacts(&a);
    let bob = &list[0];
    assert_eq!(bob["name"], "bob");
    assert!(bob["peer_id"].as_str().is_some_and(|p| p.starts_with("12D3KooW")));
    assert!(bob["last_seen"].is_string());
    let status: serde_json::Value = serde_json::from_str(&hearth.ok(&a, &["status", "--json"])).expect("json");
    assert_eq!(status["name"], "alice");
    assert_eq!(status["connected_contacts"][0]["name"], "bob");
    assert!(hearth.ok(&a, &["status"]).contains("1 of 1 online: bob"));

    // The token is spent; a garbled one is explained.
    assert!(hearth.fails(&b, &["join", &token]).contains("already your contact"));
    assert!(hearth.fails(&b, &["join", &token[..token.len() - 5]]).contains("garbled"));

    // SIGTERM stops both cleanly; both come back and find each other.
    assert!(up_a.terminate().success());
    assert!(up_b.terminate().success());
    assert!(!a.join("api.json").exists(), "api.json removed at shutdown");
    let _up_b = hearth.up(&b);
    let _up_a = hearth.up(&a);
    wait_for(Duration::from_secs(30), || hearth.online(&a, "bob") && hearth.online(&b, "alice"));

    // A shared folder through the CLI; accept --wait returns once it is here.
    let family = dir.path().join("family");
    std::fs::create_dir(&family).expect("mkdir");
    std::fs::write(family.join("hello.txt"), b"hello bob").expect("write");
    let id = hearth.ok(&a, &["share", "create", &family.to_string_lossy(), "--name", "Family"]);
    assert_eq!(id.trim().len(), 32, "{id}");
    hearth.ok(&a, &["share", "invite", "Family", "bob", "--read-only"]);
    wait_for(Duration::from_secs(20), || hearth.ok(&b, &["share", "list", "--json"]).contains("pending"));
    let copy = dir.path().join("bob-family");
    let out = hearth.ok(&b, &["share", "accept", "Family", &copy.to_string_lossy(), "--wait"]);
    assert!(out.contains("1 file(s)"), "{out}");
    let list = hearth.json(&b, &["share", "list"]);
    assert_eq!(list[0]["name"], "Family");
    assert_eq!(list[0]["role"], "read-only");
    assert_eq!(list[0]["state"], "active");
    assert_eq!(list[0]["path"], copy.to_string_lossy().as_ref());
    assert_eq!(std::fs::read(copy.join("hello.txt")).expect("synced"), b"hello bob");
    let status: serde_json::Value =
        serde_json::from_str(&hearth.ok(&b, &["share", "status", "Family", "--json"])).expect("json");
    assert_eq!(status["role"], "read-only");
    assert_eq!(status["files"], 1);

    assert!(hearth.ok(&a, &["contacts", "remove", "bob"]).contains("removed bob"));
    assert!(hearth.fails(&a, &["contacts", "remove", "bob"]).contains("no contact named"));
    assert_eq!(hearth.contacts(&a), serde_json::json!([]));
}

#[test]
fn the_demo_runs_the_use_cases_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(common::HEARTH)
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run hearth demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        "paired with alice",
        "the folder is on every disk",
        "alice's copy now reads",
        "large debit of 1950.00 EUR (VIREMENT M. INCONNU)",
        "the balance fell below the threshold",
        "restorable now: yes (2 of 2 friends reachable, 1 needed)",
        "files restored from the friends' shards",
        "Demo finished",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    assert!(dir.path().join("carol-Family/Recipes/crepes.txt").is_file());
}

#[test]
fn share_status_watch_refreshes_every_second_until_ctrl_c() {
    let hearth = Runner::direct();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("A");
    hearth.ok(&home, &["init", "--name", "alice"]);
    loopback_only(&home);
    let _up = hearth.up(&home);
    let folder = dir.path().join("notes");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(folder.join("todo.txt"), b"milk").expect("write");
    hearth.ok(&home, &["share", "create", &folder.to_string_lossy()]);
    // A file written in the last moments is recorded by the next scan.
    wait_for(Duration::from_secs(20), || hearth.json(&home, &["share", "status", "notes"])["files"] == 1);

    // --json --watch: one JSON object per line, once a second.
    let mut watch = hearth.spawn(&home, &["share", "status", "notes", "--watch", "--json"]);
    let lines = Lines::of(watch.child());
    let first: serde_json::Value = serde_json::from_str(&lines.next(Duration::from_secs(15))).expect("a JSON line");
    let shown = Instant::now();
    let second: serde_json::Value = serde_json::from_str(&lines.next(Duration::from_secs(15))).expect("a JSON line");
    let gap = shown.elapsed();
    assert!(gap >= Duration::from_millis(500) && gap < Duration::from_secs(5), "refreshed after {gap:?}");
    for status in [&first, &second] {
        assert_eq!(status["name"], "notes");
        assert_eq!(status["files"], 1);
        assert_eq!(status["files_pending_down"], 0);
        assert_eq!(status["bytes_pending_down"], 0);
        assert_eq!(status["rejected_changes"], 0);
        assert!(status["conflicts"].as_array().is_some_and(|c| c.is_empty()));
        assert_eq!(status["members"][0]["role"], "owner");
    }
    // Ctrl-C ends it cleanly.
    assert!(watch.interrupt().success());

    // Without --json and without a terminal: one line of text per refresh.
    let mut watch = hearth.spawn(&home, &["share", "status", "notes", "--watch"]);
    let lines = Lines::of(watch.child());
    let line = lines.next(Duration::from_secs(15));
    for part in ["notes:", "all 1 file(s) here", "0 of 0 member(s) online", "0 conflict(s)", "0 change(s) refused"] {
        assert!(line.contains(part), "{part:?} missing in {line:?}");
    }
    assert!(lines.next(Duration::from_secs(5)).contains("all 1 file(s) here"));
    assert!(watch.interrupt().success());

    // The one-shot text status carries the same line.
    let text = hearth.ok(&home, &["share", "status", "notes"]);
    assert!(text.contains("all 1 file(s) here"), "{text}");
    // An unknown share is an error, not an endless watch.
    assert!(hearth.run(&home, &["share", "status", "nope", "--watch"]).status.code() == Some(1));
}

#[test]
fn versions_and_trash_have_json() {
    let hearth = Runner::direct();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("A");
    hearth.ok(&home, &["init", "--name", "alice"]);
    loopback_only(&home);
    let _up = hearth.up(&home);
    let folder = dir.path().join("notes");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(folder.join("todo.txt"), b"milk").expect("write");
    std::fs::write(folder.join("old.txt"), b"bye").expect("write");
    hearth.ok(&home, &["share", "create", &folder.to_string_lossy()]);
    assert_eq!(hearth.json(&home, &["share", "trash", "notes"]), serde_json::json!([]));

    // Files modified in the last moments are left for the next scan.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(folder.join("todo.txt"), b"milk, eggs").expect("write");
    std::fs::remove_file(folder.join("old.txt")).expect("rm");
    wait_for(Duration::from_secs(20), || {
        hearth.ok(&home, &["share", "scan", "notes"]);
        hearth.json(&home, &["share", "versions", "notes", "todo.txt"]).as_array().is_some_and(|v| v.len() == 2)
            && hearth.json(&home, &["share", "trash", "notes"]).as_array().is_some_and(|t| t.len() == 1)
    });
    let versions = hearth.json(&home, &["share", "versions", "notes", "todo.txt"]);
    let current: Vec<_> = versions.as_array().expect("array").iter().filter(|v| v["current"] == true).collect();
    assert_eq!(current.len(), 1, "{versions}");
    assert_eq!(current[0]["size"], 10);
    assert!(versions.as_array().expect("array").iter().any(|v| v["size"] == 4 && v["current"] == false));
    for v in versions.as_array().expect("array") {
        assert_eq!(v["path"], "todo.txt");
        assert!(v["author"].is_string() && v["at"].is_string() && v["content"].is_string() && v["version"].is_u64());
    }
    let trash = hearth.json(&home, &["share", "trash", "notes"]);
    assert_eq!(trash[0]["path"], "old.txt", "{trash}");
    assert_eq!(trash[0]["size"], 3);

    // And the text forms.
    assert!(hearth.ok(&home, &["share", "versions", "notes", "todo.txt"]).contains("(current)"));
    assert!(hearth.ok(&home, &["share", "trash", "notes"]).contains("old.txt"));
}
