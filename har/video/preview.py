"""A browser-playable preview of a video: H.264 MP4 made by ffmpeg in its own process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from har.video.capture import VideoError


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
    import imageio_ffmpeg  # only the preview needs ffmpeg's binary

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
