"""How long the README's path takes on this machine: `har data demo`, then `har train --model both`.

Run from the repository root (about 40 minutes on 2 cores with the defaults):

    python benchmarks/demo_end_to_end.py [--fast] [--groups 25 --clips-per-group 4] [--out FILE]

Both commands run as a user runs them, one after the other in a fresh HAR_HOME, with the report's recipe
(`har train`'s defaults: plain `model.fit`, seed 27, up to 30 epochs, patience 5); `--fast` adds `har train
--fast` (the twin). Written to results/demo_end_to_end.json (`..._fast.json` with --fast): the wall time of each
command, and for each model its epochs, median epoch time, test accuracy and training time. While they run, a
sampler records every 5 s the load average, the CPU time that processes other than the benchmark's took, and
the resident memory of the training process, so a disturbed measurement (or one that slows as it goes) shows
in the file itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.load import Sampler, cpu_model  # noqa: E402 - after the path is set


def timed(command: list[str], env: dict) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "har", *command], env=env, check=True, stdout=subprocess.DEVNULL)
    return round(time.monotonic() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="time `har train --fast` (the twin)")
    parser.add_argument("--groups", type=int, default=25)
    parser.add_argument("--clips-per-group", type=int, default=4)
    parser.add_argument("--epochs", type=int, help="fewer epochs than the report's 30 (a quick check of the script)")
    parser.add_argument("--out", help="results file (default: benchmarks/results/demo_end_to_end[_fast].json)")
    args = parser.parse_args()
    out = Path(args.out or ROOT / "benchmarks/results" / f"demo_end_to_end{'_fast' if args.fast else ''}.json")

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HAR_HOME": home, "TF_CPP_MIN_LOG_LEVEL": "2"}
        for name in ("HAR_DATA_DIR", "HAR_MODELS_DIR"):
            env.pop(name, None)
        demo = ["data", "demo", "--groups", str(args.groups), "--clips-per-group", str(args.clips_per_group)]
        train = [
            "train",
            "--model",
            "both",
            *(["--fast"] if args.fast else []),
            *(["--epochs", str(args.epochs)] if args.epochs else []),
        ]
        sampler = Sampler()
        sampler.start()
        commands = {"har " + " ".join(demo): timed(demo, env), "har " + " ".join(train): timed(train, env)}
        sampler.stopped.set()
        results = {
            "commands": commands,
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "load_average_after": os.getloadavg(),
            "during": sampler.summary(),
            "samples": sampler.samples,
            "date": time.strftime("%Y-%m-%d"),
            "models": runs(Path(home) / "models"),
        }

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    for command, seconds in results["commands"].items():
        print(f"{command}: {seconds:.0f} s ({seconds / 60:.1f} min)")
    print(f"during the run: {results['during']}")
    for model, run in results["models"].items():
        print(
            f"  {model}: {run['epochs_run']} epochs (best {run['best_epoch']}), median {run['epoch_seconds_median']} s "
            f"an epoch, test accuracy {run['test_accuracy']:.3f}, {run['training_seconds']:.0f} s"
        )


def runs(models_dir: Path) -> dict:
    """Each trained model's story, from the run folders `har train` saved."""
    stories = {}
    for metadata_file in sorted(models_dir.glob("*/metadata.json")):
        metadata = json.loads(metadata_file.read_text())
        events = [json.loads(line) for line in (metadata_file.parent / "events.jsonl").read_text().splitlines()]
        seconds = [event["seconds"] for event in events if event["event"] == "epoch"]
        stories[metadata["model"]] = {
            "trainer": metadata["network"],
            "seed": metadata["seed"],
            "split": metadata["split"],
            "epochs_run": metadata["epochs_run"],
            "best_epoch": metadata["best_epoch"],
            "epoch_seconds_median": round(statistics.median(seconds), 1),
            "epoch_seconds": seconds,
            "test_accuracy": metadata["test"]["accuracy"],
            "training_seconds": metadata["training_seconds"],
        }
    return stories


if __name__ == "__main__":
    main()
