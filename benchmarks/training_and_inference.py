"""Training throughput and prediction latency against the report's way of doing each.

Run from the repository root (about 4 minutes on 2 cores):

    python benchmarks/training_and_inference.py [--epochs 3] [--rounds 2] [--out benchmarks/results/training_and_inference.json]

On the built-in demo dataset (generated if missing), 20 frames of 64x64, the report's hyperparameters:
  * training samples/s: the report's `model.fit(float32 arrays, batch_size=4, validation_split=0.2)` against
    `har.training.train_run` with the twin (what `har train --fast` runs; plain `har train` is the report's
    `model.fit` and as fast), each in a fresh process, `--rounds` processes per side
    interleaved, each timing `--epochs` epochs (validation included) after a warm-up epoch; the fastest epoch
    of each side gives the ratio, and the ratio of medians is printed beside it;
  * model-call latency for one clip: `model.predict` against `Predictor.predict_frames`;
  * a whole clip, decode + predict: the report's seek-per-frame reader + `model.predict` against
    `Predictor.predict_clip`.
Targets (issue 3): training >= 1.5x, model call >= 5x, whole clip >= 3x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TRAIN_REPORT = """
import json
import numpy as np, keras
from har.datasets import load_cache, report_split
from har.models import build_model
from benchmarks.epoch_time import EpochSeconds
cache = load_cache(CACHE)
keras.utils.set_random_seed(27)
split = report_split(len(cache))
train = np.concatenate([split.train, split.validation])  # the report lets validation_split take 20% of this
x = cache.frames[train].astype("float32") / 255  # the report's float32 arrays
y = keras.utils.to_categorical(cache.labels[train], len(cache.class_names))
model = build_model(MODEL)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
timer = EpochSeconds()
model.fit(x, y, batch_size=4, epochs=1 + EPOCHS, shuffle=True, validation_split=0.2, verbose=0, callbacks=[timer])
# The first epoch traces the graphs; the others are timed.
print(json.dumps({"epoch_seconds": timer.seconds[1:], "train_clips": len(split.train)}))
"""

# har's fast trainer, as `har train --fast` runs it; epoch seconds come from its progress events.
TRAIN_HAR = """
import json, tempfile
from har.config import Config
from har.training import train_run
events = []
with tempfile.TemporaryDirectory() as models_dir:
    train_run(CACHE, MODEL, models_dir, config=Config(epochs=1 + EPOCHS, trainer="twin"), run_id="benchmark", emit=events.append)
started = next(event for event in events if event["event"] == "started")
print(json.dumps({"epoch_seconds": [event["seconds"] for event in events if event["event"] == "epoch"][1:],
                  "train_clips": started["train_clips"]}))
"""


def in_fresh_process(code: str, **values) -> dict:
    for name, value in values.items():
        code = code.replace(name, repr(value))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def best_ms(function, repeats: int = 30) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per process, after a warm-up epoch")
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per side and model, interleaved")
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/training_and_inference.json"))
    args = parser.parse_args()

    import numpy as np

    from har.datasets import build_cache, generate_demo

    demo = generate_demo(Path(args.data_dir) / "demo")
    cache = build_cache(demo, Path(args.data_dir) / "caches" / "demo-T20-S64")
    results = {}
    for model in ("convlstm", "lrcn"):
        epochs = {"report": [], "har": []}
        for _ in range(args.rounds):  # interleaved, so a slow spell on the machine hits both sides
            for side, code in (("report", TRAIN_REPORT), ("har", TRAIN_HAR)):
                measured = in_fresh_process(code, CACHE=str(cache), MODEL=model, EPOCHS=args.epochs)
                epochs[side] += [measured["train_clips"] / seconds for seconds in measured["epoch_seconds"]]
        report, ours = max(epochs["report"]), max(epochs["har"])  # the fastest epoch of each, as timeit does
        results[f"training_{model}"] = {
            "report_samples_per_s": round(report, 2),
            "har_samples_per_s": round(ours, 2),
            "speedup": round(ours / report, 2),
            "median_speedup": round(float(np.median(epochs["har"]) / np.median(epochs["report"])), 2),
            "epochs_samples_per_s": {side: [round(value, 1) for value in values] for side, values in epochs.items()},
        }

    import keras

    from benchmarks.video_reading import report_reader
    from har.datasets import find_clips
    from har.inference import Predictor
    from har.models import build_model

    clip = str(find_clips(demo)[0].path)
    for model_name in ("convlstm", "lrcn"):
        model = build_model(model_name)
        model.compile()
        predictor = Predictor(
            model,
            {
                "run_id": "benchmark",
                "model": model_name,
                "sequence_length": 20,
                "image_size": 64,
                "classes": ["a", "b", "c", "d"],
            },
        )
        frames = np.zeros((20, 64, 64, 3), np.uint8)
        batch = frames[None].astype("float32") / 255
        predict = best_ms(lambda: model.predict(batch, verbose=0))
        call = best_ms(lambda: predictor.predict_frames(frames))
        report_clip = best_ms(lambda: model.predict(report_reader(clip)[None], verbose=0))
        har_clip = best_ms(lambda: predictor.predict_clip(clip))
        results[f"latency_{model_name}"] = {
            "model_predict_ms": round(predict, 2),
            "predictor_ms": round(call, 2),
            "model_call_speedup": round(predict / call, 2),
            "report_clip_ms": round(report_clip, 2),
            "har_clip_ms": round(har_clip, 2),
            "whole_clip_speedup": round(report_clip / har_clip, 2),
        }
    results["backend"] = keras.backend.backend()
    for name, numbers in results.items():
        print(f"{name}: {numbers}")
    checks = {
        "training >= 1.5x": {m: results[f"training_{m}"]["speedup"] >= 1.5 for m in ("convlstm", "lrcn")},
        "model call >= 5x": {m: results[f"latency_{m}"]["model_call_speedup"] >= 5 for m in ("convlstm", "lrcn")},
        "whole clip >= 3x": {m: results[f"latency_{m}"]["whole_clip_speedup"] >= 3 for m in ("convlstm", "lrcn")},
    }
    for check, per_model in checks.items():
        print(check + ": " + ", ".join(f"{m} {'PASS' if ok else 'MISS'}" for m, ok in per_model.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"results": results, "targets": checks}, indent=2) + "\n")


if __name__ == "__main__":
    main()
