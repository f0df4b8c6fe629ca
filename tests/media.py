"""Real video files for the tests, written with OpenCV's writer or imageio-ffmpeg's ffmpeg.

Frames can carry their own index as ten black-and-white vertical bars (most significant bit left), wide
enough to survive lossy codecs and the resize to 64x64, so a test can check which source frames a reader
returned. A red band at the bottom lets tests check the channel order.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

BITS = 10
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

# extension -> (ffmpeg encoder, extra output options)
FFMPEG_CODECS = {
    "mp4": ("libx264", ["-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    "mov": ("libx264", ["-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    "mkv": ("libx264", ["-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    "webm": ("libvpx-vp9", ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M", "-pix_fmt", "yuv420p"]),
    "avi": ("libxvid", ["-q:v", "3"]),
    "gif": ("gif", []),
}


def indexed_frame(index: int, width: int = 160, height: int = 120) -> np.ndarray:
    """An RGB frame whose top three quarters show `index` in binary; the bottom quarter is pure red."""
    frame = np.zeros((height, width, 3), np.uint8)
    bar = width // BITS
    for bit in range(BITS):
        if index >> (BITS - 1 - bit) & 1:
            frame[: height * 3 // 4, bit * bar : (bit + 1) * bar] = 255
    frame[height * 3 // 4 :] = (255, 0, 0)
    return frame


def decode_index(frame: np.ndarray) -> int:
    """Reads back the index drawn by `indexed_frame` from an RGB frame of any size."""
    height, width = frame.shape[:2]
    bar = width / BITS
    value = 0
    for bit in range(BITS):
        column = frame[: height * 5 // 8, int(bit * bar + bar / 4) : int((bit + 1) * bar - bar / 4)]
        value = value << 1 | int(column.mean() > 127)
    return value


def indexed_frames(count: int, width: int = 160, height: int = 120) -> list[np.ndarray]:
    return [indexed_frame(i, width, height) for i in range(count)]


def write_with_ffmpeg(path: Path, frames: list[np.ndarray], fps: int = 25, options: list[str] | None = None) -> Path:
    """Encodes RGB frames with ffmpeg, choosing the codec from the file extension."""
    path = Path(path)
    encoder, extra = FFMPEG_CODECS[path.suffix.lstrip(".")]
    height, width = frames[0].shape[:2]
    command = [
        FFMPEG,
        "-y",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-c:v",
        encoder,
        *extra,
        *(options or []),
        str(path),
    ]
    subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True)
    return path


def write_with_opencv(path: Path, frames: list[np.ndarray], fourcc: str = "XVID", fps: int = 25) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return Path(path)


def ffmpeg(*arguments: str) -> None:
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", *arguments], check=True)


def truncated_copy(source: Path, out: Path, keep: float) -> Path:
    """The first `keep` (0..1) of a file's bytes: a download cut short. An AVI then still claims every frame."""
    data = Path(source).read_bytes()
    Path(out).write_bytes(data[: int(len(data) * keep)])
    return Path(out)


def break_first_frame(source: Path, out: Path) -> Path:
    """An XVID AVI whose first frame's bytes are overwritten with noise; the frames after it still decode."""
    data = bytearray(Path(source).read_bytes())
    start = data.index(b"00dc", data.index(b"movi"))
    size = int.from_bytes(data[start + 4 : start + 8], "little")
    data[start + 8 : start + 8 + size] = np.random.default_rng(27).integers(0, 256, size, dtype=np.uint8).tobytes()
    Path(out).write_bytes(bytes(data))
    return Path(out)
