"""Batches of clips for `model.fit`: (frames or features, one-hot labels), shuffled from the run's seed."""

from __future__ import annotations

import math

import keras
import numpy as np

from har.datasets import FrameCache


class FrameBatches(keras.utils.PyDataset):
    """(frames, one-hot labels) batches from a frame cache: float32 in [0, 1], (B, T, H, W, 3); or, given the
    cache's `features` (N, T, D) (`har.features`), (features, one-hot labels) of the same clips in the same order.

    Shuffled anew each epoch from `seed` when `shuffle` is set, so a run is reproducible; `shuffles` counts the
    orders drawn, which is all a resumed run needs to continue the same sequence (`replay_shuffles`).
    """

    def __init__(
        self,
        cache: FrameCache,
        indices: np.ndarray,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        features: np.ndarray | None = None,
    ):
        super().__init__()
        self.cache, self.indices, self.batch_size, self.shuffle = cache, np.asarray(indices), batch_size, shuffle
        self.seed, self.features = seed, features
        self.replay_shuffles(1)
        self.num_classes = len(cache.class_names)

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __getitem__(self, batch: int):
        chosen = np.sort(self.order[batch * self.batch_size : (batch + 1) * self.batch_size])
        if self.features is not None:
            inputs = np.asarray(self.features[chosen], dtype=np.float32)
        else:
            inputs = self.cache.frames[chosen].astype(np.float32) * np.float32(1 / 255)
        labels = keras.utils.to_categorical(self.cache.labels[chosen], self.num_classes)
        return inputs, labels

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(self.indices)
            self.shuffles += 1

    def replay_shuffles(self, count: int) -> None:
        """Puts the shuffling where it was after `count` orders had been drawn (the first at creation)."""
        self.rng = np.random.default_rng(self.seed)
        self.order, self.shuffles = self.indices, 0
        if self.shuffle:
            for _ in range(count):
                self.order = self.rng.permutation(self.indices)
                self.shuffles += 1
