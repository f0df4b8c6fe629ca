"""Moving a run between machines (a Space loses its disk on restart) as weights plus metadata.

An exported run is a zip of exactly two members: `metadata.json` and `model.weights.h5`. Importing never
loads a foreign `.keras` file: the architecture is rebuilt from this package's code for the model the
metadata names, the metadata is validated first, and only weights (arrays) are read from the archive.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from har.config import MODEL_NAMES, Config
from har.runs import Run, find_run, read_run

MEMBERS = {"metadata.json", "model.weights.h5"}
MAX_METADATA_BYTES = 10_000_000
MAX_WEIGHTS_BYTES = 500_000_000


def export_run(run: str | Path, out: str | Path, models_dir: str | Path) -> Path:
    """Writes a finished run as a zip of its metadata and weights; returns the zip's path."""
    import keras

    found = find_run(models_dir, run)
    if found.status != "finished":
        raise ValueError(f"run {found.id} is {found.status}: only finished runs can be exported.")
    model = keras.saving.load_model(found.path / "model.keras", compile=False, safe_mode=True)
    out = Path(out)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "model.weights.h5"
        model.save_weights(weights)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("metadata.json", json.dumps(found.metadata, indent=1))
            archive.write(weights, "model.weights.h5")
    return out


def import_run(archive_path: str | Path, models_dir: str | Path) -> Run:
    """Validates an exported run, rebuilds its model from code, loads its weights and saves it as a run."""
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
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{archive_path}: its metadata.json is not a run's ({error}).") from None
    if not all(checks):
        raise ValueError(f"{archive_path}: its metadata.json has invalid values; refused.")
    return metadata
