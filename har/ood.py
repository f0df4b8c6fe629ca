"""Whether a clip is like anything a run was trained on: the out-of-distribution (OOD) check.

See `OodReference` for the score. `out_of_distribution` is what `har predict` and the app call per clip; it
keeps one feature function and one reference per loaded predictor (`_ood_parts`), shared by a server's
sessions.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import threading
import weakref

import numpy as np

from har.gradcam import network_layers, scaled, with_penultimate
from har.runs import Run, run_split

log = logging.getLogger(__name__)

OOD_NEIGHBOURS = 5  # the score is the mean distance to this many nearest training clips
OOD_PERCENTILE = 99.0  # a clip scoring above this percentile of the held-out clips' scores is flagged
OOD_FILE = "ood.npz"
APPEARANCE_SIZE = 4 * 4 * 3 * 2 + 3  # what `appearance` returns per clip


@dataclasses.dataclass
class OodReference:
    """How unlike its training clips a clip looks to a run, in two ways, each against the held-out clips.

    A clip's descriptor is its penultimate features (the input of the final Dense layer) followed by its
    `appearance` (colour, motion and texture on a coarse grid). For each part, the score is the mean Euclidean
    distance to its `OOD_NEIGHBOURS` nearest training clips, and the part's threshold is the `OOD_PERCENTILE`-th
    percentile of that score over the run's held-out (validation and test) clips. A clip is out of distribution
    when either part is further from the training set than 99% of real held-out clips: the model's features
    alone can place noise among familiar clips. `ood_score` is the larger part's score over its threshold, so
    the verdict's threshold is 1. Computed once from the run's frame cache and split, saved as `ood.npz`.
    """

    train_features: np.ndarray  # (N, D + APPEARANCE_SIZE) float32
    heldout_scores: np.ndarray  # (M, 2) float32: per held-out clip, the two parts' scores
    thresholds: np.ndarray  # (2,) float32
    neighbours: int = OOD_NEIGHBOURS

    @property
    def threshold(self) -> float:
        return 1.0

    def verdict(self, score: float) -> dict:
        return {
            "out_of_distribution": bool(score > self.threshold),
            "ood_score": round(score, 6),
            "ood_threshold": round(float(self.threshold), 6),
            "ood_note": None,
        }

    def parts(self, features: np.ndarray) -> np.ndarray:
        """(N, 2) scores of (N, D) descriptors: the model-feature part, the appearance part."""
        features = np.asarray(features, dtype=np.float64)
        train = self.train_features.astype(np.float64)
        split = train.shape[1] - APPEARANCE_SIZE
        return np.stack(
            [self._knn(features[:, :split], train[:, :split]), self._knn(features[:, split:], train[:, split:])], axis=1
        )

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N,) scores: the larger of the two parts, each over its threshold (above 1: out of distribution)."""
        return (self.parts(features) / np.maximum(self.thresholds, 1e-9)).max(axis=1)

    def _knn(self, features: np.ndarray, train: np.ndarray) -> np.ndarray:
        squared = (features**2).sum(1)[:, None] + (train**2).sum(1)[None] - 2 * features @ train.T
        nearest = np.sort(np.sqrt(np.maximum(squared, 0.0)), axis=1)[:, : min(self.neighbours, train.shape[0])]
        return nearest.mean(axis=1)

    @classmethod
    def for_run(cls, run: Run, features) -> OodReference:
        """Loads `ood.npz` beside the run, or computes and saves it from the run's cache and split.

        `features((N, T, H, W, 3) uint8) -> (N, D)` gives the run's penultimate features.

        Raises:
            FileNotFoundError: the run's frame cache is gone (and no saved reference exists).
            ValueError: the cache changed since training, so its training split is lost.
        """
        path = run.path / OOD_FILE
        model_time = (run.path / "model.keras").stat().st_mtime
        if path.is_file() and path.stat().st_mtime >= model_time:
            try:
                with np.load(path) as saved:
                    return cls(
                        saved["train_features"], saved["heldout_scores"], saved["thresholds"], int(saved["neighbours"])
                    )
            except (OSError, ValueError, KeyError):
                log.warning("%s is damaged; computing it again", path)
        reference = cls.compute(run, features)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            train_features=reference.train_features,
            heldout_scores=reference.heldout_scores,
            thresholds=reference.thresholds,
            neighbours=reference.neighbours,
        )
        staging = run.path / f".{OOD_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            staging.write_bytes(buffer.getvalue())
            staging.replace(path)
        except OSError as error:  # a read-only models dir: the reference still serves this process
            log.warning("cannot save %s (%s); it will be computed again next time", path, error)
            staging.unlink(missing_ok=True)
        return reference

    @classmethod
    def compute(cls, run: Run, features, batch_size: int = 16) -> OodReference:
        if "config" not in run.metadata:
            raise ValueError(f"run {run.id}: its metadata holds no training config, so its split is unknown.")
        cache, split = run_split(run)

        def features_of(indices: np.ndarray) -> np.ndarray:
            return np.concatenate(
                [
                    features(cache.frames[np.sort(indices[i : i + batch_size])])
                    for i in range(0, len(indices), batch_size)
                ]
            )

        train = features_of(split.train)
        reference = cls(train, np.zeros((0, 2), np.float32), np.ones(2, np.float32))
        heldout = np.concatenate([split.validation, split.test])
        scores = reference.parts(features_of(heldout)).astype(np.float32)
        reference.heldout_scores = scores
        reference.thresholds = np.percentile(scores, OOD_PERCENTILE, axis=0).astype(np.float32)
        return reference


def no_ood(reason: str) -> dict:
    """The verdict when there is none, and why: {"out_of_distribution": None, ..., "ood_note": reason}."""
    return {"out_of_distribution": None, "ood_score": None, "ood_threshold": None, "ood_note": reason}


def out_of_distribution(predictor, run: Run, frames: np.ndarray) -> dict:
    """The OOD verdict of `har predict`: {"out_of_distribution", "ood_score", "ood_threshold", "ood_note"}.

    Args:
        predictor: the run's loaded `har.inference.Predictor`.
        run: the run, whose folder holds (or will hold) the reference `ood.npz`.
        frames: (T, H, W, 3) uint8, the clip as the predictor saw it.
    """
    features, reference = _ood_parts(predictor, run)
    if isinstance(reference, str):
        return no_ood(reference)
    score = float(reference.score(features(np.asarray(frames)[None]))[0])
    return reference.verdict(score)


_ood_parts_lock = threading.Lock()
_ood_parts_by_predictor: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _ood_parts(predictor, run: Run):
    """The predictor's feature function and its run's reference (or why there is none), made once per loaded
    predictor: a server's sessions share them, where building them per upload cost a Keras model, a traced
    function and a read of `ood.npz` per visitor. A missing cache is not remembered, so a retry can succeed."""
    with _ood_parts_lock:
        parts = _ood_parts_by_predictor.setdefault(predictor, {"lock": threading.Lock()})
    with parts["lock"]:
        if "features" not in parts:
            parts["features"] = penultimate_features(predictor)
        if "reference" not in parts:
            try:
                parts["reference"] = OodReference.for_run(run, parts["features"])
            except (FileNotFoundError, ValueError) as error:
                return parts["features"], str(error)
        return parts["features"], parts["reference"]


def penultimate_features(predictor):
    """A function from (N, T, H, W, 3) uint8 clips to the run's penultimate features (N, D) float32."""
    model = with_penultimate(network_layers(predictor.model))
    lock = threading.Lock()

    def features(frames: np.ndarray) -> np.ndarray:
        with lock:
            penultimate = np.asarray(model.predict_on_batch(scaled(frames))[1], dtype=np.float32)
        return np.concatenate([penultimate, appearance(frames)], axis=1)

    return features


def appearance(frames: np.ndarray) -> np.ndarray:
    """What a clip looks like, whatever the model makes of it: (N, T, H, W, 3) uint8 -> (N, 99) float32.

    The clip's mean colour on a 4 x 4 grid, its mean frame-to-frame change on the same grid, and its pixel-to-
    pixel roughness per channel, in [0, 1] units. A model's own features can map an unfamiliar clip (noise, a
    street) close to familiar ones; these numbers do not, so the OOD verdict weighs both.
    """
    clips = np.asarray(frames, dtype=np.float32) / 255
    n, t, h, w, _ = clips.shape
    grid = clips[:, :, : h - h % 4, : w - w % 4].reshape(n, t, 4, h // 4, 4, w // 4, 3).mean(axis=(3, 5))
    colour = grid.mean(axis=1).reshape(n, -1)
    change = np.abs(np.diff(grid, axis=1)).mean(axis=1).reshape(n, -1) if t > 1 else np.zeros_like(colour)
    roughness = np.abs(np.diff(clips, axis=3)).mean(axis=(1, 2, 3)) * 4
    return np.concatenate([colour, change, roughness], axis=1).astype(np.float32)
