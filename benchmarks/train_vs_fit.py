"""`har train`'s epoch against the report's `model.fit` on the same clips, idle and under load (issue 20).

Run from the repository root (about 18 minutes on 2 idle cores with the defaults, estimated from
`demo_end_to_end.py`'s epoch times: the default demo, 3 epochs, 1 round, idle then 2 burners):

    python benchmarks/train_vs_fit.py [--groups 25 --clips-per-group 4 | --cache PATH] [--models convlstm,lrcn]
        [--epochs 3] [--repeats 1] [--load 2] [--out benchmarks/results/train_vs_fit.json]

Each round adds about as much again (`--repeats 2`: about 35 minutes); a smaller demo has shorter epochs but the
same start-up and compile costs (`--groups 8 --repeats 2`, 128 clips: about 19 minutes).

On a demo frame cache (built in a temporary HAR_HOME as `har data demo --groups G --clips-per-group C` would
build it; `--cache` takes any cache instead), for each model, three sides, each in a fresh process:

- `fit`: the report's way. `keras.utils.set_random_seed(27)`, the frames of the clips as float32 arrays in
  memory (uint8 / 255), `har.models.build_model`, Adam, categorical cross-entropy, then
  `model.fit(x, y, batch_size=4, epochs=N, shuffle=True, validation_split=0.2)` with the report's early stopping
  on validation loss (patience N here, so it never ends a run early). The arrays hold exactly the clips that
  `har train` trains and validates on (`har.datasets.config_split` with the default Config): its training
  clips first, its validation clips last, so Keras' `validation_split` (the last 20% of the arrays) takes
  har's validation clips. That makes it the same work as har's epoch: the same clips trained (in another
  shuffled order), the same clips validated, the same batch size and steps. (Keras cuts at floor(0.8 n) and
  scikit-learn holds out ceil(0.2 n), which agree; should float rounding ever part them, the same validation
  clips go in as `validation_data` instead, and the results say which: `validation`.)
- `plain`: `har train` as it runs by default: `har.training.train_run` with `Config(epochs=N, patience=N)`,
  trainer "plain" (the report's model fitted by `model.fit` from har's uint8 frame cache, batch by batch).
- `twin`: `har train --fast`: the same with trainer "twin" (`har.models.fast_model`).

Epoch time is what `har train` reports (its `epoch` events: from the start of an epoch to its end, validation
included); the `fit` side measures the same span with a callback. Sides run interleaved (fit, plain, twin, fit,
...) for `--repeats` rounds of `--epochs` epochs each; per side, the median epoch of epochs 2..N (epoch 1
compiles) over all rounds, and the ratios plain/fit and twin/fit (the issue's target: plain at most 1.05x of
fit). Two conditions in one invocation: idle, then under load (`--load` processes that burn a core each; on
2 cores, a load average of about 4). A sampler (`benchmarks/load.py`) records the load average, the CPU that
other processes took and the burners' CPU through each condition, also per side. Written to
results/train_vs_fit.json after each condition.
"""

from __future__ import annotations

import argparse
import json
import math
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

SIDES = {"fit": "the report's model.fit", "plain": "har train", "twin": "har train --fast"}
TRAINERS = {"plain": "plain", "twin": "twin"}  # side -> har.config.Config.trainer
TARGET = 1.05  # the bound on plain / fit
SIDE_FLAG = "--side"  # in every side process's command line: the sampler's trainer marker
BURNER_MARKER = "train_vs_fit load"
BURNER_CODE = f"while True: pass  # {BURNER_MARKER}"
SAMPLE_SECONDS = 2.0


def side_config(cache, epochs: int, trainer: str):
    """The default Config, as `har train --epochs N` makes it, with a patience that never stops early."""
    from har.config import Config

    return Config(epochs=epochs, patience=epochs, trainer=trainer).replace(
        classes=cache.class_names, sequence_length=cache.sequence_length, image_size=cache.image_size
    )


def fit_side(cache_path: str, model_name: str, epochs: int) -> dict:
    """The report's way: `model.fit` on float32 arrays of har's training and validation clips (see the top)."""
    import keras
    import numpy as np

    from har.datasets import config_split, load_cache
    from har.models import build_model

    class EpochSeconds(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(round(time.monotonic() - self.started, 3))

    cache = load_cache(cache_path)
    config = side_config(cache, epochs, "plain")
    keras.utils.set_random_seed(config.seed)
    split = config_split(cache.groups, config)
    clips = np.concatenate([split.train, split.validation])
    frames = cache.frames[clips].astype(np.float32) / 255
    labels = keras.utils.to_categorical(cache.labels[clips], len(cache.class_names))
    trained = len(split.train)
    if math.floor(len(clips) * (1.0 - config.validation_fraction)) == trained:  # where Keras cuts the arrays
        how = f"validation_split={config.validation_fraction}"
        validation = {"validation_split": config.validation_fraction}
    else:
        how = "validation_data"
        validation = {"validation_data": (frames[trained:], labels[trained:])}
        frames, labels = frames[:trained], labels[:trained]
    model = build_model(
        model_name,
        num_classes=len(cache.class_names),
        sequence_length=cache.sequence_length,
        image_size=cache.image_size,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    timer = EpochSeconds()
    model.fit(
        frames,
        labels,
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        verbose=0,
        callbacks=[stopping, timer],
        **validation,
    )
    return {
        "epoch_seconds": timer.seconds,
        "train_clips": trained,
        "validation_clips": len(split.validation),
        "validation": how,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def har_side(cache_path: str, model_name: str, epochs: int, trainer: str) -> dict:
    """`har train` (trainer "plain") or `har train --fast` (trainer "twin"): `train_run` into a scratch folder."""
    import keras

    from har.datasets import load_cache
    from har.training import train_run

    config = side_config(load_cache(cache_path), epochs, trainer)
    with tempfile.TemporaryDirectory() as models_dir:
        run = train_run(cache_path, model_name, models_dir, config=config, run_id="train-vs-fit")
        metadata = json.loads((run / "metadata.json").read_text())
        events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    if metadata.get("status") != "finished":
        sys.exit(f"{model_name} {trainer}: the run {metadata.get('status')}: {metadata.get('reason')}")
    return {
        "epoch_seconds": [event["seconds"] for event in events if event["event"] == "epoch"],
        "train_clips": metadata["split"]["train"],
        "validation_clips": metadata["split"]["validation"],
        "validation": "validation_data (har's validation clips)",
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def run_side(cache: Path, model: str, side: str, epochs: int) -> dict:
    """One side in a fresh process; its outcome (epoch times and what it trained on) and how long it took."""
    command = [sys.executable, str(Path(__file__).resolve()), SIDE_FLAG, side, "--model", model]
    command += ["--cache", str(cache), "--epochs", str(epochs)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    finished = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if finished.returncode != 0:
        sys.exit(f"{model} {side} failed (exit {finished.returncode}):\n{finished.stderr[-3000:]}")
    outcome = json.loads(finished.stdout.strip().splitlines()[-1])
    outcome["process_seconds"] = round(time.monotonic() - started, 1)
    return outcome


def start_burners(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BURNER_CODE]) for _ in range(count)]


def stop_burners(burners: list[subprocess.Popen]) -> None:
    for burner in burners:
        burner.terminate()
    for burner in burners:
        try:
            burner.wait(timeout=10)
        except subprocess.TimeoutExpired:
            burner.kill()
            burner.wait()


def run_condition(cache: Path, models: list[str], epochs: int, repeats: int, burners: int) -> dict:
    """Every side of every model, interleaved, `repeats` rounds, with `burners` CPU burners running throughout."""
    processes = start_burners(burners)
    sampler = Sampler(SAMPLE_SECONDS, trainer_marker=SIDE_FLAG, burner_marker=BURNER_MARKER)
    sampler.start()
    runs = {model: {side: [] for side in SIDES} for model in models}
    try:
        for round_number in range(1, repeats + 1):
            for model in models:
                for side in SIDES:
                    started = sampler.elapsed()
                    outcome = run_side(cache, model, side, epochs)
                    outcome.update(round=round_number, window=[started, sampler.elapsed()])
                    runs[model][side].append(outcome)
                    print(
                        f"  {'loaded' if burners else 'idle'} round {round_number} {model} {side}: epochs "
                        f"{outcome['epoch_seconds']} s, process {outcome['process_seconds']} s",
                        flush=True,
                    )
    finally:
        sampler.stopped.set()
        sampler.join()
        stop_burners(processes)
    return {
        "burners": burners,
        "load": sampler.summary(),
        "samples": sampler.samples,
        "models": {model: summarise(sides, sampler) for model, sides in runs.items()},
    }


def timed_median(outcomes: list[dict]) -> float:
    """The median of every run's epochs 2..N (the first compiles)."""
    return statistics.median(seconds for outcome in outcomes for seconds in outcome["epoch_seconds"][1:])


def summarise(sides: dict[str, list[dict]], sampler: Sampler) -> dict:
    """Per side: its epochs and their median; then plain/fit and twin/fit, overall and round by round."""
    summary = {}
    for side, outcomes in sides.items():
        timed = [seconds for outcome in outcomes for seconds in outcome["epoch_seconds"][1:]]
        first = outcomes[0]
        summary[side] = {
            "what": SIDES[side],
            "epoch_seconds": [outcome["epoch_seconds"] for outcome in outcomes],  # per process, epoch 1 included
            "median_s": round(timed_median(outcomes), 3),
            "min_s": min(timed),
            "max_s": max(timed),
            "process_seconds": [outcome["process_seconds"] for outcome in outcomes],
            "train_clips": first["train_clips"],
            "validation_clips": first["validation_clips"],
            "validation": first["validation"],
            "load": sampler.summary([tuple(outcome["window"]) for outcome in outcomes]),
        }
    fit = summary["fit"]["median_s"]
    for side in ("plain", "twin"):
        by_round = zip(sides[side], sides["fit"])
        summary[f"{side}_over_fit"] = round(summary[side]["median_s"] / fit, 3)
        summary[f"{side}_over_fit_by_round"] = [round(timed_median([a]) / timed_median([b]), 3) for a, b in by_round]
    summary["plain_within_target"] = summary["plain_over_fit"] <= TARGET
    return summary


def print_table(results: dict) -> None:
    print(
        "| condition | load1 median | others' cores | model | fit s/epoch | har train | plain/fit | --fast | twin/fit |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for condition, measured in results["conditions"].items():
        for model, summary in measured["models"].items():
            met = "met" if summary["plain_within_target"] else "NOT met"
            print(
                f"| {condition} | {measured['load']['load1_median']} | {measured['load']['other_processes_cores_median']} | "
                f"{model} | {summary['fit']['median_s']:.2f} | "
                f"{summary['plain']['median_s']:.2f} | {summary['plain_over_fit']:.3f}x ({met}) | "
                f"{summary['twin']['median_s']:.2f} | {summary['twin_over_fit']:.3f}x |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", help="a frame cache to use instead of building a demo")
    parser.add_argument("--groups", type=int, default=25, help="the demo's groups per class (`har data demo`)")
    parser.add_argument("--clips-per-group", type=int, default=4)
    parser.add_argument("--models", default="convlstm,lrcn")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per process; the first (compiling) is not timed")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of fit, plain, twin per model and condition")
    parser.add_argument("--load", type=int, default=2, help="CPU burners in the loaded condition (0: idle only)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/train_vs_fit.json"))
    parser.add_argument(SIDE_FLAG, choices=SIDES, help=argparse.SUPPRESS)  # internal: run one side and print it
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        if args.side == "fit":
            outcome = fit_side(args.cache, args.model, args.epochs)
        else:
            outcome = har_side(args.cache, args.model, args.epochs, TRAINERS[args.side])
        print(json.dumps(outcome))
        return
    models = args.models.split(",")
    if args.epochs < 2:
        parser.error(f"--epochs {args.epochs}: the first epoch compiles and is not timed; give 2 or more.")
    if args.repeats < 1 or args.load < 0:
        parser.error("--repeats must be 1 or more and --load 0 or more.")
    if unknown := [model for model in models if model not in ("convlstm", "lrcn")]:
        parser.error(f"--models {args.models}: {', '.join(unknown)} is not a model; choose from convlstm, lrcn.")
    with tempfile.TemporaryDirectory() as home:
        cache, dataset = find_cache(args, Path(home))
        results = {
            "benchmark": "train_vs_fit",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "dataset": dataset,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "target": f"plain / fit <= {TARGET} in every condition",
            "conditions": {},
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        for condition, burners in (("idle", 0), ("loaded", args.load)):
            if condition == "loaded" and not burners:
                continue
            print(f"{condition} ({burners} CPU burners):", flush=True)
            results["conditions"][condition] = run_condition(cache, models, args.epochs, args.repeats, burners)
            out.write_text(json.dumps(results, indent=1) + "\n")
    print_table(results)
    print(f"written to {out}")


def find_cache(args, home: Path) -> tuple[Path, dict]:
    """The cache to train on (`--cache`, else a demo built under `home`) and what it holds."""
    from har.config import Config
    from har.datasets import ensure_demo, load_cache

    if args.cache:
        cache = Path(args.cache)
        described = {"cache": str(cache.resolve())}
    else:
        print(f"building the demo ({args.groups} groups x {args.clips_per_group} clips a class) ...", flush=True)
        built = ensure_demo(home / "data", Config(), groups=args.groups, clips_per_group=args.clips_per_group)
        cache = built.cache
        described = {"demo": {"groups": args.groups, "clips_per_group": args.clips_per_group}}
    try:
        loaded = load_cache(cache)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(str(error))
    return cache, {**described, "clips": len(loaded), "classes": list(loaded.class_names)}


if __name__ == "__main__":
    main()
