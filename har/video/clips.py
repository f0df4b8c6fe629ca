"""Reading a video file as a fixed-length sequence of small RGB frames, or as overlapping windows of one.

Frames are chosen by the report's rule, so results stay comparable with it: with `frame_count` frames and a
sequence of `T`, take every `skip = max(frame_count // T, 1)`-th frame starting at 0. Unlike the report's
reader, which seeks before every frame, clips are decoded in one sequential pass (`grab()` on every frame,
`retrieve()` only on the chosen ones); seeking is used only when the chosen frames lie so far apart that
decoding everything in between would cost more. Clips shorter than `T` frames are padded with their last
frame instead of being dropped.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from har.config import Config
from har.video.capture import Capture, VideoError, check_file

log = logging.getLogger(__name__)

# Chosen frames at least this far apart are reached by seeking: decoding from the nearest keyframe costs
# less than decoding every frame in between (see benchmarks/video_reading.py).
SEEK_MIN_SKIP = 300


class Clip(NamedTuple):
    """A decoded clip.

    frames: (T, H, W, 3) uint8 RGB, padded with the last real frame when the source is short.
    indices: source index of each real (unpadded) frame, in order.
    frame_count: frames in the source, as counted while decoding or as the container reported.
    fps: the container's frame rate (0.0 when unknown).

    claimed_frames: the frame count the container states (None when it states none); more than
        `frame_count` means the file is truncated or damaged.
    broken_frames: source frames that failed to decode and were stepped over.
    """

    frames: np.ndarray
    indices: tuple[int, ...]
    frame_count: int
    fps: float
    claimed_frames: int | None = None
    broken_frames: tuple[int, ...] = ()

    @property
    def real_frames(self) -> int:
        """How many distinct source frames the sequence holds (the rest is padding)."""
        return len(set(self.indices))

    def problems(self) -> list[str]:
        """What is wrong with the file, one sentence each; empty for a whole clip.

        The clip was still read: these say how far its frames (and so any prediction on them) can be trusted.
        """
        found = []
        if self.claimed_frames is not None and self.claimed_frames > self.frame_count:
            found.append(
                f"The file says it has {self.claimed_frames:,} frames but only {self.frame_count:,} could be "
                "decoded: it is truncated or damaged."
            )
        if self.broken_frames:
            listed = ", ".join(str(index) for index in self.broken_frames[:5])
            more = ", ..." if len(self.broken_frames) > 5 else ""
            found.append(
                f"{len(self.broken_frames):,} frame{'s' if len(self.broken_frames) != 1 else ''} could not "
                f"be decoded and {'were' if len(self.broken_frames) != 1 else 'was'} skipped "
                f"(frame {listed}{more})."
            )
        padding = len(self.frames) - self.real_frames
        if padding > 0:
            found.append(
                f"Only {self.real_frames} distinct frames for the {len(self.frames)} the model takes: the "
                f"last one is repeated {padding} time{'s' if padding != 1 else ''}."
            )
        return found


def sample_indices(frame_count: int, sequence_length: int) -> list[int]:
    """The report's frame choice: every `max(frame_count // T, 1)`-th frame from 0, at most T of them."""
    skip = max(frame_count // sequence_length, 1)
    return [i * skip for i in range(sequence_length) if i * skip < frame_count]


def read_clip(
    path: str | os.PathLike,
    sequence_length: int = Config.sequence_length,
    image_size: int = Config.image_size,
) -> np.ndarray:
    """Reads `sequence_length` frames of `path` as a (T, image_size, image_size, 3) uint8 RGB array.

    Raises:
        VideoError: the file is missing, empty, not a video, or has no decodable frame.
    """
    return decode_clip(path, sequence_length, image_size).frames


def decode_clip(
    path: str | os.PathLike,
    sequence_length: int = Config.sequence_length,
    image_size: int = Config.image_size,
    *,
    timeout: float = 120.0,
    max_frames: int = 2_000_000,
    seek_min_skip: int = SEEK_MIN_SKIP,
    max_seconds: float | None = None,
    max_pixels: int | None = None,
) -> Clip:
    """Like `read_clip`, but also says which source frames were used.

    Args:
        path: a video file (AVI, MP4, MOV, WebM, MKV, animated GIF, ...).
        sequence_length: T, frames in the returned sequence.
        image_size: side of the square frames returned.
        timeout: seconds after which decoding gives up with a VideoError.
        max_frames: most frames decoded while counting a clip whose container gives no usable count.
        seek_min_skip: seek instead of decoding through when chosen frames are this far apart.
        max_seconds: refuse clips whose container says they are longer (None: no limit).
        max_pixels: refuse frames larger than this many pixels (None: no limit).
    """
    if sequence_length < 1 or image_size < 1:
        raise ValueError(f"sequence_length={sequence_length!r} and image_size={image_size!r} must be positive.")
    path = Path(path)
    check_file(path)
    reader = Capture(path, image_size, deadline=time.monotonic() + timeout)
    try:
        reader.check_limits(max_seconds, max_pixels)
        reported = reader.reported_frame_count()
        if reported is None:
            return _decode_counting(reader, sequence_length, max_frames)
        claimed = reported
        indices = sample_indices(reported, sequence_length)
        skip = indices[1] - indices[0] if len(indices) > 1 else 1
        if skip >= seek_min_skip:
            frames = reader.read_by_seeking(indices)
            if frames is not None:
                return _clip(frames, indices, reported, reader.fps, sequence_length, claimed)
            reader.reopen()
        frames, used, decoded, broken = reader.read_sequentially(indices)
        if decoded < reported and len(frames) < len(indices):
            # The container promised more frames than it holds: choose again from the true count.
            log.info("%s: container reports %d frames but holds %d; resampling", path, reported, decoded)
            if not frames:
                raise VideoError(f"{path}: no frame could be decoded; the file is damaged or not a video.")
            indices = sample_indices(decoded, sequence_length)
            reader.reopen()
            frames, used, _, broken = reader.read_sequentially(indices)
            reported = decoded
        return _clip(frames, used, reported, reader.fps, sequence_length, claimed, broken)
    finally:
        reader.close()


def _decode_counting(reader: Capture, sequence_length: int, max_frames: int) -> Clip:
    """One pass over a clip of unknown length, keeping a thinning reservoir of evenly spaced frames.

    The reservoir holds frames at multiples of a stride; when it overflows, every other frame is dropped and
    the stride doubles, so memory stays bounded however long the clip is.
    """
    capacity = 4 * sequence_length
    stride, kept = 1, []  # kept: (index, frame)
    count = 0
    while count < max_frames and reader.grab(count):
        if count % stride == 0:
            frame = reader.retrieve()
            if frame is not None:
                kept.append((count, frame))
                if len(kept) > capacity:
                    kept = kept[::2]
                    stride *= 2
        count += 1
    if not kept:
        raise VideoError(f"{reader.path}: no frame could be decoded; the file is damaged or not a video.")
    chosen = [kept[i] for i in sample_indices(len(kept), sequence_length)]
    return _clip([frame for _, frame in chosen], [index for index, _ in chosen], count, reader.fps, sequence_length)


def _clip(
    frames: list[np.ndarray],
    indices: list[int],
    frame_count: int,
    fps: float,
    sequence_length: int,
    claimed: int | None = None,
    broken: list[int] = (),
) -> Clip:
    if not frames:
        raise VideoError("no frame could be decoded; the file is damaged or not a video.")
    padded = frames + [frames[-1]] * (sequence_length - len(frames))
    return Clip(np.stack(padded), tuple(indices), int(frame_count), fps, claimed, tuple(broken))


class Window(NamedTuple):
    """A stretch of a long video: `start` and `end` in seconds, `frames` (T, H, W, 3) uint8 RGB."""

    start: float
    end: float
    frames: np.ndarray


def read_windows(
    path: str | os.PathLike,
    *,
    sequence_length: int = Config.sequence_length,
    image_size: int = Config.image_size,
    window_seconds: float = 4.0,
    stride_seconds: float = 1.0,
    timeout: float = 600.0,
    max_frames: int = 2_000_000,
) -> list[Window]:
    """Cuts a video into overlapping windows of `window_seconds`, one every `stride_seconds`.

    The video is decoded once; frames are kept at a steady `sequence_length / window_seconds` per second,
    so each window holds T evenly spaced frames. A video shorter than one window gives one padded window.
    """
    if not window_seconds > 0 or not stride_seconds > 0:
        raise ValueError(f"window={window_seconds!r} and stride={stride_seconds!r} seconds must be positive.")
    path = Path(path)
    check_file(path)
    reader = Capture(path, image_size, deadline=time.monotonic() + timeout)
    try:
        fps = reader.fps if reader.fps > 0 else 25.0
        interval = window_seconds / sequence_length  # seconds between kept frames
        frames, times, next_time, index = [], [], 0.0, 0
        while index < max_frames and reader.grab(index):
            moment = index / fps
            if moment + 1e-9 >= next_time:
                frame = reader.retrieve()
                if frame is not None:
                    frames.append(frame)
                    times.append(moment)
                while next_time <= moment + 1e-9:
                    next_time += interval
            index += 1
    finally:
        reader.close()
    if not frames:
        raise VideoError(f"{path}: no frame could be decoded; the file is damaged or not a video.")
    duration = index / fps
    step = max(1, round(stride_seconds / interval))
    windows = []
    for start in range(0, max(len(frames) - sequence_length, 0) + 1, step):
        chunk = frames[start : start + sequence_length]
        chunk = chunk + [chunk[-1]] * (sequence_length - len(chunk))
        windows.append(Window(times[start], min(times[start] + window_seconds, duration), np.stack(chunk)))
    return windows
