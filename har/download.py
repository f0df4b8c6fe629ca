"""Resumable HTTP(S) download with size checks, retries and TLS verification.

The standard library's urllib is enough here: resuming needs one `Range` header, and no third-party client
adds anything the 3 GB UCF50 archive needs.

TLS certificates are verified. Some hosts (UCF50's among them, for years) serve a certificate that fails
the check; a download from such a host stops with one line naming the cause and the opt-in: `insecure_tls`
(`--insecure-tls` on the command line, `HAR_INSECURE_TLS=1` in the environment). The size checks and the
resume from `.part` apply either way. The functions here take `insecure_tls` as a plain bool; the entry points
(the CLI, the app, a background process's main) resolve the flag and the environment once, with
`insecure_tls_requested`.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
INSECURE_TLS_VARIABLE = "HAR_INSECURE_TLS"
MAX_BACKOFF_SECONDS = 60.0


class DownloadError(OSError):
    """A download that did not complete; the message says what to do."""


class CertificateError(DownloadError):
    """The server's TLS certificate failed verification; nothing was downloaded from it."""


def insecure_tls_requested(flag: bool | None = None) -> bool:
    """For entry points: the `--insecure-tls` flag when given (True/False), else whether $HAR_INSECURE_TLS is
    set to 1 (or true/yes)."""
    if flag is not None:
        return flag
    return os.environ.get(INSECURE_TLS_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def download(
    url: str,
    destination: str | Path,
    *,
    progress: Callable[[int, int | None], None] | None = None,
    expected_size: int | None = None,
    attempts: int = 5,
    timeout: float = 60.0,
    insecure_tls: bool = False,
    backoff: float = 1.0,
) -> Path:
    """Downloads `url` to `destination`, resuming from `destination.part` when a previous try stopped.

    The file appears under its final name only once its size matches the server's; until then the bytes
    live in `<destination>.part`, and a later call (or another attempt within this one) continues from them.

    Args:
        progress: called with (bytes so far, total bytes or None) as data arrives.
        expected_size: the file's known size; a server announcing another size, or a download ending at
            another size, is refused.
        attempts: tries in a row that bring no new bytes before giving up when the connection drops.
        insecure_tls: skip the TLS certificate check (an entry point's `insecure_tls_requested()`).
        backoff: seconds before the first retry, doubled after each one (at most a minute).

    Raises:
        CertificateError: the TLS certificate failed verification (and `insecure_tls` is off).
        DownloadError: the server refused, the sizes disagree, or every attempt was interrupted.
    """
    destination = Path(destination)
    if destination.exists():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    if insecure_tls and url.lower().startswith("https:"):
        log.warning("downloading %s without checking its TLS certificate (--insecure-tls)", url)
    opener = _opener(bool(insecure_tls))
    failures, last_error = 0, None
    while True:
        before = _size(partial)
        try:
            _fetch(opener, url, partial, progress, timeout, expected_size)
            break
        except _Retryable as error:
            last_error = error
        # An attempt that brought new bytes does not count against `attempts`: a 3 GB download over a
        # connection that drops every few minutes still completes.
        failures = 1 if _size(partial) > before else failures + 1
        if failures >= attempts:
            raise DownloadError(f"{url}: download interrupted ({last_error}); run the same command again to resume.")
        delay = min(backoff * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
        log.warning(
            "download of %s interrupted (%s); retrying in %.0f s (%d of %d)", url, last_error, delay, failures, attempts
        )
        time.sleep(delay)
    if expected_size is not None and _size(partial) != expected_size:
        raise DownloadError(
            f"{partial}: holds {_size(partial):,} bytes but the file should have {expected_size:,}; "
            f"delete it and run the same command again."
        )
    partial.replace(destination)
    return destination


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _opener(insecure_tls: bool) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context()
    if insecure_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))


def _certificate_error(url: str, error: ssl.SSLCertVerificationError) -> CertificateError:
    host = urllib.parse.urlsplit(url).hostname
    cause = error.verify_message or error.reason or str(error)
    return CertificateError(
        f"{host}: its TLS certificate failed verification ({cause}); if you trust this host, "
        f"run again with --insecure-tls (or HAR_INSECURE_TLS=1)."
    )


class _Retryable(Exception):
    pass


def _fetch(opener, url: str, partial: Path, progress, timeout: float, expected_size: int | None) -> None:
    offset = _size(partial)
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset and _total_from_range(error.headers.get("Content-Range")) == offset:
            return  # the partial file is already complete
        raise DownloadError(f"{url}: the server answered {error.code} {error.reason}.") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, ssl.SSLError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise _certificate_error(url, reason) from None
        raise _Retryable(reason) from None
    with response:
        if response.status == 206:
            start = _start_from_range(response.headers.get("Content-Range"))
            if start != offset:
                raise DownloadError(
                    f"{url}: the server resumed at byte {start}, not {offset}; delete {partial} and retry."
                )
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
                # read1: what has arrived, up to a chunk; on a slow link read() would wait for a whole megabyte
                # before the progress callback (and with it a cancel) got its turn.
                while chunk := response.read1(CHUNK_BYTES):
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
