"""Predicting with a saved run: one clip, many clips, or a long video as a timeline of windows.

The preprocessing (frames per clip, frame size, class names) is rebuilt from the run's metadata, never from
constants, so a run trained on 30 frames of 96x96 predicts on 30 frames of 96x96.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from har.config import Config
from har.runs import Run, find_run
from har.video import read_clip, read_windows


def preprocessing(metadata: dict) -> tuple[tuple[str, ...], int, int]:
    """(class names, sequence length, image size) a run was trained with, from the Config saved in its
    metadata; runs saved without one (hand-made or older) give the copies at the metadata's top level."""
    if "config" in metadata:
        config = Config.from_dict(metadata["config"])
        return config.classes, config.sequence_length, config.image_size
    return tuple(metadata["classes"]), int(metadata["sequence_length"]), int(metadata["image_size"])


class Predictor:
    """A loaded run, warmed up, ready to predict many clips; safe to share between threads."""

    def __init__(self, model, metadata: dict):
        self.model, self.metadata = model, metadata
        self.run_id: str = metadata["run_id"]
        self.model_name: str = metadata["model"]
        self.class_names, self.sequence_length, self.image_size = preprocessing(metadata)
        self._lock = threading.Lock()
        expected = (None, self.sequence_length, self.image_size, self.image_size, 3)
        if tuple(model.input_shape) != expected or model.output_shape[-1] != len(self.class_names):
            raise ValueError(
                f"run {self.run_id}: the model takes {model.input_shape} -> {model.output_shape} but its metadata "
                f"says {expected} -> {len(self.class_names)} classes; the run is broken."
            )
        from har.models import fast_model

        self._network = fast_model(model)  # same weights and outputs, without Keras' per-frame and per-gate calls
        self.predict_frames(np.zeros((self.sequence_length, self.image_size, self.image_size, 3), np.uint8))

    @classmethod
    def from_run(cls, run: str | os.PathLike | Run, models_dir: str | os.PathLike) -> Predictor:
        """Loads a finished run (by id or folder) from inside the models dir, with Keras' safe_mode on."""
        import keras

        if not isinstance(run, Run):
            run = find_run(models_dir, run)
        else:
            run = find_run(models_dir, run.path)
        if run.status != "finished":
            raise ValueError(
                f"run {run.id} is {run.status}{f' ({run.reason})' if run.reason else ''}: no model to load."
            )
        try:
            model = keras.saving.load_model(run.path / "model.keras", compile=False, safe_mode=True)
        except Exception as error:  # noqa: BLE001 - any unreadable model file is a broken run
            raise ValueError(
                f"run {run.id}: model.keras cannot be loaded ({type(error).__name__}); the run is broken."
            ) from None
        return cls(model, run.metadata)

    def predict_frames(self, frames: np.ndarray) -> np.ndarray:
        """Class probabilities for (T, H, W, 3) or (N, T, H, W, 3) uint8 frames: (C,) or (N, C) float32."""
        frames = np.asarray(frames)
        single = frames.ndim == 4
        batch = (frames[None] if single else frames).astype(np.float32) * np.float32(1 / 255)
        # predict_on_batch runs the compiled predict function directly, without predict()'s per-call setup.
        with self._lock:
            probabilities = np.asarray(self._network.predict_on_batch(batch), dtype=np.float32)
        return probabilities[0] if single else probabilities

    def predict_clip(self, path: str | os.PathLike) -> dict[str, float]:
        """{class name: probability} for a video file, most likely class first."""
        probabilities = self.predict_frames(read_clip(path, self.sequence_length, self.image_size))
        return self.as_dict(probabilities)

    def as_dict(self, probabilities: np.ndarray) -> dict[str, float]:
        pairs = sorted(zip(self.class_names, probabilities.tolist()), key=lambda pair: -pair[1])
        return {name: float(p) for name, p in pairs}

    def timeline(
        self, path: str | os.PathLike, *, window_seconds: float = 4.0, stride_seconds: float = 1.0, reader=read_windows
    ):
        """Sliding-window predictions over a long video, as a pandas DataFrame of observations.

        Each row is one window: `start` and `end` in seconds, the top `label`, its `confidence`, then one
        probability column per class. This is the observation sequence an HMM or DBN takes as input.
        `reader` decodes the windows (`read_windows`; the app passes one that runs in a child process).
        """
        import pandas as pd

        windows = reader(
            path,
            sequence_length=self.sequence_length,
            image_size=self.image_size,
            window_seconds=window_seconds,
            stride_seconds=stride_seconds,
        )
        rows = []
        for start in range(0, len(windows), 16):
            chunk = windows[start : start + 16]
            probabilities = self.predict_frames(np.stack([window.frames for window in chunk]))
            for window, p in zip(chunk, probabilities):
                top = int(np.argmax(p))
                rows.append(
                    {
                        "start": round(window.start, 3),
                        "end": round(window.end, 3),
                        "label": self.class_names[top],
                        "confidence": float(p[top]),
                        **{name: float(value) for name, value in zip(self.class_names, p)},
                    }
                )
        return pd.DataFrame(rows, columns=["start", "end", "label", "confidence", *self.class_names])


def write_timeline(frame, out: str | os.PathLike) -> Path:
    """Writes a timeline DataFrame as CSV or JSON (records), by the file's extension."""
    out = Path(out)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    elif out.suffix.lower() == ".json":
        frame.to_json(out, orient="records", indent=1)
    else:
        raise ValueError(f"--out {out}: use a .csv or .json file name.")
    return out
