"""Reading a video file as a fixed-length sequence of small RGB frames.

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

# FFmpeg's own warnings about damaged files would flood the terminal; failures surface as VideoError instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

import cv2  # noqa: E402
import filetype  # noqa: E402
import numpy as np  # noqa: E402

# The variable above only counts if OpenCV was not imported yet (Keras imports it first in the CLI); without this
# `[ WARN:0@0.5] global cap.cpp:212 ...` reaches the user's terminal for every file that is not a video.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".gif", ".mpg", ".mpeg", ".wmv", ".flv")

# A frame count above this is not believed (some containers report garbage); the clip is counted instead.
MAX_REPORTED_FRAMES = 10_000_000
# Chosen frames at least this far apart are reached by seeking: decoding from the nearest keyframe costs
# less than decoding every frame in between (see benchmarks/video_reading.py).
SEEK_MIN_SKIP = 300
# More frames than this failing to decode in a row is the end of the file, not a damaged frame to step over.
BROKEN_FRAMES_IN_A_ROW = 4


class VideoError(ValueError):
    """A file that cannot be read as a video. The message is one line naming the file and the reason."""


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


def read_clip(path: str | os.PathLike, sequence_length: int = 20, image_size: int = 64) -> np.ndarray:
    """Reads `sequence_length` frames of `path` as a (T, image_size, image_size, 3) uint8 RGB array.

    Raises:
        VideoError: the file is missing, empty, not a video, or has no decodable frame.
    """
    return decode_clip(path, sequence_length, image_size).frames


def decode_clip(
    path: str | os.PathLike,
    sequence_length: int = 20,
    image_size: int = 64,
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
    _check_file(path)
    reader = _Reader(path, image_size, deadline=time.monotonic() + timeout)
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


def check_video_file(path: str | os.PathLike) -> None:
    """Refuses, without decoding, what cannot be a video: a missing path, a folder, an empty file, an image.

    Raises:
        VideoError: naming the file and what to do.
    """
    _check_file(Path(path))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"{path}: no such file.")
    if not path.is_file():
        raise VideoError(f"{path}: not a file.")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty.")
    kind = filetype.guess(str(path))
    if kind is not None and not (kind.mime.startswith("video/") or kind.mime == "image/gif"):
        raise VideoError(f"{path}: its content is {kind.mime}, not a video; upload an MP4, AVI, MOV, WebM, MKV or GIF.")


def _decode_counting(reader: _Reader, sequence_length: int, max_frames: int) -> Clip:
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


class _Reader:
    """An OpenCV capture that resizes each retrieved frame at once and respects a deadline."""

    def __init__(self, path: Path, image_size: int, deadline: float):
        self.path, self.image_size, self.deadline = path, image_size, deadline
        self.capture = None
        self.reopen()
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)

    def reopen(self) -> None:
        self.close()
        # Phones store rotation as metadata; ORIENTATION_AUTO applies it while decoding.
        self.capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self.capture.isOpened():
            raise VideoError(
                f"{self.path}: cannot be opened as a video (unknown format, or a damaged or truncated file)."
            )
        self.capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None

    def check_limits(self, max_seconds: float | None, max_pixels: int | None) -> None:
        width, height = (
            int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        if max_pixels is not None and width * height > max_pixels:
            raise VideoError(
                f"{self.path}: frames of {width}x{height} are too large (at most {max_pixels:,} pixels); "
                "scale the video down."
            )
        count = self.reported_frame_count()
        if max_seconds is not None and count and self.fps > 0 and count / self.fps > max_seconds:
            raise VideoError(
                f"{self.path}: {count / self.fps:.0f} s long, over the {max_seconds:.0f} s limit; trim the video."
            )

    def reported_frame_count(self) -> int | None:
        count = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        if not np.isfinite(count) or not 0 < count < MAX_REPORTED_FRAMES:
            return None
        return int(count)

    def grab(self, index: int) -> bool:
        if index % 64 == 0 and time.monotonic() > self.deadline:
            raise VideoError(
                f"{self.path}: decoding took too long (stopped at frame {index}); trim or re-encode the clip."
            )
        return bool(self.capture.grab())

    def retrieve(self) -> np.ndarray | None:
        ok, frame = self.capture.retrieve()
        return self._small(frame) if ok and frame is not None else None

    def _small(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        size = (self.image_size, self.image_size)
        # Bilinear, the report's cv2.resize default. Frames are RGB here while the report fed OpenCV's BGR: the
        # same pixels with the channels swapped, which does not matter as long as training and prediction read
        # frames the same way, as every har path does.
        small = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)

    def read_sequentially(self, indices: list[int]) -> tuple[list[np.ndarray], list[int], int, list[int]]:
        """Decodes frames 0..max(indices) in order.

        A frame that fails to decode is stepped over (the next good one is taken in its place) as long as a good
        frame follows within BROKEN_FRAMES_IN_A_ROW; more failures in a row are the end of the file.

        Returns:
            (the chosen frames, their source indices, frames gone through, indices of broken frames).
        """
        wanted, frames, used = set(indices), [], []
        failures: list[int] = []  # failed frames in a row: broken if a good frame follows, else the end
        broken: list[int] = []
        index, substitute = 0, False  # substitute: a wanted frame was broken, take the next good one
        while index <= indices[-1] or substitute:
            if not self.grab(index):
                failures.append(index)
                substitute = substitute or index in wanted
                index += 1
                if len(failures) > BROKEN_FRAMES_IN_A_ROW:
                    break
                continue
            broken += failures
            failures = []
            if index in wanted or substitute:
                frame = self.retrieve()
                if frame is None:
                    broken.append(index)
                    substitute = True
                else:
                    frames.append(frame)
                    used.append(index)
                    substitute = False
            index += 1
        return frames, used, index - len(failures), broken

    def read_by_seeking(self, indices: list[int]) -> list[np.ndarray] | None:
        """Seeks to each index; None when the container cannot seek exactly (the caller then decodes)."""
        frames = []
        for index in indices:
            if time.monotonic() > self.deadline:
                raise VideoError(f"{self.path}: decoding took too long; trim or re-encode the clip.")
            if not self.capture.set(cv2.CAP_PROP_POS_FRAMES, index):
                return None
            if int(self.capture.get(cv2.CAP_PROP_POS_FRAMES)) != index:
                return None
            ok, frame = self.capture.read()
            if not ok or frame is None:
                return None
            frames.append(self._small(frame))
        return frames


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


class Window(NamedTuple):
    """A stretch of a long video: `start` and `end` in seconds, `frames` (T, H, W, 3) uint8 RGB."""

    start: float
    end: float
    frames: np.ndarray


def read_windows(
    path: str | os.PathLike,
    *,
    sequence_length: int = 20,
    image_size: int = 64,
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
    _check_file(path)
    reader = _Reader(path, image_size, deadline=time.monotonic() + timeout)
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


def browser_video(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    max_side: int = 480,
    max_seconds: float = 60.0,
    timeout: float = 60.0,
) -> Path:
    """Re-encodes a clip as H.264 MP4 that every browser plays (XVID `.avi`, UCF50's format, plays in none).

    Uses the ffmpeg binary that imageio-ffmpeg ships, in its own process with a time limit. The copy is scaled
    down to at most `max_side` pixels and cut to `max_seconds`: it is a preview, not the input of any model.

    Raises:
        VideoError: ffmpeg failed or took longer than `timeout`.
    """
    import subprocess

    import imageio_ffmpeg

    path, out = Path(path), Path(out)
    scale = (
        f"scale='min({max_side},iw)':'min({max_side},ih)':force_original_aspect_ratio=decrease,"
        "scale=trunc(iw/2)*2:trunc(ih/2)*2"
    )  # yuv420p needs even sides
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-i",
        str(path),
        "-t",
        str(max_seconds),
        "-an",
        "-vf",
        scale,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(out),
    ]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VideoError(f"{path}: making a browser preview took over {timeout:.0f} s.") from None
    if result.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise VideoError(f"{path}: no browser preview could be made ({reason[0][:200]}).")
    return out
