"""What else the machine was doing while a benchmark ran: a sampler thread and the /proc readings it takes.

Shared by the benchmarks that time training (`demo_end_to_end.py`, `train_vs_fit.py`), so that a disturbed
measurement (another job on the cores, a trainer whose memory grows) shows in the results file itself:

    sampler = Sampler(interval=5.0)
    sampler.start()
    ...  # the measured work, in this process or its children
    sampler.stopped.set()
    print(sampler.summary())

Linux only (it reads /proc).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path


class Sampler(threading.Thread):
    """Every `interval` s: load average, CPU seconds of processes outside this benchmark, the trainer's RSS.

    Args:
        interval: seconds between samples.
        trainer_marker: a string in the trainer's command line; the trainer is the benchmark's descendant
            process whose command line holds it, and its resident memory is sampled.
        burner_marker: a string in the command line of load processes the benchmark started on purpose (CPU
            burners). When given, each sample also holds the CPU seconds those took (`burner_cpu_s`); they count
            as the benchmark's own either way, never as other processes'.
    """

    def __init__(self, interval: float = 5.0, *, trainer_marker: str = "har.worker", burner_marker: str | None = None):
        super().__init__(daemon=True)
        self.interval, self.samples, self.stopped = interval, [], threading.Event()
        self.trainer_marker, self.burner_marker = trainer_marker, burner_marker
        self.started_at = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the sampler was made: the clock that each sample's `t` is on."""
        return round(time.monotonic() - self.started_at, 1)

    def run(self) -> None:
        before = cpu_seconds()
        while not self.stopped.wait(self.interval):
            now = cpu_seconds()
            ours = set(descendants(os.getpid())) | {os.getpid()}
            others = sum(now.get(pid, 0) - before.get(pid, 0) for pid in now if pid not in ours)
            trainer = [pid for pid in ours if self.trainer_marker in cmdline(pid)]
            sample = {
                "t": self.elapsed(),
                "load1": os.getloadavg()[0],
                "other_cpu_s": round(others, 2),  # CPU seconds in the last interval, of all cores
                "trainer_rss_mb": round(sum(rss_mb(pid) for pid in trainer), 1) if trainer else None,
            }
            if self.burner_marker is not None:
                burners = [pid for pid in ours if self.burner_marker in cmdline(pid)]
                sample["burner_cpu_s"] = round(sum(now.get(pid, 0) - before.get(pid, 0) for pid in burners), 2)
            self.samples.append(sample)
            before = now

    def summary(self, windows: list[tuple[float, float]] | None = None) -> dict:
        """Medians and maxima of the samples; with `windows` ((start, end) on `elapsed()`'s clock), only of the
        samples taken inside one of them."""
        samples = self.samples
        if windows is not None:
            samples = [sample for sample in samples if any(start < sample["t"] <= end for start, end in windows)]
        loads = [sample["load1"] for sample in samples]
        others = [sample["other_cpu_s"] / self.interval for sample in samples]
        rss = [sample["trainer_rss_mb"] for sample in samples if sample["trainer_rss_mb"] is not None]
        found = {
            "load1_median": round(statistics.median(loads), 2) if loads else None,
            "load1_max": max(loads, default=None),
            "other_processes_cores_median": round(statistics.median(others), 3) if others else None,
            "other_processes_cores_max": round(max(others), 3) if others else None,
            "trainer_rss_mb_first_last_max": [rss[0], rss[-1], max(rss)] if rss else None,
        }
        if self.burner_marker is not None:
            burners = [sample["burner_cpu_s"] / self.interval for sample in samples]
            found["burner_cores_median"] = round(statistics.median(burners), 3) if burners else None
        return found


def cpu_seconds() -> dict[int, float]:
    """utime + stime of every process, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
            except (OSError, IndexError, ValueError):
                continue
    return found


def descendants(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return children + [grandchild for child in children for grandchild in descendants(child)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"
