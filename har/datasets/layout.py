"""The UCF50 folder layout, shared by UCF50 itself and the built-in demo dataset.

    <root>/<Class>/v_<Class>_gXX_cYY.avi

`gXX` is the group (25 per class in UCF50: clips of one group share actor and background) and `cYY` the
clip within it. One quirk is kept as found: the folder `Billiards` holds files named `v_Billards_...`, so
the class is always taken from the folder, never from the file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from har.video import VIDEO_EXTENSIONS

GROUP_PATTERN = re.compile(r"_g(\d+)_c(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class ClipFile:
    path: Path
    class_name: str
    group: int  # -1 when the file name carries no gXX


def is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def group_of(path: Path) -> int:
    match = GROUP_PATTERN.search(path.stem)
    return int(match.group(1)) if match else -1


def find_root(folder: str | Path) -> Path:
    """The folder that holds the class folders: `folder` itself or one level down (as after unpacking UCF50.rar)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such dataset folder.")
    if class_names(folder):
        return folder
    for child in sorted(p for p in folder.iterdir() if p.is_dir()):
        if class_names(child):
            return child
    raise ValueError(f"{folder}: holds no class folders with video files (expected <Class>/v_<Class>_gXX_cYY.avi).")


def class_names(root: Path) -> list[str]:
    """Sorted names of the sub-folders of `root` that contain at least one video file."""
    return sorted(
        child.name for child in root.iterdir() if child.is_dir() and any(is_video_file(p) for p in child.iterdir())
    )


def find_clips(root: str | Path, classes: list[str] | tuple[str, ...] | None = None) -> list[ClipFile]:
    """Video files of `classes` (all when None) under `root`, ordered by class then file name.

    Raises:
        ValueError: a requested class has no folder under root.
    """
    root = find_root(root)
    available = class_names(root)
    classes = list(classes) if classes else available
    missing = [name for name in classes if name not in available]
    if missing:
        raise ValueError(
            f"{root}: no class folder for {', '.join(missing)}; available: {', '.join(available) or 'none'}."
        )
    clips = []
    for class_name in classes:
        for path in sorted((root / class_name).iterdir()):
            if is_video_file(path):
                clips.append(ClipFile(path, class_name, group_of(path)))
    return clips
