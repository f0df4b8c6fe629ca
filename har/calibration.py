"""How far a run's confidence can be trusted, on its test split: reliability diagrams and confusion cells."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from har.inference import Predictor
from har.runs import Run, run_split


@dataclasses.dataclass
class SplitPredictions:
    """A run's probabilities on its test split, with what is needed to show each clip."""

    run_id: str
    class_names: tuple[str, ...]
    cache_indices: np.ndarray  # (N,) clip indices in the run's frame cache
    labels: np.ndarray  # (N,) true class index
    probabilities: np.ndarray  # (N, C) float32
    sources: list[str]  # (N,) the video file of each clip
    fingerprint: str  # the frame cache's, so runs on the same clips can be put side by side


def predict_test_split(
    run: Run, models_dir: str | os.PathLike, *, predictor: Predictor | None = None, batch_size: int = 16
) -> SplitPredictions:
    """Predicts a finished run's test split, rebuilt from its saved config and frame cache as
    `har.evaluation.evaluate` does.

    Args:
        run: a finished run in `models_dir`.
        predictor: the run's loaded predictor, if the caller has one; else it is loaded from `models_dir`.

    Raises:
        FileNotFoundError: the run's frame cache is gone.
        ValueError: the cache changed since training.
    """
    predictor = predictor or Predictor.from_run(run, models_dir)
    cache, split = run_split(run)
    test = split.test
    probabilities = np.concatenate(
        [predictor.predict_frames(cache.frames[test[i : i + batch_size]]) for i in range(0, len(test), batch_size)]
    )
    return SplitPredictions(
        run.id,
        predictor.class_names,
        test,
        cache.labels[test],
        probabilities,
        [cache.sources[i] for i in test],
        cache.fingerprint,
    )


def reliability(predictions: SplitPredictions, bins: int = 10) -> dict:
    """The reliability diagram of a run's test split: how often the model is right at each confidence.

    Confidence is the top class's probability, cut into `bins` equal bins over [0, 1]. A calibrated model's
    accuracy equals its confidence in every bin. Returns {"bins": [{"low", "high", "clips", "confidence",
    "accuracy"}, ...] (confidence and accuracy None for empty bins), "ece": the expected calibration error
    (bin-size-weighted mean of |accuracy - confidence|), "clips"}.
    """
    if bins < 1:
        raise ValueError(f"bins={bins!r}: must be at least 1.")
    confidence = predictions.probabilities.max(axis=1)
    correct = predictions.probabilities.argmax(axis=1) == predictions.labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows, error = [], 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        row = {"low": b / bins, "high": (b + 1) / bins, "clips": count, "confidence": None, "accuracy": None}
        if count:
            row["confidence"] = float(confidence[inside].mean())
            row["accuracy"] = float(correct[inside].mean())
            error += count * abs(row["accuracy"] - row["confidence"])
        rows.append(row)
    total = len(confidence)
    return {"run_id": predictions.run_id, "bins": rows, "ece": error / total if total else None, "clips": total}


def confusion_cell(predictions: list[SplitPredictions], true_class: str, predicted_class: str) -> list[dict]:
    """The test clips in one cell of the first run's confusion matrix, with every run's probabilities.

    Runs in `predictions` after the first are included only when they were tested on the same clips (same
    frame cache and test split). Returns, per clip, {"cache_index", "source", "true", "predicted",
    "probabilities": {run_id: {class: p}}}, the first run's most confident mistakes (or hits) first.
    """
    first = predictions[0]
    names = first.class_names
    for name in (true_class, predicted_class):
        if name not in names:
            raise ValueError(f"class {name!r}: run {first.run_id} knows {', '.join(names)}.")
    same = [
        p
        for p in predictions
        if p.fingerprint == first.fingerprint
        and np.array_equal(p.cache_indices, first.cache_indices)
        and p.class_names == names
    ]
    truth, guess = names.index(true_class), names.index(predicted_class)
    chosen = np.flatnonzero((first.labels == truth) & (first.probabilities.argmax(axis=1) == guess))
    chosen = chosen[np.argsort(-first.probabilities[chosen, guess], kind="stable")]
    return [
        {
            "cache_index": int(first.cache_indices[i]),
            "source": first.sources[i],
            "true": true_class,
            "predicted": predicted_class,
            "probabilities": {p.run_id: {n: float(v) for n, v in zip(names, p.probabilities[i])} for p in same},
        }
        for i in chosen
    ]
