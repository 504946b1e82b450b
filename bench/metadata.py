#!/usr/bin/env python3
"""A share of many small files reaching a new member: Hearth and Syncthing on loopback.

Run by hand, never by CI (see bench/README.md):

    cargo build --release -p hearth-node
    python3 bench/metadata.py                 # 100,000 files, both tools
    python3 bench/metadata.py --files 20000   # a quicker run

The tree: --files files of a few bytes each (distinct contents), 100 per
folder, generated once into /tmp/hearth-bench-cache/meta-N. With contents this
small, the work is the metadata: the scan, the document (Hearth) or index
(Syncthing), its transfer and the files' creation.

Measured for each tool, with two nodes on 127.0.0.1:
- the owner's scan of the tree (Hearth: `share create`, which records every
  file before it returns; Syncthing: from its start to the folder's first
  scan being done, i.e. `localFiles` = N);
- Hearth only: from `share accept` on the new member to its document holding
  every file (`share status` counts N files): the target of issue 3 is under
  30 s;
- from the new member's start of sync (Hearth: `share accept`; Syncthing:
  the two devices connected) to every file on its disk with the right size;
- peak RSS (VmHWM) of each node at the end: the target is under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import folder_sync as fs  # noqa: E402 - the shared helpers

log = fs.log


def make_tree(cache: Path, n: int) -> Path:
    root = cache / f"meta-{n}"
    done = root.with_suffix(".done")
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    log(f"generating {n} files in {root}")
    for i in range(n):
        d = root / f"d{i // 100:05d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        (d / f"f{i:06d}.txt").write_text(f"file {i}\n")
    done.write_text("ok\n")
    return root


def count_files(root: Path, n: int) -> int:
    listing = fs.listing(root)
    return sum(1 for rel, size in listing.items() if size == len(f"file {int(rel[-10:-4])}\n"))


def rss(node) -> dict:
    m = fs.proc_mem_kb(node.pid)
    return {"peak_rss_mb": round(m.get("VmHWM", 0) / 1024, 1), "rss_mb": round(m.get("VmRSS", 0) / 1024, 1)}


def run_hearth(args, work: Path, tree: Path) -> dict:
    root = work / "hearth"
    root.mkdir()
    a = fs.Hearth(args.hearth, root / "A", "alice", args.hearth_log)
    b = fs.Hearth(args.hearth, root / "B", "bob", args.hearth_log)
    src, dst = root / "src", root / "dst"
    fs.copy_tree(tree, src)
    res: dict = {}
    a.init()
    b.init()
    try:
        a.start()
        a.wait_up()
        b.start()
        b.wait_up()
        b.cli("join", a.cli("invite").strip())
        fs.wait_until(lambda: a.connected() and b.connected(), 30, "the two nodes to be connected")
        log("hearth: share create (the owner's scan)")
        t = time.time()
        a.cli("share", "create", str(src), "--name", fs.SHARE, timeout=args.timeout)
        res["owner_scan_secs"] = round(time.time() - t, 2)
        log(f"hearth: scan {res['owner_scan_secs']} s")
        a.cli("share", "invite", fs.SHARE, "bob")
        fs.wait_until(lambda: any(s["name"] == fs.SHARE and s["state"] == "pending" for s in b.json("share", "list")),
                      30, "the invitation on bob")
        t0 = time.time()
        b.cli("share", "accept", fs.SHARE, str(dst))
        meta = fs.wait_until(lambda: b.json("share", "status", fs.SHARE)["files"] >= args.files and time.time(),
                             args.timeout, "the document on bob", 0.25)
        res["metadata_secs"] = round(meta - t0, 2)
        res["rss_at_metadata"] = {"A": rss(a), "B": rss(b)}
        log(f"hearth: metadata on the new member in {res['metadata_secs']} s")
        done = fs.wait_until(lambda: count_files(dst, args.files) >= args.files and time.time(), args.timeout,
                             "every file on bob", 1.0)
        res["all_files_secs"] = round(done - t0, 2)
        log(f"hearth: every file on the new member in {res['all_files_secs']} s")
        status = b.json("share", "status", fs.SHARE)
        res["receiver_status"] = {k: status.get(k) for k in ("files", "folders", "doc_changes", "files_pending_down")}
        res["rss_end"] = {"A": rss(a), "B": rss(b)}
        res["cpu_s"] = {"A": fs.proc_cpu_s(a.pid), "B": fs.proc_cpu_s(b.pid)}
        # Nothing may be lost on the way: the owner still has every file.
        res["owner_files_after"] = count_files(src, args.files)
        if res["owner_files_after"] < args.files:
            raise RuntimeError(f"the owner lost files: {res['owner_files_after']} of {args.files} left")
    except (TimeoutError, RuntimeError) as e:
        res["error"] = str(e)[:500]
        log(f"hearth: {e}")
        res["rss_end"] = {"A": rss(a), "B": rss(b)}
    finally:
        a.stop()
        b.stop()
    return res


def run_syncthing(args, work: Path, tree: Path) -> dict:
    root = work / "syncthing"
    root.mkdir()
    a, b = fs.Syncthing(root / "A", "alice"), fs.Syncthing(root / "B", "bob")
    src, dst = root / "src", root / "dst"
    fs.copy_tree(tree, src)
    dst.mkdir()
    a.generate()
    b.generate()
    a.configure(b, src)
    b.configure(a, dst)
    res: dict = {}
    try:
        t = time.time()
        a.start()
        a.wait_up()
        fs.wait_until(lambda: (a.rest(f"/rest/db/status?folder={fs.SHARE}").get("localFiles") or 0) >= args.files,
                      args.timeout, "syncthing's first scan", 0.25)
        res["owner_scan_secs"] = round(time.time() - t, 2)
        log(f"syncthing: scan {res['owner_scan_secs']} s")
        t0 = time.time()
        b.start()
        b.wait_up()
        done = fs.wait_until(lambda: count_files(dst, args.files) >= args.files and time.time(), args.timeout,
                             "every file on bob", 1.0)
        res["all_files_secs"] = round(done - t0, 2)
        log(f"syncthing: every file on the new member in {res['all_files_secs']} s")
        res["rss_end"] = {"A": rss(a), "B": rss(b)}
        res["cpu_s"] = {"A": fs.proc_cpu_s(a.pid), "B": fs.proc_cpu_s(b.pid)}
        # Nothing may be lost on the way: the owner still has every file.
        res["owner_files_after"] = count_files(src, args.files)
        if res["owner_files_after"] < args.files:
            raise RuntimeError(f"the owner lost files: {res['owner_files_after']} of {args.files} left")
    except (TimeoutError, RuntimeError) as e:
        res["error"] = str(e)[:500]
        log(f"syncthing: {e}")
        res["rss_end"] = {"A": rss(a), "B": rss(b)}
    finally:
        a.stop()
        b.stop()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--only", default="hearth,syncthing")
    ap.add_argument("--hearth", type=Path, default=fs.REPO / "target" / "release" / "hearth")
    ap.add_argument("--hearth-log", default="info")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/hearth-bench-cache"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/hearth-bench-meta"))
    ap.add_argument("--results", type=Path, default=fs.HERE / "results")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (node logs: */A.log, */B.log)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    tree = make_tree(args.cache, args.files)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    res: dict = {"files": args.files, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                 "hearth_rev": fs.git_state(None)}
    try:
        if "hearth" in only:
            res["hearth"] = run_hearth(args, args.work, tree)
        if "syncthing" in only:
            res["syncthing"] = run_syncthing(args, args.work, tree)
    finally:
        fs.stop_all()
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"metadata-{time.strftime('%Y%m%d-%H%M%S')}-{args.files}.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    log(f"results: {out}")
    print(json.dumps(res, indent=1))
    if args.keep or any("error" in res.get(t, {}) for t in ("hearth", "syncthing")):
        log(f"scratch kept in {args.work} (node logs: */A.log, */B.log)")
    else:
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
