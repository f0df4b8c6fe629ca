"""The one path a clip takes from a visitor into the server: allowance, capped scratch folder, sandboxed decode.

Every page that takes an upload (Predict, Explain, and any later one) opens it with `UploadGate.open`:

1. in public mode, the visitor's allowance (`har.access.UploadAllowance`), counted once per upload: a rerun of
   the page that shows the same upload again is not a new upload;
2. its bytes written to the capped scratch folder (`har.access.ScratchSpace`), removed when the page is done;
3. its frames decoded in a child process (`har.sandbox`), once per (sequence length, image size) the runs need.

A held-out test clip from the server's own frame cache takes the same path but is not metered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Iterator, MutableSet
from functools import partial
from pathlib import Path

from har.access import ScratchFull, ScratchSpace, UploadLimits
from har.sandbox import decode_untrusted, preview_untrusted, run_isolated
from har.video import Clip, read_windows


class UploadRefused(Exception):
    """An upload the server will not take now; the message is one line for the visitor."""


@dataclasses.dataclass(frozen=True)
class Upload:
    """One clip to look at: a visitor's upload, or a held-out test clip of the server's."""

    name: str  # as the visitor named it: shown, never used as a path
    data: bytes = dataclasses.field(repr=False)
    upload_id: str | None = None  # the uploader's id for this file; None: the server's own clip (not metered)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Upload:
        """A clip on the server's disk (a held-out test clip), as an unmetered upload."""
        path = Path(path)
        return cls(path.name, path.read_bytes())


class UploadGate:
    """The allowance and the scratch folder of one server, shared by every session (thread-safe).

    Args:
        scratch_root: the folder uploads are written to (created when needed; what a killed server left there an
            hour ago or more is removed now).
        limits: the ration; None with `problem`: the owner set it wrongly, and every metered upload is refused
            with `problem` until they fix it.
        public: public mode; off it, nothing is metered.
    """

    def __init__(
        self,
        scratch_root: str | os.PathLike,
        limits: UploadLimits | None,
        *,
        public: bool,
        problem: str | None = None,
    ):
        self.public, self.problem = public, problem
        self.allowance = limits.allowance() if limits is not None else None
        cap = limits.scratch_megabytes if limits is not None else UploadLimits().scratch_megabytes
        self.scratch = ScratchSpace(scratch_root, cap_megabytes=cap)
        self.scratch.remove_stale()

    def admit(self, upload: Upload, visitor: str, counted: MutableSet[str]) -> None:
        """Counts `upload` against `visitor`'s allowance unless it is already in `counted` (the ids this browser
        session has had admitted; kept by the caller) or is the server's own clip.

        Raises:
            UploadRefused: over the allowance (with how long to wait), or the allowance is set wrongly.
        """
        if not self.public or upload.upload_id is None or upload.upload_id in counted:
            return
        if self.allowance is None:
            raise UploadRefused(self.problem or "uploads are switched off: the upload allowance is not set.")
        refused = self.allowance.admit(visitor, len(upload.data))
        if refused is not None:
            raise UploadRefused(refused)
        counted.add(upload.upload_id)

    @contextlib.contextmanager
    def open(self, upload: Upload, visitor: str, counted: MutableSet[str]) -> Iterator[Path]:
        """`admit`, then the upload as a file in the scratch folder, removed (with whatever was made beside it)
        on exit. Its name keeps only the visitor's suffix: `../../x.avi` stays in the scratch folder.

        Raises:
            UploadRefused: not admitted, or the scratch folder is full right now.
        """
        self.admit(upload, visitor, counted)
        with contextlib.ExitStack() as stack:
            try:
                path = stack.enter_context(self.scratch.file(Path(upload.name).suffix.lower(), len(upload.data)))
            except ScratchFull as error:
                raise UploadRefused(str(error)) from None
            path.write_bytes(upload.data)
            yield path


def decode(path: str | os.PathLike, shapes: Iterable[tuple[int, int]]) -> dict[tuple[int, int], Clip]:
    """The clip decoded in a child process once per (sequence length, image size) in `shapes`.

    Returns:
        {(T, size): Clip}, each Clip's frames (T, size, size, 3) uint8 RGB.

    Raises:
        VideoError: unreadable, too long or too large, or the decoder crashed or hung.
    """
    clips: dict[tuple[int, int], Clip] = {}
    for shape in shapes:
        if shape not in clips:
            clips[shape] = decode_untrusted(path, *shape)
    return clips


def preview(path: Path) -> Path:
    """A browser-playable H.264 copy of the upload, beside it in its scratch folder (ffmpeg with a time limit).

    Raises:
        VideoError: ffmpeg could not make one.
    """
    return preview_untrusted(path, path.parent / "preview.mp4")


def timeline(predictor, path: str | os.PathLike, *, timeout: float = 300):
    """`predictor.timeline` of the upload, its windows read in a child process.

    Raises:
        VideoError: the file could not be read within `timeout` seconds.
    """
    return predictor.timeline(path, reader=partial(run_isolated, read_windows, timeout=timeout))


def shown(error: Exception, path: str | os.PathLike, name: str) -> str:
    """The error as the visitor should read it: naming their file, not the server's scratch path."""
    return str(error).replace(str(path), name)
