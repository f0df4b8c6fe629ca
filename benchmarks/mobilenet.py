"""The mobilenet model against the report's two on the demo (issue 21): speed of its feature cache and accuracy.

Run from the repository root (about 10 minutes on 2 idle cores):

    python benchmarks/mobilenet.py [--backbone-weights FILE] [--seeds 27,28,29] [--lrcn-epochs 3]
        [--out benchmarks/results/mobilenet.json]

On the default demo's frame cache (400 clips, 20 frames of 64x64; built in a temporary HAR_HOME as
`har data demo` builds it, or `--cache PATH`):

1. Feature extraction: `har.features.clip_features` on every clip from scratch (the backbone at 96x96, 20 frames
   a clip, CLIPS_PER_BATCH clips a batch): clips per second.
2. Epoch time: the mobilenet head's epochs (on the cached features) and the LRCN's (on the frames, `har train`'s
   default plain trainer, `--lrcn-epochs` epochs), both from their runs' `epoch` events: the median of epochs
   2..N (epoch 1 compiles); the ratio head / LRCN.
3. Accuracy: mobilenet runs with the report's recipe (30 epochs, patience 5) for each seed on both splits; test
   accuracy mean and sample sd per split. The report's two on the same splits come from the shipped runs
   (`pretrained/`, `har reproduce --source demo --seeds 27,28,29`), which trained on this very cache when their
   recorded content hash matches its own (`same_frames` in the results).

The backbone weights are `--backbone-weights FILE`, else what `har.backbones.resolve_weights` finds (Keras'
cache, $HAR_BACKBONE_WEIGHTS) without downloading; with neither, a seeded random initialisation saved for the
purpose, and every result says `"weights": "random"`: those figures measure the machinery and what frozen random
features give, not ImageNet's. A sampler records the machine's load (`benchmarks/load.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.load import Sampler, cpu_model  # noqa: E402 - after the path is set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", help="a frame cache (default: the default demo's, built in a temporary folder)")
    parser.add_argument("--backbone-weights", help="MobileNetV2 weights (default: Keras' cache, else seeded random)")
    parser.add_argument("--seeds", default="27,28,29")
    parser.add_argument("--lrcn-epochs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mobilenet.json"))
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="har-mobilenet-") as scratch:
        scratch = Path(scratch)
        cache = Path(args.cache) if args.cache else demo_cache(scratch / "data")
        weights, kind = backbone_weights(args.backbone_weights, scratch)
        sampler = Sampler(interval=2.0, trainer_marker="benchmarks/mobilenet.py")
        sampler.start()
        results = {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "cache": str(cache),
            "weights": kind,
            "extraction": extraction(cache, weights),
        }
        results["epochs"] = epoch_times(cache, weights, scratch / "epochs", args.lrcn_epochs)
        results["accuracy"] = accuracy(cache, weights, scratch / "accuracy", [int(s) for s in args.seeds.split(",")])
        sampler.stopped.set()
        results["load"] = sampler.summary()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def demo_cache(data_dir: Path) -> Path:
    from har.config import Config
    from har.datasets import ensure_demo
    from har.datasets.demo import DEFAULT_SETTINGS

    return Path(ensure_demo(data_dir, Config(), **DEFAULT_SETTINGS).cache)


def backbone_weights(given: str | None, scratch: Path) -> tuple[str, str]:
    """(weights file, "given" / "found" / "random")."""
    from har.backbones import build_backbone, resolve_weights

    if given:
        return str(resolve_weights(given).path), "given"
    try:
        return str(resolve_weights(download=False).path), "found"
    except (ValueError, FileNotFoundError):
        import keras

        keras.utils.set_random_seed(27)
        path = scratch / "mobilenet_v2_seeded_random.weights.h5"
        build_backbone().save_weights(path)
        return str(path), "random"


def extraction(cache_path: Path, weights_file: str) -> dict:
    import shutil

    from har.backbones import MOBILENET_V2, resolve_weights
    from har.datasets import load_cache
    from har.features import clip_features
    from har.models import build_model, split_at_features

    cache = load_cache(cache_path)
    shutil.rmtree(cache_path / "features", ignore_errors=True)
    weights = resolve_weights(weights_file)
    extractor = split_at_features(build_model("mobilenet", backbone_weights=weights_file))[0]
    started = time.monotonic()
    features = clip_features(cache, extractor, MOBILENET_V2, weights)
    seconds = time.monotonic() - started
    return {
        "clips": len(cache),
        "seconds": round(seconds, 2),
        "clips_per_second": round(len(cache) / seconds, 2),
        "frames_per_second": round(len(cache) * cache.sequence_length / seconds, 1),
        "feature_bytes": int(features.nbytes),
        "note": "includes one compile of the extractor (a few seconds)",
    }


def train(cache: Path, model: str, models_dir: Path, run_id: str, **config) -> dict:
    from har.config import Config
    from har.training import train_run

    events = []
    run = train_run(cache, model, models_dir, config=Config(**config), run_id=run_id, emit=events.append)
    metadata = json.loads((run / "metadata.json").read_text())
    return {"events": events, "metadata": metadata}


def median_epoch(events: list[dict]) -> float | None:
    seconds = [event["seconds"] for event in events if event["event"] == "epoch"][1:]
    return round(statistics.median(seconds), 3) if seconds else None


def epoch_times(cache: Path, weights_file: str, models_dir: Path, lrcn_epochs: int) -> dict:
    head = train(cache, "mobilenet", models_dir, "head", epochs=5, patience=5, backbone_weights=weights_file)
    lrcn = train(cache, "lrcn", models_dir, "lrcn", epochs=lrcn_epochs, patience=lrcn_epochs)
    head_epoch, lrcn_epoch = median_epoch(head["events"]), median_epoch(lrcn["events"])
    return {
        "mobilenet_head_epoch_seconds": head_epoch,
        "lrcn_epoch_seconds": lrcn_epoch,
        "head_over_lrcn": round(head_epoch / lrcn_epoch, 4) if head_epoch and lrcn_epoch else None,
        "epochs": {"mobilenet": 5, "lrcn": lrcn_epochs},
    }


def accuracy(cache: Path, weights_file: str, models_dir: Path, seeds: list[int]) -> dict:
    from har.datasets import load_cache
    from har.datasets.cache import cache_content

    content = cache_content(load_cache(cache))
    table: dict[str, dict] = {}
    for split in ("group", "report"):
        runs = {}
        for seed in seeds:
            outcome = train(
                cache,
                "mobilenet",
                models_dir,
                f"mobilenet-{split}-s{seed}",
                seed=seed,
                split=split,
                backbone_weights=weights_file,
            )["metadata"]
            runs[seed] = {
                "test_accuracy": round(outcome["test"]["accuracy"], 4),
                "epochs_run": outcome["epochs_run"],
                "at_chance": outcome["at_chance"],
            }
        table[f"mobilenet/{split}"] = summarise(runs)
        for model in ("convlstm", "lrcn"):
            table[f"{model}/{split}"] = shipped(model, split, seeds, content)
    return table


def shipped(model: str, split: str, seeds: list[int], content: str) -> dict:
    runs, same = {}, True
    for path in sorted((ROOT / "pretrained").glob(f"*-{model}-{split}-s*.zip")):
        metadata = json.loads(zipfile.ZipFile(path).read("metadata.json"))
        if metadata["seed"] in seeds:
            same = same and metadata["dataset"].get("content") == content
            runs[metadata["seed"]] = {
                "test_accuracy": round(metadata["test"]["accuracy"], 4),
                "epochs_run": metadata["epochs_run"],
                "at_chance": metadata["at_chance"],
            }
    return {**summarise(runs), "from": "pretrained/ (shipped runs)", "same_frames": same} if runs else {}


def summarise(runs: dict) -> dict:
    accuracies = [run["test_accuracy"] for run in runs.values()]
    return {
        "runs": runs,
        "mean": round(statistics.mean(accuracies), 4),
        "sd": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else None,
    }


if __name__ == "__main__":
    main()
