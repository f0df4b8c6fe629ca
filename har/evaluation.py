"""Evaluating runs on their test split, and the ConvLSTM vs LRCN comparison beside the report's numbers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support

from har import config as config_module
from har.config import Config
from har.datasets import load_cache, make_split
from har.report import REPORT_RESULTS
from har.runs import Run, find_run, latest_runs


def evaluate(run: str | os.PathLike | Run, models_dir: str | os.PathLike | None = None, *, latency_repeats: int = 10) -> dict:
    """Test metrics of a finished run, saved beside it as evaluation.json.

    Returns a dict with `model`, `accuracy` and `loss` on the test split, per-class precision, recall and F1,
    the confusion matrix (rows: true class, columns: predicted) and the median single-clip latency.
    """
    from har.inference import Predictor

    models_dir = config_module.models_dir(models_dir)
    predictor = Predictor.from_run(run, models_dir)
    run = find_run(models_dir, predictor.run_id)
    metadata = run.metadata
    cache_path = Path(metadata["dataset"]["cache"])
    try:
        cache = load_cache(cache_path)
    except (FileNotFoundError, ValueError):
        raise FileNotFoundError(
            f"run {run.id}: its frame cache {cache_path} is gone; rebuild it with `har data build` to evaluate."
        ) from None
    if cache.fingerprint != metadata["dataset"]["fingerprint"]:
        raise ValueError(f"run {run.id}: the frame cache {cache_path} changed since training; its test split is gone.")
    config = Config.from_dict(metadata["config"])
    split = make_split(cache.groups, split=config.split, test_fraction=config.test_fraction,
                       validation_fraction=config.validation_fraction, seed=config.seed)  # fmt: skip
    probabilities = np.concatenate(
        [predictor.predict_frames(cache.frames[split.test[i : i + 16]]) for i in range(0, len(split.test), 16)]
    )
    truth, predicted = cache.labels[split.test], probabilities.argmax(axis=1)
    labels = list(range(len(predictor.class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    latencies = []
    for i in range(latency_repeats):
        start = time.perf_counter()
        predictor.predict_frames(cache.frames[split.test[i % len(split.test)]])
        latencies.append(time.perf_counter() - start)
    result = {
        "run_id": run.id,
        "model": run.model,
        "split": config.split,
        "test_clips": len(split.test),
        "accuracy": float(accuracy_score(truth, predicted)),
        "loss": float(log_loss(truth, probabilities, labels=labels)),
        "classes": list(predictor.class_names),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(predictor.class_names, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(truth, predicted, labels=labels).tolist(),
        "latency_ms": round(1000 * float(np.median(latencies)), 2),
    }
    staging = run.path / ".evaluation.json.tmp"
    staging.write_text(json.dumps(result, indent=1))
    staging.replace(run.path / "evaluation.json")
    return result


def compare(runs: list[str] | None = None, models_dir: str | os.PathLike | None = None) -> dict:
    """The comparison table: one row per run (default: the latest finished run of each model) and the report's."""
    models_dir = config_module.models_dir(models_dir)
    if runs:
        chosen = [find_run(models_dir, run) for run in runs]
    else:
        chosen = latest_runs(models_dir)
    if not chosen:
        raise FileNotFoundError(f"{models_dir}: no finished runs to compare; train with `har train` first.")
    rows = []
    for run in chosen:
        evaluation = _cached_evaluation(run) or evaluate(run, models_dir)
        rows.append({
            "run_id": run.id,
            "model": run.model,
            "split": evaluation["split"],
            "accuracy": evaluation["accuracy"],
            "loss": evaluation["loss"],
            "parameters": run.metadata.get("parameters"),
            "epochs_run": run.metadata.get("epochs_run"),
            "training_seconds": run.metadata.get("training_seconds"),
            "latency_ms": evaluation["latency_ms"],
            "f1": {name: values["f1"] for name, values in evaluation["per_class"].items()},
            "classes": len(evaluation["classes"]),
        })  # fmt: skip
    return {"runs": rows, "report": REPORT_RESULTS}


def _cached_evaluation(run: Run) -> dict | None:
    path = run.path / "evaluation.json"
    if not path.is_file() or path.stat().st_mtime < (run.path / "model.keras").stat().st_mtime:
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None
