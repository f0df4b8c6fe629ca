"""Opening a video file with OpenCV and decoding its frames, small and RGB, within a deadline.

`Capture` is the one place that talks to OpenCV's FFmpeg reader; `har.video.clips` decides which frames to
keep. A file that cannot be a video is refused before OpenCV sees it (`check_video_file`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

# FFmpeg's own warnings about damaged files would flood the terminal; failures surface as VideoError instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

import cv2  # noqa: E402
import filetype  # noqa: E402
import numpy as np  # noqa: E402

# The variable above only counts if OpenCV was not imported yet (Keras imports it first in the CLI); without this
# `[ WARN:0@0.5] global cap.cpp:212 ...` reaches the user's terminal for every file that is not a video.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".gif", ".mpg", ".mpeg", ".wmv", ".flv")

# A frame count above this is not believed (some containers report garbage); the clip is counted instead.
MAX_REPORTED_FRAMES = 10_000_000
# More frames than this failing to decode in a row is the end of the file, not a damaged frame to step over.
BROKEN_FRAMES_IN_A_ROW = 4
# While decoding in order, the clock is read once every this many frames rather than for each one.
DEADLINE_CHECK_FRAMES = 64


class VideoError(ValueError):
    """A file that cannot be read as a video. The message is one line naming the file and the reason."""


def check_video_file(path: str | os.PathLike) -> None:
    """Refuses, without decoding, what cannot be a video: a missing path, a folder, an empty file, an image.

    Raises:
        VideoError: naming the file and what to do.
    """
    check_file(Path(path))


def check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"{path}: no such file.")
    if not path.is_file():
        raise VideoError(f"{path}: not a file.")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty.")
    kind = filetype.guess(str(path))
    if kind is not None and not (kind.mime.startswith("video/") or kind.mime == "image/gif"):
        raise VideoError(f"{path}: its content is {kind.mime}, not a video; upload an MP4, AVI, MOV, WebM, MKV or GIF.")


class Capture:
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
        if index % DEADLINE_CHECK_FRAMES == 0 and time.monotonic() > self.deadline:
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
