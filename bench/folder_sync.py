#!/usr/bin/env python3
"""Shared-folder sync: Hearth and Syncthing side by side, in one run, on loopback.

Run by hand, never by CI (see bench/README.md):

    cargo build --release -p hearth-node
    python3 bench/folder_sync.py            # full reference data set (546 MiB), ~13 min
    python3 bench/folder_sync.py --small    # a quick run (~30 MiB), ~2.5 min

What it measures (each tool with two instances on 127.0.0.1, nothing else):

1. initial sync of the reference data set (/work/shared/bench/gen_dataset.py,
   default parameters, seed 42): from the start of the two nodes to the
   receiver holding every file with identical content (sizes polled every
   0.25 s, then SHA-256 of every file compared with the source);
2. edit-to-peer latency of one small file, p50/p90 over --edits edits
   (Hearth with its default rescan_secs, and again with rescan_secs=1);
3. large-file throughput: one --large-mib file (default 1 GiB) dropped into
   the shared folder (renamed in, so no tool sees it half-written), until it
   is on the peer; for Hearth split into the sender's scan (chunking and
   storing) and the transfer (fetch, store, write out), compared with raw
   quinn over loopback (bench/quic-raw, one stream, same size);
4. peak RSS (VmHWM) and CPU seconds of every node process.

Results: a JSON file under bench/results/ and a Markdown summary on stdout.
Every process started here is stopped here (by its pid); every wait is bounded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import tomllib

import toml_config
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_GEN = REPO.parent / "shared" / "bench" / "gen_dataset.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SHARE = "bench"
EDIT_FILE = "d00/s0/f00000.txt"  # a small text file of the data set


# ----- processes ---------------------------------------------------------------

PROCS: list[subprocess.Popen] = []


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def spawn(cmd: list[str], logfile: Path, env: dict | None = None) -> subprocess.Popen:
    out = open(logfile, "ab")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    out.close()
    PROCS.append(p)
    return p


def stop(p: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process we started (by pid), SIGKILL after `grace` s."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        except ProcessLookupError:
            pass
    if p in PROCS:
        PROCS.remove(p)


def stop_all() -> None:
    for p in list(PROCS):
        stop(p, grace=5.0)


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def wait_until(pred, timeout: float, what: str, interval: float = 0.1):
    """Polls `pred` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = pred()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" ({last_exc})" if last_exc else ""))


def proc_mem_kb(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def tcp_bytes_sent(pid: int) -> int | None:
    """Bytes sent by the TCP sockets of `pid` (ss -ti); tells whether a
    transfer went over TCP or over QUIC (UDP, not counted here)."""
    try:
        r = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    total, mine = 0, False
    for line in r.stdout.splitlines():
        if "users:(" in line:
            mine = f"pid={pid}," in line
        elif mine:
            m = re.search(r"bytes_sent:(\d+)", line)
            if m:
                total += int(m.group(1))
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----- files -------------------------------------------------------------------

def ignored(name: str) -> bool:
    """Tool metadata and temporary files, not part of the data."""
    return (name.startswith(".hearth") or name.startswith(".syncthing.") or name.startswith("~syncthing~")
            or name in (".stfolder", ".stversions", ".stignore"))


def listing(root: Path) -> dict[str, int]:
    """relative path -> size of every regular file under root."""
    out: dict[str, int] = {}
    stack = [(str(root), "")]
    while stack:
        d, rel = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                if ignored(e.name):
                    continue
                r = f"{rel}/{e.name}" if rel else e.name
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append((e.path, r))
                    elif e.is_file(follow_symlinks=False):
                        out[r] = e.stat(follow_symlinks=False).st_size
                except OSError:
                    pass
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def manifest_of(root: Path) -> dict[str, list]:
    return {rel: [size, sha256_file(root / rel)] for rel, size in sorted(listing(root).items())}


def copy_tree(src: Path, dst: Path) -> None:
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)


def mode_differs(src: Path, dst: Path, rels) -> int:
    """Files whose permission bits differ between the two copies (reported,
    not a failure: the content is what is verified)."""
    n = 0
    for r in rels:
        try:
            if (os.stat(src / r).st_mode & 0o7777) != (os.stat(dst / r).st_mode & 0o7777):
                n += 1
        except OSError:
            n += 1
    return n


def wait_synced(dst: Path, manifest: dict, timeout: float, t0: float, samplers=(), interval=0.25,
                src: Path | None = None) -> dict:
    """Polls dst until every file of `manifest` is there with its size, then
    compares SHA-256; returns times relative to t0 and a progress timeline."""
    want_sizes = {r: v[0] for r, v in manifest.items()}
    total_files, total_bytes = len(want_sizes), sum(want_sizes.values())
    deadline = time.monotonic() + timeout
    first_file = None
    timeline = []
    next_sample = 0.0
    attempts = 0
    while time.monotonic() < deadline:
        now = time.time()
        have = listing(dst)
        ok = [r for r, s in have.items() if want_sizes.get(r) == s]
        if ok and first_file is None:
            first_file = now - t0
        if now >= next_sample:
            sample = {"t": round(now - t0, 2), "files": len(ok), "bytes": sum(have[r] for r in ok)}
            for name, fn in samplers:
                sample[name] = fn()
            timeline.append(sample)
            next_sample = now + 2.0
        if len(ok) == total_files:
            done = now - t0
            mismatched = [r for r in want_sizes if sha256_file(dst / r) != manifest[r][1]]
            extra = sorted(set(have) - set(want_sizes))
            if not mismatched:
                timeline.append({"t": round(done, 2), "files": total_files, "bytes": total_bytes})
                return {"ok": True, "secs": round(done, 3), "first_file_secs": first_file and round(first_file, 3),
                        "files": total_files, "bytes": total_bytes, "extra_files": extra[:10],
                        "mode_differs": mode_differs(src, dst, want_sizes) if src else None,
                        "timeline": timeline}
            attempts += 1
            log(f"  {len(mismatched)} file(s) differ from the source (e.g. {mismatched[0]}); still waiting")
            if attempts >= 5:
                return {"ok": False, "error": f"{len(mismatched)} files differ", "examples": mismatched[:10],
                        "timeline": timeline}
        time.sleep(interval)
    have = listing(dst)
    ok = [r for r, s in have.items() if want_sizes.get(r) == s]
    return {"ok": False, "error": f"timeout after {timeout:.0f} s", "files": len(ok), "of_files": total_files,
            "bytes": sum(have[r] for r in ok), "of_bytes": total_bytes, "timeline": timeline}


def pctl(values: list[float], q: float) -> float:
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def edit_latency(src: Path, dst: Path, n: int, seed: int, label: str, timeout: float) -> dict:
    """Rewrites one small file in place `n` times; each time, the time until the
    peer's copy has the new content (polled every 20 ms)."""
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        body = (f"edit {label} #{i} {rng.random():.12f}\n" * rng.randint(20, 60)).encode()
        with open(src, "wb") as f:
            f.write(body)
        t0 = time.monotonic()
        deadline = t0 + timeout
        seen = None
        while time.monotonic() < deadline:
            try:
                if dst.read_bytes() == body:
                    seen = time.monotonic() - t0
                    break
            except OSError:
                pass
            time.sleep(0.02)
        if seen is None:
            log(f"  {label}: edit {i} not seen on the peer within {timeout:.0f} s")
            samples.append(None)
        else:
            samples.append(round(seen, 3))
            log(f"  {label}: edit {i}: {seen:.2f} s")
        time.sleep(rng.uniform(0.3, 1.5))  # de-phase from periodic timers
    seen_only = [s for s in samples if s is not None]
    return {"n": n, "missed": n - len(seen_only), "samples": samples,
            "p50": round(pctl(seen_only, 0.5), 3) if seen_only else None,
            "p90": round(pctl(seen_only, 0.9), 3) if seen_only else None,
            "min": min(seen_only, default=None), "max": max(seen_only, default=None)}


# ----- data -------------------------------------------------------------------

def dataset(args) -> tuple[Path, dict]:
    """The reference data set, generated once per parameter set and cached."""
    params = [str(args.small_count), str(args.large_mib_each), str(args.large_count)]
    d = args.cache / ("dataset-" + "-".join(params))
    mf = d / "manifest.json"
    if not mf.exists():
        if d.exists():
            shutil.rmtree(d)
        (d / "data").mkdir(parents=True)
        log(f"generating the data set {params} into {d}")
        subprocess.run([sys.executable, str(args.gen), str(d / "data"), *params], check=True)
        manifest = manifest_of(d / "data")
        mf.write_text(json.dumps(manifest))
    manifest = json.loads(mf.read_text())
    return d / "data", manifest


def big_file(args) -> tuple[Path, str]:
    """One deterministic random file of --large-mib MiB, cached."""
    p = args.cache / f"big-{args.large_mib}MiB.bin"
    h = p.with_suffix(".sha256")
    if not h.exists():
        log(f"generating a {args.large_mib} MiB file")
        rng = random.Random(7)
        with open(p, "wb") as f:
            for _ in range(args.large_mib):
                f.write(rng.randbytes(1 << 20))
        h.write_text(sha256_file(p))
    return p, h.read_text().strip()


def drop_in(big: Path, staging: Path, dest_dir: Path) -> tuple[Path, Path]:
    """Copies `big` next to the share (same file system); returns (copy, where
    to rename it to) for the caller, who starts the clock at the rename."""
    dest = dest_dir / "large-drop" / big.name
    dest.parent.mkdir(exist_ok=True)  # first, so its own scan is over before the drop
    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / big.name
    shutil.copyfile(big, tmp)
    os.sync()
    time.sleep(2)
    return tmp, dest


# ----- Hearth -------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+(\w+)\s+([\w:]+): (.*)$")


def read_log(path: Path) -> list[tuple[float, str, str, str]]:
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = LOG_LINE.match(ANSI.sub("", line))
        if m:
            ts = m.group(1)
            if "." in ts:
                head, frac = ts.split(".")
                ts = f"{head}.{frac[:6].ljust(6, '0')}"
            t = dt.datetime.fromisoformat(ts + "+00:00").timestamp()
            out.append((t, m.group(2), m.group(3), m.group(4)))
    return out


LISTEN = {"quic": ["/ip4/127.0.0.1/udp/0/quic-v1"], "tcp": ["/ip4/127.0.0.1/tcp/0"],
          "both": ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"]}


class Hearth:
    def __init__(self, binary: Path, home: Path, name: str, log_level: str, listen: str = "both"):
        self.bin, self.home, self.name = binary, home, name
        self.listen = LISTEN[listen]
        self.logfile = home.parent / f"{home.name}.log"
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, RUST_LOG=log_level, NO_COLOR="1")

    def cli(self, *args: str, timeout: float = 90.0, check: bool = True) -> str:
        r = subprocess.run([str(self.bin), "--home", str(self.home), *args], capture_output=True, text=True,
                           timeout=timeout, env=self.env)
        if check and r.returncode != 0:
            raise RuntimeError(f"hearth {' '.join(args)} (home {self.home.name}) failed: {r.stderr.strip()}")
        return r.stdout

    def json(self, *args: str):
        return json.loads(self.cli(*args, "--json"))

    def init(self) -> int | None:
        """Creates the home; returns the default rescan_secs written by init."""
        self.cli("init", "--name", self.name)
        default = tomllib.loads((self.home / "config.toml").read_text()).get("rescan_secs")
        self.configure(None)
        return default

    def configure(self, rescan_secs: int | None) -> None:
        p = self.home / "config.toml"
        c = tomllib.loads(p.read_text())
        c["listen"] = self.listen
        c["mdns"] = False
        if rescan_secs is None:
            c.pop("rescan_secs", None)  # the node's default
        else:
            c["rescan_secs"] = rescan_secs
        p.write_text(toml_config.dumps(c))

    def start(self) -> None:
        self.proc = spawn([str(self.bin), "--home", str(self.home), "up"], self.logfile, self.env)

    def wait_up(self, timeout=30.0) -> None:
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"hearth {self.name} exited ({self.proc.returncode}); see {self.logfile}")
            return self.cli("status", "--json", timeout=5, check=False).strip().startswith("{")
        wait_until(up, timeout, f"hearth {self.name} to answer", 0.05)

    def connected(self) -> bool:
        return bool(self.json("status")["connected_contacts"])

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self):
        return read_log(self.logfile)


def hearth_phases(a: Hearth, b: Hearth, t0: float, since: float, content_bytes: int | None = None) -> dict:
    """Phase times (s after t0) from the nodes' info logs."""
    def rel(t):
        return round(t - t0, 3) if t is not None else None
    alog = [e for e in a.log() if e[0] >= since]
    blog = [e for e in b.log() if e[0] >= since]
    recorded = [e for e in alog if "recorded local changes" in e[3]]
    # The receiver's first document change after the sender recorded its scan.
    after = recorded[0][0] if recorded else since
    applied = [e for e in blog if e[0] >= after and re.search(r"applied \d+ change", e[3])]
    fetched = [e for e in blog if "content fetched" in e[3]]
    if content_bytes is not None:
        fetched = [e for e in fetched if f"bytes={content_bytes}" in e[3]] or fetched
    wrote = [e for e in blog if "wrote remote changes to disk" in e[3]]
    warn = [e for e in alog + blog if e[1] in ("WARN", "ERROR")]
    return {
        "sender_scan_recorded": rel(recorded[0][0]) if recorded else None,
        "sender_scan_report": recorded[0][3] if recorded else None,
        "receiver_doc_applied": rel(applied[0][0]) if applied else None,
        "receiver_first_content_fetched": rel(fetched[0][0]) if fetched else None,
        "receiver_last_content_fetched": rel(fetched[-1][0]) if fetched else None,
        "receiver_contents_fetched": len(fetched),
        "receiver_write_outs": len(wrote),
        "receiver_last_write_out": rel(wrote[-1][0]) if wrote else None,
        "warnings": [f"{e[1]} {e[2]}: {e[3]}"[:300] for e in warn[:10]],
        "warnings_total": len(warn),
    }


def hearth_fetch_rate(b: Hearth, since: float) -> list:
    """Contents fetched per 5 s window on the receiver (shows whether fetching
    slows down as the share grows)."""
    ts = [e[0] for e in b.log() if e[0] >= since and "content fetched" in e[3]]
    if not ts:
        return []
    start = ts[0]
    buckets: dict[int, int] = {}
    for t in ts:
        buckets[int((t - start) // 5)] = buckets.get(int((t - start) // 5), 0) + 1
    return [{"from_s": k * 5, "files": buckets[k]} for k in sorted(buckets)]


def start_perf(work: Path, node: "Hearth") -> subprocess.Popen:
    # DWARF call graphs (Rust and libc have no frame pointers), so that the
    # report can give inclusive time per function; one profile per node.
    p = subprocess.Popen(["perf", "record", "-F", "199", "--call-graph", "dwarf,32768", "-o",
                          str(work / f"perf-{node.name}.data"), "-p", str(node.pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    PROCS.append(p)
    return p


def finish_perf(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pass
    stop(p)


def hearth_initial(args, root: Path, data: Path, manifest: dict, perf: bool) -> tuple:
    """Two fresh nodes; from their start to the receiver holding a verified
    copy of `data`. Returns (a, b, src, dst, result); the nodes keep running."""
    root.mkdir()
    a = Hearth(args.hearth, root / "A", "alice", args.hearth_log, args.hearth_listen)
    b = Hearth(args.hearth, root / "B", "bob", args.hearth_log, args.hearth_listen)
    src, dst = root / "src", root / "dst"
    copy_tree(data, src)
    default_rescan = a.init()
    b.init()
    t0 = time.time()
    a.start()  # one after the other, as for Syncthing
    a.wait_up()
    b.start()
    b.wait_up()
    t_up = time.time() - t0
    b.cli("join", a.cli("invite").strip())
    wait_until(lambda: a.connected() and b.connected(), 30, "the two nodes to be connected")
    t_paired = time.time() - t0
    a.cli("share", "create", str(src), "--name", SHARE)
    a.cli("share", "invite", SHARE, "bob")
    wait_until(lambda: any(s["name"] == SHARE and s["state"] == "pending" for s in b.json("share", "list")),
               30, "the invitation on bob")
    b.cli("share", "accept", SHARE, str(dst))
    t_accepted = time.time() - t0
    perfs = [start_perf(root, n) for n in (a, b)] if perf else []
    # The node also scans on its timer; ask now, like a user who just shared.
    scan = {}

    def do_scan():
        t = time.time()
        try:
            a.cli("share", "scan", SHARE, timeout=args.timeout)
            scan["ok"] = True
        except Exception as e:  # noqa: BLE001 - recorded
            scan["error"] = str(e)[:300]
        scan["returned"] = round(time.time() - t0, 3)
        scan["issued"] = round(t - t0, 3)
    th = threading.Thread(target=do_scan, daemon=True)
    th.start()
    samplers = [("rss_kb_A", lambda: proc_mem_kb(a.pid).get("VmRSS")),
                ("rss_kb_B", lambda: proc_mem_kb(b.pid).get("VmRSS")),
                ("cpu_s_A", lambda: proc_cpu_s(a.pid)), ("cpu_s_B", lambda: proc_cpu_s(b.pid))]
    sync = wait_synced(dst, manifest, args.timeout, t0, samplers, src=src)
    th.join(timeout=5)
    for p in perfs:
        finish_perf(p)
    result = {
        **sync,
        "default_rescan_secs": default_rescan,
        "steps": {"nodes_up": round(t_up, 3), "paired": round(t_paired, 3),
                  "share_accepted": round(t_accepted, 3), "scan_cli": scan},
        "phases_from_logs": hearth_phases(a, b, t0, t0),
        "fetch_rate_per_5s": hearth_fetch_rate(b, t0),
        "peak_rss_kb": {"A": proc_mem_kb(a.pid).get("VmHWM"), "B": proc_mem_kb(b.pid).get("VmHWM")},
        "cpu_s": {"A": proc_cpu_s(a.pid), "B": proc_cpu_s(b.pid)},
    }
    if perf:
        result["perf_report"] = {n.name: perf_report(root / f"perf-{n.name}.data", root / f"perf-{n.name}.txt")
                                 for n in (a, b)}
    return a, b, src, dst, result


def run_hearth(args, work: Path, data: Path, manifest: dict, big: tuple[Path, str] | None) -> dict:
    res: dict = {"binary": str(args.hearth)}
    nodes: list[Hearth] = []
    try:
        # 1. initial sync --------------------------------------------------------
        log("hearth: initial sync")
        a, b, src, dst, initial = hearth_initial(args, work / "hearth", data, manifest, args.perf)
        nodes += [a, b]
        res["initial"] = initial
        res["default_rescan_secs"] = initial["default_rescan_secs"]
        log(f"hearth: initial sync {'done in %.1f s' % initial['secs'] if initial['ok'] else 'FAILED: ' + initial['error']}")
        res["edits_share_files"] = len(manifest)
        if not initial["ok"]:
            # The other measures on a fresh pair sharing one small file, so that
            # they are still taken (and say so).
            log("hearth: the other measures run on a fresh pair sharing one small file")
            a.stop()
            b.stop()
            one = work / "one-file"
            (one / EDIT_FILE).parent.mkdir(parents=True)
            shutil.copyfile(data / EDIT_FILE, one / EDIT_FILE)
            m1 = {EDIT_FILE: manifest[EDIT_FILE]}
            saved = args.timeout
            args.timeout = 120.0
            a, b, src, dst, again = hearth_initial(args, work / "hearth-one", one, m1, False)
            args.timeout = saved
            nodes += [a, b]
            res["fallback_pair_initial"] = {k: again[k] for k in ("ok", "secs") if k in again}
            res["edits_share_files"] = 1
            if not again["ok"]:
                return res

        # 2. edit latency, default rescan_secs, then rescan_secs=1 ---------------
        log(f"hearth: {args.edits} edits (default rescan_secs={res['default_rescan_secs']})")
        res["edit_default"] = edit_latency(src / EDIT_FILE, dst / EDIT_FILE, args.edits, 11, "hearth", 60)
        log("hearth: restarting both nodes with rescan_secs=1")
        a.stop()
        b.stop()
        a.configure(1)
        b.configure(1)
        t = time.time()
        a.start()
        b.start()
        a.wait_up()
        b.wait_up()
        wait_until(lambda: a.connected() and b.connected(), 60, "the nodes to reconnect")
        res["restart_reconnect_secs"] = round(time.time() - t, 3)
        time.sleep(2)  # let the first scans after the restart pass
        res["edit_rescan_1"] = edit_latency(src / EDIT_FILE, dst / EDIT_FILE, args.edits, 12, "hearth-rescan1", 60)

        # 3. large file -----------------------------------------------------------
        if big:
            res["large"] = hearth_large(args, a, b, src, dst, big, work)
        res["peak_rss_kb_end"] = {"A": proc_mem_kb(a.pid).get("VmHWM"), "B": proc_mem_kb(b.pid).get("VmHWM")}
        return res
    finally:
        for n in nodes:
            n.stop()


def hearth_large(args, a: Hearth, b: Hearth, src: Path, dst: Path, big: tuple[Path, str], work: Path) -> dict:
    path, digest = big
    size = path.stat().st_size
    log(f"hearth: large file ({size >> 20} MiB)")
    tmp, dest = drop_in(path, work / "staging-hearth", src)
    rel = dest.relative_to(src).as_posix()
    cpu0 = {"A": proc_cpu_s(a.pid), "B": proc_cpu_s(b.pid)}
    tcp0 = tcp_bytes_sent(a.pid)
    perf_dir = work / "perf-large"
    perf_dir.mkdir(exist_ok=True)
    perfs = [start_perf(perf_dir, n) for n in (a, b)] if args.perf else []
    t0 = time.time()
    os.rename(tmp, dest)
    scan = {}

    def do_scan():
        try:
            a.cli("share", "scan", SHARE, timeout=args.timeout)
        except Exception as e:  # noqa: BLE001 - recorded
            scan["error"] = str(e)[:300]
        scan["returned"] = round(time.time() - t0, 3)
    th = threading.Thread(target=do_scan, daemon=True)
    th.start()
    sync = wait_synced_one(dst / rel, size, digest, args.timeout, t0)
    th.join(timeout=5)
    for p in perfs:
        finish_perf(p)
    ph = hearth_phases(a, b, t0, t0, content_bytes=size)
    tcp1 = tcp_bytes_sent(a.pid)
    out = {"bytes": size, **sync, "scan_cli": scan, "phases_from_logs": ph,
           "sender_tcp_bytes_sent": tcp1 - tcp0 if tcp0 is not None and tcp1 is not None else None,
           "cpu_s": {k: round(proc_cpu_s(p) - cpu0[k], 2) for k, p in (("A", a.pid), ("B", b.pid))}}
    if perfs:
        out["perf_report"] = {n.name: perf_report(perf_dir / f"perf-{n.name}.data", perf_dir / f"perf-{n.name}.txt")
                              for n in (a, b)}
    if sync["ok"]:
        scanned = ph["sender_scan_recorded"]
        out["end_to_end_mb_s"] = round(size / sync["secs"] / 1e6, 1)
        if scanned:
            out["scan_secs"] = scanned
            out["scan_mb_s"] = round(size / scanned / 1e6, 1)
            out["transfer_secs"] = round(sync["secs"] - scanned, 3)
            out["transfer_mb_s"] = round(size / (sync["secs"] - scanned) / 1e6, 1)
            fetched = ph["receiver_last_content_fetched"]
            if fetched:
                out["fetch_only_secs"] = round(fetched - scanned, 3)
                out["fetch_only_mb_s"] = round(size / (fetched - scanned) / 1e6, 1)
                out["write_out_secs"] = round(sync["secs"] - fetched, 3)
    return out


def wait_synced_one(path: Path, size: int, digest: str, timeout: float, t0: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if path.stat().st_size == size:
                done = time.time() - t0
                if sha256_file(path) == digest:
                    return {"ok": True, "secs": round(done, 3)}
                return {"ok": False, "error": "content differs"}
        except OSError:
            pass
        time.sleep(0.05)
    return {"ok": False, "error": f"timeout after {timeout:.0f} s"}


def perf_report(data: Path, out: Path) -> list[str]:
    """Inclusive (children) share of the node's CPU samples per function, from
    a DWARF call-graph profile: which part of the node the time goes to."""
    r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--children", "--sort", "sym",
                        "--percent-limit", "2", "-g", "none"], capture_output=True, text=True, timeout=900)
    out.write_text(r.stdout)
    lines = []
    for ln in r.stdout.splitlines():
        ln = re.sub(r"\s+", " ", ln).strip()
        if ln and not ln.startswith("#"):
            lines.append(ln[:200])
    return lines[:60]


# ----- Syncthing ------------------------------------------------------------------

class Syncthing:
    def __init__(self, home: Path, name: str):
        self.home, self.name = home, name
        self.logfile = home.parent / f"{home.name}.log"
        self.gui_port = free_port()
        self.listen_port = free_port()
        self.apikey = f"hearth-bench-{name}-{random.randrange(1 << 40):x}"
        self.proc = None
        self.device_id = None

    def generate(self) -> None:
        r = subprocess.run(["syncthing", "generate", f"--home={self.home}", "--no-default-folder",
                            "--skip-port-probing"], capture_output=True, text=True, timeout=60, check=True)
        m = re.search(r"Device ID: ([A-Z0-9-]+)", r.stdout + r.stderr)
        if not m:
            raise RuntimeError("syncthing generate printed no device id")
        self.device_id = m.group(1)

    def configure(self, peer: "Syncthing", folder: Path) -> None:
        cfg = self.home / "config.xml"
        tree = ET.parse(cfg)
        root = tree.getroot()
        gui = root.find("gui")
        gui.find("address").text = f"127.0.0.1:{self.gui_port}"
        gui.find("apikey").text = self.apikey
        opts = root.find("options")
        settings = {
            "listenAddress": f"tcp://127.0.0.1:{self.listen_port}",
            "globalAnnounceEnabled": "false", "localAnnounceEnabled": "false", "relaysEnabled": "false",
            "natEnabled": "false", "startBrowser": "false", "urAccepted": "-1", "autoUpgradeIntervalH": "0",
            "crashReportingEnabled": "false", "announceLANAddresses": "false", "stunKeepaliveStartS": "0",
            "stunKeepaliveMinS": "0", "restartOnWakeup": "false",
            # Same footing as Hearth on a machine shared with other work.
            "setLowPriority": "false",
        }
        for k, v in settings.items():
            el = opts.find(k)
            if el is None:
                el = ET.SubElement(opts, k)
            el.text = v
        for el in opts.findall("globalAnnounceServer"):
            opts.remove(el)
        defaults = root.find("defaults")
        dev = ET.fromstring(ET.tostring(defaults.find("device")))
        dev.set("id", peer.device_id)
        dev.set("name", peer.name)
        dev.find("address").text = f"tcp://127.0.0.1:{peer.listen_port}"
        root.append(dev)
        folder_el = ET.fromstring(ET.tostring(defaults.find("folder")))
        folder_el.set("id", SHARE)
        folder_el.set("label", SHARE)
        folder_el.set("path", str(folder))
        folder_el.set("type", "sendreceive")
        folder_el.set("fsWatcherEnabled", "true")
        for d in folder_el.findall("device"):
            folder_el.remove(d)
        for did in (self.device_id, peer.device_id):
            d = ET.SubElement(folder_el, "device", {"id": did, "introducedBy": ""})
            ET.SubElement(d, "encryptionPassword")
        root.append(folder_el)
        tree.write(cfg)
        (folder / ".stfolder").mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        # STMONITORED: run syncthing itself, without its monitor process, so the
        # pid measured (RSS, CPU) is the one doing the work.
        env = dict(os.environ, STNOUPGRADE="1", STNORESTART="1", STNODEFAULTFOLDER="1", STMONITORED="1")
        self.proc = spawn(["syncthing", "serve", f"--home={self.home}", "--no-browser", "--no-restart",
                           "--no-upgrade", "--logflags=3"], self.logfile, env)

    def rest(self, path: str, method: str = "GET", timeout: float = 10.0):
        req = urllib.request.Request(f"http://127.0.0.1:{self.gui_port}{path}", method=method,
                                     headers={"X-API-Key": self.apikey})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body.strip() else None

    def wait_up(self, timeout=60.0) -> None:
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"syncthing {self.name} exited; see {self.logfile}")
            return self.rest("/rest/system/status", timeout=2).get("myID")
        wait_until(up, timeout, f"syncthing {self.name} to answer", 0.1)

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid


def run_syncthing(args, work: Path, data: Path, manifest: dict, big) -> dict:
    res: dict = {}
    r = subprocess.run(["syncthing", "--version"], capture_output=True, text=True, timeout=30)
    res["version"] = r.stdout.strip()
    root = work / "syncthing"
    root.mkdir()
    a, b = Syncthing(root / "A", "alice"), Syncthing(root / "B", "bob")
    src, dst = root / "src", root / "dst"
    copy_tree(data, src)
    dst.mkdir()
    a.generate()
    b.generate()
    a.configure(b, src)
    b.configure(a, dst)
    try:
        log("syncthing: initial sync")
        t0 = time.time()
        # One after the other: when both start at once, both first dials can
        # miss the other's listener, and the next attempt comes many seconds
        # later (seen once: 22 s instead of 3 s for the small set).
        a.start()
        a.wait_up()
        b.start()
        b.wait_up()
        t_up = time.time() - t0

        def connected():
            c = b.rest("/rest/system/connections", timeout=2)["connections"]
            return c.get(a.device_id, {}).get("connected")
        wait_until(connected, 60, "the syncthing devices to connect", 0.05)
        t_connected = time.time() - t0
        samplers = [("rss_kb_A", lambda: proc_mem_kb(a.pid).get("VmRSS")),
                    ("rss_kb_B", lambda: proc_mem_kb(b.pid).get("VmRSS")),
                    ("cpu_s_A", lambda: proc_cpu_s(a.pid)), ("cpu_s_B", lambda: proc_cpu_s(b.pid))]
        sync = wait_synced(dst, manifest, args.timeout, t0, samplers, src=src)
        st = {}
        try:
            st = b.rest(f"/rest/db/status?folder={SHARE}")
        except (urllib.error.URLError, OSError) as e:
            st = {"error": str(e)}
        res["initial"] = {**sync, "steps": {"nodes_up": round(t_up, 3), "connected": round(t_connected, 3)},
                          "receiver_db_status": {k: st.get(k) for k in ("globalFiles", "localFiles", "needFiles",
                                                                        "state", "error")},
                          "peak_rss_kb": {"A": proc_mem_kb(a.pid).get("VmHWM"), "B": proc_mem_kb(b.pid).get("VmHWM")},
                          "cpu_s": {"A": proc_cpu_s(a.pid), "B": proc_cpu_s(b.pid)}}
        log(f"syncthing: initial sync {'done in %.1f s' % sync['secs'] if sync['ok'] else 'FAILED: ' + sync['error']}")
        if not sync["ok"]:
            return res
        # Let both sides settle (the receiver's own scan of the new files).
        wait_until(lambda: all(s.rest(f"/rest/db/status?folder={SHARE}")["state"] == "idle" for s in (a, b)),
                   120, "syncthing to be idle", 0.5)
        log(f"syncthing: {args.edits} edits")
        res["edit_default"] = edit_latency(src / EDIT_FILE, dst / EDIT_FILE, args.edits, 11, "syncthing", 60)
        if big:
            path, digest = big
            size = path.stat().st_size
            log(f"syncthing: large file ({size >> 20} MiB)")
            tmp, dest = drop_in(path, work / "staging-syncthing", src)
            cpu0 = {"A": proc_cpu_s(a.pid), "B": proc_cpu_s(b.pid)}
            t1 = time.time()
            os.rename(tmp, dest)
            a.rest(f"/rest/db/scan?folder={SHARE}&sub=large-drop", method="POST", timeout=args.timeout)
            scanned = time.time() - t1  # the scan request returns when the scan is done
            s = wait_synced_one(dst / dest.relative_to(src), size, digest, args.timeout, t1)
            res["large"] = {"bytes": size, **s, "scan_secs": round(scanned, 3),
                            "cpu_s": {k: round(proc_cpu_s(p) - cpu0[k], 2) for k, p in (("A", a.pid), ("B", b.pid))}}
            if s["ok"]:
                res["large"]["end_to_end_mb_s"] = round(size / s["secs"] / 1e6, 1)
                res["large"]["transfer_secs"] = round(s["secs"] - scanned, 3)
                res["large"]["transfer_mb_s"] = round(size / (s["secs"] - scanned) / 1e6, 1)
        res["peak_rss_kb_end"] = {"A": proc_mem_kb(a.pid).get("VmHWM"), "B": proc_mem_kb(b.pid).get("VmHWM")}
        return res
    finally:
        a.stop()
        b.stop()


# ----- raw QUIC -----------------------------------------------------------------------

def run_quic(args) -> dict:
    manifest = HERE / "quic-raw" / "Cargo.toml"
    binary = HERE / "quic-raw" / "target" / "release" / "quic-raw"
    if not binary.exists():
        log("building bench/quic-raw")
        subprocess.run(["cargo", "build", "--release", "--manifest-path", str(manifest)], check=True, timeout=900)
    runs = []
    for _ in range(args.quic_runs):
        r = subprocess.run([str(binary), str(args.large_mib << 20)], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            runs.append({"error": r.stderr.strip()[:300]})
            continue
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    ok = [r["mb_per_s"] for r in runs if "mb_per_s" in r]
    return {"runs": runs, "median_mb_s": round(statistics.median(ok), 1) if ok else None,
            "max_mb_s": max(ok, default=None)}


# ----- report ---------------------------------------------------------------------------

def git_state(rev: str | None) -> dict:
    """The revision the Hearth binary was built from: --hearth-rev if given
    (a binary built elsewhere), else this checkout's HEAD and whether the
    tree outside bench/ has uncommitted changes."""
    if rev:
        return {"head": rev, "dirty": False, "given": True}
    def git(*a):
        r = subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True, timeout=30)
        return r.stdout.strip()
    return {"head": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", ".",
                                                                            ":!bench"))}


def fmt(x, unit="", nd=1):
    if x is None:
        return "n/a"
    return f"{x:.{nd}f}{unit}"


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def summary(res: dict) -> str:
    h, s, q = res.get("hearth", {}), res.get("syncthing", {}), res.get("quic_raw", {})
    hi, si = h.get("initial", {}), s.get("initial", {})
    lines = [f"Run {res['date']} ({res['mode']}, {res['dataset']['files']} files, "
             f"{res['dataset']['bytes'] / 2**20:.0f} MiB; hearth {res['hearth_git']['head']}"
             f"{' (dirty tree)' if res['hearth_git']['dirty'] else ''}; {s.get('version', '').split(' (')[0]}; "
             f"load avg at start {res['loadavg_start']})", "",
             "| measure | Hearth | Syncthing | Hearth / Syncthing |", "|---|---|---|---|"]
    hs = hi.get("secs") if hi.get("ok") else None
    ss = si.get("secs") if si.get("ok") else None
    def failed(r):
        if not r:
            return "n/a"
        if "of_files" in r:
            return f"{r.get('error')} ({r.get('files')} of {r.get('of_files')} files, " \
                   f"{r.get('bytes', 0) / 2**20:.0f} of {r.get('of_bytes', 0) / 2**20:.0f} MiB)"
        return r.get("error", "n/a")
    lines.append(f"| initial sync, start of nodes to verified copy | {fmt(hs, ' s') if hs else failed(hi)} "
                 f"| {fmt(ss, ' s') if ss else failed(si)} | {fmt(ratio(hs, ss), '', 2)} |")
    he, se = h.get("edit_default", {}), s.get("edit_default", {})
    lines.append(f"| edit to peer p50 / p90, defaults (Hearth rescan_secs={h.get('default_rescan_secs')}) | "
                 f"{fmt(he.get('p50'), ' s', 2)} / {fmt(he.get('p90'), ' s', 2)} | "
                 f"{fmt(se.get('p50'), ' s', 2)} / {fmt(se.get('p90'), ' s', 2)} | "
                 f"{fmt(ratio(he.get('p50'), se.get('p50')), '', 2)} (p50) |")
    if h.get("edits_share_files") == 1:
        lines.append("| (Hearth's edit and large-file measures below ran on a fresh pair sharing one file: "
                     "the initial sync did not complete) | | | |")
    h1 = h.get("edit_rescan_1", {})
    lines.append(f"| edit to peer p50 / p90, Hearth rescan_secs=1 | {fmt(h1.get('p50'), ' s', 2)} / "
                 f"{fmt(h1.get('p90'), ' s', 2)} | | |")
    hl, sl = h.get("large", {}), s.get("large", {})
    size = hl.get("bytes") or sl.get("bytes")
    if size:
        lines.append(f"| large file ({size >> 20} MiB), drop-in to verified copy | {fmt(hl.get('secs'), ' s')} "
                     f"({fmt(hl.get('end_to_end_mb_s'), ' MB/s', 0)}) | {fmt(sl.get('secs'), ' s')} "
                     f"({fmt(sl.get('end_to_end_mb_s'), ' MB/s', 0)}) | {fmt(ratio(hl.get('secs'), sl.get('secs')), '', 2)} |")
        lines.append(f"| large file: sender scan | {fmt(hl.get('scan_secs'), ' s')} ({fmt(hl.get('scan_mb_s'), ' MB/s', 0)})"
                     f" | {fmt(sl.get('scan_secs'), ' s')} | |")
        lines.append(f"| large file: transfer after the scan | {fmt(hl.get('transfer_secs'), ' s')} "
                     f"({fmt(hl.get('transfer_mb_s'), ' MB/s', 0)}) | {fmt(sl.get('transfer_secs'), ' s')} "
                     f"({fmt(sl.get('transfer_mb_s'), ' MB/s', 0)}) | |")
    for k, label in (("peak_rss_kb", "peak RSS during initial sync, sender / receiver"),
                     ("cpu_s", "CPU seconds for initial sync, sender / receiver")):
        hv, sv = hi.get(k, {}), si.get(k, {})
        conv = (lambda v: v / 1024) if k == "peak_rss_kb" else (lambda v: v)
        unit = " MB" if k == "peak_rss_kb" else " s"
        def pair(v):
            return " / ".join(fmt(conv(v[x]) if v.get(x) is not None else None, unit, 0 if unit == " MB" else 1)
                              for x in ("A", "B"))
        lines.append(f"| {label} | {pair(hv)} | {pair(sv)} | |")
    lines.append("")
    if q:
        frac = None
        if hl.get("transfer_mb_s") and q.get("median_mb_s"):
            frac = hl["transfer_mb_s"] / q["median_mb_s"]
        lines.append(f"Raw quinn over loopback, one stream, {size and size >> 20} MiB: median "
                     f"{fmt(q.get('median_mb_s'), ' MB/s', 0)} (runs: "
                     f"{', '.join(fmt(r.get('mb_per_s'), '', 0) for r in q.get('runs', []))}). Hearth large-file "
                     f"transfer = {fmt(frac and frac * 100, ' %', 0)} of it; network fetch alone "
                     f"{fmt(hl.get('fetch_only_mb_s'), ' MB/s', 0)}"
                     f" = {fmt(hl.get('fetch_only_mb_s') and q.get('median_mb_s') and hl['fetch_only_mb_s'] / q['median_mb_s'] * 100, ' %', 0)}.")
    if hi:
        st, ph = hi.get("steps", {}), hi.get("phases_from_logs", {})
        lines.append("")
        lines.append(f"Hearth initial-sync phases (s after start): nodes up {fmt(st.get('nodes_up'), '', 2)}, paired "
                     f"{fmt(st.get('paired'), '', 2)}, share accepted {fmt(st.get('share_accepted'), '', 2)}, sender scan "
                     f"recorded {fmt(ph.get('sender_scan_recorded'))}, document on receiver "
                     f"{fmt(ph.get('receiver_doc_applied'))}, first content {fmt(ph.get('receiver_first_content_fetched'))},"
                     f" last content {fmt(ph.get('receiver_last_content_fetched'))}, all files verified "
                     f"{fmt(hi.get('secs'))}; {ph.get('receiver_write_outs')} whole-share write-outs on the receiver.")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="a quick run: 500 small files + 2 x 10 MiB, 128 MiB large file")
    ap.add_argument("--only", default="hearth,syncthing,quic", help="comma list of hearth, syncthing, quic")
    ap.add_argument("--hearth", type=Path, default=REPO / "target" / "release" / "hearth", help="hearth binary")
    ap.add_argument("--hearth-rev", help="revision to record for --hearth (default: this checkout's HEAD)")
    ap.add_argument("--hearth-listen", choices=sorted(LISTEN), default="both",
                    help="Hearth listen addresses on 127.0.0.1 (both: QUIC and TCP, as configured by users)")
    ap.add_argument("--hearth-log", default="info", help="RUST_LOG for the Hearth nodes (phases come from info logs)")
    ap.add_argument("--gen", type=Path, default=DEFAULT_GEN, help="gen_dataset.py")
    ap.add_argument("--dataset", nargs=3, type=int, metavar=("SMALL_COUNT", "LARGE_MIB", "LARGE_COUNT"),
                    help="gen_dataset.py parameters instead of the defaults (scaling experiments)")
    ap.add_argument("--edits", type=int, default=None, help="edits per latency series (default 10, --small 5)")
    ap.add_argument("--large-mib", type=int, default=None, help="large file size (default 1024, --small 128)")
    ap.add_argument("--no-large", action="store_true", help="skip the large-file measure")
    ap.add_argument("--quic-runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=None, help="longest wait for one sync (default 600 s, --small 120)")
    ap.add_argument("--perf", action="store_true", help="perf record both Hearth nodes during the initial sync")
    ap.add_argument("--work", type=Path, default=Path("/tmp/hearth-bench-work"),
                    help="scratch dir, emptied at the start (only if it is one of ours)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/hearth-bench-cache"), help="data set cache")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="where the JSON goes")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = ap.parse_args()
    if args.small:
        args.small_count, args.large_mib_each, args.large_count = 500, 10, 2
    else:
        args.small_count, args.large_mib_each, args.large_count = 5000, 100, 4
    if args.dataset:
        args.small_count, args.large_mib_each, args.large_count = args.dataset
    args.edits = args.edits or (5 if args.small else 10)
    args.large_mib = args.large_mib or (128 if args.small else 1024)
    args.timeout = args.timeout or (120.0 if args.small else 600.0)
    only = set(args.only.split(","))
    args.hearth = args.hearth.resolve()

    signal.signal(signal.SIGTERM, on_signal)
    marker = args.work / ".hearth-bench-work"
    if args.work.exists():
        if any(args.work.iterdir()) and not marker.exists():
            raise SystemExit(f"{args.work} is not empty and not a scratch dir of this script: choose another --work")
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    marker.touch()
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.time()
    res: dict = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": ("custom" if args.dataset else "small" if args.small else "full"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "hearth_git": git_state(args.hearth_rev),
    }
    try:
        data, manifest = dataset(args)
        res["dataset"] = {"params": [args.small_count, args.large_mib_each, args.large_count], "files": len(manifest),
                          "bytes": sum(v[0] for v in manifest.values())}
        big = None if args.no_large else big_file(args)
        if "quic" in only:
            log("raw quinn throughput")
            res["quic_raw"] = run_quic(args)
        if "syncthing" in only:
            res["syncthing"] = run_syncthing(args, args.work, data, manifest, big)
        if "hearth" in only:
            if not args.hearth.exists():
                raise SystemExit(f"no hearth binary at {args.hearth}: cargo build --release -p hearth-node")
            st = args.hearth.stat()
            res["hearth_binary"] = {"path": str(args.hearth),
                                    "mtime": dt.datetime.fromtimestamp(st.st_mtime).isoformat(timespec="seconds")}
            res["hearth"] = run_hearth(args, args.work, data, manifest, big)
    except KeyboardInterrupt:
        log("interrupted")
        res["interrupted"] = True
    finally:
        stop_all()
    res["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    res["wall_secs"] = round(time.time() - started, 1)
    if "dataset" in res:
        res["summary_md"] = summary(res)
    args.results.mkdir(parents=True, exist_ok=True)
    tag = "" if only >= {"hearth", "syncthing", "quic"} else "-" + "+".join(sorted(only))
    name = f"folder_sync-{time.strftime('%Y%m%d-%H%M%S')}-{res['mode']}{tag}.json"
    (args.results / name).write_text(json.dumps(res, indent=1) + "\n")
    log(f"results: {args.results / name} (wall {res['wall_secs']} s)")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    else:
        log(f"scratch kept in {args.work} (node logs: */A.log, */B.log)")
    print(res.get("summary_md", ""))
    return 1 if res.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
