"""Who may do what when the app is public: visitors look and try, the owner changes things.

`HAR_PUBLIC=1` (the Docker Space sets it) turns public mode on. Visitors may explore, upload, predict, explain
and compare; no widget takes a server path or a URL from them. Owner actions (getting datasets, building
caches, training, cancelling, deleting or importing runs) need the owner token, `HAR_OWNER_TOKEN` (a Space
secret), typed once per browser session; without a token set, nobody may do them in public mode. Local runs
(`HAR_PUBLIC` unset) allow everything, as a local tool should. The app's entry point reads these once
(`Access.from_environment`, `UploadLimits.from_environment`); nothing here looks at the environment itself.

Uploads on a public server are also rationed per visitor (`UploadAllowance`) and written only to a capped
scratch folder (`ScratchSpace`), so one visitor cannot fill the disk or starve the others.
"""

from __future__ import annotations

import dataclasses
import hmac
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

OWNER_ACTIONS = "getting datasets, building caches, training, cancelling, deleting or importing runs"
_TRUE = ("1", "true", "yes", "on")


@dataclasses.dataclass(frozen=True)
class Access:
    """Who may take owner actions on this server.

    Args:
        public: public mode (`HAR_PUBLIC`): visitors look and try, only the owner changes things.
        owner_token: the owner's secret (`HAR_OWNER_TOKEN`); empty: nobody is the owner in public mode.
    """

    public: bool = False
    owner_token: str = dataclasses.field(default="", repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Access:
        """`HAR_PUBLIC` (1, true, yes or on) and `HAR_OWNER_TOKEN`, as the app's entry point reads them."""
        return cls(
            public=environ.get("HAR_PUBLIC", "").strip().lower() in _TRUE,
            owner_token=environ.get("HAR_OWNER_TOKEN", ""),
        )

    def is_owner(self, token: str | None) -> bool:
        """True off public mode; in it, only for the owner token, compared in constant time."""
        if not self.public:
            return True
        if not self.owner_token or not token:
            return False
        return hmac.compare_digest(token.encode(), self.owner_token.encode())

    def refusal(self) -> str:
        """What a visitor is told when they reach for an owner action."""
        if not self.owner_token:
            return (
                f"This is a public copy of HAR Studio: {OWNER_ACTIONS} are switched off here (no owner token is "
                "set). Run it on your own machine to do them."
            )
        return f"Owner only: {OWNER_ACTIONS} need the owner token, entered in the sidebar."


def visitor_key(headers: Mapping[str, str], remote_ip: str | None, session_id: str) -> str:
    """Who is uploading, for the allowance.

    Behind the Space's proxy every connection comes from the proxy's internal address, so the visitor's own
    address is the first one in `X-Forwarded-For`; on a direct connection it is the remote address; on
    localhost (no address) each browser session counts as a visitor of its own. A visitor can forge the header
    to get a fresh allowance: the allowance is fair use, not a wall, and the scratch cap holds for all of them.
    """
    forwarded = next((value for key, value in headers.items() if key.lower() == "x-forwarded-for"), "")
    first = forwarded.split(",")[0].strip()
    if first:
        return f"forwarded:{first}"
    return f"address:{remote_ip}" if remote_ip else f"session:{session_id}"


@dataclasses.dataclass(frozen=True)
class UploadLimits:
    """A public server's ration of uploads: `uploads` clips and `megabytes` MB per visitor every
    `window_seconds`, and at most `scratch_megabytes` MB of uploads on its disk at once."""

    uploads: int = 20
    megabytes: float = 400
    window_seconds: float = 60
    scratch_megabytes: float = 2048

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> UploadLimits:
        """The defaults, or `HAR_UPLOADS` clips and `HAR_UPLOAD_MB` MB per `HAR_UPLOAD_WINDOW_SECONDS`, for an
        owner who wants a looser or stricter ration.

        Raises:
            ValueError: one of them is not a number.
        """
        defaults = cls()
        try:
            return cls(
                uploads=int(environ.get("HAR_UPLOADS", defaults.uploads)),
                megabytes=float(environ.get("HAR_UPLOAD_MB", defaults.megabytes)),
                window_seconds=float(environ.get("HAR_UPLOAD_WINDOW_SECONDS", defaults.window_seconds)),
            )
        except ValueError as error:
            raise ValueError(
                f"HAR_UPLOADS, HAR_UPLOAD_MB and HAR_UPLOAD_WINDOW_SECONDS must be numbers: {error}"
            ) from None

    def allowance(self, clock: Callable[[], float] = time.monotonic) -> UploadAllowance:
        return UploadAllowance(
            uploads=self.uploads, megabytes=self.megabytes, window_seconds=self.window_seconds, clock=clock
        )


class UploadAllowance:
    """Per-visitor upload limits over a sliding window: at most `uploads` files and `megabytes` MB.

    Thread-safe, to be shared by every session of one server.
    """

    def __init__(
        self,
        *,
        uploads: int = 20,
        megabytes: float = 400,
        window_seconds: float = 60,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.uploads, self.bytes, self.window, self.clock = uploads, int(megabytes * 1e6), window_seconds, clock
        self._seen: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def admit(self, visitor: str, size: int) -> str | None:
        """Records an upload of `size` bytes; returns None if allowed, else a one-line reason with the wait."""
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(visitor, deque())
            while seen and seen[0][0] <= now - self.window:
                seen.popleft()
            used = sum(size for _, size in seen)
            if len(seen) >= self.uploads or used + size > self.bytes:
                wait = max(1, round(seen[0][0] + self.window - now)) if seen else round(self.window)
                period = "a minute" if self.window == 60 else f"per {self.window:.0f} s"
                return (
                    f"Upload limit reached ({self.uploads} clips or {self.bytes / 1e6:.0f} MB {period} per "
                    f"visitor); try again in {wait} s."
                )
            seen.append((now, size))
            return None


class ScratchFull(RuntimeError):
    """The scratch folder has no room for another file right now."""


class ScratchSpace:
    """A capped folder for uploads and the previews made from them; every file is removed after use.

    `with space.file(".mp4", size) as path:` reserves `size` bytes (refused with ScratchFull when the folder
    would exceed `cap_megabytes`), and deletes the file on exit, whatever happened.
    """

    def __init__(self, root: str | Path, *, cap_megabytes: float = 2048):
        self.root, self.cap = Path(root), int(cap_megabytes * 1e6)
        self._lock = threading.Lock()
        self._reserved = 0

    def file(self, suffix: str, size: int):
        return _ScratchFile(self, suffix, size)

    def used_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())

    def remove_stale(self, older_than_seconds: float = 3600) -> None:
        """Removes what a killed server left behind."""
        if not self.root.is_dir():
            return
        limit = time.time() - older_than_seconds
        for path in self.root.iterdir():
            if path.stat().st_mtime < limit:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


class _ScratchFile:
    def __init__(self, space: ScratchSpace, suffix: str, size: int):
        self.space, self.suffix, self.size = space, suffix, size

    def __enter__(self) -> Path:
        space = self.space
        with space._lock:
            if space._reserved + self.size > space.cap:
                raise ScratchFull("The server's space for uploads is full right now; try again in a minute.")
            space._reserved += self.size
        space.root.mkdir(parents=True, exist_ok=True)
        self.folder = space.root / uuid.uuid4().hex
        self.folder.mkdir()
        return self.folder / f"upload{self.suffix}"

    def __exit__(self, *exc):
        shutil.rmtree(self.folder, ignore_errors=True)
        with self.space._lock:
            self.space._reserved -= self.size
