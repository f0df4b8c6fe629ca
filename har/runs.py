"""Saved runs in the models dir: writing one whole, reading it with its status, listing, finding by id or folder.

A run folder holds `metadata.json`, `events.jsonl` and, when it finished, `model.keras`. A run that is still
training, or whose training process died, has no folder yet: it is known from its job (`har.jobs`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from har import chance

METADATA_KEYS = ("run_id", "model", "status", "classes", "sequence_length", "image_size")


@dataclass
class Run:
    id: str
    path: Path | None
    status: str  # finished, failed, cancelled, running, broken
    model: str | None = None
    metadata: dict = field(default_factory=dict)
    reason: str | None = None  # why a run failed or is broken
    choice: str | None = None  # why `answering_runs` chose it to answer for its model

    @property
    def seed(self) -> int | None:
        return self.metadata.get("seed", (self.metadata.get("config") or {}).get("seed"))

    def at_chance(self) -> str | None:
        """Why a finished run is no better than guessing (`har.chance`), or None."""
        if self.status != "finished":
            return None
        if "at_chance" in self.metadata:
            return self.metadata.get("at_chance_reason") if self.metadata["at_chance"] else None
        test, split = self.metadata.get("test") or {}, self.metadata.get("split") or {}
        return chance.judge(
            test_accuracy=test.get("accuracy", 0.0),
            test_clips=split.get("test", 0),
            num_classes=len(self.metadata["classes"]),
            val_losses=(self.metadata.get("history") or {}).get("val_loss", []),
        )

    def summary(self) -> dict:
        test = self.metadata.get("test") or {}
        verdict = self.at_chance()
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "job": self.metadata.get("job"),
            "seed": self.seed,
            "split": (self.metadata.get("split") or {}).get("name"),
            "classes": len(self.metadata.get("classes") or []) or None,
            "epochs_run": self.metadata.get("epochs_run"),
            "best_epoch": self.metadata.get("best_epoch"),
            "test_accuracy": test.get("accuracy"),
            "test_loss": test.get("loss"),
            "at_chance": verdict is not None if self.status == "finished" else None,
            "at_chance_reason": verdict,
            "training_seconds": self.metadata.get("training_seconds"),
            "reason": self.reason,
            "path": str(self.path) if self.path else None,
        }


def read_run(path: Path) -> Run:
    """Reads a run folder; a folder with missing or inconsistent files comes back as status "broken"."""
    try:
        metadata = json.loads((path / "metadata.json").read_text())
        missing = [key for key in METADATA_KEYS if key not in metadata]
        if missing:
            raise ValueError(f"metadata.json lacks {', '.join(missing)}")
    except (OSError, ValueError) as error:
        reason = "no metadata.json" if isinstance(error, FileNotFoundError) else f"unreadable metadata ({error})"
        return Run(path.name, path, "broken", reason=reason)
    status = metadata["status"]
    if status == "finished":
        problem = _model_file_problem(path / "model.keras", metadata)
        if problem:
            return Run(metadata["run_id"], path, "broken", metadata["model"], metadata, reason=problem)
    return Run(metadata["run_id"], path, status, metadata["model"], metadata, reason=metadata.get("reason"))


def _model_file_problem(model_path: Path, metadata: dict) -> str | None:
    """Why model.keras cannot serve this run, read from the archive's JSON alone (no TensorFlow, no code)."""
    if not model_path.is_file():
        return "model.keras is missing"
    try:
        with zipfile.ZipFile(model_path) as archive:
            if "model.weights.h5" not in archive.namelist():
                return "model.keras holds no weights"
            config = json.loads(archive.read("config.json"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return "model.keras is damaged (not a Keras archive)"
    try:
        layers = config["config"]["layers"]
        input_shape = layers[0]["config"]["batch_shape"][1:]
        units = layers[-1]["config"]["units"]
    except (KeyError, IndexError, TypeError):
        return "model.keras has an unexpected architecture"
    expected = [metadata["sequence_length"], metadata["image_size"], metadata["image_size"], 3]
    if list(input_shape) != expected or units != len(metadata["classes"]):
        return (
            f"model.keras takes {list(input_shape)} -> {units} classes but metadata.json says {expected} -> "
            f"{len(metadata['classes'])}"
        )
    return None


def list_runs(models_dir: str | Path) -> list[Run]:
    """Every saved run, newest first (by when it was saved). Runs that have no folder yet (still training, or
    killed) are their job's to know: `har.jobs.list_all_runs` adds them."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    saved = [read_run(path) for path in models_dir.iterdir() if path.is_dir() and not path.name.startswith(".")]
    return sorted(saved, key=newest_first, reverse=True)


def newest_first(run: Run) -> tuple:
    """Sort key (with reverse=True): when the run was saved (runs still training count as now), then its id; a
    run imported under any name sorts by when it arrived, not by its name."""
    try:
        saved = (run.path / "metadata.json").stat().st_mtime if run.path else float("inf")
    except OSError:
        saved = 0.0
    return saved, run.id


def find_run(models_dir: str | Path, run: str | Path) -> Run:
    """A saved run by id, or by folder (which must lie inside the models dir)."""
    models_dir = Path(models_dir).resolve()
    candidate = Path(run)
    path = candidate if candidate.is_dir() else models_dir / str(run)
    if not path.is_dir():
        raise FileNotFoundError(f"{run}: no such run in {models_dir}; `har runs` lists them.")
    if models_dir not in path.resolve().parents:
        raise ValueError(f"{run}: runs are only loaded from inside the models dir {models_dir}; import it first.")
    return read_run(path)


def save_run(models_dir: Path, run_id: str, model, metadata: dict, events: list[dict]) -> Path:
    """Writes a run folder under a temporary name, then swaps it into place: the folder is always whole.

    Args:
        model: a Keras model, saved as `model.keras`; None for a run that did not finish.
        metadata: what `metadata.json` holds (`METADATA_KEYS` at least).
        events: the run's own events, one JSON line each in `events.jsonl`.
    """
    final = models_dir / run_id
    staging = models_dir / f".{run_id}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if model is not None:
        model.save(staging / "model.keras")
    (staging / "metadata.json").write_text(json.dumps(metadata, indent=1))
    (staging / "events.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
    fsync_tree(staging)
    if final.exists():
        # An earlier attempt's folder (a cancelled run now finished): moved aside, not deleted, until the new
        # one is in place, so a kill between the two renames leaves one of them whole.
        previous = models_dir / f".{run_id}.previous-{os.getpid()}"
        final.rename(previous)
        staging.rename(final)
        shutil.rmtree(previous, ignore_errors=True)
    else:
        staging.rename(final)
    return final


def fsync_tree(folder: Path) -> None:
    """Flushes every file of `folder` to disk (before it is renamed into place)."""
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def latest_runs(models_dir: str | Path) -> list[Run]:
    """The newest finished run of each model, in the order of MODEL_NAMES (one listing of the models dir)."""
    from har.config import MODEL_NAMES

    newest = {}
    for run in list_runs(models_dir):  # newest first
        if run.status == "finished":
            newest.setdefault(run.model, run)
    return [newest[name] for name in MODEL_NAMES if name in newest]


def answering_runs(models_dir: str | Path) -> list[Run]:
    """The one run per model that answers (Predict, Explain, `har predict` and `har explain` without --run), in
    the order of MODEL_NAMES, each with `choice` saying why it was chosen.

    Among the finished runs of the job that made the model's newest finished run (its other seeds and splits;
    a run without a job stands alone), the one with the lowest best validation loss (`best_validation_loss`).
    Never the highest test accuracy: the test split only reports, and a run chosen by it would report an
    optimistic score. Ties go to the newer run.
    """
    from har.config import MODEL_NAMES

    finished = [run for run in list_runs(models_dir) if run.status == "finished"]  # newest first
    chosen = []
    for name in MODEL_NAMES:
        runs = [run for run in finished if run.model == name]
        if not runs:
            continue
        job = runs[0].metadata.get("job")
        group = [run for run in runs if job and run.metadata.get("job") == job] or runs[:1]
        best = min(group, key=best_validation_loss)
        chosen.append(replace(best, choice=_choice(best, group)))
    return chosen


def best_validation_loss(run: Run) -> float:
    """The lowest validation loss of a run's history (the epoch early stopping restores); inf without one."""
    losses = (run.metadata.get("history") or {}).get("val_loss") or []
    finite = [float(loss) for loss in losses if isinstance(loss, (int, float)) and math.isfinite(loss)]
    return min(finite, default=math.inf)


def _choice(run: Run, group: list[Run]) -> str:
    """Why `run` answers for its model, in a few words, e.g. `chosen by the lowest validation loss (0.412) of
    its job's 6 runs (seed 28, report split)`."""
    split = (run.metadata.get("split") or {}).get("name", "?")
    if len(group) == 1:
        return f"the newest finished run of this model (seed {run.seed}, {split} split)"
    loss = best_validation_loss(run)
    shown = f" ({loss:.3f})" if math.isfinite(loss) else ""
    return (
        f"chosen by the lowest validation loss{shown} of its job's {len(group)} runs (seed {run.seed}, {split} split)"
    )


def latest_study(models_dir: str | Path) -> list[Run]:
    """What `har compare` shows by default: the newest finished run of each model on each split, and beside
    each the other finished runs of the job that made it on that split (its other seeds). Splits in SPLITS
    order, models in MODEL_NAMES order within each, then run ids."""
    from har.config import MODEL_NAMES, SPLITS

    runs = [run for run in list_runs(models_dir) if run.status == "finished" and run.model in MODEL_NAMES]
    newest: dict[tuple, Run] = {}
    for run in runs:  # newest first
        newest.setdefault((run.model, run.summary()["split"]), run)
    chosen = [
        run
        for run in runs
        if (key := (run.model, run.summary()["split"])) in newest
        and (
            run is newest[key]
            or (run.metadata.get("job") and run.metadata.get("job") == newest[key].metadata.get("job"))
        )
    ]

    def order(run: Run):
        split = run.summary()["split"]
        return (SPLITS.index(split) if split in SPLITS else len(SPLITS), MODEL_NAMES.index(run.model), run.id)

    return sorted(chosen, key=order)


def run_split(run: Run):
    """(frame cache, split) a run was trained and tested on, rebuilt from its metadata.

    Raises FileNotFoundError when the cache is gone and ValueError when it changed since training.
    """
    from har.config import Config
    from har.datasets import config_split, load_cache

    metadata = run.metadata
    cache_path = Path(metadata["dataset"]["cache"])
    try:
        cache = load_cache(cache_path)
    except (FileNotFoundError, ValueError):
        raise FileNotFoundError(
            f"run {run.id}: its frame cache {cache_path} is gone; rebuild it with `har data build`."
        ) from None
    if cache.fingerprint != metadata["dataset"]["fingerprint"]:
        raise ValueError(f"run {run.id}: the frame cache {cache_path} changed since training; its test split is gone.")
    config = Config.from_dict(metadata["config"])
    split = config_split(cache.groups, config)
    return cache, split


def held_out_clips(run: Run) -> list[dict]:
    """The source videos of a run's test split (clips it never trained or validated on), with their class:
    [{"path", "class", "split": "test"}], for sample clips a model has not seen."""
    cache, split = run_split(run)
    return [
        {"path": cache.sources[i], "class": cache.class_names[cache.labels[i]], "split": "test"} for i in split.test
    ]


def trained_on_demo(run: Run) -> bool:
    """Whether a run learnt from the built-in synthetic demo: its metadata's dataset name (exported runs), else
    where its frame cache's clips came from (`har.datasets.demo.from_demo`), when that cache is here."""
    from har.datasets.demo import from_demo

    dataset = run.metadata.get("dataset") or {}
    if "name" in dataset:
        return dataset["name"] == "demo"
    try:
        sources = json.loads((Path(dataset["cache"]) / "meta.json").read_text())["sources"]
    except (KeyError, TypeError, OSError, ValueError):
        return False
    return isinstance(sources, list) and from_demo(sources)
