"""Peak memory of a frame-cache build, sampled from /proc while it runs, for two dataset sizes.

    python benchmarks/cache_memory.py [--small 4] [--large 25]

Builds the demo dataset with `--small` and `--large` groups per class (8 clips each; 25 groups x 4 classes =
800 clips) and reports the peak RSS of the building process, of one worker and of all processes together.
Flat numbers across sizes show the build holds no per-clip frames in memory (the issue's bound: all 50
UCF50 classes within 2 GB).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path


def rss_mb(status_path: str) -> int:
    return int(open(status_path).read().split("VmRSS:")[1].split()[0]) // 1024


def children_rss(pid: int) -> tuple[int, int]:
    """(sum, largest) RSS in MB of the direct children of `pid`."""
    total = largest = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            if int(open(stat).read().rsplit(")", 1)[1].split()[1]) == pid:
                rss = rss_mb(stat.replace("stat", "status"))
                total, largest = total + rss, max(largest, rss)
        except (OSError, IndexError, ValueError):
            continue
    return total, largest


def measure(source: Path, out: Path) -> dict:
    from har.datasets import build_cache

    samples, done = [], threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((rss_mb("/proc/self/status"), *children_rss(os.getpid())))
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    build_cache(source, out)
    seconds = time.perf_counter() - start
    done.set()
    return {
        "clips": len(json.loads((out / "meta.json").read_text())["sources"]),
        "seconds": round(seconds, 1),
        "builder_peak_mb": max(s[0] for s in samples),
        "one_worker_peak_mb": max(s[2] for s in samples),
        "all_processes_peak_mb": max(s[0] + s[1] for s in samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=4)
    parser.add_argument("--large", type=int, default=25)
    parser.add_argument("--out", default="benchmarks/results/cache_memory.json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from har.datasets import generate_demo

    folder = Path(tempfile.mkdtemp(prefix="har-memory-"))
    results = {}
    for groups in (args.small, args.large):
        demo = generate_demo(folder / f"demo{groups}", groups=groups, clips_per_group=8)
        results[f"{groups}_groups"] = measure(demo, folder / f"cache{groups}")
        print(groups, "groups:", results[f"{groups}_groups"])
    shutil.rmtree(folder, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
