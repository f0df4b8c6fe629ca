"""Training throughput and prediction latency against the report's way of doing each.

Run from the repository root (about 3 minutes on 2 cores):

    python benchmarks/training_and_inference.py [--epochs 2] [--out benchmarks/results/training_and_inference.json]

On the built-in demo dataset (generated if missing), 20 frames of 64x64, the report's hyperparameters:
  * training samples/s: the report's `model.fit(float32 arrays, batch_size=4, validation_split=0.2)` against
    har's trainer (uint8 cache batches scaled on the fly, its device settings), each in a fresh process,
    timed over `--epochs` epochs after one warm-up epoch;
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
import json, sys, time
import numpy as np, keras
from har.datasets import load_cache, report_split
from har.models import build_model
cache = load_cache(CACHE)
keras.utils.set_random_seed(27)
split = report_split(len(cache))
train = np.concatenate([split.train, split.validation])  # the report lets validation_split take 20% of this
x = cache.frames[train].astype("float32") / 255  # the report's float32 arrays
y = keras.utils.to_categorical(cache.labels[train], len(cache.class_names))
model = build_model(MODEL)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=4, epochs=1, shuffle=True, validation_split=0.2, verbose=0)
start = time.perf_counter()
model.fit(x, y, batch_size=4, epochs=EPOCHS, shuffle=True, validation_split=0.2, verbose=0)
print(json.dumps({"samples_per_s": EPOCHS * len(split.train) / (time.perf_counter() - start)}))
"""

TRAIN_HAR = """
import json, time
import keras
from har.config import Config
from har.datasets import load_cache, report_split
from har.models import build_model
from har.training import FrameBatches, configure_devices
configure_devices()
cache = load_cache(CACHE)
keras.utils.set_random_seed(27)
split = report_split(len(cache))
train = FrameBatches(cache, split.train, batch_size=4, shuffle=True, seed=27)
validation = FrameBatches(cache, split.validation, batch_size=4, shuffle=False, seed=27)
model = build_model(MODEL)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(train, validation_data=validation, epochs=1, verbose=0)
start = time.perf_counter()
model.fit(train, validation_data=validation, epochs=EPOCHS, verbose=0)
print(json.dumps({"samples_per_s": EPOCHS * len(split.train) / (time.perf_counter() - start)}))
"""


def in_fresh_process(code: str, **values) -> dict:
    for name, value in values.items():
        code = code.replace(name, repr(value))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def best_ms(function, repeats: int = 15) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/training_and_inference.json"))
    args = parser.parse_args()

    from har.datasets import build_cache, generate_demo

    demo = generate_demo(Path(args.data_dir) / "demo")
    cache = build_cache(demo, Path(args.data_dir) / "caches" / "demo-T20-S64")
    results = {}
    for model in ("convlstm", "lrcn"):
        report = in_fresh_process(TRAIN_REPORT, CACHE=str(cache), MODEL=model, EPOCHS=args.epochs)["samples_per_s"]
        ours = in_fresh_process(TRAIN_HAR, CACHE=str(cache), MODEL=model, EPOCHS=args.epochs)["samples_per_s"]
        results[f"training_{model}"] = {"report_samples_per_s": round(report, 2), "har_samples_per_s": round(ours, 2),
                                        "speedup": round(ours / report, 2)}  # fmt: skip

    import keras
    import numpy as np

    from benchmarks.video_reading import report_reader
    from har.datasets import find_clips
    from har.inference import Predictor
    from har.models import build_model

    clip = str(find_clips(demo)[0].path)
    for model_name in ("convlstm", "lrcn"):
        model = build_model(model_name)
        model.compile()
        predictor = Predictor(model, {"run_id": "benchmark", "model": model_name, "sequence_length": 20,
                                      "image_size": 64, "classes": ["a", "b", "c", "d"]})  # fmt: skip
        frames = np.zeros((20, 64, 64, 3), np.uint8)
        batch = frames[None].astype("float32") / 255
        predict = best_ms(lambda: model.predict(batch, verbose=0))
        call = best_ms(lambda: predictor.predict_frames(frames))
        report_clip = best_ms(lambda: model.predict(report_reader(clip)[None], verbose=0))
        har_clip = best_ms(lambda: predictor.predict_clip(clip))
        results[f"latency_{model_name}"] = {
            "model_predict_ms": round(predict, 2), "predictor_ms": round(call, 2),
            "model_call_speedup": round(predict / call, 2),
            "report_clip_ms": round(report_clip, 2), "har_clip_ms": round(har_clip, 2),
            "whole_clip_speedup": round(report_clip / har_clip, 2),
        }  # fmt: skip
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
