"""Does `har train` give the runs that the report's plain `model.fit` gives? Same seeds, same data, both ways.

Run from the repository root (about 40 minutes on 2 cores for the defaults):

    python benchmarks/training_fidelity.py [--seeds 27,28,29,30,31] [--models convlstm,lrcn]
        [--groups 25 --clips-per-group 2] [--out benchmarks/results/training_fidelity.json]

On a demo dataset in UCF50's layout (4 classes x 25 groups x 2 clips by default: 200 clips, as in issue 9),
20 frames of 64x64, the report's recipe (Adam, batch size 4, up to 30 epochs, early stopping with patience 5,
its random split): for each model and seed, `har.training.train_run` once with the plain Keras model
(`trainer="plain"`: `model.fit` on the report's layers) and once as `har train` runs it (the weight-sharing twin),
each in a fresh process. The table gives test accuracy (mean, sd, min), runs at chance (`har.chance`),
epochs run, and for each seed whether the two runs ended on the same epoch with the same test accuracy. It
also times both, so the twin's speed-up is measured at equal fidelity. Results are written after every run,
and a rerun skips the runs already in the results file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ONE_RUN = """
import json, sys, tempfile
from har.config import Config
from har.training import train_run
with tempfile.TemporaryDirectory() as models_dir:
    run = train_run(CACHE, MODEL, models_dir, config=Config(seed=SEED, trainer=TRAINER), run_id="fidelity")
    metadata = json.loads((run / "metadata.json").read_text())
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
metadata["epoch_seconds"] = [event["seconds"] for event in events if event["event"] == "epoch"]
print(json.dumps({key: metadata.get(key) for key in ("status", "test", "epochs_run", "best_epoch", "at_chance",
                  "training_seconds", "epoch_seconds", "split", "history")}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="27,28,29,30,31")
    parser.add_argument("--models", default="convlstm,lrcn")
    parser.add_argument("--groups", type=int, default=25)
    parser.add_argument("--clips-per-group", type=int, default=2)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "har-fidelity"), help="dataset and cache")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/training_fidelity.json"))
    args = parser.parse_args()

    from har.datasets import build_cache, generate_demo

    work = Path(args.work)
    dataset = generate_demo(work / "demo", groups=args.groups, clips_per_group=args.clips_per_group)
    cache = build_cache(dataset, work / "cache-T20-S64")
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    results.update(dataset={"groups": args.groups, "clips_per_group": args.clips_per_group, "path": str(dataset)})
    done = {(run["model"], run["seed"], run["network"]) for run in results["runs"]}
    for seed in (int(seed) for seed in args.seeds.split(",")):
        for model in args.models.split(","):
            for network in ("plain", "twin"):
                if (model, seed, network) in done:
                    continue
                code = textwrap.dedent(ONE_RUN).replace("CACHE", repr(str(cache))).replace("MODEL", repr(model))
                code = code.replace("SEED", str(seed)).replace("TRAINER", repr(network))
                finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
                if finished.returncode != 0:
                    sys.exit(f"{model} seed {seed} {network} failed:\n{finished.stderr[-3000:]}")
                run = {
                    "model": model,
                    "seed": seed,
                    "network": network,
                    **json.loads(finished.stdout.strip().splitlines()[-1]),
                }
                results["runs"].append(run)
                results["summary"] = summarise(results["runs"])
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1))
                print(
                    f"{model} seed {seed} {network}: test accuracy {run['test']['accuracy']:.3f}, "
                    f"{run['epochs_run']} epochs, {run['training_seconds']:.0f} s",
                    flush=True,
                )
    print_table(results["summary"])


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for model in dict.fromkeys(run["model"] for run in runs):
        pairs = {}
        for network in ("plain", "twin"):
            chosen = [run for run in runs if run["model"] == model and run["network"] == network]
            if not chosen:
                continue
            accuracies = [run["test"]["accuracy"] for run in chosen]
            epochs = [run["epochs_run"] for run in chosen]
            # Each epoch's own time (training and validation), so an epoch slowed by another job is one outlier
            # of many; runs from before epoch times were kept count as their mean epoch.
            seconds_per_epoch = [
                seconds
                for run in chosen
                for seconds in run.get("epoch_seconds") or [run["training_seconds"] / run["epochs_run"]]
            ]
            pairs[network] = {run["seed"]: run for run in chosen}
            rows.append(
                {
                    "model": model,
                    "network": network,
                    "seeds": [run["seed"] for run in chosen],
                    "accuracy_mean": statistics.mean(accuracies),
                    "accuracy_sd": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
                    "accuracy_min": min(accuracies),
                    "at_chance": sum(bool(run["at_chance"]) for run in chosen),
                    "epochs_mean": statistics.mean(epochs),
                    "epochs": epochs,
                    "seconds_per_epoch_median": statistics.median(seconds_per_epoch),
                }
            )
        if len(pairs) == 2:
            both = sorted(set(pairs["plain"]) & set(pairs["twin"]))
            same = [
                seed
                for seed in both
                if pairs["plain"][seed]["epochs_run"] == pairs["twin"][seed]["epochs_run"]
                and abs(pairs["plain"][seed]["test"]["accuracy"] - pairs["twin"][seed]["test"]["accuracy"]) < 1e-6
            ]
            for row in rows[-2:]:
                row["same_run_as_plain"] = f"{len(same)} of {len(both)} seeds"
            plain, twin = rows[-2]["seconds_per_epoch_median"], rows[-1]["seconds_per_epoch_median"]
            rows[-1]["speedup_vs_plain"] = plain / twin
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        "| model | network | seeds | test accuracy mean | sd | min | at chance | epochs (mean) | same run as plain | s/epoch | speed-up |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        sd = f"{row['accuracy_sd']:.3f}" if row["accuracy_sd"] is not None else "-"
        speedup = f"{row['speedup_vs_plain']:.2f}x" if "speedup_vs_plain" in row else "-"
        print(
            f"| {row['model']} | {row['network']} | {len(row['seeds'])} | {row['accuracy_mean']:.3f} | {sd} | "
            f"{row['accuracy_min']:.3f} | {row['at_chance']} | {row['epochs_mean']:.1f} | "
            f"{row.get('same_run_as_plain', '-')} | {row['seconds_per_epoch_median']:.2f} | {speedup} |"
        )


if __name__ == "__main__":
    main()
