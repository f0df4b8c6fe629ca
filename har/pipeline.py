"""The whole study as one background job: `har reproduce`.

Get UCF50 (download, or an archive or folder on disk) -> extract the chosen classes -> build the frame cache
-> train both models on each split for each seed -> evaluate every run -> the comparison. It runs as a
background process (`har.background`: a supervisor holding the models dir's lock, and the stage runner
`python -m har.pipeline_runner FOLDER`): one pipeline or training job at a time. Its folder,
`<models_dir>/.pipelines/<pipeline_id>/`, holds the background files (events.jsonl, pid, cancel, process.log) and:

    pipeline.json   what to do (the options) and their identity
    stages/         one `<stage>.json` per completed stage, with what it produced
    backup/<run>/   the training state of the run being trained
    comparison.json the final comparison (the shape of `har compare --json`)

Every stage records its completion, so starting the same pipeline again (after a kill -9, a crash, a restart)
skips what is done: a finished download is not fetched again, a built cache is not rebuilt, finished runs are
kept, and an interrupted run continues from its last epoch. `start()` with the same options finds the same
pipeline; `insecure_tls` is how to fetch, not what, so it may differ between tries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from har import background
from har.background import JobBusy
from har.config import BACKBONE_MODELS, MODEL_NAMES, REPORT_CLASSES, REPORT_MODELS, SPLITS, Config, check_seeds

__all__ = ["Options", "Pipeline", "REPORT_CLASSES", "current", "latest", "list_pipelines", "resume", "start", "status"]

DATA_STAGES = ("download", "extract", "cache")
TRAINING_KEYS = ("classes", "epochs", "sequence_length", "image_size")  # pipeline.json's before `config`


@dataclasses.dataclass(frozen=True)
class Options:
    """What `har reproduce` does; everything but `insecure_tls` identifies the pipeline."""

    data_dir: str  # downloads, extracted classes and the frame cache go here
    source: str | None = None  # a UCF50 archive or extracted folder on disk; None downloads `url`
    url: str | None = None  # None: the official UCF50 address
    # Every run's settings: the classes to extract, the cache's frames and size, the hyperparameters and trainer.
    # Its seed and split are each run's, from `seeds` and `splits`.
    config: Config = Config()
    splits: tuple[str, ...] = SPLITS
    seeds: tuple[int, ...] = (Config.seed,)
    models: tuple[str, ...] = REPORT_MODELS  # the report's table is theirs; mobilenet on request
    until: str | None = None  # "download", "extract" or "cache": stop after that stage (the Data page's job)
    insecure_tls: bool | None = None  # None: $HAR_INSECURE_TLS

    def __post_init__(self):
        from har.datasets import ucf50

        for name in ("splits", "seeds", "models"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not isinstance(self.config, Config):
            raise ValueError(f"config={self.config!r}: give a har.config.Config.")
        ucf50.check_classes(self.config.classes)
        unknown = [split for split in self.splits if split not in SPLITS]
        if unknown or not self.splits:
            raise ValueError(f"--splits {','.join(self.splits)!r}: choose from {', '.join(SPLITS)}.")
        unknown = [model for model in self.models if model not in MODEL_NAMES]
        if unknown or not self.models:
            raise ValueError(f"model {', '.join(unknown) or 'list is empty'}: choose from {', '.join(MODEL_NAMES)}.")
        if self.until not in (None, *DATA_STAGES):
            raise ValueError(f"--until {self.until!r}: choose one of {', '.join(DATA_STAGES)}.")
        if self.until == "download" and self.source is not None:
            raise ValueError("--until download: there is nothing to download with --source.")
        check_seeds(self.seeds)
        # One config whatever seed and split it was given: theirs are each run's.
        object.__setattr__(self, "config", self.config.replace(seed=self.seeds[0], split=self.splits[0]))

    def to_dict(self) -> dict:
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        values.update(config=self.config.to_dict(), splits=list(self.splits), seeds=list(self.seeds))
        values["models"] = list(self.models)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> Options:
        """Options from `to_dict()`, or from a pipeline.json of before `config` (its training keys at the top)."""
        values = dict(values)
        legacy = {key: values.pop(key) for key in TRAINING_KEYS if key in values}
        if legacy:
            values["config"] = {**values.get("config", {}), **legacy}
        values["config"] = Config.from_dict(values.get("config", {}))
        return cls(**values)

    def identity(self) -> str:
        """A short hash of what the pipeline produces (everything but how it downloads)."""
        values = {key: value for key, value in self.to_dict().items() if key != "insecure_tls"}
        values["data_dir"] = str(Path(self.data_dir).resolve())
        values["source"] = str(Path(self.source).resolve()) if self.source else None
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]

    def runs(self) -> list[tuple[str, str, int]]:
        """(model, split, seed) of every run, in training order: the report's split first, both models each."""
        return [(model, split, seed) for seed in self.seeds for split in self.splits for model in self.models]

    def run_config(self, split: str, seed: int) -> Config:
        """The Config one run trains with: this pipeline's, on `split` with `seed`."""
        return self.config.replace(split=split, seed=seed)


class Pipeline(background.Process):
    def __init__(self, folder: str | Path):
        super().__init__(folder)
        spec = json.loads((self.folder / "pipeline.json").read_text())
        self.options = Options.from_dict(spec["options"])
        self.identity = spec["identity"]
        self.first_event = 0  # where this try's events begin (set by start and resume)
        self.attached = False  # start() found it running already

    def verdict(self, attempt: list[dict]) -> tuple[str, str | None] | None:
        ends = {"pipeline_finished": "finished", "pipeline_failed": "failed", "pipeline_cancelled": "cancelled"}
        for event in reversed(attempt):
            if event["event"] in ends:
                return ends[event["event"]], event.get("reason")
        return None

    def stage_names(self) -> list[str]:
        """Every stage, in order."""
        names = [] if self.options.source else ["download"]
        names += ["extract", "cache"]
        if self.options.until:
            return names[: names.index(self.options.until) + 1]
        names += [f"train {self.run_id(*run)}" for run in self.options.runs()]
        return names + ["evaluate", "compare"]

    def stage_record(self, stage: str) -> Path:
        """Where a completed stage's record is kept."""
        return self.folder / "stages" / f"{stage.replace(' ', '-')}.json"

    def done(self, stage: str) -> dict | None:
        """What a completed stage recorded, or None if it has not completed."""
        try:
            return json.loads(self.stage_record(stage).read_text())
        except (OSError, ValueError):
            return None

    def run_id(self, model: str, split: str, seed: int) -> str:
        return f"{self.id}-{model}-{split}-s{seed}"

    def run_ids(self) -> list[str]:
        """The runs this pipeline trains (none when it stops at a data stage)."""
        return [] if self.options.until else [self.run_id(*run) for run in self.options.runs()]

    def cache(self) -> str | None:
        """The frame cache's folder, once the cache stage is done."""
        return (self.done("cache") or {}).get("cache")

    def comparison(self) -> dict | None:
        """The final comparison (`har compare --json` shape), once the pipeline finished."""
        try:
            return json.loads((self.folder / "comparison.json").read_text())
        except (OSError, ValueError):
            return None

    def summary(self) -> dict:
        """For a page or `--json`: id, state, stages done of all, the current stage and its progress (0..1)."""
        events = self.events()
        status = self.status(events)
        stages = self.stage_names()
        done = [stage for stage in stages if self.done(stage)]
        current, progress = None, None
        for event in reversed(events):
            if event["event"] in ("stage", "progress") and event.get("stage") not in done:
                current = event["stage"]
                if event["event"] == "progress" and event.get("total"):
                    progress = min(1.0, event["done"] / event["total"])
                break
            if event["event"] in ("epoch", "started") and "run" in event:
                current = f"train {event['run']}"
                if event["event"] == "epoch":
                    progress = event["epoch"] / event["epochs"]
                break
        return {
            "id": self.id,
            "state": status.state,
            "stages": stages,
            "stages_done": len(done),
            "current_stage": current,
            "stage_progress": progress,
            "runs": self.run_ids(),
            "reason": status.reason,
            "options": self.options.to_dict(),
        }


def pipelines_folder(models_dir: str | Path) -> Path:
    return Path(models_dir) / ".pipelines"


def list_pipelines(models_dir: str | Path) -> list[Pipeline]:
    """Every pipeline of the models dir, newest first."""
    folder = pipelines_folder(models_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir(), reverse=True):
        if (path / "pipeline.json").is_file():
            try:
                found.append(Pipeline(path))
            except (OSError, ValueError, TypeError):
                continue  # a pipeline.json being written right now
    return found


def current(models_dir: str | Path) -> Pipeline | None:
    """The running pipeline, if there is one."""
    return next((pipeline for pipeline in list_pipelines(models_dir) if pipeline.is_alive()), None)


def latest(models_dir: str | Path) -> Pipeline | None:
    """The newest pipeline, whatever its state (for a page to show)."""
    return next(iter(list_pipelines(models_dir)), None)


def status(models_dir: str | Path) -> dict | None:
    """The newest pipeline's `summary()` (state, stage, progress), or None if there has been none: for a page."""
    newest = latest(models_dir)
    return newest.summary() if newest is not None else None


def start(options: Options, models_dir: str | Path) -> Pipeline:
    """Starts (or continues) the pipeline for `options` in the background and returns it.

    The same options continue the same pipeline: its completed stages are skipped; while it runs, they return
    it as it is (to follow it again).

    Raises:
        JobBusy: a pipeline or a training job is already running in this models dir.
        FileNotFoundError: `options.source` does not exist.
    """
    if options.source is not None and not Path(options.source).exists():
        raise FileNotFoundError(f"{options.source}: no such archive or folder; check the --source path.")
    if any(model in BACKBONE_MODELS for model in options.models):
        from har.backbones import resolve_weights

        resolve_weights(options.config.backbone_weights)  # the file is there, or downloaded now, or one line
    identity = options.identity()
    running = current(models_dir)
    if running is not None and running.identity == identity:
        running.first_event = len(running.events())  # the same pipeline: follow it from here on
        running.attached = True
        return running
    if running is not None:
        raise JobBusy(f"pipeline {running.id} is already running; wait for it to finish or cancel it first.")
    folder = next((p.folder for p in list_pipelines(models_dir) if p.identity == identity), None)
    folder = folder or (pipelines_folder(models_dir) / background.new_id()).resolve()
    with background.models_lock(models_dir, _holder(folder)) as lock:
        folder.mkdir(parents=True, exist_ok=True)
        # insecure_tls may change between tries; the rest is the same by construction.
        staging = folder / ".pipeline.json.tmp"
        staging.write_text(json.dumps({"identity": identity, "options": options.to_dict()}, indent=1))
        staging.replace(folder / "pipeline.json")
        return _spawn(folder, lock)


def resume(models_dir: str | Path, pipeline_id: str) -> Pipeline:
    """Continues a killed, failed or cancelled pipeline from its first stage not done."""
    folder = (pipelines_folder(models_dir) / pipeline_id).resolve()
    if not (folder / "pipeline.json").is_file():
        raise FileNotFoundError(f"{pipeline_id}: no such pipeline in {models_dir}.")
    with background.models_lock(models_dir, _holder(folder)) as lock:
        return _spawn(folder, lock)


def _holder(folder: Path) -> background.Holder:
    return background.Holder("pipeline", folder.name, str(folder))


def _spawn(folder: Path, lock) -> Pipeline:
    (folder / "cancel").unlink(missing_ok=True)
    first_event = background.spawn(folder, lock, "har.pipeline_runner", "pipeline")
    pipeline = Pipeline(folder)
    pipeline.first_event = first_event
    return pipeline
