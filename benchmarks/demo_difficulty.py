"""Does the demo dataset teach what UCF50 teaches? Both models, both splits, several seeds, the report's recipe.

Run from the repository root (about an hour on 2 cores with the defaults; resumable):

    python benchmarks/demo_difficulty.py [--seeds 27,28,29] [--models convlstm,lrcn] [--splits report,group]
        [--groups 25] [--clips-per-group 4] [--sequence-length 20] [--image-size 64]
        [--work-dir /tmp/har-demo-difficulty] [--out benchmarks/results/demo_difficulty.json]

It times `generate_demo` and `build_cache`, then trains each (seed, split, model) with `har.training.train_run`
(har's fast twin trainer, as `har train --fast`: the demo's difficulty, not the trainer, is measured here) and
`har.config.Config` defaults (Adam, batch size 4, up to 30 epochs, early stopping with patience 5) but the
given seed, each in a fresh process as `har train` runs it. Every finished run is written to the results file
at once, and a rerun with the same settings skips the runs already there, so an interrupted benchmark resumes.
Runs go seed by seed, so the first seed's four runs finish first.

What the demo should show (issue 12): on the group split both models well above chance and neither at 100%;
the report split clearly above the group split (scene leakage); the two models apart by more than the
seed-to-seed spread on at least one split.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TRAIN = """
import json, tempfile
from har.config import Config
from har.training import train_run
with tempfile.TemporaryDirectory(dir=RUNS_DIR) as models_dir:
    run = train_run(CACHE, MODEL, models_dir, config=Config(seed=SEED, split=SPLIT, trainer="twin"),
                    run_id="benchmark")
    metadata = json.loads((run / "metadata.json").read_text())
print(json.dumps({key: metadata.get(key) for key in ("status", "reason", "test", "epochs_run", "best_epoch",
                                                      "training_seconds", "split", "device", "at_chance")}))
"""


def in_fresh_process(code: str, **values) -> dict:
    for name, value in values.items():
        code = code.replace(name, repr(value))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    """Mean, sample standard deviation and count of test accuracy per model and split."""
    import numpy as np

    summary: dict = {}
    for run in runs:
        summary.setdefault(run["split"], {}).setdefault(run["model"], []).append(run["test_accuracy"])
    return {
        split: {
            model: {
                "mean": round(float(np.mean(values)), 4),
                "sd": round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None,
                "n": len(values),
                "accuracies": values,
            }
            for model, values in models.items()
        }
        for split, models in summary.items()
    }


def table(summary: dict, models: list[str], splits: list[str]) -> str:
    lines = ["| split | " + " | ".join(models) + " |", "| --- |" + " --- |" * len(models)]
    for split in splits:
        cells = []
        for model in models:
            entry = summary.get(split, {}).get(model)
            if not entry:
                cells.append("not run")
            elif entry["sd"] is None:
                cells.append(f"{entry['mean']:.3f} (n=1)")
            else:
                cells.append(f"{entry['mean']:.3f} ± {entry['sd']:.3f} (n={entry['n']})")
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="27,28,29", help="comma-separated seeds (each changes split and weights)")
    parser.add_argument("--models", default="convlstm,lrcn")
    parser.add_argument("--splits", default="report,group")
    parser.add_argument("--groups", type=int, default=25, help="demo groups per class")
    parser.add_argument("--clips-per-group", type=int, default=4)
    parser.add_argument("--sequence-length", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--work-dir", default="/tmp/har-demo-difficulty", help="demo data, caches and models")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/demo_difficulty.json"))
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    models, splits = args.models.split(","), args.splits.split(",")

    from har.datasets import build_cache, generate_demo

    work = Path(args.work_dir)
    settings = {
        "groups": args.groups,
        "clips_per_group": args.clips_per_group,
        "sequence_length": args.sequence_length,
        "image_size": args.image_size,
    }
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    if results.get("settings") != settings:
        results = {"settings": settings, "runs": []}
    demo = work / f"demo-g{args.groups}-c{args.clips_per_group}"
    if "generate_seconds" not in results or not (demo / "demo.json").is_file():
        shutil.rmtree(demo, ignore_errors=True)  # so that the time is of a generation, not of finding one
        started = time.perf_counter()
        generate_demo(demo, groups=args.groups, clips_per_group=args.clips_per_group)
        results["generate_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    cache = build_cache(
        demo,
        work / f"cache-{demo.name}-T{args.sequence_length}-S{args.image_size}",
        sequence_length=args.sequence_length,
        image_size=args.image_size,
    )
    results.setdefault("cache_seconds", round(time.perf_counter() - started, 2))
    results["cpu_count"] = os.cpu_count()
    print(f"demo: {results['generate_seconds']} s to generate, cache {results['cache_seconds']} s", flush=True)
    (work / "models").mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for split in splits:
            for model in models:
                if any((r["seed"], r["split"], r["model"]) == (seed, split, model) for r in results["runs"]):
                    continue
                measured = in_fresh_process(
                    TRAIN, CACHE=str(cache), MODEL=model, SEED=seed, SPLIT=split, RUNS_DIR=str(work / "models")
                )
                if measured["status"] != "finished":
                    raise RuntimeError(f"{model} {split} seed {seed}: {measured['status']}: {measured['reason']}")
                run = {
                    "seed": seed,
                    "split": split,
                    "model": model,
                    "test_accuracy": round(measured["test"]["accuracy"], 4),
                    "epochs_run": measured["epochs_run"],
                    "best_epoch": measured["best_epoch"],
                    "training_seconds": measured["training_seconds"],
                    "clips": measured["split"],
                    "at_chance": measured["at_chance"],
                    "device": measured["device"],
                }
                results["runs"].append(run)
                results["summary"] = summarise(results["runs"])
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1) + "\n")
                print(json.dumps(run), flush=True)
    results["differences"] = model_differences(results["runs"])
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(summarise(results["runs"]), models, splits))
    for difference in results["differences"]:
        print(difference["verdict"])


def model_differences(runs: list[dict]) -> list[dict]:
    """LRCN - ConvLSTM per split, with `har compare`'s bootstrap over seeds (`har.evaluation.differences`)."""
    from har.evaluation import differences

    groups = [
        {
            "model": model,
            "split": split,
            "n": entry["n"],
            "accuracies": entry["accuracies"],
            "accuracy_mean": entry["mean"],
        }
        for split, by_model in summarise(runs).items()
        for model, entry in by_model.items()
    ]
    return differences(groups)


if __name__ == "__main__":
    main()
