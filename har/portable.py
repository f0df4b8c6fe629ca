"""Moving a run between machines (a Space loses its disk on restart) as weights plus metadata.

An exported run is a zip of exactly two members: `metadata.json` and `model.weights.h5`. Importing never
loads a foreign `.keras` file: the architecture is rebuilt from this package's code for the model the
metadata names, the metadata is validated first, and only weights (arrays) are read from the archive.

A run's metadata names the frame cache it was trained on by path and by `fingerprint` (file names, sizes and
times), which mean nothing on another machine. So an export also records what the data *is*: the dataset's
name (and, for the demo, its settings and `clips_fingerprint`), the cache's `content` hash, classes and frame
size; an import binds the run to a local cache of the same dataset and settings (`bind_to_local_cache`), so
`har evaluate`, Compare and the held-out clips work there too.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from har.config import MODEL_NAMES, Config
from har.datasets.cache import cache_content, list_caches, load_cache
from har.datasets.demo import describe_dataset
from har.runs import Run, find_run, read_run

log = logging.getLogger(__name__)

MEMBERS = {"metadata.json", "model.weights.h5"}
MAX_METADATA_BYTES = 10_000_000
MAX_WEIGHTS_BYTES = 500_000_000
DEMO_SETTINGS = ("groups", "clips_per_group", "seed", "version")  # a demo cache binds only to the same demo


def export_run(run: str | Path, out: str | Path, models_dir: str | Path) -> Path:
    """Writes a finished run as a zip of its metadata (`dataset` enriched by `dataset_record`) and weights;
    returns the zip's path. The zip is written under a temporary name and renamed when complete."""
    import keras

    found = find_run(models_dir, run)
    if found.status != "finished":
        raise ValueError(f"run {found.id} is {found.status}: only finished runs can be exported.")
    model = keras.saving.load_model(found.path / "model.keras", compile=False, safe_mode=True)
    metadata = {**found.metadata, "dataset": dataset_record(found.metadata)}
    out = Path(out)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "model.weights.h5"
        model.save_weights(weights)
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("metadata.json", json.dumps(metadata, indent=1))
            archive.write(weights, "model.weights.h5")
    partial.replace(out)
    return out


def export_runs(run_ids: list[str], out_dir: str | Path, models_dir: str | Path) -> list[Path]:
    """Exports each run to `<out_dir>/<run id>.zip` (the folder made if missing); returns the zips' paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [export_run(run_id, out_dir / f"{run_id}.zip", models_dir) for run_id in run_ids]


def dataset_record(metadata: dict) -> dict:
    """A run's `dataset` metadata plus what identifies its data on any machine, read from its frame cache:
    "name" ("demo", or the dataset folder's, e.g. "UCF50"), "demo" (`describe_dataset`, for the demo),
    "content" (`cache_content`), "classes", "sequence_length" and "image_size".

    Unchanged when the cache is gone or changed since training (then what it holds is not what the run learnt
    from), or when the record has them already (a run imported with them).
    """
    dataset = dict(metadata.get("dataset") or {})
    if "name" in dataset:
        return dataset
    try:
        cache = load_cache(dataset["cache"])
    except (KeyError, TypeError, FileNotFoundError, ValueError):
        return dataset
    if cache.fingerprint != dataset.get("fingerprint"):
        return dataset
    description = describe_dataset(cache.sources)
    dataset.update(
        name=description["name"],
        content=cache_content(cache),
        classes=list(cache.class_names),
        sequence_length=cache.sequence_length,
        image_size=cache.image_size,
    )
    if description["name"] == "demo":
        dataset["demo"] = description
    return dataset


def bind_to_local_cache(metadata: dict, data_dir: str | Path | None, label: str = "") -> dict:
    """The metadata, bound to a frame cache under `data_dir` when the one it names cannot serve it here.

    A run whose recorded cache is missing (another machine's path) or changed is bound to the first cache of
    `har.datasets.list_caches(data_dir)` with the same class names in the same order, sequence length, image
    size, clip count and dataset (name, and the demo's settings), preferring one with the same content:
    `dataset.cache` and `dataset.fingerprint` become the local cache's, `dataset.trained_on` keeps
    {"cache", "fingerprint", "content"} of the one it was trained on, and `dataset.same_frames` says whether
    the local frames are those very ones (True), differ (False: another OpenCV build can decode differently),
    or cannot be told (None: the export recorded no content). Without a match the metadata is returned as it
    is, with one log line: the run still predicts, but has no test split here.
    """
    dataset = metadata.get("dataset") or {}
    if data_dir is None or _cache_serves(dataset):
        return metadata
    trained_on = dataset.get("trained_on") or {
        "cache": dataset.get("cache"),
        "fingerprint": dataset.get("fingerprint"),
        "content": dataset.get("content"),
    }
    matches = [cache for cache in _local_caches(data_dir) if _same_data(cache, metadata)]
    if not matches:
        log.warning(
            "run %s%s: no frame cache in %s matches the one it was trained on (%s); it predicts, but "
            "`har evaluate` and Compare need that cache (`har data demo` or `har data build` makes it).",
            metadata.get("run_id"),
            f" ({label})" if label else "",
            Path(data_dir) / "caches",
            _shown(dataset, metadata),
        )
        return metadata
    contents = {cache.path: cache_content(cache) for cache in matches}
    cache = next((c for c in matches if contents[c.path] == trained_on["content"]), matches[0])
    same = None if trained_on["content"] is None else contents[cache.path] == trained_on["content"]
    bound = {
        **dataset,
        "cache": str(Path(cache.path).resolve()),
        "fingerprint": cache.fingerprint,
        "content": contents[cache.path],
        "trained_on": trained_on,
        "same_frames": same,
    }
    return {**metadata, "dataset": bound}


def _cache_serves(dataset: dict) -> bool:
    """Whether the cache the record names exists here with the fingerprint it records."""
    try:
        return load_cache(dataset["cache"]).fingerprint == dataset.get("fingerprint")
    except (KeyError, TypeError, FileNotFoundError, ValueError):
        return False


def _local_caches(data_dir: str | Path) -> list:
    caches = []
    for path in list_caches(data_dir):
        try:
            caches.append(load_cache(path))
        except (FileNotFoundError, ValueError):
            continue  # damaged or from another version: nothing to bind to
    return caches


def _same_data(cache, metadata: dict) -> bool:
    """Whether `cache` holds the dataset a run's metadata describes, at its settings (not necessarily the
    same decoded bytes: that is `same_frames`)."""
    dataset = metadata.get("dataset") or {}
    expected = (
        list(dataset.get("classes") or metadata["classes"]),
        dataset.get("sequence_length", metadata["sequence_length"]),
        dataset.get("image_size", metadata["image_size"]),
        dataset.get("clips", len(cache)),
    )
    if (list(cache.class_names), cache.sequence_length, cache.image_size, len(cache)) != expected:
        return False
    if "name" not in dataset:
        return True  # exported before datasets were named: classes, sizes and clip count are all there is
    local = describe_dataset(cache.sources)
    if local["name"] != dataset["name"]:
        return False
    if dataset["name"] != "demo":
        return True
    recorded = dataset.get("demo") or {}
    return all(local.get(key) == recorded.get(key) for key in DEMO_SETTINGS)


def _shown(dataset: dict, metadata: dict) -> str:
    """What a run was trained on, in a few words: `demo 25x4, 4 classes, 20 frames of 64px, 400 clips`."""
    demo = dataset.get("demo") or {}
    name = dataset.get("name") or Path(str(dataset.get("cache") or "an unnamed cache")).name
    if demo:
        name = f"{name} {demo.get('groups')}x{demo.get('clips_per_group')}"
    return (
        f"{name}, {len(metadata['classes'])} classes, {metadata['sequence_length']} frames of "
        f"{metadata['image_size']}px, {dataset.get('clips', '?')} clips"
    )


def import_run(archive_path: str | Path, models_dir: str | Path, data_dir: str | Path | None = None) -> Run:
    """Validates an exported run, rebuilds its model from code, loads its weights and saves it as a run.

    Args:
        archive_path: a zip written by `export_run`.
        models_dir: where the run is saved, as `<models_dir>/<run id>`.
        data_dir: where to look for a local copy of the frame cache it was trained on when the one it names
            is not here (`bind_to_local_cache`); None keeps the metadata's cache as it is.
    """
    from har.models import build_model

    archive_path = Path(archive_path)
    try:
        archive = zipfile.ZipFile(archive_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{archive_path}: not an exported run ({error}).") from None
    with archive, tempfile.TemporaryDirectory() as folder:
        infos = {info.filename: info for info in archive.infolist()}
        if set(infos) != MEMBERS:
            raise ValueError(
                f"{archive_path}: an exported run holds exactly {sorted(MEMBERS)}, this one {sorted(infos)}."
            )
        if (
            infos["metadata.json"].file_size > MAX_METADATA_BYTES
            or infos["model.weights.h5"].file_size > MAX_WEIGHTS_BYTES
        ):
            raise ValueError(f"{archive_path}: members are larger than any run's; refused.")
        metadata = _validated(archive_path, archive.read("metadata.json"))
        weights = Path(folder) / "model.weights.h5"
        weights.write_bytes(archive.read("model.weights.h5"))
        model = build_model(
            metadata["model"],
            num_classes=len(metadata["classes"]),
            sequence_length=metadata["sequence_length"],
            image_size=metadata["image_size"],
        )
        try:
            model.load_weights(weights)
        except Exception as error:  # noqa: BLE001 - any mismatch means the weights are not this architecture's
            raise ValueError(
                f"{archive_path}: the weights do not fit a {metadata['model']} of that shape ({error})."
            ) from None
        metadata = bind_to_local_cache(metadata, data_dir, archive_path.name)
        run_id = metadata["run_id"]
        target = Path(models_dir) / run_id
        if target.exists():
            raise FileExistsError(f"{target}: a run with this id exists already; remove it first to re-import.")
        staging = Path(models_dir) / f".{run_id}.importing"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        model.save(staging / "model.keras")
        (staging / "metadata.json").write_text(json.dumps({**metadata, "imported_from": archive_path.name}, indent=1))
        (staging / "events.jsonl").write_text("")
        staging.rename(target)
    return read_run(target)


def _validated(archive_path: Path, raw: bytes) -> dict:
    try:
        metadata = json.loads(raw)
        Config.from_dict(metadata["config"])
        checks = [
            isinstance(metadata["run_id"], str)
            and metadata["run_id"]
            and "/" not in metadata["run_id"]
            and not metadata["run_id"].startswith("."),
            metadata["model"] in MODEL_NAMES,
            metadata["status"] == "finished",
            isinstance(metadata["classes"], list)
            and len(metadata["classes"]) >= 2
            and all(isinstance(name, str) for name in metadata["classes"]),
            isinstance(metadata["sequence_length"], int) and 1 <= metadata["sequence_length"] <= 1000,
            isinstance(metadata["image_size"], int) and 8 <= metadata["image_size"] <= 1024,
            isinstance(metadata.get("dataset", {}), dict)
            and isinstance(metadata.get("dataset", {}).get("demo", {}), dict),
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{archive_path}: its metadata.json is not a run's ({error}).") from None
    if not all(checks):
        raise ValueError(f"{archive_path}: its metadata.json has invalid values; refused.")
    return metadata
