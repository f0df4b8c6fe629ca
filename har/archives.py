"""Safe extraction of zip, tar and RAR archives.

Every member name is checked before anything is written: an absolute path, a `..` component or a link
anywhere in the archive refuses the whole archive, and so does a declared size larger than the free disk or
`max_bytes`. Members are then streamed one by one to paths computed here, never to paths the archive names.
RAR is read through `rarfile`, which parses the headers itself and calls the `unar` or `bsdtar` tool to
decompress.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import rarfile

ARCHIVE_SUFFIXES = (".zip", ".rar", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# A member that expands more than this many times over its compressed size is treated as a bomb.
MAX_COMPRESSION_RATIO = 200


class ArchiveError(ValueError):
    """An archive that is unreadable or unsafe; the message names it and the reason."""


@dataclass(frozen=True)
class Member:
    name: str  # normalised, '/'-separated, relative
    size: int  # uncompressed bytes
    compressed_size: int | None
    is_file: bool
    is_link: bool
    handle: object  # the library's own info object, for opening


def is_archive(path: str | Path) -> bool:
    name = Path(path).name.lower()
    return any(name.endswith(suffix) for suffix in ARCHIVE_SUFFIXES)


def extract(
    archive: str | Path,
    destination: str | Path,
    *,
    select: Callable[[PurePosixPath], PurePosixPath | None] = lambda name: name,
    max_bytes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Extracts the selected files of `archive` under `destination`.

    Args:
        archive: a .zip, .tar[.gz|.bz2|.xz] or .rar file.
        destination: folder to write into (created if missing).
        select: maps a member's relative path to where it goes under `destination`, or None to skip it.
        max_bytes: refuse archives whose selected files would expand to more than this.
        progress: called with (files done, files selected) after each file.

    Returns:
        The paths written, in archive order.
    """
    archive, destination = Path(archive), Path(destination)
    if not archive.is_file():
        raise ArchiveError(f"{archive}: no such archive file.")
    with _open(archive) as (handle, members):
        chosen = []
        for member in members:
            _check_member(archive, member)
            if member.is_file:
                target = select(PurePosixPath(member.name))
                if target is not None:
                    _check_member(archive, Member(str(target), 0, None, True, False, None))
                    chosen.append((member, destination.joinpath(*target.parts)))
        _check_sizes(archive, destination, [member for member, _ in chosen], max_bytes)
        written = []
        for done, (member, target) in enumerate(chosen, start=1):
            _copy_member(archive, handle, member, target)
            written.append(target)
            if progress:
                progress(done, len(chosen))
    return written


def list_members(archive: str | Path) -> list[Member]:
    archive = Path(archive)
    with _open(archive) as (_, members):
        return members


class _open:
    """Context manager yielding (library handle, members) for any supported archive."""

    def __init__(self, archive: Path):
        self.archive = archive
        self.handle = None

    def __enter__(self):
        name = self.archive.name.lower()
        try:
            if name.endswith(".zip"):
                self.handle = zipfile.ZipFile(self.archive)
                members = [_zip_member(info) for info in self.handle.infolist()]
            elif name.endswith(".rar"):
                self.handle = rarfile.RarFile(self.archive)
                members = [_rar_member(info) for info in self.handle.infolist()]
            elif is_archive(name):
                self.handle = tarfile.open(self.archive)
                members = [_tar_member(info) for info in self.handle.getmembers()]
            else:
                raise ArchiveError(
                    f"{self.archive}: not a supported archive; use one ending in {', '.join(ARCHIVE_SUFFIXES)}."
                )
        except (zipfile.BadZipFile, tarfile.TarError, rarfile.Error, EOFError, OSError) as error:
            self.__exit__()
            raise ArchiveError(f"{self.archive}: cannot be read as an archive ({error}).") from None
        return self.handle, members

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.close()


def _zip_member(info: zipfile.ZipInfo) -> Member:
    mode = info.external_attr >> 16
    return Member(
        _normalise(info.filename), info.file_size, info.compress_size, not info.is_dir(), stat.S_ISLNK(mode), info
    )


def _rar_member(info: rarfile.RarInfo) -> Member:
    return Member(
        _normalise(info.filename), info.file_size, info.compress_size, info.is_file(), info.is_symlink(), info
    )


def _tar_member(info: tarfile.TarInfo) -> Member:
    is_link = info.issym() or info.islnk() or not (info.isfile() or info.isdir())
    return Member(_normalise(info.name), info.size, None, info.isfile(), is_link, info)


def _normalise(name: str) -> str:
    return name.replace("\\", "/")


def _check_member(archive: Path, member: Member) -> None:
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise ArchiveError(f"{archive}: refused, member {name!r} would be written outside the destination.")
    if member.is_link:
        raise ArchiveError(f"{archive}: refused, member {name!r} is a link (or device); links are not extracted.")
    if member.compressed_size and member.size > MAX_COMPRESSION_RATIO * max(member.compressed_size, 1024):
        raise ArchiveError(
            f"{archive}: refused, member {name!r} expands {member.size // member.compressed_size}x "
            f"(a decompression bomb?)."
        )


def _check_sizes(archive: Path, destination: Path, members: list[Member], max_bytes: int | None) -> None:
    total = sum(member.size for member in members)
    if max_bytes is not None and total > max_bytes:
        raise ArchiveError(f"{archive}: refused, it would expand to {total:,} bytes, over the limit of {max_bytes:,}.")
    existing = destination
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if total > free:
        raise ArchiveError(
            f"{archive}: needs {total / 1e9:.1f} GB to extract but {existing} has {free / 1e9:.1f} GB free; free some space."
        )


def _copy_member(archive: Path, handle, member: Member, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        source = (
            handle.extractfile(member.handle) if isinstance(handle, tarfile.TarFile) else handle.open(member.handle)
        )
        with source, open(partial, "wb") as sink:
            written = 0
            while chunk := source.read(1 << 20):
                written += len(chunk)
                if written > member.size:
                    raise ArchiveError(f"{archive}: member {member.name!r} holds more data than it declares; refused.")
                sink.write(chunk)
        partial.replace(target)
    except (zipfile.BadZipFile, tarfile.TarError, rarfile.Error, EOFError, OSError) as error:
        raise ArchiveError(f"{archive}: member {member.name!r} could not be extracted ({error}).") from None
    finally:
        partial.unlink(missing_ok=True)
