//! Two homes behind NAT reach each other through a contact at a hoster.
//!
//! The test builds a small internet of its own out of Linux network
//! namespaces (private addresses that exist only inside them):
//!
//! ```text
//!   carol 10.99.0.10 ──┐                        (a hoster: public address)
//!   dave  10.99.0.30 ──┤ bridge "internet"      (a stranger to everyone)
//!   router A 10.99.0.21 ┤ MASQUERADE ── alice 192.168.1.2   (home A)
//!   router B 10.99.0.22 ┘ MASQUERADE ── bob   192.168.2.2   (home B)
//! ```
//!
//! Alice and Bob pair with Carol directly. Carol finds out through AutoNAT
//! that she is publicly reachable and offers to relay for her contacts; Alice
//! and Bob reserve a slot on her. Alice's invitation then carries her relayed
//! address, Bob pairs with her through Carol, hole punching upgrades the
//! connection to direct, and they sync a shared folder. Bob's home then gets
//! a new address behind a NAT that changes ports per destination (no hole
//! punching possible): they reconnect by themselves, relayed, and keep
//! syncing, within Carol's byte limit per relayed connection. Dave, a
//! stranger, can neither reserve on Carol nor be relayed by her.
//!
//! It needs root (or CAP_NET_ADMIN), `ip` and `iptables`; without them it is
//! skipped with a message saying why. Every wait is bounded; the namespaces
//! are deleted when the test ends, however it ends.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Runner, Up};

/// Carol's limit on the bytes of one relayed connection in this test: small
/// enough that the last file crosses it, so the limit is seen in action.
const CIRCUIT_BYTES: u64 = 2 << 20;

struct Internet {
    id: String,
    namespaces: Vec<String>,
}

impl Internet {
    fn ns(&self, name: &str) -> String {
        format!("hn{}-{name}", self.id)
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let (program, rest) = args.split_first().ok_or("empty command")?;
        let out = Command::new(program).args(rest).output().map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    fn add_ns(&mut self, name: &str) -> Result<String, String> {
        let ns = self.ns(name);
        self.run(&["ip", "netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        self.run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A veth pair `a_if` in `a` and `b_if` in `b`.
    fn wire(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> Result<(), String> {
        self.run(&["ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b])?;
        self.run(&["ip", "-n", a, "link", "set", a_if, "up"])?;
        self.run(&["ip", "-n", b, "link", "set", b_if, "up"])
    }

    /// A host on the bridge at `ip`.
    fn on_internet(&mut self, name: &str, ip: &str) -> Result<String, String> {
        let inet = self.ns("inet");
        let ns = self.add_ns(name)?;
        let port = format!("p-{name}");
        self.wire(&ns, "wan", &inet, &port)?;
        self.run(&["ip", "-n", &inet, "link", "set", &port, "master", "br0"])?;
        self.run(&["ip", "-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "wan"])?;
        Ok(ns)
    }

    /// A home: a router on the internet at `wan_ip` doing MASQUERADE (and
    /// silently dropping unsolicited inbound traffic), and one host `192.168.N.2`.
    fn home(&mut self, router: &str, host: &str, wan_ip: &str, lan: u8) -> Result<String, String> {
        let r = self.on_internet(router, wan_ip)?;
        let h = self.add_ns(host)?;
        self.wire(&r, "lan", &h, "eth0")?;
        self.run(&["ip", "-n", &r, "addr", "add", &format!("192.168.{lan}.1/24"), "dev", "lan"])?;
        self.run(&["ip", "-n", &h, "addr", "add", &format!("192.168.{lan}.2/24"), "dev", "eth0"])?;
        self.run(&["ip", "-n", &h, "route", "add", "default", "via", &format!("192.168.{lan}.1")])?;
        self.run(&["ip", "netns", "exec", &r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])?;
        let ipt = |rule: &[&str]| {
            let mut cmd = vec!["ip", "netns", "exec", &r, "iptables"];
            cmd.extend_from_slice(rule);
            self.run(&cmd)
        };
        ipt(&["-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"])?;
        ipt(&["-A", "FORWARD", "-i", "wan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"])?;
        ipt(&["-A", "FORWARD", "-i", "wan", "-j", "DROP"])?;
        // Like a home router, it answers nothing unsolicited itself either
        // (a TCP reset would end a hole punching attempt).
        ipt(&["-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"])?;
        ipt(&["-A", "INPUT", "-i", "wan", "-j", "DROP"])?;
        Ok(h)
    }

    fn create() -> Result<Self, String> {
        let mut net = Internet { id: format!("{}", std::process::id() % 100_000), namespaces: Vec::new() };
        let inet = net.add_ns("inet")?;
        net.run(&["ip", "-n", &inet, "link", "add", "br0", "type", "bridge"])?;
        net.run(&["ip", "-n", &inet, "link", "set", "br0", "up"])?;
        net.on_internet("carol", "10.99.0.10")?;
        net.on_internet("dave", "10.99.0.30")?;
        net.home("ra", "alice", "10.99.0.21", 1)?;
        net.home("rb", "bob", "10.99.0.22", 2)?;
        Ok(net)
    }

    /// Bob's ISP gives his router a new address, and his new router is a
    /// NAT that picks a random port per destination ("symmetric"): hole
    /// punching cannot work through it.
    fn move_bob_behind_a_symmetric_nat(&self) -> Result<(), String> {
        let rb = self.ns("rb");
        self.run(&["ip", "-n", &rb, "addr", "del", "10.99.0.22/24", "dev", "wan"])?;
        self.run(&["ip", "-n", &rb, "addr", "add", "10.99.0.23/24", "dev", "wan"])?;
        self.run(&[
            "ip",
            "netns",
            "exec",
            &rb,
            "iptables",
            "-t",
            "nat",
            "-R",
            "POSTROUTING",
            "1",
            "-o",
            "wan",
            "-j",
            "MASQUERADE",
            "--random-fully",
        ])
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A node in its namespace, with its log kept in a file.
struct Node {
    name: &'static str,
    home: PathBuf,
    log: PathBuf,
    run: Runner,
    up: Option<Up>,
}

impl Node {
    fn new(net: &Internet, dir: &Path, name: &'static str, extra: &[(&str, toml::Value)]) -> Self {
        let node = Node {
            name,
            home: dir.join(name),
            log: dir.join(format!("{name}.log")),
            run: Runner::in_netns(&net.ns(name)),
            up: None,
        };
        node.run.ok(&node.home, &["init", "--name", name]);
        let path = node.home.join("config.toml");
        let mut config: toml::Table = toml::from_str(&std::fs::read_to_string(&path).expect("config")).expect("toml");
        let listen = ["/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/tcp/4002"];
        config.insert("listen".into(), toml::Value::Array(listen.iter().map(|a| (*a).into()).collect()));
        config.insert("mdns".into(), false.into());
        config.insert("stranger_grace_secs".into(), 5.into());
        config.insert("reconnect_max_backoff_secs".into(), 3.into());
        config.insert("rescan_secs".into(), 1.into());
        config.insert("autonat_private_addrs".into(), true.into());
        for (key, value) in extra {
            config.insert((*key).into(), value.clone());
        }
        std::fs::write(&path, toml::to_string(&config).expect("toml")).expect("write config");
        node
    }

    fn start(&mut self) {
        self.up = Some(self.run.up_logging(&self.home, Some(&self.log)));
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        self.run.json(&self.home, args)
    }

    fn status(&self) -> serde_json::Value {
        self.json(&["status"])
    }

    fn contact(&self, name: &str) -> serde_json::Value {
        let all = self.json(&["contacts"]);
        all.as_array().and_then(|a| a.iter().find(|c| c["name"] == name).cloned()).unwrap_or_default()
    }

    fn link_to(&self, name: &str) -> Option<String> {
        let c = self.contact(name);
        (c["online"] == true).then(|| c["link"].as_str().unwrap_or("?").to_owned())
    }

    fn peer_id(&self) -> String {
        self.status()["peer_id"].as_str().expect("peer id").to_owned()
    }

    fn invite(&self) -> String {
        self.run.ok(&self.home, &["invite"]).trim().to_owned()
    }

    fn join(&self, token: &str) -> std::process::Output {
        self.run.run(&self.home, &["join", token])
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

/// Polls `check` every 200 ms for at most `timeout`; returns how long it took.
fn within(timeout: Duration, what: &str, nodes: &[&Node], mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > timeout {
            for n in nodes {
                let kept = std::env::temp_dir().join(format!("hearth-nat-{}.log", n.name));
                let _ = std::fs::copy(&n.log, &kept);
                eprintln!("----- {} (last lines of its log; all of it in {})\n{}", n.name, kept.display(), n.tail());
            }
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    started.elapsed()
}

fn relay_state(node: &Node) -> Vec<String> {
    let status = node.status();
    status["relays"]
        .as_array()
        .map(|r| r.iter().map(|r| r["state"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn two_homes_behind_nat_pair_through_a_hoster_and_keep_syncing() {
    let net = match Internet::create() {
        Ok(net) => net,
        Err(why) => {
            eprintln!("SKIPPED: this test needs network namespaces, veth, a bridge and iptables (root): {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = toml::Table::from_iter([("max_circuit_bytes".to_owned(), toml::Value::Integer(CIRCUIT_BYTES as i64))]);
    let mut carol = Node::new(&net, dir.path(), "carol", &[("relay", toml::Value::Table(limits))]);
    let mut alice = Node::new(&net, dir.path(), "alice", &[]);
    let mut bob = Node::new(&net, dir.path(), "bob", &[]);
    carol.start();
    alice.start();
    bob.start();
    let all = [&carol, &alice, &bob];

    // Both homes pair with Carol directly (she is reachable from anywhere).
    let started = Instant::now();
    assert!(alice.join(&carol.invite()).status.success(), "alice joins carol");
    let direct_pairing = started.elapsed();
    within(Duration::from_secs(20), "alice online at carol", &all, || carol.link_to("alice").is_some());
    let direct_online = started.elapsed();
    assert!(bob.join(&carol.invite()).status.success(), "bob joins carol");
    within(Duration::from_secs(20), "bob online at carol", &all, || carol.link_to("bob").is_some());
    assert_eq!(alice.link_to("carol").as_deref(), Some("direct"));

    // AutoNAT: Carol is public and offers to relay; the homes reserve on her.
    let reserving = Instant::now();
    within(Duration::from_secs(60), "carol to know she is public", &all, || carol.status()["reachability"] == "public");
    within(Duration::from_secs(60), "alice and bob to hold a reservation on carol", &all, || {
        relay_state(&alice) == ["reserved"] && relay_state(&bob) == ["reserved"]
    });
    let reserved_after = reserving.elapsed();
    assert_eq!(carol.status()["relay_service"]["offered"], true);
    assert_ne!(alice.status()["reachability"], "public", "alice is behind NAT");

    // Alice's invitation carries her relayed address; Bob pairs through Carol.
    let token = alice.invite();
    let invite: serde_json::Value = alice.json(&["invitations"]);
    assert!(invite.as_array().is_some_and(|a| !a.is_empty()));
    let started = Instant::now();
    let joined = bob.join(&token);
    assert!(joined.status.success(), "bob joins alice through carol: {}", String::from_utf8_lossy(&joined.stderr));
    let relayed_pairing = started.elapsed();
    let carol_log = std::fs::read_to_string(&carol.log).unwrap_or_default();
    assert!(carol_log.contains("relaying a connection from bob to alice"), "the pairing went through carol");
    let first = bob.contact("alice");
    eprintln!("bob's first view of alice: link {}, addresses {}", first["link"], first["addresses"]);

    // Hole punching upgrades the connection to direct.
    let upgraded = within(Duration::from_secs(60), "bob and alice to be directly connected", &all, || {
        bob.link_to("alice").as_deref() == Some("direct") && alice.link_to("bob").as_deref() == Some("direct")
    }) + relayed_pairing;
    let view = bob.contact("alice");
    assert!(view["hole_punch"].as_str().is_some_and(|h| h.starts_with("succeeded")), "{view}");
    assert!(view["upgraded_at"].is_string() || alice.contact("bob")["upgraded_at"].is_string(), "{view}");
    // Bob keeps both kinds of addresses for Alice: direct and relayed.
    assert!(view["addresses"].to_string().contains("p2p-circuit"), "{view}");

    // A shared folder syncs between the two homes.
    let alice_dir = dir.path().join("alice-family");
    let bob_dir = dir.path().join("bob-family");
    std::fs::create_dir(&alice_dir).expect("mkdir");
    std::fs::write(alice_dir.join("hello.txt"), b"hello from home A").expect("write");
    std::fs::write(alice_dir.join("photo.bin"), noise(1 << 20, 1)).expect("write");
    alice.run.ok(&alice.home, &["share", "create", &alice_dir.to_string_lossy(), "--name", "Family"]);
    alice.run.ok(&alice.home, &["share", "invite", "Family", "bob"]);
    within(Duration::from_secs(30), "the share invitation to reach bob", &all, || {
        bob.json(&["share", "list"]).to_string().contains("pending")
    });
    bob.run.ok(&bob.home, &["share", "accept", "Family", &bob_dir.to_string_lossy()]);
    let synced = within(Duration::from_secs(60), "the folder on bob's side", &all, || {
        std::fs::read(bob_dir.join("photo.bin")).is_ok_and(|b| b == noise(1 << 20, 1))
    });
    assert_eq!(std::fs::read(bob_dir.join("hello.txt")).expect("hello"), b"hello from home A");
    std::fs::write(bob_dir.join("reply.txt"), b"hello from home B").expect("write");
    within(Duration::from_secs(30), "bob's reply on alice's side", &all, || {
        std::fs::read(alice_dir.join("reply.txt")).is_ok_and(|b| b == b"hello from home B")
    });

    // Bob's home gets a new address behind a NAT that defeats hole punching:
    // they reconnect by themselves, through Carol.
    net.move_bob_behind_a_symmetric_nat().expect("new address for bob");
    let moved = Instant::now();
    within(Duration::from_secs(60), "alice to notice bob's old address is gone", &all, || {
        alice.link_to("bob").is_none()
    });
    let reconnected = within(Duration::from_secs(90), "alice and bob to reconnect after bob moved", &all, || {
        bob.link_to("alice").is_some() && alice.link_to("bob").is_some()
    });
    let reconnected_total = moved.elapsed();
    // Hole punching cannot work through Bob's new NAT: they stay relayed.
    within(Duration::from_secs(60), "a hole punching attempt to fail", &all, || {
        bob.contact("alice")["hole_punch"].as_str().is_some_and(|h| h.starts_with("failed"))
            || alice.contact("bob")["hole_punch"].as_str().is_some_and(|h| h.starts_with("failed"))
    });
    assert_eq!(bob.link_to("alice").as_deref(), Some("relayed"));
    assert_eq!(alice.link_to("bob").as_deref(), Some("relayed"));

    // Contents still flow, relayed; a file larger than Carol's byte limit per
    // relayed connection crosses it: the connection is cut and re-made, and
    // the transfer resumes where it stopped.
    let ended_before = carol.status()["relay_service"]["circuits_ended"].as_u64().unwrap_or(0);
    let big = noise(3 << 20, 2);
    std::fs::write(alice_dir.join("video.bin"), &big).expect("write");
    let relayed_sync = within(Duration::from_secs(120), "a 3 MiB file to reach bob relayed", &all, || {
        std::fs::read(bob_dir.join("video.bin")).is_ok_and(|b| b == big)
    });
    let service = carol.status()["relay_service"].clone();
    eprintln!("carol's relay after the relayed sync: {service}");
    assert!(service["circuits_ended"].as_u64().unwrap_or(0) > ended_before, "the byte limit cut a circuit: {service}");

    // Dave, a stranger, cannot use Carol's relay: no reservation, no circuit.
    let carol_id = carol.peer_id();
    let relay_addr = format!("/ip4/10.99.0.10/udp/4001/quic-v1/p2p/{carol_id}");
    let mut dave = Node::new(&net, dir.path(), "dave", &[("relays", toml::Value::Array(vec![relay_addr.into()]))]);
    dave.start();
    within(Duration::from_secs(30), "carol to refuse dave's reservation", &[&carol, &dave], || {
        carol.status()["relay_service"]["refused_reservations"].as_u64().unwrap_or(0) >= 1
    });
    within(Duration::from_secs(30), "dave to see his reservation refused", &[&carol, &dave], || {
        relay_state(&dave) == ["ended"]
    });
    let refused = dave.join(&alice.invite());
    assert!(!refused.status.success(), "dave cannot reach alice through carol");
    let service = carol.status()["relay_service"].clone();
    assert!(service["refused_circuits"].as_u64().unwrap_or(0) >= 1, "{service}");
    assert!(!service["reservations"].to_string().contains(&dave.peer_id()), "{service}");
    let carol_log = std::fs::read_to_string(&carol.log).unwrap_or_default();
    assert!(carol_log.contains("refused a relay reservation from stranger"), "carol logs the refusal");
    assert!(carol_log.contains("refused to relay a connection from stranger"), "carol logs the refusal");

    eprintln!(
        "set-up times: pairing direct {direct_pairing:?} (both online {direct_online:?}); reservations on carol \
         {reserved_after:?} after both homes were paired with her; pairing relayed {relayed_pairing:?}; \
         upgraded to direct {upgraded:?} after the join started; folder (1 MiB) synced {synced:?} after accept; \
         reconnection after bob moved {reconnected_total:?} ({reconnected:?} after alice noticed); 3 MiB relayed \
         through a {CIRCUIT_BYTES}-byte circuit limit in {relayed_sync:?}"
    );
    eprintln!("carol's relay at the end: {service}");
}

/// Incompressible, deterministic bytes: BLAKE3's output stream for `seed`.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    blake3::Hasher::new().update(&seed.to_le_bytes()).finalize_xof().fill(&mut out);
    out
}
