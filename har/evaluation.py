"""Evaluating runs on their test split, and the ConvLSTM vs LRCN comparison beside the report's numbers."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support

from har import chance
from har.config import MODEL_NAMES, Config
from har.inference import Predictor
from har.report import REPORT_RESULTS
from har.runs import Run, find_run, latest_study, run_split

BOOTSTRAP_RESAMPLES = 10_000  # resamples of the seed-spread interval in `differences`


def evaluate(run: str | os.PathLike | Run, models_dir: str | os.PathLike, *, latency_repeats: int = 10) -> dict:
    """Test metrics of a finished run, saved beside it as evaluation.json.

    Returns a dict with `model`, `accuracy` and `loss` on the test split, per-class precision, recall and F1,
    the confusion matrix (rows: true class, columns: predicted) and the median single-clip latency.
    """
    predictor = Predictor.from_run(run, models_dir)
    run = find_run(models_dir, predictor.run_id)
    metadata = run.metadata
    cache, split = run_split(run)
    config = Config.from_dict(metadata["config"])
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
    accuracy = float(accuracy_score(truth, predicted))
    verdict = chance.judge(
        test_accuracy=accuracy,
        test_clips=len(split.test),
        num_classes=len(predictor.class_names),
        val_losses=(metadata.get("history") or {}).get("val_loss", []),
    )
    result = {
        "run_id": run.id,
        "model": run.model,
        "split": config.split,
        "seed": config.seed,
        "test_clips": len(split.test),
        "accuracy": accuracy,
        "at_chance": verdict is not None,
        "at_chance_reason": verdict,
        "loss": float(log_loss(truth, probabilities, labels=labels)),
        "classes": list(predictor.class_names),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(predictor.class_names, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(truth, predicted, labels=labels).tolist(),
        "latency_ms": round(1000 * float(np.median(latencies)), 2),
    }
    # One staging name per process and thread: two evaluations of one run never write into each other's file.
    staging = run.path / f".evaluation.json.{os.getpid()}.{threading.get_ident()}.tmp"
    staging.write_text(json.dumps(result, indent=1))
    staging.replace(run.path / "evaluation.json")
    return result


def compare(runs: list[str] | None, models_dir: str | os.PathLike) -> dict:
    """The comparison: one row per run, the runs grouped by (model, split), and the report's numbers.

    Args:
        runs: run ids; None (or empty): the newest finished run of each model on each split, with the other
            seeds of the job that made it (`har.runs.latest_study`), so a `har reproduce` shows both models on
            both splits.
        models_dir: the folder holding the runs.

    Returns:
        {"runs": one row per run, with its test metrics, `class_names` and `confusion_matrix` (rows: true
        class, columns: predicted); "groups": each (model, split) with the mean and standard deviation of test
        accuracy over its seeds; "differences": per split, whether the LRCN - ConvLSTM difference is larger
        than the seed-to-seed spread; "report": the report's numbers}.
    """
    chosen = [find_run(models_dir, run) for run in runs] if runs else latest_study(models_dir)
    if not chosen:
        raise FileNotFoundError(f"{models_dir}: no finished runs to compare; train with `har train` first.")
    rows = []
    for run in chosen:
        evaluation = _cached_evaluation(run) or evaluate(run, models_dir)
        verdict = run.at_chance()
        rows.append(
            {
                "run_id": run.id,
                "model": run.model,
                "split": evaluation["split"],
                "seed": run.seed,
                "accuracy": evaluation["accuracy"],
                "loss": evaluation["loss"],
                "parameters": run.metadata.get("parameters"),
                "epochs_run": run.metadata.get("epochs_run"),
                "best_epoch": run.metadata.get("best_epoch"),
                "training_seconds": run.metadata.get("training_seconds"),
                "latency_ms": evaluation["latency_ms"],
                "at_chance": verdict is not None,
                "at_chance_reason": verdict,
                "f1": {name: values["f1"] for name, values in evaluation["per_class"].items()},
                "classes": len(evaluation["classes"]),
                "class_names": evaluation["classes"],
                "confusion_matrix": evaluation["confusion_matrix"],
            }
        )
    groups = seed_groups(rows)
    return {"runs": rows, "groups": groups, "differences": differences(groups), "report": REPORT_RESULTS}


def seed_groups(rows: list[dict]) -> list[dict]:
    """The rows grouped by (model, split): n, seeds, accuracy mean and sd (None for one seed), loss mean."""
    keyed: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        keyed.setdefault((row["model"], row["split"]), []).append(row)
    groups = []
    for (model, split), members in sorted(keyed.items(), key=lambda item: (MODEL_NAMES.index(item[0][0]), item[0][1])):
        accuracies = [row["accuracy"] for row in members]
        groups.append(
            {
                "model": model,
                "split": split,
                "n": len(members),
                "seeds": [row["seed"] for row in members],
                "accuracies": accuracies,
                "accuracy_mean": float(np.mean(accuracies)),
                "accuracy_sd": float(np.std(accuracies, ddof=1)) if len(members) > 1 else None,
                "loss_mean": float(np.mean([row["loss"] for row in members])),
                "at_chance": sum(row["at_chance"] for row in members),
                "runs": [row["run_id"] for row in members],
            }
        )
    return groups


def differences(groups: list[dict], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 27) -> list[dict]:
    """Per split with both models: LRCN minus ConvLSTM mean accuracy and a bootstrap interval over seeds.

    `scipy.stats.bootstrap` resamples each model's seeds with replacement and takes the difference of the
    means; the 95% percentile interval of those differences excludes 0 only when the gap is larger than what
    reseeding moves. With a single seed on either side there is no spread to compare with, so no verdict.
    """
    by_key = {(group["model"], group["split"]): group for group in groups}
    rng = np.random.default_rng(seed)
    results = []
    for split in dict.fromkeys(group["split"] for group in groups):
        convlstm, lrcn = by_key.get(("convlstm", split)), by_key.get(("lrcn", split))
        if not (convlstm and lrcn):
            continue
        difference = lrcn["accuracy_mean"] - convlstm["accuracy_mean"]
        result = {
            "split": split,
            "lrcn_minus_convlstm": difference,
            "interval_95": None,
            "interval_method": None,
            "beyond_seed_spread": None,
        }
        if min(convlstm["n"], lrcn["n"]) >= 2:
            low, high = seed_spread_interval(lrcn["accuracies"], convlstm["accuracies"], resamples=resamples, rng=rng)
            result.update(
                interval_95=[low, high],
                interval_method=f"percentile bootstrap, {resamples:,} resamples",
                beyond_seed_spread=bool(low > 0 or high < 0),
            )
        result["verdict"] = _verdict(result, convlstm["n"], lrcn["n"])
        results.append(result)
    return results


def seed_spread_interval(
    first: list[float], second: list[float], *, resamples: int = BOOTSTRAP_RESAMPLES, rng: np.random.Generator
) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of mean(first) - mean(second), each resampled on its own."""

    def mean_difference(a, b, axis):
        return np.mean(a, axis=axis) - np.mean(b, axis=axis)

    result = stats.bootstrap(
        (np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)),
        mean_difference,
        n_resamples=resamples,
        vectorized=True,
        confidence_level=0.95,
        method="percentile",
        random_state=rng,  # `rng=` only from SciPy 1.15 on; random_state takes the same Generator
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _verdict(result: dict, convlstm_seeds: int, lrcn_seeds: int) -> str:
    leader = "LRCN" if result["lrcn_minus_convlstm"] > 0 else "ConvLSTM"
    gap = abs(result["lrcn_minus_convlstm"])
    if result["beyond_seed_spread"] is None:
        return (
            f"{leader} ahead by {gap:.1%} on the {result['split']} split, from one seed on at least one side: "
            "train several seeds (har train --seeds 27,28,29) to tell the difference from luck."
        )
    low, high = result["interval_95"]
    if result["beyond_seed_spread"]:
        return (
            f"{leader} ahead by {gap:.1%} on the {result['split']} split, more than reseeding moves it "
            f"(95% interval of LRCN - ConvLSTM over {convlstm_seeds} and {lrcn_seeds} seeds: {low:+.1%} to {high:+.1%})."
        )
    return (
        f"The {gap:.1%} gap on the {result['split']} split is within the seed-to-seed spread (95% interval "
        f"of LRCN - ConvLSTM: {low:+.1%} to {high:+.1%}): these runs can't say which model is better."
    )


def _cached_evaluation(run: Run) -> dict | None:
    path = run.path / "evaluation.json"
    if not path.is_file() or path.stat().st_mtime < (run.path / "model.keras").stat().st_mtime:
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None
