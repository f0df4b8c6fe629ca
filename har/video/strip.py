"""Laying a clip's frames out as one picture, so the sampling of a clip can be seen at a glance."""

from __future__ import annotations

import numpy as np


def frame_strip(frames: np.ndarray, *, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Lays (T, H, W, 3) frames out left to right, in rows of `columns`, as one (rows*H, columns*W, 3) image.

    Frames are separated by `gap` white pixels, so the sampling of a clip can be seen at a glance.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames of shape {frames.shape}: expected (T, H, W, 3) with T >= 1.")
    count, height, width, _ = frames.shape
    columns = min(columns or count, count)
    rows = -(-count // columns)
    strip = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), 255, dtype=frames.dtype
    )
    for i, frame in enumerate(frames):
        top, left = (i // columns) * (height + gap), (i % columns) * (width + gap)
        strip[top : top + height, left : left + width] = frame
    return strip
