"""Resumable HTTP download with size checks.

The standard library's urllib is enough here: resuming needs one `Range` header, and no third-party client
adds anything the 3 GB UCF50 archive needs.
"""

from __future__ import annotations

import http.client
import logging
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """A download that did not complete; the message says what to do."""


def download(
    url: str,
    destination: str | Path,
    *,
    progress: Callable[[int, int | None], None] | None = None,
    expected_size: int | None = None,
    attempts: int = 3,
    timeout: float = 60.0,
) -> Path:
    """Downloads `url` to `destination`, resuming from `destination.part` when a previous try stopped.

    The file appears under its final name only once its size matches the server's; until then the bytes
    live in `<destination>.part`, and a later call (or another attempt within this one) continues from them.

    Args:
        progress: called with (bytes so far, total bytes or None) as data arrives.
        expected_size: the file's known size; a server announcing another size is refused.
        attempts: tries before giving up when the connection drops.
    """
    destination = Path(destination)
    if destination.exists():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    last_error = None
    for attempt in range(1, attempts + 1):
        try:
            _fetch(url, partial, progress, timeout, expected_size)
            partial.replace(destination)
            return destination
        except _Retryable as error:
            last_error = error
            log.warning("download of %s interrupted (%s), attempt %d of %d", url, error, attempt, attempts)
    raise DownloadError(f"{url}: download interrupted ({last_error}); run the same command again to resume.")


class _Retryable(Exception):
    pass


def _fetch(url: str, partial: Path, progress, timeout: float, expected_size: int | None) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset and _total_from_range(error.headers.get("Content-Range")) == offset:
            return  # the partial file is already complete
        raise DownloadError(f"{url}: the server answered {error.code} {error.reason}.") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise _Retryable(getattr(error, "reason", error)) from None
    with response:
        if response.status == 206:
            start = _start_from_range(response.headers.get("Content-Range"))
            if start != offset:
                raise DownloadError(f"{url}: the server resumed at byte {start}, not {offset}; delete {partial} and retry.")
            total = _total_from_range(response.headers.get("Content-Range"))
        else:
            offset = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadError(
                f"{url}: the server announces {total:,} bytes but the file should have {expected_size:,}; not downloaded."
            )
        _check_free_space(partial, (total - offset) if total else 0)
        done = offset
        try:
            with open(partial, "ab" if offset else "wb") as sink:
                while chunk := response.read(CHUNK_BYTES):
                    sink.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as error:
            if isinstance(error, OSError) and error.errno is not None and not isinstance(error, ConnectionError):
                raise DownloadError(f"{partial}: cannot write the download ({error.strerror}).") from None
            raise _Retryable(error) from None
    # http.client stops at Content-Length, so a short count means the connection ended early.
    if total is not None and done < total:
        raise _Retryable(f"received {done:,} of {total:,} bytes")


def _start_from_range(header: str | None) -> int | None:
    match = re.match(r"bytes (\d+)-\d+/", header or "")
    return int(match.group(1)) if match else None


def _total_from_range(header: str | None) -> int | None:
    match = re.search(r"/(\d+)$", header or "")
    return int(match.group(1)) if match else None


def _check_free_space(path: Path, needed: int) -> None:
    free = shutil.disk_usage(path.parent).free
    if needed > free:
        raise DownloadError(
            f"{path.parent}: the download needs {needed / 1e9:.1f} GB but only {free / 1e9:.1f} GB are free; free some space."
        )
