//! The `hearth` binary itself, as a person would run it: `init`, `up` in the
//! background, `invite` / `join` / `contacts --json` / `status`, SIGTERM,
//! restart of both nodes, and the errors a person sees when something is off.
//! Nodes listen on 127.0.0.1 only, with mDNS off.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HEARTH: &str = env!("CARGO_BIN_EXE_hearth");

fn hearth(home: &Path, args: &[&str]) -> Output {
    Command::new(HEARTH).arg("--home").arg(home).args(args).output().expect("run hearth")
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = hearth(home, args);
    assert!(out.status.success(), "hearth {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fails(home: &Path, args: &[&str]) -> String {
    let out = hearth(home, args);
    assert!(!out.status.success(), "hearth {args:?} should fail");
    String::from_utf8(out.stderr).expect("utf-8")
}

fn loopback_only(home: &Path) {
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replace("/ip4/0.0.0.0/", "/ip4/127.0.0.1/").replace("mdns = true", "mdns = false");
    std::fs::write(&path, text).expect("write config");
}

struct Up(Child);

impl Up {
    fn start(home: &Path) -> Self {
        let _ = std::fs::remove_file(home.join("api.json"));
        let child = Command::new(HEARTH)
            .arg("--home")
            .arg(home)
            .arg("up")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hearth up");
        wait_for(Duration::from_secs(20), || {
            home.join("api.json").exists() && hearth(home, &["status"]).status.success()
        });
        Up(child)
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "hearth up did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn contacts(home: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(home, &["contacts", "--json"])).expect("json")
}

fn online(home: &Path, name: &str) -> bool {
    contacts(home).as_array().is_some_and(|all| all.iter().any(|c| c["name"] == name && c["online"] == true))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn two_homes_pair_with_the_cli_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("A"), dir.path().join("B"));

    assert!(ok(&a, &["init", "--name", "alice"]).contains("created"));
    let identity = std::fs::read(a.join("identity.key")).expect("identity");
    // init is idempotent and never replaces the identity.
    assert!(ok(&a, &["init", "--name", "someone-else"]).contains("already initialised"));
    assert_eq!(std::fs::read(a.join("identity.key")).expect("identity"), identity);
    #[cfg(unix)]
    {
        assert_eq!(mode(&a.join("identity.key")), 0o600);
        assert_eq!(mode(&a.join("api-token")), 0o600);
    }
    ok(&b, &["init", "--name", "bob"]);
    loopback_only(&a);
    loopback_only(&b);

    // Commands need a running node, and say so.
    assert!(fails(&a, &["contacts"]).contains("no node is running"));

    let up_a = Up::start(&a);
    let up_b = Up::start(&b);
    let token = ok(&a, &["invite"]).trim().to_owned();
    assert!(token.starts_with("hearth1"));
    let started = Instant::now();
    assert!(ok(&b, &["join", &token]).contains("paired with alice"));
    wait_for(Duration::from_secs(15), || online(&a, "bob") && online(&b, "alice"));
    eprintln!("join to both sides online: {:?}", started.elapsed());

    let list = contacts(&a);
    let bob = &list[0];
    assert_eq!(bob["name"], "bob");
    assert!(bob["peer_id"].as_str().is_some_and(|p| p.starts_with("12D3KooW")));
    assert!(bob["last_seen"].is_string());
    let status: serde_json::Value = serde_json::from_str(&ok(&a, &["status", "--json"])).expect("json");
    assert_eq!(status["name"], "alice");
    assert_eq!(status["connected_contacts"][0]["name"], "bob");
    assert!(ok(&a, &["status"]).contains("1 of 1 online: bob"));

    // The token is spent; a garbled one is explained.
    assert!(fails(&b, &["join", &token]).contains("already your contact"));
    assert!(fails(&b, &["join", &token[..token.len() - 5]]).contains("garbled"));

    // SIGTERM stops both cleanly; both come back and find each other.
    assert!(up_a.terminate().success());
    assert!(up_b.terminate().success());
    assert!(!a.join("api.json").exists(), "api.json removed at shutdown");
    let _up_b = Up::start(&b);
    let _up_a = Up::start(&a);
    wait_for(Duration::from_secs(30), || online(&a, "bob") && online(&b, "alice"));

    assert!(ok(&a, &["contacts", "remove", "bob"]).contains("removed bob"));
    assert!(fails(&a, &["contacts", "remove", "bob"]).contains("no contact named"));
    assert_eq!(contacts(&a), serde_json::json!([]));
}
