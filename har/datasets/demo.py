"""The built-in demo dataset: the report's four UCF50 classes, drawn as stick figures and written as XVID videos.

It exists so that everything works with no internet: generated in under a minute, deterministic for a seed,
and in the UCF50 layout (`<Class>/v_<Class>_gXX_cYY.avi`), so the same pipeline reads it. The classes are the
report's, in its order:

    WalkingWithDog  a figure walking with a smaller four-legged figure on a lead
    TaiChi          a figure making slow, continuous arm and leg arcs on the spot
    Swing           a figure on a swinging seat: pendulum motion under a frame
    HorseRace       several four-legged figures with riders galloping along a railed track

It teaches what UCF50 teaches. Like a UCF50 group, each group is one longer performance (one actor's size,
colours and speed, one background, one camera angle and camera motion) cut into consecutive clips, so the
clips of a group look alike. Groups differ in scale, position, speed, camera pan and shake, lighting,
occluders, distractor motion (balls, birds, cars and passers-by, in every class), sensor noise and JPEG-like
compression. A random split of the clips therefore lets a model score by recognising the scene, while a
split by group leaves only the action to learn (see benchmarks/demo_difficulty.py for the numbers).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from har.config import Config
from har.datasets.cache import build_cache, cache_is_current, default_cache_path, swap_in
from har.datasets.demo_drawing import render_clips
from har.datasets.demo_scenes import DEMO_CLASSES, FPS, HEIGHT, WIDTH, sample_scene

VERSION = 2  # bump when the pictures change, so existing demo folders are regenerated
DEMO_SEED = 27  # the dataset's own seed (the report's), independent of a training run's
DEMO_FOLDER = "demo"  # <data_dir>/demo


class DemoData(NamedTuple):
    """The demo dataset and its frame cache, as `ensure_demo` left them."""

    dataset: Path  # the dataset folder, in the UCF50 layout
    cache: Path  # its frame cache at the config's sequence length and image size
    dataset_reused: bool  # True: it was already there with the same settings; False: (re)generated now
    cache_reused: bool  # True: it was already up to date; False: (re)built now

    @property
    def reused(self) -> bool:
        """Both were already there: nothing was written."""
        return self.dataset_reused and self.cache_reused


def demo_cache_path(data_dir: str | Path, config: Config, dataset: str | Path | None = None) -> Path:
    """Where the demo's frame cache for `config`'s sequence length and image size lives (every class, sorted):
    `<data_dir>/caches/demo-T<len>-S<size>` for the default dataset folder `<data_dir>/demo`."""
    dataset = Path(dataset) if dataset is not None else Path(data_dir) / DEMO_FOLDER
    return default_cache_path(data_dir, dataset, config.sequence_length, config.image_size)


def ensure_demo(
    data_dir: str | Path,
    config: Config,
    *,
    dataset: str | Path | None = None,
    groups: int | None = None,
    clips_per_group: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    on_generate: Callable[[int, int], None] | None = None,
    on_decode: Callable[[int, int], None] | None = None,
) -> DemoData:
    """The demo dataset and its frame cache, each made if missing or made with other settings.

    Args:
        data_dir: the data folder; the dataset goes to `<data_dir>/demo` unless `dataset` names another folder,
            the cache to `demo_cache_path(data_dir, config, dataset)`.
        config: gives the cache's sequence length and image size (its classes are not used: the cache holds
            every demo class, sorted by name, as `har data build` makes it).
        groups, clips_per_group, seed: the dataset's settings, as for `generate_demo`; a dataset made with
            other ones is regenerated. Those left None keep what the dataset already there was made with (a small
            `har data demo --groups 2` stays small), else take `generate_demo`'s defaults.
        workers: decoding processes for the cache; None uses every core (at most 8).
        on_generate: called with (clips written, clips total) while the dataset is generated.
        on_decode: called with (clips decoded, clips total) while the cache is built.
    """
    data_dir = Path(data_dir)
    dataset = Path(dataset) if dataset is not None else data_dir / DEMO_FOLDER
    asked = {"groups": groups, "clips_per_group": clips_per_group, "seed": seed}
    settings = {**DEFAULT_SETTINGS, **_written_settings(dataset), **{k: v for k, v in asked.items() if v is not None}}
    groups, clips_per_group, seed = settings["groups"], settings["clips_per_group"], settings["seed"]
    dataset_reused = demo_is_current(dataset, groups=groups, clips_per_group=clips_per_group, seed=seed)
    generate_demo(dataset, groups=groups, clips_per_group=clips_per_group, seed=seed, progress=on_generate)
    cache = demo_cache_path(data_dir, config, dataset)
    size = {"sequence_length": config.sequence_length, "image_size": config.image_size}
    cache_reused = cache_is_current(dataset, cache, **size)
    build_cache(dataset, cache, **size, workers=workers, progress=on_decode)
    return DemoData(dataset, cache, dataset_reused, cache_reused)


def demo_is_current(out: str | Path, *, groups: int, clips_per_group: int, seed: int = DEMO_SEED) -> bool:
    """True when `out` holds a demo dataset made by this version with these settings."""
    marker = Path(out) / "demo.json"
    try:
        written = json.loads(marker.read_text())
        return {key: written.get(key) for key in SETTING_KEYS} == _settings(groups, clips_per_group, seed)
    except (OSError, ValueError, AttributeError):
        return False


def describe_dataset(sources: list[str]) -> dict:
    """Which dataset a cache's clips (`FrameCache.sources`) come from, as exported runs record it.

    A demo folder (its `demo.json` beside the class folders) gives {"name": "demo", "groups", "clips_per_group",
    "seed", "version", "fingerprint"} (`fingerprint`: `clips_fingerprint` of its clips, computed now for a
    demo written before it was recorded); any other gives {"name": <the dataset folder's name, e.g. "UCF50">}.
    """
    if not sources:
        return {"name": None}
    root = Path(sources[0]).parent.parent  # <root>/<Class>/v_<Class>_gXX_cYY.avi
    try:
        written = json.loads((root / "demo.json").read_text())
    except (OSError, ValueError):
        return {"name": root.name}
    if not isinstance(written, dict):
        return {"name": root.name}
    fingerprint = written.get("fingerprint") or clips_fingerprint(root)
    return {
        "name": "demo",
        **{key: written.get(key) for key in ("groups", "clips_per_group", "seed", "version")},
        "fingerprint": fingerprint,
    }


def from_demo(sources: list[str]) -> bool:
    """Whether a cache's clips (`FrameCache.sources`) come from a demo folder; reads no clip (unlike
    `describe_dataset`), so a page can ask on every rerun."""
    return bool(sources) and (Path(sources[0]).parent.parent / "demo.json").is_file()


def clips_fingerprint(folder: str | Path) -> str:
    """sha256 over every clip's `<Class>/<file name>` and bytes, in sorted order: the same on any machine whose
    OpenCV wrote the same videos, whenever they were written (unlike the frame cache's `fingerprint`)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*/*.avi"), key=lambda path: (path.parent.name, path.name)):
        digest.update(f"{path.parent.name}/{path.name}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


DEFAULT_SETTINGS = {"groups": 25, "clips_per_group": 4, "seed": DEMO_SEED}  # generate_demo's defaults
SETTING_KEYS = ("version", "classes", "groups", "clips_per_group", "seed")  # demo.json's keys that make a demo


def _written_settings(dataset: Path) -> dict:
    """The settings a demo dataset of this version was made with, read from its `demo.json`; {} if none."""
    try:
        written = json.loads((dataset / "demo.json").read_text())
        if written.get("version") != VERSION:
            return {}
        return {key: int(written[key]) for key in DEFAULT_SETTINGS}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _settings(groups: int, clips_per_group: int, seed: int) -> dict:
    """What `demo.json` records; a dataset is regenerated when these differ."""
    return {
        "version": VERSION,
        "classes": list(DEMO_CLASSES),
        "groups": groups,
        "clips_per_group": clips_per_group,
        "seed": seed,
    }


def generate_demo(
    out: str | Path,
    *,
    groups: int = 25,
    clips_per_group: int = 4,
    seed: int = DEMO_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Writes the demo dataset to `out` (skipped when `out` already holds one made with the same settings).

    Args:
        out: dataset folder to create, holding one folder per class.
        groups: performances per class (UCF50 has 25); group g is the same for any `groups` >= g.
        clips_per_group: consecutive clips cut from each performance.
        seed: makes the whole dataset reproducible.
        progress: called with (clips written, clips total).
    """
    out = Path(out)
    if groups < 1 or clips_per_group < 1:
        raise ValueError(f"groups={groups} and clips_per_group={clips_per_group} must be at least 1.")
    if demo_is_current(out, groups=groups, clips_per_group=clips_per_group, seed=seed):
        return out
    settings = _settings(groups, clips_per_group, seed)
    staging = out.with_name(f".{out.name}.generating-{os.getpid()}")  # two generators never share one
    shutil.rmtree(staging, ignore_errors=True)
    total, done = len(DEMO_CLASSES) * groups * clips_per_group, 0
    try:
        for class_index, class_name in enumerate(DEMO_CLASSES):
            (staging / class_name).mkdir(parents=True)
            for group in range(1, groups + 1):
                scene = sample_scene(class_name, np.random.default_rng([seed, class_index, group]))
                for clip, frames in enumerate(render_clips(scene, clips_per_group), start=1):
                    _write_clip(staging / class_name / f"v_{class_name}_g{group:02d}_c{clip:02d}.avi", frames)
                    done += 1
                    if progress:
                        progress(done, total)
        (staging / "demo.json").write_text(json.dumps({**settings, "fingerprint": clips_fingerprint(staging)}))
        swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _write_clip(path: Path, frames: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"XVID"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write XVID video on this machine.")
    for frame in frames:
        writer.write(frame)
    writer.release()
