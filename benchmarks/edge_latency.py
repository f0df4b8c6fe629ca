"""One clip's latency of each exported model (ONNX in onnxruntime, LiteRT in ai-edge-litert) against the Keras
model as the app runs it (`har.inference.Predictor.predict_frames`), on 2 cores (issue 21).

Run from the repository root, on an otherwise idle machine (about 3 minutes with the defaults; needs the export
extra, `pip install -e ".[export]"`):

    python benchmarks/edge_latency.py [--models convlstm,lrcn,mobilenet] [--repeats 50] [--warmup 5] [--cores 2]
        [--out benchmarks/results/edge_latency.json]

For each model (every one of `har.config.MODEL_NAMES` by default), at the report's 20 frames of 64x64: a seeded,
untrained model (weights do not change the cost; the mobilenet's backbone is its seeded random initialisation,
nothing is downloaded) saved as a run in a temporary models dir, loaded as the app loads it (`Predictor.from_run`),
exported in both formats with `har.edge.export_for_device` (each export is checked in its runtime) and loaded
with `har.edge.load_exported`. The process is pinned to `--cores` cores and every runtime gets that many threads
(TensorFlow's intra-op pool too). Then `--repeats` rounds, each timing one call per side on the same seeded uint8
clip, sides interleaved (Keras, ONNX, LiteRT, Keras, ...) so that drift in the machine's load hits all alike,
after `--warmup` untimed rounds. Per side the median, and its ratio to the Keras median of the same rounds
(below 1: the exported model is faster). A sampler (`benchmarks/load.py`) records the machine's load meanwhile.
A model that a format refuses is recorded with the one-line reason. Results: results/edge_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from benchmarks.load import Sampler, cpu_model  # noqa: E402 - after the path is set

SIDES = ("keras", "onnx", "litert")
SAMPLE_SECONDS = 1.0


def pin_to_cores(cores: int) -> list[int]:
    """Pins this process (and the threads it starts from now on) to its first `cores` allowed cores."""
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[:cores]
    os.sched_setaffinity(0, chosen)
    return chosen


def prepare(model_name: str, models_dir: Path, sequence_length: int, image_size: int, cores: int) -> dict:
    """The model saved as a run, its Predictor and its exports: {"call": {side: clip -> probabilities}, ...}."""
    import keras

    from har.config import Config
    from har.edge import export_for_device, load_exported
    from har.inference import Predictor
    from har.models import build_model
    from har.runs import save_run

    keras.utils.set_random_seed(27)
    classes = list(Config.classes)
    model = build_model(model_name, num_classes=len(classes), sequence_length=sequence_length, image_size=image_size)
    metadata = {
        "run_id": model_name,
        "model": model_name,
        "status": "finished",
        "classes": classes,
        "sequence_length": sequence_length,
        "image_size": image_size,
    }
    save_run(models_dir, model_name, model, metadata, [])
    predictor = Predictor.from_run(model_name, models_dir)
    calls, files = {"keras": predictor.predict_frames}, {}
    for fmt in ("onnx", "litert"):
        started = time.monotonic()
        try:
            exported = export_for_device(model_name, fmt, None, models_dir)
        except ValueError as refusal:
            files[fmt] = {"refused": str(refusal)}
            print(f"  {model_name} {fmt}: refused: {refusal}")
            continue
        files[fmt] = {
            "bytes": exported.bytes,
            "export_seconds": round(time.monotonic() - started, 1),
            "check_max_difference": exported.max_difference,
        }
        calls[fmt] = load_exported(exported.path, threads=cores)
    return {"calls": calls, "files": files, "parameters": model.count_params()}


def time_sides(calls: dict, clip, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds of one call per side per round, sides interleaved, after `warmup` untimed rounds."""
    times = {side: [] for side in calls}
    for round_ in range(warmup + repeats):
        for side, call in calls.items():
            started = time.perf_counter()
            call(clip)
            if round_ >= warmup:
                times[side].append((time.perf_counter() - started) * 1000)
    return times


def measure(model_name: str, args, models_dir: Path, sampler: Sampler) -> dict:
    import numpy as np

    prepared = prepare(model_name, models_dir, args.sequence_length, args.image_size, args.cores)
    calls = prepared["calls"]
    clip = np.random.default_rng(27).integers(0, 256, (args.sequence_length, args.image_size, args.image_size, 3))
    clip = clip.astype(np.uint8)
    keras_probabilities = calls["keras"](clip)
    start = sampler.elapsed()
    times = time_sides(calls, clip, args.repeats, args.warmup)
    window = (start, sampler.elapsed())
    keras_median = statistics.median(times["keras"])
    result = {"parameters": prepared["parameters"], "files": prepared["files"], "window": window, "sides": {}}
    for side, milliseconds in times.items():
        median = statistics.median(milliseconds)
        result["sides"][side] = {
            "median_ms": round(median, 3),
            "min_ms": round(min(milliseconds), 3),
            "max_ms": round(max(milliseconds), 3),
            "vs_keras": round(median / keras_median, 3),
            "max_difference_on_the_clip": float(np.abs(calls[side](clip) - keras_probabilities).max()),
        }
        print(f"  {model_name} {side}: median {median:.2f} ms ({median / keras_median:.2f}x of Keras)")
    return result


def main() -> None:
    from har.config import MODEL_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODEL_NAMES))
    parser.add_argument("--repeats", type=int, default=50, help="timed rounds (one call per side each)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--sequence-length", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "edge_latency.json"))
    args = parser.parse_args()
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(models) - set(MODEL_NAMES))
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES)}")

    cores = pin_to_cores(args.cores)
    import tensorflow as tf  # threads are set before TensorFlow starts its pools

    tf.config.threading.set_intra_op_parallelism_threads(args.cores)
    tf.config.threading.set_inter_op_parallelism_threads(args.cores)
    import keras

    from har.edge import versions

    sampler = Sampler(SAMPLE_SECONDS)
    sampler.start()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for model_name in models:
            results[model_name] = measure(model_name, args, Path(folder), sampler)
            results[model_name]["load"] = sampler.summary([tuple(results[model_name].pop("window"))])
    sampler.stopped.set()
    record = {
        "benchmark": "edge_latency",
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "settings": {
            "sequence_length": args.sequence_length,
            "image_size": args.image_size,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "threads": args.cores,
            "clip": "seeded random uint8 frames (seed 27)",
            "keras_side": "har.inference.Predictor.predict_frames (the app's)",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "pinned_to": cores,
            "cpu_model": cpu_model(),
            "platform": platform.platform(),
            "backend": keras.backend.backend(),
            "versions": versions(),
        },
        "load": sampler.summary(),
        "results": results,
    }
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
