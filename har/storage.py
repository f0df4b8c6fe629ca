"""Where data and models are kept, and whether they survive a restart.

One setting, `HAR_HOME`, puts `data/` and `models/` under one folder (`HAR_DATA_DIR` and `HAR_MODELS_DIR`
still override either). On a Hugging Face Space only a mounted Storage Bucket survives a restart: the
container's own filesystem (an overlay) starts afresh each time. `status()` tells which one the models dir
is on, from the kernel's mount table, so the app can warn before anyone trains runs that would vanish.
"""

from __future__ import annotations

import os
from pathlib import Path

from har import config as config_module

# Filesystems that live only as long as the container or the machine's memory.
EPHEMERAL_FILESYSTEMS = ("overlay", "aufs", "tmpfs", "ramfs")
PERSISTENT_VARIABLE = "HAR_STORAGE_PERSISTENT"  # "1" or "0": overrides the guess from the mount table


def status(data_dir: str | os.PathLike | None = None, models_dir: str | os.PathLike | None = None) -> dict:
    """Where data and models live and whether they persist.

    Returns a dict: `home` ($HAR_HOME or None), `data_dir`, `models_dir` (absolute paths), `writable` (the
    models dir can be written), `filesystem` and `mount` (the models dir's filesystem type and mount point),
    `persistent` (bool) and `reason` (one sentence saying why, and what to do when it is not).
    """
    data = Path(config_module.data_dir(data_dir)).absolute()
    models = Path(config_module.models_dir(models_dir)).absolute()
    mount, filesystem = mount_of(models)
    writable = _writable(models)
    override = os.environ.get(PERSISTENT_VARIABLE, "").strip()
    if not writable:
        persistent, reason = False, f"the models dir {models} cannot be written; set HAR_HOME to a writable folder."
    elif override in ("0", "1"):
        persistent = override == "1"
        reason = f"{PERSISTENT_VARIABLE}={override} says so."
    elif filesystem in EPHEMERAL_FILESYSTEMS:
        persistent = False
        reason = (
            f"the models dir {models} is on the container's own {filesystem} filesystem, which a restart "
            f"wipes: attach a Storage Bucket as a volume at /data (see the README) to keep runs."
        )
    else:
        persistent = True
        reason = f"the models dir {models} is on the {filesystem} filesystem mounted at {mount}."
    return {
        "home": os.environ.get("HAR_HOME") or None,
        "data_dir": str(data),
        "models_dir": str(models),
        "writable": writable,
        "filesystem": filesystem,
        "mount": str(mount),
        "persistent": persistent,
        "reason": reason,
    }


def mount_of(path: str | os.PathLike, mountinfo: str = "/proc/self/mountinfo") -> tuple[Path, str]:
    """(mount point, filesystem type) of the mount that holds `path` (or would hold it, if it does not exist)."""
    path = Path(path).resolve()  # symlinks of the part that exists are followed; the rest is taken as written
    best, filesystem = Path("/"), "unknown"
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return best, filesystem
    for line in lines:
        # "36 35 98:0 /root /mnt/point rw,noatime master:1 - ext3 /dev/root rw": the mount point is the fifth
        # field (spaces escaped as \040), the type follows the lone "-".
        fields = line.split(" ")
        try:
            point = Path(fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\"))
            kind = fields[fields.index("-", 6) + 1]
        except (IndexError, ValueError):
            continue
        # Later lines are newer mounts, which hide older ones at the same point, hence >=.
        if (point == path or point in path.parents) and len(point.parts) >= len(best.parts):
            best, filesystem = point, kind
    return best, filesystem


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False
