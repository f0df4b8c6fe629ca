"""Getting UCF50: download the official archive, or take one already on disk, and extract chosen classes."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from har import archives
from har.datasets import layout
from har.download import download
from har.video import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

UCF50_URL = "https://www.crcv.ucf.edu/data/UCF50.rar"
UCF50_SIZE = 3_233_554_570  # bytes of the official UCF50.rar; a download from UCF50_URL must have exactly this
UCF50_CLASSES = (
    "BaseballPitch",
    "Basketball",
    "BenchPress",
    "Biking",
    "Billiards",
    "BreastStroke",
    "CleanAndJerk",
    "Diving",
    "Drumming",
    "Fencing",
    "GolfSwing",
    "HighJump",
    "HorseRace",
    "HorseRiding",
    "HulaHoop",
    "JavelinThrow",
    "JugglingBalls",
    "JumpRope",
    "JumpingJack",
    "Kayaking",
    "Lunges",
    "MilitaryParade",
    "Mixing",
    "Nunchucks",
    "PizzaTossing",
    "PlayingGuitar",
    "PlayingPiano",
    "PlayingTabla",
    "PlayingViolin",
    "PoleVault",
    "PommelHorse",
    "PullUps",
    "Punch",
    "PushUps",
    "RockClimbingIndoor",
    "RopeClimbing",
    "Rowing",
    "SalsaSpin",
    "SkateBoarding",
    "Skiing",
    "Skijet",
    "SoccerJuggling",
    "Swing",
    "TaiChi",
    "TennisSwing",
    "ThrowDiscus",
    "TrampolineJumping",
    "VolleyballSpiking",
    "WalkingWithDog",
    "YoYo",
)


def check_classes(classes: list[str] | tuple[str, ...]) -> list[str]:
    """Validates UCF50 class names (case-sensitive, as the folders are) before anything is downloaded."""
    unknown = [name for name in classes if name not in UCF50_CLASSES]
    if unknown:
        raise ValueError(f"not UCF50 classes: {', '.join(unknown)}; the 50 are: {', '.join(UCF50_CLASSES)} (or 'all').")
    return list(classes)


def prepare(
    data_dir: str | Path,
    classes: list[str] | tuple[str, ...],
    *,
    source: str | Path | None = None,
    url: str = UCF50_URL,
    on_download: Callable[[int, int | None], None] | None = None,
    on_extract: Callable[[int, int], None] | None = None,
    insecure_tls: bool = False,
) -> Path:
    """Makes `classes` of UCF50 available as `<root>/<Class>/*.avi` and returns the root.

    Args:
        data_dir: where the archive is downloaded and the classes are extracted (`<data_dir>/UCF50`).
        classes: UCF50 class names.
        source: an archive (.rar, .zip, .tar*) or an extracted folder; None downloads `url`.
        insecure_tls: download without checking the host's TLS certificate (resolved by the entry point:
            `har.download.insecure_tls_requested`).
    """
    classes = check_classes(classes)
    data_dir = Path(data_dir)
    if source is not None and Path(source).is_dir():
        root = layout.find_root(source)
        layout.find_clips(root, classes)  # raises if a class is missing
        return root
    if source is None:
        source = download_archive(data_dir, url=url, progress=on_download, insecure_tls=insecure_tls)
    return extract_classes(source, data_dir / "UCF50", classes, progress=on_extract)


def download_archive(
    data_dir: str | Path,
    *,
    url: str = UCF50_URL,
    progress: Callable[[int, int | None], None] | None = None,
    insecure_tls: bool = False,
) -> Path:
    """Downloads the UCF50 archive to `<data_dir>/downloads/<name>` (resuming) and returns its path.

    From the official URL the file must have UCF50_SIZE bytes; another URL's size is taken from its server.
    """
    name = PurePosixPath(urllib.parse.urlsplit(url).path).name or "UCF50.rar"
    expected_size = UCF50_SIZE if url == UCF50_URL else None
    return download(
        url,
        Path(data_dir) / "downloads" / name,
        progress=progress,
        expected_size=expected_size,
        insecure_tls=insecure_tls,
    )


def extract_classes(
    archive: str | Path,
    destination: str | Path,
    classes: list[str] | tuple[str, ...] | None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Extracts the video files of `classes` (all when None) from a UCF50-layout archive to `destination/<Class>/`.

    Members are recognised by their parent folder (`[UCF50/]<Class>/<file>`), so the archive may hold the
    class folders at its top or one level down. A second call for the same archive (same size and time) and
    classes it already extracted writes nothing: the clips keep their times, so a frame cache built from them
    stays valid.
    """
    destination = Path(destination)
    wanted = set(classes) if classes else None
    marker = destination.with_name(f".{destination.name}.extracted.json")  # beside it: the folder holds clips only
    status = Path(archive).stat()
    source = {"archive": str(Path(archive).resolve()), "size": status.st_size, "mtime_ns": status.st_mtime_ns}
    try:
        done = json.loads(marker.read_text())
        if {key: done[key] for key in source} == source and (
            done["classes"] is None or wanted is not None and wanted <= set(done["classes"])
        ):
            log.info(
                "%s already holds %s from %s", destination, ", ".join(sorted(wanted or [])) or "every class", archive
            )
            return destination
    except (OSError, ValueError, KeyError, TypeError):
        pass

    def select(name: PurePosixPath) -> PurePosixPath | None:
        if len(name.parts) < 2 or name.suffix.lower() not in VIDEO_EXTENSIONS:
            return None
        class_name = name.parts[-2]
        if wanted is not None and class_name not in wanted:
            return None
        return PurePosixPath(class_name, name.name)

    written = archives.extract(archive, destination, select=select, progress=progress)
    found = {path.parent.name for path in written} | set(
        layout.class_names(destination) if destination.is_dir() else []
    )
    missing = sorted((wanted or set()) - found)
    if missing or not written and not found:
        raise ValueError(f"{archive}: holds no clips for {', '.join(missing) or 'any class'}; is it UCF50?")
    log.info("extracted %d clips to %s", len(written), destination)
    marker.write_text(json.dumps({**source, "classes": sorted(wanted) if wanted is not None else None}))
    return destination
