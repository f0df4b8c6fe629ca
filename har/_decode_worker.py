"""What a frame-cache build runs in each worker process. A module of its own, so that a worker imports
OpenCV and NumPy but not the rest of the package (scikit-learn, the dataset modules): less memory per worker."""

from __future__ import annotations

from har.video import VideoError, decode_clip


def setup() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


def decode(job) -> tuple[int, bytes | None, int, str | None]:
    """(clip index, frames as bytes or None, real frames, reason it failed or None)."""
    i, path, sequence_length, image_size = job
    try:
        clip = decode_clip(path, sequence_length, image_size)
    except VideoError as error:
        return i, None, 0, str(error)
    return i, clip.frames.tobytes(), clip.real_frames, None
