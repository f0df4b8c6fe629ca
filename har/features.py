"""Per-frame features of a frozen backbone, computed once per frame cache and kept beside it.

A model whose per-frame part never trains (mobilenet: `har.models.split_at_features`) gives every clip the
same features in every epoch and every seed, so they are computed once and training runs the head on them:

    <cache>/features/<backbone>-<input size>-<weights sha256[:12]>.npy   (N, T, D) float32, memory-mapped
    <cache>/features/<same name>.json                                    what they were computed from

The key is the backbone, its input size, its weights file's sha256 and the frame cache's fingerprint and shape;
a cache rebuilt from other clips, or other weights, gets its features computed anew. They are written under a
temporary name and renamed once complete, so a killed extraction leaves nothing that could be read as done.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from har.backbones import Backbone, Weights
from har.datasets import FrameCache

log = logging.getLogger(__name__)

CLIPS_PER_BATCH = 8
FEATURES_FOLDER = "features"


def feature_key(cache: FrameCache, backbone: Backbone, weights: Weights) -> dict:
    return {
        "backbone": backbone.name,
        "input_size": backbone.input_size,
        "weights_sha256": weights.sha256,
        "cache_fingerprint": cache.fingerprint,
        "clips": len(cache),
        "sequence_length": cache.sequence_length,
        "image_size": cache.image_size,
    }


def feature_path(cache: FrameCache, backbone: Backbone, weights: Weights) -> Path:
    return cache.path / FEATURES_FOLDER / f"{backbone.name}-{backbone.input_size}-{weights.sha256[:12]}.npy"


def cached_features(cache: FrameCache, backbone: Backbone, weights: Weights) -> np.ndarray | None:
    """The features kept for this cache, backbone and weights (read-only memmap), or None when there are none."""
    path = feature_path(cache, backbone, weights)
    try:
        recorded = json.loads(path.with_suffix(".json").read_text())
        features = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if recorded.get("key") != feature_key(cache, backbone, weights) or features.shape[:2] != (
        len(cache),
        cache.sequence_length,
    ):
        return None
    return features


def clip_features(
    cache: FrameCache,
    extractor,
    backbone: Backbone,
    weights: Weights,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
    should_cancel: Callable[[], bool] = lambda: False,
) -> np.ndarray | None:
    """(N, T, D) float32 features of every clip in `cache`: the kept ones, else computed now and kept.

    Args:
        extractor: (B, T, H, W, 3) frames in [0, 1] -> (B, T, D) features (`split_at_features(model)[0]`).
        progress: called with (clips done, clips in all) after every batch of CLIPS_PER_BATCH clips.
        should_cancel: checked between batches; when it says so, nothing is kept and None is returned.
    """
    kept = cached_features(cache, backbone, weights)
    if kept is not None:
        return kept
    from har.models import fast_model

    network = fast_model(extractor)  # the per-frame layers on all frames at once: same features, faster
    path = feature_path(cache, backbone, weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.npy")
    total, started = len(cache), time.monotonic()
    output = None
    try:
        for start in range(0, total, CLIPS_PER_BATCH):
            if should_cancel():
                return None
            frames = cache.frames[start : start + CLIPS_PER_BATCH].astype(np.float32) * np.float32(1 / 255)
            batch = np.asarray(network.predict_on_batch(frames), dtype=np.float32)
            if output is None:
                output = np.lib.format.open_memmap(
                    partial, mode="w+", dtype=np.float32, shape=(total, *batch.shape[1:])
                )
            output[start : start + len(batch)] = batch
            progress(min(start + CLIPS_PER_BATCH, total), total)
        output.flush()
        del output
        seconds = time.monotonic() - started
        record = {
            "key": feature_key(cache, backbone, weights),
            "seconds": round(seconds, 2),
            "weights": weights.to_dict(),
        }
        # The array first, then its record: a reader that finds a record finds the array it describes.
        partial.replace(path)
        record_partial = partial.with_suffix(".json")
        record_partial.write_text(json.dumps(record, indent=2))
        record_partial.replace(path.with_suffix(".json"))
        log.info("features of %d clips computed in %.1f s (%.1f clips/s)", total, seconds, total / max(seconds, 1e-9))
    finally:
        partial.unlink(missing_ok=True)
    return np.load(path, mmap_mode="r")
