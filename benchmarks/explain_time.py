"""How long one clip's full explanation takes per model, once the models are loaded.

Run from the repository root (about 3 minutes on 2 cores):

    python benchmarks/explain_time.py [--repeats 10] [--out benchmarks/results/explain_time.json]

On a small built-in demo dataset (8 groups x 4 clips a class, generated in a temporary folder), 20 frames of 64x64: each model is
trained for one epoch (the weights' values do not change the cost), loaded as the app loads it, and its out-of-distribution
reference is computed once (saved beside the run, as `har explain` does). Then, per model, a demo clip is
decoded and explained (`Explainer.explain`: the batch of 24 variants, Grad-CAM, feature maps, OOD score)
`--repeats` times; the median is reported beside the median of a plain prediction of the same clip
(`Predictor.predict_clip`), measured in the same run, as a ratio.
Target (issue 13): a full explanation takes at most 2 s on 2 CPU cores.
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

TARGET_SECONDS = 2.0


def median_seconds(function, repeats: int) -> tuple[float, list[float]]:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "explain_time.json"))
    args = parser.parse_args()

    import keras

    from har.config import Config
    from har.datasets import build_cache, find_clips, generate_demo
    from har.explain import Explainer
    from har.inference import Predictor
    from har.runs import find_run
    from har.training import train_run
    from har.video import decode_clip

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        demo = generate_demo(folder / "demo", groups=8, clips_per_group=4)  # the dataset's size does not matter
        cache = build_cache(demo, folder / "caches" / "demo-T20-S64")
        clip_path = find_clips(demo, ["HorseRace"])[0].path
        for model in ("convlstm", "lrcn"):
            train_run(cache, model, folder / "models", config=Config(epochs=1, trainer="twin"), run_id=model)
            run = find_run(folder / "models", model)
            start = time.perf_counter()
            predictor = Predictor.from_run(run, folder / "models")
            explainer = Explainer(predictor, run)
            load_seconds = time.perf_counter() - start
            start = time.perf_counter()
            explainer.reference()
            reference_seconds = time.perf_counter() - start

            def explain():
                explanation = explainer.explain(decode_clip(clip_path, explainer.sequence_length, explainer.image_size))
                assert explanation.ood["out_of_distribution"] is not None, explanation.ood

            explain_seconds, explain_times = median_seconds(explain, args.repeats)
            predict_seconds, _ = median_seconds(lambda: predictor.predict_clip(clip_path), args.repeats)
            results[model] = {
                "explain_seconds": round(explain_seconds, 4),
                "explain_times": [round(t, 4) for t in explain_times],
                "predict_seconds": round(predict_seconds, 4),
                "explain_vs_predict": round(explain_seconds / predict_seconds, 1),
                "load_seconds": round(load_seconds, 2),
                "ood_reference_seconds_once": round(reference_seconds, 2),
                "target_met": explain_seconds <= TARGET_SECONDS,
            }
            print(
                f"{model}: explanation {explain_seconds:.3f} s (plain prediction {predict_seconds * 1000:.1f} ms, "
                f"{explain_seconds / predict_seconds:.0f}x); loading {load_seconds:.1f} s, "
                f"OOD reference once {reference_seconds:.1f} s; target <= {TARGET_SECONDS} s: "
                f"{'met' if explain_seconds <= TARGET_SECONDS else 'MISSED'}"
            )
    record = {
        "results": results,
        "settings": {"sequence_length": 20, "image_size": 64, "repeats": args.repeats, "clip": clip_path.name},
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "backend": keras.backend.backend(),
            "keras": keras.__version__,
        },
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
