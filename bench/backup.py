#!/usr/bin/env python3
"""Backups: Hearth (to three friends on loopback) and restic (local repository),
side by side in one run, on the same generated data.

Run by hand, never by CI (see bench/README.md):

    cargo build --release -p hearth-node
    python3 bench/backup.py            # ~1 GiB (5,000 small files + 9 x 100 MiB)
    python3 bench/backup.py --small    # a quick run (~40 MiB)

What it measures:

1. backup of the data set: Hearth (`hearth backup run`: FastCDC, zstd,
   XChaCha20-Poly1305, padded packs, Reed-Solomon 2-of-3, upload to three
   friend nodes over QUIC/TCP on 127.0.0.1) and restic (`restic backup`,
   local repository on the same disk);
2. incremental backup after changing ~1 % of the bytes (1 MiB rewritten in
   every large file, 1 % of the small files appended to);
3. restore of the latest snapshot into an empty directory: Hearth as a fresh
   install (`hearth init`, then `hearth restore --recovery-key KEY --from FRIEND`)
   with one of the three friends stopped, restic with `restic restore`;
   both restores are checked file by file (SHA-256) against the source.
   Before each restore the page cache is dropped (as root; `--warm-caches`
   keeps it), so that both read their backup from disk as after a disaster.

It reports the three time ratios (Hearth / restic) and both dedup ratios
(logical bytes of all snapshots / unique bytes stored before redundancy:
restic `stats --mode raw-data`, Hearth the sealed chunk bytes of its runs).
Results: a JSON file under bench/results/ and a Markdown summary on stdout.
Every process started here is stopped here (by its pid); every wait is bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import toml_config

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_GEN = REPO.parent / "shared" / "bench" / "gen_dataset.py"
PROCS: list[subprocess.Popen] = []


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stop(p: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process we started (by pid), SIGKILL after `grace` s."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
    if p in PROCS:
        PROCS.remove(p)


def wait_until(pred, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" ({last})" if last else ""))


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return h.hexdigest()


def manifest_of(root: Path) -> dict:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def dataset(args) -> Path:
    params = [str(args.small_count), str(args.large_mib_each), str(args.large_count)]
    d = args.cache / ("dataset-" + "-".join(params))
    if not (d / "done").exists():
        shutil.rmtree(d, ignore_errors=True)
        (d / "data").mkdir(parents=True)
        log(f"generating the data set {params} into {d}")
        subprocess.run([sys.executable, str(args.gen), str(d / "data"), *params], check=True)
        (d / "done").write_text("ok")
    return d / "data"


def change_one_percent(src: Path) -> int:
    """Rewrites 1 MiB inside every file over 10 MiB and appends to 1 % of the
    others; deterministic. Returns the bytes changed."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    changed = 0
    small = [p for p in files if p.stat().st_size <= 10 << 20]
    for i, p in enumerate(files):
        size = p.stat().st_size
        if size > 10 << 20:
            with open(p, "r+b") as f:
                f.seek(size // 3)
                f.write(hashlib.sha256(str(p).encode()).digest() * (1 << 15))
            changed += 1 << 20
    for p in small[:: max(1, len(small) // max(1, len(small) // 100))][: max(1, len(small) // 100)]:
        with open(p, "ab") as f:
            f.write(b"edited by bench/backup.py\n" * 40)
        changed += 26 * 40
    return changed


class Hearth:
    def __init__(self, binary: Path, home: Path, name: str):
        self.bin, self.home, self.name = binary, home, name
        self.logfile = home.parent / f"{home.name}.log"
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, RUST_LOG="hearth_node=info,warn", NO_COLOR="1")

    def cli(self, *args: str, timeout: float = 120.0) -> str:
        r = subprocess.run([str(self.bin), "--home", str(self.home), *args], capture_output=True, text=True,
                           timeout=timeout, env=self.env)
        if r.returncode != 0:
            raise RuntimeError(f"hearth {' '.join(args)} ({self.name}) failed: {r.stderr.strip()}")
        return r.stdout

    def json(self, *args: str, timeout: float = 120.0):
        return json.loads(self.cli(*args, "--json", timeout=timeout))

    def init(self) -> None:
        self.cli("init", "--name", self.name)
        p = self.home / "config.toml"
        c = tomllib.loads(p.read_text())
        c["listen"] = ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"]
        c["mdns"] = False
        p.write_text(toml_config.dumps(c))

    def start(self) -> None:
        out = open(self.logfile, "ab")
        self.proc = subprocess.Popen([str(self.bin), "--home", str(self.home), "up"], stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                     start_new_session=True)
        out.close()
        PROCS.append(self.proc)
        wait_until(lambda: self.cli("status", "--json", timeout=5).strip().startswith("{"), 30,
                   f"hearth {self.name} to answer", 0.05)

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)

    def address(self) -> str:
        s = self.json("status")
        quic = next(a for a in s["listen_addrs"] if "quic" in a)
        return f"{quic}/p2p/{s['peer_id']}"


def restic(repo: Path, *args: str, timeout: float = 3600) -> str:
    env = dict(os.environ, RESTIC_PASSWORD="bench", RESTIC_REPOSITORY=str(repo))
    r = subprocess.run(["restic", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"restic {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def cold_caches(args) -> str:
    """Before each restore: write everything out and, as root, drop the page
    cache, so that both tools read their backup from disk as after a
    disaster (else restic reads a repository it has just written from
    memory, and a friend shards it wrote past the cache from disk)."""
    subprocess.run(["sync"], check=False)
    if args.warm_caches:
        return "warm (--warm-caches)"
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "dropped"
    except OSError as e:
        log(f"cannot drop the page cache ({e}); both restores may read from memory")
        return "warm (not root)"


def timed(fn):
    t = time.monotonic()
    v = fn()
    return time.monotonic() - t, v


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hearth", type=Path, default=REPO / "target" / "release" / "hearth")
    ap.add_argument("--gen", type=Path, default=DEFAULT_GEN)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hearth-bench-cache")
    ap.add_argument("--small", action="store_true", help="500 small files + 2 x 16 MiB")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--warm-caches", action="store_true",
                    help="do not drop the page cache before the restores (it is dropped when run as root)")
    args = ap.parse_args()
    args.small_count, args.large_mib_each, args.large_count = (500, 16, 2) if args.small else (5000, 100, 9)
    if not args.hearth.exists():
        sys.exit(f"{args.hearth} is missing: cargo build --release -p hearth-node")
    if not shutil.which("restic"):
        sys.exit("restic is missing: apt-get install -y restic")
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    data = dataset(args)
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-backup-"))
    res: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
                 "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
                 "restic": subprocess.run(["restic", "version"], capture_output=True, text=True).stdout.strip(),
                 "dataset": [args.small_count, args.large_mib_each, args.large_count]}
    try:
        src = work / "src"
        shutil.copytree(data, src)
        res["bytes"] = tree_bytes(src)
        log(f"data: {res['bytes'] / 2**20:.0f} MiB in {sum(1 for p in src.rglob('*') if p.is_file())} files")

        owner = Hearth(args.hearth, work / "owner", "owner")
        friends = [Hearth(args.hearth, work / n, n) for n in ("ann", "ben", "cat")]
        for n in [owner, *friends]:
            n.init()
            n.start()
        for f in friends:
            f.cli("join", owner.cli("invite").strip())
            wait_until(lambda: any(c["name"] == f.name and c["online"] for c in owner.json("contacts")), 30,
                       f"{f.name} online")
            owner.cli("backup", "friends", "add", f.name, "--offer", "10G")
            f.cli("backup", "hosting", "accept", "owner", "--quota", "10G")
        owner.cli("backup", "add", str(src))

        repo = work / "restic-repo"
        restic(repo, "init")
        log("backup 1: hearth")
        t, run1 = timed(lambda: owner.json("backup", "run", timeout=3600))
        res["hearth_backup_s"] = round(t, 2)
        log(f"  {t:.1f} s ({run1['k']}-of-{run1['n']})")
        log("backup 1: restic")
        t, _ = timed(lambda: restic(repo, "backup", "--quiet", str(src)))
        res["restic_backup_s"] = round(t, 2)
        log(f"  {t:.1f} s")

        res["changed_bytes"] = change_one_percent(src)
        log(f"changed {res['changed_bytes'] / 2**20:.1f} MiB")
        t, run2 = timed(lambda: owner.json("backup", "run", timeout=3600))
        res["hearth_incremental_s"] = round(t, 2)
        log(f"incremental: hearth {t:.1f} s")
        t, _ = timed(lambda: restic(repo, "backup", "--quiet", str(src)))
        res["restic_incremental_s"] = round(t, 2)
        log(f"incremental: restic {t:.1f} s")

        logical = run1["stats"]["bytes"] + run2["stats"]["bytes"]
        stored = run1["stats"]["stored_bytes"] + run2["stats"]["stored_bytes"]
        res["hearth_dedup_ratio"] = round(logical / max(1, stored), 3)
        res["hearth_runs"] = [run1, run2]
        rs = json.loads(restic(repo, "stats", "--json", "--mode", "raw-data"))
        rl = json.loads(restic(repo, "stats", "--json", "--mode", "restore-size"))
        res["restic_dedup_ratio"] = round(rl["total_size"] / max(1, rs["total_size"]), 3)
        res["restic_stats"] = {"raw": rs, "restore_size": rl}

        key = owner.json("backup", "recovery-key")["recovery_key"]
        from_addr = friends[0].address()
        manifest = manifest_of(src)
        owner.stop()
        friends[2].stop()  # one friend away during the restore
        fresh = Hearth(args.hearth, work / "fresh", "owner")
        fresh.cli("init", "--name", "owner")  # a fresh machine: `hearth init`, then `hearth restore`
        target = work / "hearth-restored"
        log("restore: hearth (fresh install, one friend offline)")
        res["restore_caches"] = cold_caches(args)
        t, _ = timed(lambda: fresh.cli("restore", "--recovery-key", key, "--from", from_addr, "--to", str(target),
                                       "--json", timeout=3600))
        res["hearth_restore_s"] = round(t, 2)
        log(f"  {t:.1f} s")
        rtarget = work / "restic-restored"
        cold_caches(args)
        t, _ = timed(lambda: restic(repo, "restore", "latest", "--target", str(rtarget)))
        res["restic_restore_s"] = round(t, 2)
        log(f"restore: restic {t:.1f} s")
        h_root = target / str(src).lstrip("/")
        r_root = rtarget / str(src).lstrip("/")
        res["hearth_restore_verified"] = manifest_of(h_root) == manifest
        res["restic_restore_verified"] = manifest_of(r_root) == manifest
        for k in ("backup", "incremental", "restore"):
            res[f"ratio_{k}"] = round(res[f"hearth_{k}_s"] / max(0.001, res[f"restic_{k}_s"]), 2)
        res["loadavg_end"] = os.getloadavg()
    finally:
        for p in list(PROCS):
            stop(p, grace=5)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = HERE / "results" / f"backup-{time.strftime('%Y%m%d-%H%M%S')}-{'small' if args.small else 'full'}.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"""| step | Hearth | restic | ratio |
|---|---|---|---|
| backup ({res['bytes'] / 2**20:.0f} MiB) | {res['hearth_backup_s']} s | {res['restic_backup_s']} s | {res['ratio_backup']} |
| incremental (~1 %) | {res['hearth_incremental_s']} s | {res['restic_incremental_s']} s | {res['ratio_incremental']} |
| restore | {res['hearth_restore_s']} s (one friend offline) | {res['restic_restore_s']} s | {res['ratio_restore']} |
| dedup ratio | {res['hearth_dedup_ratio']} | {res['restic_dedup_ratio']} | |
| restore verified | {res['hearth_restore_verified']} | {res['restic_restore_verified']} | |

results: {out.relative_to(REPO)}""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
