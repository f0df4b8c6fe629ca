"""Decoding untrusted files in a separate process, so that a decoder crash or hang fails one request only.

FFmpeg runs inside OpenCV in-process; a malicious or broken upload could crash it (taking the server with it)
or spin forever in one C call that no Python timeout can interrupt. Here each decode runs in a child process
forked from a small server that already imported OpenCV (multiprocessing's forkserver), so it starts in
milliseconds; the child is killed when its time is up, and a crash becomes a VideoError.

A server takes uploads from many visitors at once, so such children (and the ffmpeg that makes a browser
preview) run a few at a time: `configure_workers(n)` at most (the app's entry point passes `HAR_WORKERS`;
default: the number of cores, at least 2). Twenty tabs uploading at once then hold a few children's memory, not
twenty, and on a small machine they finish no later.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from har import _child_main
from har.config import Config
from har.video import Clip, VideoError, browser_video, decode_clip

_DEFAULTS = Config()
# What an upload may be: 10 minutes, 4K.
UPLOAD_MAX_SECONDS = 600.0
UPLOAD_MAX_PIXELS = 3840 * 2160

# Children start from har._child_main, not the caller's __main__ (under Streamlit, the app script).
_context = _child_main.context("forkserver")
_context.set_forkserver_preload(["har.video", "har.sandbox"])


def default_workers() -> int:
    """The number of cores, at least 2."""
    return max(2, os.cpu_count() or 1)


@functools.lru_cache(maxsize=8)  # a wrong value is warned about once, not on every page run
def worker_count(value: str | None) -> int:
    """`HAR_WORKERS` as the entry point read it: a positive whole number, else (with a warning naming it) the
    default; empty or None: the default."""
    if value is None or not value.strip():
        return default_workers()
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    logging.getLogger(__name__).warning(
        "HAR_WORKERS=%r is not a positive whole number; using %d", value, default_workers()
    )
    return default_workers()


_slots: tuple[int, threading.BoundedSemaphore] | None = None  # (count, the semaphore)
_slots_lock = threading.Lock()


def configure_workers(count: int) -> None:
    """At most `count` children work on uploads at once, from now on (the app's entry point calls this with
    `worker_count($HAR_WORKERS)`; until then, `default_workers()`). Children already at work finish in their
    old slots."""
    global _slots
    if count < 1:
        raise ValueError(f"workers={count!r}: must be a positive whole number.")
    with _slots_lock:
        if _slots is None or _slots[0] != count:
            _slots = (count, threading.BoundedSemaphore(count))


@contextlib.contextmanager
def worker_slot():
    """Holds one of the server's slots for a child process working on an upload (waiting is not timed)."""
    if _slots is None:
        configure_workers(default_workers())
    _, slots = _slots
    with slots:
        yield


def start_decoder_server() -> None:
    """Starts the forkserver now (it imports OpenCV once, ~0.5 s) so that the first upload does not wait for it."""
    from multiprocessing import forkserver

    forkserver.ensure_running()


def decode_untrusted(
    path: str | os.PathLike,
    sequence_length: int = _DEFAULTS.sequence_length,
    image_size: int = _DEFAULTS.image_size,
    *,
    timeout: float = 60.0,
    max_seconds: float = UPLOAD_MAX_SECONDS,
    max_pixels: int = UPLOAD_MAX_PIXELS,
    decoder: Callable[..., Clip] = decode_clip,
) -> Clip:
    """`decode_clip` in a child process with a hard time limit and the upload size limits.

    Args:
        sequence_length, image_size: the preprocessing of the run that will read the frames (default: `Config`'s).

    Returns:
        The Clip; its frames are (sequence_length, image_size, image_size, 3) uint8 RGB.

    Raises:
        VideoError: the file is unreadable, too long or too large, or the decoder crashed or hung.
    """
    return run_isolated(
        decoder, str(path), sequence_length, image_size, timeout=timeout, max_seconds=max_seconds, max_pixels=max_pixels
    )


def run_isolated(function: Callable, path: str, *args, timeout: float, **kwargs):
    """Runs `function(path, *args, timeout=timeout, **kwargs)` in a child process and returns its result.

    `function` must honour `timeout` itself; the child is killed 2 s after it, in case a C call is stuck.
    A VideoError (or any exception) in the child is raised here as a VideoError naming `path`.
    """
    with worker_slot():
        return _run_in_child(function, path, *args, timeout=timeout, **kwargs)


def preview_untrusted(path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """`browser_video` (ffmpeg in its own process, with a time limit) in one of the server's worker slots."""
    with worker_slot():
        return browser_video(path, out)


def _run_in_child(function: Callable, path: str, *args, timeout: float, **kwargs):
    receiver, sender = _context.Pipe(duplex=False)
    process = _context.Process(
        target=_child, args=(function, (path, *args), {"timeout": timeout, **kwargs}, sender), daemon=True
    )
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout + 2):
            raise VideoError(f"{path}: decoding did not finish within {timeout:.0f} s; the file was given up on.")
        try:
            kind, value = receiver.recv()
        except EOFError:
            process.join(5)
            raise VideoError(
                f"{path}: the video decoder crashed on this file (exit code {process.exitcode})."
            ) from None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(5)
    if kind == "error":
        raise VideoError(value)
    return value


def _child(function, arguments, options, sender) -> None:
    try:
        sender.send(("result", function(*arguments, **options)))
    except VideoError as error:
        sender.send(("error", str(error)))
    except Exception as error:  # noqa: BLE001 - anything else the decoder raises is still this file's fault
        sender.send(("error", f"{arguments[0]}: cannot be decoded ({type(error).__name__}: {error})."))
    finally:
        sender.close()
