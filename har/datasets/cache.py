"""The frame cache: every clip of a dataset decoded once into uint8 frames on disk.

A cache is a folder:

    frames.npy       (N, T, H, W, 3) uint8 RGB, memory-mapped when loaded
    labels.npy       (N,) int64, index into class_names
    groups.npy       (N,) int64, UCF50 group (gXX) or -1
    real_frames.npy  (N,) int64, distinct source frames per clip (< T means padded)
    meta.json        class names, sources, sequence length, image size, fingerprint, content, skipped clips

Two identities: `fingerprint` names the inputs (file names, sizes, modification times: it changes whenever the
files are rewritten, so a cache is rebuilt), `content` the decoded result (a hash of the arrays: equal on two
machines that decoded the same videos to the same frames, whenever the files were written).

Clips are decoded in worker processes and each result is written straight to its slot in `frames.npy`, so
memory stays bounded whatever the dataset size: no float32 copy, no list of clips. The folder is written
under a temporary name and renamed when complete, so a killed build never leaves a cache that looks valid.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har import _child_main, _decode_worker
from har.config import Config
from har.datasets import layout

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ARRAYS = ("labels", "groups", "real_frames")


@dataclass
class FrameCache:
    path: Path
    frames: np.ndarray  # (N, T, H, W, 3) uint8, read-only memmap
    labels: np.ndarray  # (N,) int64
    groups: np.ndarray  # (N,) int64
    real_frames: np.ndarray  # (N,) int64
    class_names: tuple[str, ...]
    sources: list[str]
    sequence_length: int
    image_size: int
    fingerprint: str
    skipped: list[dict]  # [{"path": ..., "reason": ...}] for clips that could not be decoded
    content: str | None = None  # `content_hash` of the arrays, recorded at build; None for older caches

    def __len__(self) -> int:
        return len(self.labels)

    def info(self) -> dict:
        """What `har data info` shows: counts per class, groups, padded clips, size on disk."""
        per_class = np.bincount(self.labels, minlength=len(self.class_names))
        return {
            "path": str(self.path),
            "clips": len(self),
            "classes": {name: int(count) for name, count in zip(self.class_names, per_class)},
            "groups": int(len(np.unique(self.groups[self.groups >= 0]))),
            "groups_per_class": {
                name: int(len(np.unique(self.groups[(self.labels == i) & (self.groups >= 0)])))
                for i, name in enumerate(self.class_names)
            },
            "padded_clips": int((self.real_frames < self.sequence_length).sum()),
            "skipped_clips": len(self.skipped),
            "sequence_length": self.sequence_length,
            "image_size": self.image_size,
            "shape": list(self.frames.shape),
            "bytes_on_disk": sum(p.stat().st_size for p in self.path.iterdir() if p.is_file()),
            "fingerprint": self.fingerprint,
            "content": self.content,
        }


def load_cache(path: str | Path) -> FrameCache:
    """Opens a cache folder; frames stay on disk (memory-mapped, read-only)."""
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path}: not a frame cache (no meta.json); build one with `har data build`.")
    try:
        meta = json.loads(meta_path.read_text())
        frames = np.load(path / "frames.npy", mmap_mode="r")
        arrays = {name: np.load(path / f"{name}.npy") for name in ARRAYS}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: the frame cache is damaged ({error}); rebuild it with `har data build`.") from None
    if meta.get("version") != FORMAT_VERSION or any(len(a) != len(frames) for a in arrays.values()):
        raise ValueError(
            f"{path}: the frame cache is from another version or damaged; rebuild it with `har data build`."
        )
    return FrameCache(
        path=path,
        frames=frames,
        class_names=tuple(meta["class_names"]),
        sources=meta["sources"],
        sequence_length=meta["sequence_length"],
        image_size=meta["image_size"],
        fingerprint=meta["fingerprint"],
        skipped=meta["skipped"],
        content=meta.get("content"),
        **arrays,
    )


def content_hash(
    class_names, labels: np.ndarray, groups: np.ndarray, real_frames: np.ndarray, frames: np.ndarray
) -> str:
    """sha256 over the class names, labels, groups, real frame counts and every frame's bytes, in order: what the
    cache holds, not which files it came from (`fingerprint`). `frames` is (N, T, H, W, 3) uint8, read in chunks."""
    digest = hashlib.sha256(json.dumps(list(class_names)).encode())
    for array in (labels, groups, real_frames):
        digest.update(np.ascontiguousarray(array, dtype="<i8").tobytes())
    for start in range(0, len(frames), 64):
        digest.update(np.ascontiguousarray(frames[start : start + 64], dtype=np.uint8).tobytes())
    return digest.hexdigest()


def cache_content(cache: FrameCache) -> str:
    """The cache's content hash: recorded at build, else computed now (caches built before it was recorded)."""
    if cache.content is not None:
        return cache.content
    return content_hash(cache.class_names, cache.labels, cache.groups, cache.real_frames, cache.frames)


def fingerprint(clips: list[layout.ClipFile], classes: list[str], sequence_length: int, image_size: int) -> str:
    """A hash of the build settings and of every input file's name, size and modification time."""
    digest = hashlib.sha256()
    settings = {"version": FORMAT_VERSION, "classes": classes, "T": sequence_length, "size": image_size}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for clip in clips:
        status = clip.path.stat()
        digest.update(f"{clip.class_name}/{clip.path.name}:{status.st_size}:{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def list_caches(data_dir: str | Path) -> list[Path]:
    """Cache folders under `<data_dir>/caches`, newest first."""
    folder = Path(data_dir) / "caches"
    if not folder.is_dir():
        return []
    caches = [path for path in folder.iterdir() if (path / "meta.json").is_file() and not path.name.startswith(".")]
    return sorted(caches, key=lambda path: (path / "meta.json").stat().st_mtime, reverse=True)


def default_cache_path(
    data_dir: str | Path,
    source: str | Path,
    sequence_length: int,
    image_size: int,
    classes: list[str] | tuple[str, ...] | None = None,
) -> Path:
    """`<data_dir>/caches/<source>-T<len>-S<size>` for every class of the source; a subset of its classes gets
    its own folder, `<source>-<k>c<hash>-T<len>-S<size>`, so it never replaces a cache that earlier runs were
    trained on (and `build_cache` refuses to rebuild a cache with its classes in another order)."""
    name = Path(source).resolve().name
    if classes is not None and set(classes) != {clip.class_name for clip in layout.find_clips(source)}:
        digest = hashlib.sha256(",".join(sorted(classes)).encode()).hexdigest()[:6]
        name = f"{name}-{len(classes)}c{digest}"
    return Path(data_dir) / "caches" / f"{name}-T{sequence_length}-S{image_size}"


def build_cache(
    source: str | Path,
    out: str | Path,
    *,
    classes: list[str] | tuple[str, ...] | None = None,
    sequence_length: int = Config.sequence_length,
    image_size: int = Config.image_size,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Decodes the clips of `classes` under the dataset folder `source` into a cache at `out`.

    Reuses `out` when it already holds a cache of the same inputs and settings (same fingerprint).

    Args:
        source: a dataset folder in the UCF50 layout.
        out: the cache folder to write.
        classes: class names in label order; None takes every class folder, sorted.
        sequence_length: frames per clip (T); the default is `Config`'s.
        image_size: side of the square frames; the default is `Config`'s.
        workers: decoding processes; None uses every core.
        progress: called with (clips done, clips total).
    """
    out = Path(out)
    clips, classes, expected = _inputs(source, classes, sequence_length, image_size)
    if _up_to_date(out, expected, classes):
        log.info("%s is up to date; reusing it", out)
        return out
    with _build_lock(out):
        if _up_to_date(out, expected, classes):  # another process built it while this one waited
            log.info("%s is up to date; reusing it", out)
            return out
        return _build(source, out, clips, classes, sequence_length, image_size, workers, progress, expected)


def cache_is_current(
    source: str | Path,
    out: str | Path,
    *,
    classes: list[str] | tuple[str, ...] | None = None,
    sequence_length: int,
    image_size: int,
) -> bool:
    """True when `out` already holds the cache that `build_cache` with these arguments would write.

    Raises:
        ValueError: `source` has no clips of `classes`, or `out` holds a cache of other classes.
    """
    _, classes, expected = _inputs(source, classes, sequence_length, image_size)
    return _up_to_date(Path(out), expected, classes)


def _inputs(source, classes, sequence_length: int, image_size: int) -> tuple[list[layout.ClipFile], list[str], str]:
    """The clips to decode, the class names in label order, and the fingerprint of the cache they make."""
    clips = layout.find_clips(source, classes)
    classes = list(classes) if classes else sorted({clip.class_name for clip in clips})
    if not clips:
        raise ValueError(f"{source}: no video files for {', '.join(classes)}.")
    return clips, classes, fingerprint(clips, classes, sequence_length, image_size)


def _up_to_date(out: Path, expected: str, classes: list[str]) -> bool:
    """True when `out` holds this very cache; refuses to replace a cache of another class list."""
    try:
        cache = load_cache(out)
    except (FileNotFoundError, ValueError):
        return False  # none yet, or damaged: (re)build
    if cache.fingerprint == expected:
        return True
    if list(cache.class_names) != list(classes):
        raise ValueError(
            f"{out} holds a cache of other classes ({', '.join(cache.class_names)}), which runs may "
            "have been trained on; choose another --out for these classes."
        )
    return False


class _build_lock:
    """One builder at a time per cache folder (an flock the kernel frees if the builder dies); the holder
    first removes what dead builders left (`.building-PID`, `.old-PID` folders)."""

    def __init__(self, out: Path):
        self.out = out

    def __enter__(self):
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.out.with_name(f".{self.out.name}.lock"), "a+")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        for leftover in self.out.parent.glob(f".{self.out.name}.*-*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
        return self

    def __exit__(self, *exc):
        self.handle.close()


def _build(source, out: Path, clips, classes, sequence_length, image_size, workers, progress, expected) -> Path:
    staging = out.with_name(f".{out.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        skipped = _decode_all(clips, staging, sequence_length, image_size, workers, progress)
        kept = [i for i in range(len(clips)) if i not in skipped]
        if not kept:
            raise ValueError(f"{source}: none of the {len(clips)} clips could be decoded; first: {skipped[0]}.")
        if skipped:
            _compact(staging / "frames.npy", kept)
        labels = np.array([classes.index(clips[i].class_name) for i in kept], dtype=np.int64)
        np.save(staging / "labels.npy", labels)
        groups = np.array([clips[i].group for i in kept], dtype=np.int64)
        np.save(staging / "groups.npy", groups)
        real = np.load(staging / "real_frames.npy")[kept]
        np.save(staging / "real_frames.npy", real)
        frames = np.load(staging / "frames.npy", mmap_mode="r")
        content = content_hash(classes, labels, groups, real, frames)
        del frames
        meta = {
            "version": FORMAT_VERSION,
            "class_names": classes,
            "sources": [str(clips[i].path) for i in kept],
            "sequence_length": sequence_length,
            "image_size": image_size,
            "fingerprint": expected,
            "content": content,
            "skipped": [{"path": str(clips[i].path), "reason": reason} for i, reason in sorted(skipped.items())],
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=1))
        swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for item in meta["skipped"]:
        log.warning("skipped %s: %s", item["path"], item["reason"])
    return out


def _decode_all(clips, staging: Path, sequence_length: int, image_size: int, workers, progress) -> dict[int, str]:
    """Decodes every clip into staging/frames.npy; returns {clip index: reason} for clips that failed."""
    shape = (len(clips), sequence_length, image_size, image_size, 3)
    frames = np.lib.format.open_memmap(staging / "frames.npy", mode="w+", dtype=np.uint8, shape=shape)
    offset, clip_bytes = frames.offset, int(np.prod(shape[1:]))
    del frames
    real_frames = np.zeros(len(clips), dtype=np.int64)
    skipped = {}
    jobs = [(i, str(clip.path), sequence_length, image_size) for i, clip in enumerate(clips)]
    # Each worker holds one clip and OpenCV (~70 MB); 8 of them keep a full UCF50 build well under 2 GB.
    workers = max(1, min(workers or min(os.cpu_count() or 1, 8), len(clips)))
    # Spawned, not forked: the caller may be a process with TensorFlow's threads running. Workers start from
    # har._child_main, not the caller's __main__ (under Streamlit, the app script).
    context = _child_main.context("spawn")
    with open(staging / "frames.npy", "r+b") as sink, context.Pool(workers, initializer=_decode_worker.setup) as pool:
        for done, (i, data, real, reason) in enumerate(
            pool.imap_unordered(_decode_worker.decode, jobs, chunksize=2), 1
        ):
            if data is None:
                skipped[i] = reason
            else:
                sink.seek(offset + i * clip_bytes)
                sink.write(data)
                real_frames[i] = real
            if progress:
                progress(done, len(clips))
    np.save(staging / "real_frames.npy", real_frames)
    return skipped


def _compact(frames_path: Path, kept: list[int]) -> None:
    """Rewrites frames.npy with only the `kept` rows, one row at a time."""
    source = np.load(frames_path, mmap_mode="r")
    compact_path = frames_path.with_name("frames.compact.npy")
    target = np.lib.format.open_memmap(compact_path, mode="w+", dtype=np.uint8, shape=(len(kept), *source.shape[1:]))
    for row, i in enumerate(kept):
        target[row] = source[i]
    target.flush()
    del source, target
    compact_path.replace(frames_path)


def swap_in(staging: Path, out: Path) -> None:
    """Puts a finished staging folder at `out`; an older folder there is moved aside, not deleted, until the
    new one is in place (a cache here, the demo dataset in `har.datasets.demo`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        retired = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.replace(retired)
        staging.replace(out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.replace(out)
