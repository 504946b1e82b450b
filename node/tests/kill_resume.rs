//! A node killed mid-transfer (SIGKILL: no clean shutdown, like a power cut)
//! resumes and finishes, with real `hearth` processes on 127.0.0.1 (mDNS
//! off).
//!
//! - The receiver is killed while a large file is half fetched, restarted on
//!   the same home, and finishes. The chunks that reached its blob store
//!   before the kill are not fetched again: the bytes it receives after the
//!   restart (`bytes_received` in `share status`) plus the bytes already
//!   stored add up to the store's final size, not more.
//!   After the restart, status never calls the share complete while the file
//!   is missing.
//! - The sender is killed while a third member also holds the content: the
//!   receiver finishes from that member alone, fetching no chunk twice; the
//!   sender then restarts cleanly.
//! - (Ignored, a known bug) the receiver is killed while it writes the
//!   complete file out: it finishes after the restart, and the temporary file
//!   of the interrupted write must not stay in the folder.
//!
//! In every case the file at its final path is never partial: it is absent
//! or complete (polled through the whole transfer), and it ends
//! byte-identical. Each node's log is kept next to its home (`NAME.log` in
//! the test's temporary directory).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{loopback_only, wait_for, Runner, Up};
use serde_json::Value;

/// Big enough that a debug build needs several seconds to move it over
/// loopback, so a kill lands in the middle of the transfer.
const BIG: u64 = 160 * 1024 * 1024;
/// Every wait for a transfer to finish is bounded by this.
const TRANSFER: Duration = Duration::from_secs(240);
/// Small files next to the big one.
const SMALL: [(&str, &[u8]); 3] = [
    ("notes/todo.txt", b"buy milk\n"),
    ("notes/deep/readme.md", b"# hello\n"),
    ("photo.jpg", &[0xff, 0xd8, 0xff, 0xe0]),
];

/// Each test runs two or three nodes moving hundreds of MiB: one at a time
/// keeps their timing meaningful on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// Deterministic, incompressible-looking bytes (xorshift64), written in
/// blocks so the file never sits in memory.
fn write_pseudo_random(path: &Path, len: u64, seed: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    out.flush().expect("flush");
}

/// A folder with the big file and a few small ones.
fn make_folder(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    write_pseudo_random(&dir.join("big.bin"), BIG, 7);
    for (path, bytes) in SMALL {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
}

/// Whether two files hold the same bytes (compared block by block).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(fa), Ok(fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else { return false };
    if fa.metadata().map(|m| m.len()).ok() != fb.metadata().map(|m| m.len()).ok() {
        return false;
    }
    let (mut ra, mut rb) = (std::io::BufReader::new(fa), std::io::BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = ra.read(&mut ba).expect("read");
        if n == 0 {
            return rb.read(&mut bb).expect("read") == 0;
        }
        if rb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// Bytes of the blobs in a node's store: the files in its fan-out
/// directories `HOME/blobs/xx/` (two hex digits) and the packs
/// `HOME/blobs/packs/*.pack` (large contents), not what else lives there
/// (blobs being written, partial files of downloads).
fn stored_bytes(home: &Path) -> u64 {
    let fan_out = |name: &str| name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
    let Ok(dirs) = std::fs::read_dir(home.join("blobs")) else { return 0 };
    let files: u64 = dirs
        .flatten()
        .filter(|d| fan_out(&d.file_name().to_string_lossy()) && d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .filter_map(|f| f.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let packs: u64 = std::fs::read_dir(home.join("blobs/packs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    files + packs
}

/// Temporary files the node left in a share directory (`.hearth-*`).
fn temp_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if e.path().is_dir() {
                stack.push(e.path());
            } else if name.starts_with(".hearth-") {
                out.push(name);
            }
        }
    }
    out
}

/// Watches the final path of the big file on the receiving side: it may be
/// absent, or complete, never anything in between.
struct FinalPath {
    path: PathBuf,
    source: PathBuf,
    checked: bool,
    polls: u32,
}

impl FinalPath {
    fn new(path: PathBuf, source: PathBuf) -> Self {
        Self { path, source, checked: false, polls: 0 }
    }

    fn check(&mut self) {
        self.polls += 1;
        let Ok(meta) = std::fs::symlink_metadata(&self.path) else { return };
        assert!(meta.is_file(), "{} is not a regular file", self.path.display());
        assert_eq!(meta.len(), BIG, "a partial file is visible at {}", self.path.display());
        if !self.checked {
            assert!(same_file(&self.path, &self.source), "{} differs from the source", self.path.display());
            self.checked = true;
        }
    }
}

/// Polls `check` every 100 ms, checking the final path each time; fails
/// after `timeout`.
fn wait_watching(timeout: Duration, watch: &mut FinalPath, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        watch.check();
        if check() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(hearth: &Runner, home: &Path) -> Value {
    hearth.json(home, &["share", "status", "Big"])
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Whether status calls the share's content all there: the document arrived
/// and nothing is pending.
fn complete(s: &Value) -> bool {
    u(s, "files") == 1 + SMALL.len() as u64 && u(s, "files_pending_down") == 0
}

/// Whether the node in `home` says the share is complete and the big file
/// is in `copy`; returns the status too.
fn done(hearth: &Runner, home: &Path, copy: &Path) -> (bool, Value) {
    let s = status(hearth, home);
    (complete(&s) && copy.join("big.bin").exists(), s)
}

fn assert_same_content(source: &Path, copy: &Path) {
    assert!(same_file(&source.join("big.bin"), &copy.join("big.bin")), "big.bin differs");
    for (path, bytes) in SMALL {
        assert_eq!(std::fs::read(copy.join(path)).expect(path), bytes, "{path}");
    }
}

struct Homes {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Homes {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        Self { _dir: dir, root }
    }

    /// An initialised, loopback-only home for `name`.
    fn node(&self, hearth: &Runner, name: &str) -> PathBuf {
        let home = self.root.join(name);
        hearth.ok(&home, &["init", "--name", name]);
        loopback_only(&home);
        home
    }

    fn log(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.log"))
    }
}

/// Waits until the receiver has part of the big file durably stored: at least
/// a fifth, and the file not complete.
fn wait_until_partly_stored(hearth: &Runner, home: &Path, watch: &mut FinalPath) -> u64 {
    let mut last = Value::Null;
    wait_watching(TRANSFER, watch, "part of the big file to be stored", || {
        last = status(hearth, home);
        stored_bytes(home) >= BIG / 5
    });
    assert!(u(&last, "files_pending_down") > 0, "the transfer finished before the kill; make BIG larger: {last}");
    // Status shows progress inside the file, not only whole files.
    let inside = u(&last, "bytes_pending_down_stored");
    assert!(inside > 0 && inside < BIG, "{last}");
    u(&last, "bytes_received")
}

/// Alice and Bob, paired; Alice shares the big folder and Bob has just
/// accepted it into `copy`.
struct Pair {
    b: PathBuf,
    _up_a: Up,
    up_b: Up,
    source: PathBuf,
    copy: PathBuf,
}

fn alice_shares_big_with_bob(hearth: &Runner, homes: &Homes) -> Pair {
    let (a, b) = (homes.node(hearth, "alice"), homes.node(hearth, "bob"));
    let _up_a = hearth.up_logging(&a, Some(&homes.log("alice")));
    let up_b = hearth.up_logging(&b, Some(&homes.log("bob")));
    hearth.pair(&a, "alice", &b, "bob");
    let source = homes.root.join("alice-big");
    let started = Instant::now();
    make_folder(&source);
    hearth.ok(&a, &["share", "create", &source.to_string_lossy(), "--name", "Big"]);
    eprintln!("wrote {BIG} bytes and created the share in {:.1?}", started.elapsed());
    hearth.ok(&a, &["share", "invite", "Big", "bob"]);
    wait_for(Duration::from_secs(30), || hearth.ok(&b, &["share", "list", "--json"]).contains("pending"));
    let copy = homes.root.join("bob-big");
    hearth.ok(&b, &["share", "accept", "Big", &copy.to_string_lossy()]);
    Pair { b, _up_a, up_b, source, copy }
}

#[test]
fn a_receiver_killed_mid_transfer_resumes_where_it_stopped() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hearth = Runner::direct();
    let homes = Homes::new();
    let Pair { b, up_b, source, copy, _up_a } = alice_shares_big_with_bob(&hearth, &homes);
    let accepted = Instant::now();

    let mut watch = FinalPath::new(copy.join("big.bin"), source.join("big.bin"));
    let received_before = wait_until_partly_stored(&hearth, &b, &mut watch);
    up_b.kill();
    let killed_at = accepted.elapsed();
    let stored_at_kill = stored_bytes(&b);
    let left_in_tmp = std::fs::read_dir(b.join("blobs/tmp")).map(|d| d.count()).unwrap_or(0);
    watch.check();
    assert!(!watch.path.exists(), "the big file was complete before the kill");
    eprintln!(
        "killed bob {killed_at:.1?} after accepting: {received_before} bytes received by then, {stored_at_kill} \
         bytes in its blob store after the kill ({left_in_tmp} unfinished blob file(s) in blobs/tmp)"
    );

    let restarted = Instant::now();
    let _up_b = hearth.up_logging(&b, Some(&homes.log("bob")));
    assert_eq!(std::fs::read_dir(b.join("blobs/tmp")).map(|d| d.count()).unwrap_or(0), 0, "blobs/tmp is cleared");
    // Status must not claim the share complete while the file is missing
    // (before the node has looked at its folder again, say).
    let mut last = Value::Null;
    let mut claimed_complete_early = None;
    wait_watching(TRANSFER, &mut watch, "bob to finish after the restart", || {
        last = status(&hearth, &b);
        let on_disk = copy.join("big.bin").exists();
        if complete(&last) && !on_disk && claimed_complete_early.is_none() {
            claimed_complete_early = Some(restarted.elapsed());
        }
        complete(&last) && on_disk
    });
    let finished = restarted.elapsed();
    assert_same_content(&source, &copy);
    watch.check();
    assert!(watch.checked, "the final file was checked");

    // Resumed, not restarted: what arrived after the restart is what the
    // store lacked at the kill, give or take a few chunks.
    let received_after = u(&last, "bytes_received");
    let stored_at_end = stored_bytes(&b);
    eprintln!(
        "restart to complete: {finished:.1?}; bob received {received_after} bytes after the restart; store: \
         {stored_at_kill} bytes at the kill, {stored_at_end} at the end; {} polls of the final path; leftover \
         temporary files in the folder: {:?}",
        watch.polls,
        temp_files(&copy)
    );
    assert_eq!(
        claimed_complete_early, None,
        "after the restart, share status said nothing was pending while big.bin was missing"
    );
    assert!(stored_at_kill >= BIG / 5);
    let slack = 4 * u64::from(hearth_protocol::blob::CHUNK_MAX);
    assert!(
        received_after + stored_at_kill <= stored_at_end + slack,
        "chunks stored before the kill were fetched again: {received_after} received after the restart, \
         {stored_at_kill} stored at the kill, {stored_at_end} stored at the end"
    );
    assert!(received_after + stored_at_kill >= BIG, "the file cannot be complete with fewer bytes");
    assert!(temp_files(&copy).is_empty(), "temporary files left in the folder: {:?}", temp_files(&copy));
}

#[test]
fn a_sender_killed_mid_transfer_leaves_the_rest_to_another_member() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hearth = Runner::direct();
    let homes = Homes::new();
    let (a, b, c) = (homes.node(&hearth, "alice"), homes.node(&hearth, "bob"), homes.node(&hearth, "carol"));
    let up_a = hearth.up_logging(&a, Some(&homes.log("alice")));
    let _up_b = hearth.up_logging(&b, Some(&homes.log("bob")));
    let _up_c = hearth.up_logging(&c, Some(&homes.log("carol")));
    hearth.pair(&a, "alice", &b, "bob");
    hearth.pair(&a, "alice", &c, "carol");
    hearth.pair(&b, "bob", &c, "carol");

    let source = homes.root.join("alice-big");
    make_folder(&source);
    hearth.ok(&a, &["share", "create", &source.to_string_lossy(), "--name", "Big"]);

    // Carol gets everything first.
    hearth.ok(&a, &["share", "invite", "Big", "carol"]);
    wait_for(Duration::from_secs(30), || hearth.ok(&c, &["share", "list", "--json"]).contains("pending"));
    let carol_copy = homes.root.join("carol-big");
    hearth.ok(&c, &["share", "accept", "Big", &carol_copy.to_string_lossy()]);
    let started = Instant::now();
    wait_for(TRANSFER, || done(&hearth, &c, &carol_copy).0);
    eprintln!("carol's full copy took {:.1?}", started.elapsed());
    assert_same_content(&source, &carol_copy);

    // Bob starts fetching from both; alice dies in the middle.
    hearth.ok(&a, &["share", "invite", "Big", "bob"]);
    wait_for(Duration::from_secs(30), || hearth.ok(&b, &["share", "list", "--json"]).contains("pending"));
    let copy = homes.root.join("bob-big");
    hearth.ok(&b, &["share", "accept", "Big", &copy.to_string_lossy()]);
    let mut watch = FinalPath::new(copy.join("big.bin"), source.join("big.bin"));
    let received_before = wait_until_partly_stored(&hearth, &b, &mut watch);
    up_a.kill();
    let killed = Instant::now();
    eprintln!("killed alice (the owner) with {received_before} bytes received by bob");

    let mut last = Value::Null;
    wait_watching(TRANSFER, &mut watch, "bob to finish from carol alone", || {
        let (finished, s) = done(&hearth, &b, &copy);
        last = s;
        finished
    });
    let alice_online =
        last["members"].as_array().expect("members").iter().any(|m| m["name"] == "alice" && m["online"] == true);
    eprintln!(
        "bob finished {:.1?} after the kill (alice online in bob's status: {alice_online}); {} bytes received in all",
        killed.elapsed(),
        u(&last, "bytes_received")
    );
    assert_same_content(&source, &copy);
    assert!(temp_files(&copy).is_empty(), "temporary files left in the folder: {:?}", temp_files(&copy));
    // The work alice held at her death was asked of carol, not fetched twice.
    let (received, stored) = (u(&last, "bytes_received"), stored_bytes(&b));
    assert!(
        received <= stored + 4 * u64::from(hearth_protocol::blob::CHUNK_MAX),
        "{received} received, {stored} stored"
    );

    // Alice comes back on the same home: her folder and document are intact.
    let _up_a = hearth.up_logging(&a, Some(&homes.log("alice")));
    wait_for(Duration::from_secs(60), || hearth.online(&a, "bob") && hearth.online(&a, "carol"));
    let back = status(&hearth, &a);
    assert!(complete(&back), "{back}");
    assert_eq!(u(&back, "bytes"), BIG + SMALL.iter().map(|(_, b)| b.len() as u64).sum::<u64>());
    assert!(same_file(&source.join("big.bin"), &copy.join("big.bin")));
}

#[test]
fn a_receiver_killed_while_writing_the_file_out_restarts_cleanly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hearth = Runner::direct();
    let homes = Homes::new();
    let Pair { b, up_b, source, copy, _up_a } = alice_shares_big_with_bob(&hearth, &homes);

    // A first crash mid-transfer: what bob stored before it, his next
    // process did not write itself, so his write-out verifies it (hashes
    // it back) before the rename. That verification is the window in which
    // the file being written out sits in the folder under a temporary name
    // (a download written by one process alone is linked into place at
    // once, too quickly to be caught).
    let mut watch = FinalPath::new(copy.join("big.bin"), source.join("big.bin"));
    let mut last = Value::Null;
    wait_watching(TRANSFER, &mut watch, "half of the big file to be stored", || {
        last = status(&hearth, &b);
        stored_bytes(&b) >= BIG / 2
    });
    assert!(u(&last, "files_pending_down") > 0, "the transfer finished before the first kill: {last}");
    up_b.kill();
    let up_b = hearth.up_logging(&b, Some(&homes.log("bob")));

    // Every chunk arrives; the file is being assembled in a temporary file
    // next to its final place. Kill bob then.
    let deadline = Instant::now() + TRANSFER;
    let partly_written =
        || temp_files(&copy).iter().any(|name| std::fs::metadata(copy.join(name)).is_ok_and(|m| m.len() >= 1 << 20));
    while !partly_written() {
        watch.check();
        assert!(!watch.path.exists(), "big.bin was written out before a temporary file was seen");
        assert!(Instant::now() < deadline, "no temporary file of 1 MiB or more seen in {TRANSFER:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    up_b.kill();
    let left: Vec<(String, u64)> = temp_files(&copy)
        .into_iter()
        .map(|name| {
            let len = std::fs::metadata(copy.join(&name)).map(|m| m.len()).unwrap_or(0);
            (name, len)
        })
        .collect();
    watch.check();
    assert!(!watch.path.exists(), "big.bin was already in place at the kill");
    eprintln!("killed bob while it wrote big.bin out; left in the folder (name, bytes): {left:?}");

    let restarted = Instant::now();
    let _up_b = hearth.up_logging(&b, Some(&homes.log("bob")));
    wait_watching(TRANSFER, &mut watch, "bob to write the file after the restart", || done(&hearth, &b, &copy).0);
    eprintln!("restart to complete: {:.1?}", restarted.elapsed());
    assert_same_content(&source, &copy);
    // The half-written temporary file does not stay in the person's folder.
    let cleaned = Instant::now() + Duration::from_secs(20);
    while !temp_files(&copy).is_empty() && Instant::now() < cleaned {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(temp_files(&copy), Vec::<String>::new(), "temporary files left in the folder after the restart");
}
