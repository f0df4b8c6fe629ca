"""Training as a background job: start it, follow its progress, cancel it, re-attach to it, resume it.

A job trains one or more models, for one or more seeds, one run after the other, as a background process
(`har.background`: a supervisor holding the models dir's lock, and the trainer `python -m har.worker`). Its
folder, `<models_dir>/.jobs/<job_id>/`, holds the background files (events.jsonl, pid, cancel, process.log) and:

    job.json       what to train (cache, models, seeds, config)
    backup/<run>/  the training state after each finished epoch (`har.training_state.TrainingState`), so an
                   interrupted run resumes where it stopped and goes on as if it never had

One place decides the state of a job and of its runs, from one reading of its events: `Job.progress()` (and
`state()`, `run_statuses()`, which it is made of).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from har import background
from har.backbones import resolve_weights
from har.background import JobBusy
from har.config import BACKBONE_MODELS, MODEL_LABELS, MODEL_NAMES, Config, check_seeds
from har.runs import Run, list_runs, newest_first, read_run

__all__ = ["Job", "JobBusy", "JobProgress", "Outcome", "PlannedRun", "current", "list_all_runs", "list_jobs"]

TERMINAL_EVENTS = ("finished", "failed", "cancelled")  # a run's last event


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run a job trains: which model, with which seed, under which run id."""

    id: str
    model: str
    seed: int


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a run (or the job) ended, in one line for a page or a terminal.

    kind: finished, at_chance, early_stop, cancelled or failed.
    """

    kind: str
    run: str | None
    text: str


@dataclasses.dataclass(frozen=True)
class JobProgress:
    """What a page shows of a job, from one reading of its events."""

    state: str  # running, finished, failed, cancelled, killed
    reason: str | None  # why it failed
    batch: dict | None  # the latest batch event, while running
    batch_text: str | None  # that batch in words: "LRCN epoch 2: step 5/10, loss 1.234, accuracy 0.500"
    epochs: dict[str, list[dict]]  # run id -> its epoch events, one per epoch number (a resume's wins), in order
    early_stops: dict[str, int]  # run id -> the epoch early stopping ended it at
    outcomes: tuple[Outcome, ...]  # earlier attempts' finishes and early stops, then the latest attempt's endings
    epochs_done: dict[str, int]  # run id -> finished epochs over all attempts
    labels: dict[str, str]  # run id -> "LRCN", or "LRCN seed 28" when the job trains several seeds
    epochs_text: str  # "ConvLSTM: 1 epoch, LRCN: 3 epochs done", or "no epoch done yet"


class Job(background.Process):
    def __init__(self, folder: str | Path):
        super().__init__(folder)
        self.spec = json.loads((self.folder / "job.json").read_text())

    @property
    def models(self) -> list[str]:
        return self.spec["models"]

    @property
    def seeds(self) -> list[int]:
        return self.spec.get("seeds") or [self.spec["config"]["seed"]]

    @property
    def cache(self) -> str:
        return self.spec["cache"]

    @property
    def config(self) -> Config:
        """The job's training settings: the one place where job.json's config is read.

        Jobs saved before `trainer` existed used the twin; before `distribute` and `mixed_precision` were
        Config fields, they sat beside it.
        """
        legacy = {key: self.spec[key] for key in ("distribute", "mixed_precision") if self.spec.get(key) is not None}
        return Config.from_dict({"trainer": "twin", **legacy, **self.spec["config"]})

    def planned_runs(self) -> list[PlannedRun]:
        """Every run of the job in training order: each seed in turn, both models per seed.

        Run ids are `<job>-<model>`, or `<job>-<model>-seed<N>` when the job trains several seeds.
        """
        several = len(self.seeds) > 1
        return [
            PlannedRun(f"{self.id}-{model}" + (f"-seed{seed}" if several else ""), model, seed)
            for seed in self.seeds
            for model in self.models
        ]

    def label(self, model: str | None, seed: int | None) -> str:
        """`LRCN`, or `LRCN seed 28` when the job trains several seeds."""
        name = MODEL_LABELS.get(model, "Job")
        return f"{name} seed {seed}" if len(self.seeds) > 1 and seed is not None else name

    def summary(self) -> dict:
        """For a history table: id, started (a Unix time), models, settings (one line), state."""
        events = self.events()
        started = events[0]["time"] if events and "time" in events[0] else (self.folder / "job.json").stat().st_mtime
        config = self.config
        seeds = f"seed{'s' if len(self.seeds) > 1 else ''} {', '.join(map(str, self.seeds))}"
        settings = (
            f"{Path(self.cache).name}, {config.split} split, {_plural(config.epochs, 'epoch')} at most, "
            f"batch {config.batch_size}, patience {config.patience}, lr {config.learning_rate}, {seeds}"
        )
        return {
            "id": self.id,
            "started": started,
            "models": self.models,
            "settings": settings,
            "state": self.status(events).state,
        }

    def attempt_events(self) -> list[dict]:
        """The events of the latest attempt (a resume starts a new one): what the job's state is read from."""
        events = self.events()
        return events[background.attempt_start(events) :]

    def verdict(self, attempt: list[dict]) -> tuple[str, str | None] | None:
        kinds = {event["event"] for event in attempt}
        if kinds & {"failed", "job_failed"}:
            failure = next(event for event in reversed(attempt) if event["event"] in ("failed", "job_failed"))
            return "failed", failure.get("reason")
        if "cancelled" in kinds:
            return "cancelled", None
        if "job_finished" in kinds:
            return "finished", None
        return None

    def current_run(self, events: list[dict] | None = None) -> PlannedRun | None:
        """The run being trained (or that was, when the job stopped); None once every run has ended."""
        events = self.events() if events is None else events
        return self._current(events[background.attempt_start(events) :], self._saved())

    def run_statuses(
        self, events: list[dict] | None = None, status: background.Status | None = None
    ) -> list[tuple[PlannedRun, str, str | None]]:
        """(run, status, reason) of each run this job has started, as the job knows it.

        The one place where the state of a job's runs is decided: a saved run folder says how the run ended,
        unless the job is training that run again right now (a resume); the run being trained when the job
        died without saving it is failed, with the reason the supervisor recorded if there is one.
        """
        events = self.events() if events is None else events
        status = status or self.status(events)
        attempt, saved = events[status.attempt :], self._saved()
        current = self._current(attempt, saved)
        started = {event.get("run") for event in events if event["event"] == "started"}
        ended = {
            event["run"]: (event["event"], event.get("reason"))
            for event in attempt
            if event["event"] in TERMINAL_EVENTS and event.get("run")
        }
        statuses = []
        for run in self.planned_runs():
            if run == current and status.state == "running":
                statuses.append((run, "running", None))
            elif run.id in saved:
                statuses.append((run, saved[run.id].status, saved[run.id].reason))
            elif run.id in ended:
                statuses.append((run, *ended[run.id]))
            elif run == current and run.id in started and status.state in ("failed", "killed"):
                statuses.append((run, "failed", status.reason or "the training process stopped unexpectedly"))
        return statuses

    def _saved(self) -> dict[str, Run]:
        """The job's runs that have a folder, read once."""
        return {
            run.id: read_run(self.models_dir / run.id)
            for run in self.planned_runs()
            if (self.models_dir / run.id).is_dir()
        }

    def _current(self, attempt: list[dict], saved: dict[str, Run]) -> PlannedRun | None:
        ended = {event.get("run") for event in attempt if event["event"] in TERMINAL_EVENTS}
        for run in self.planned_runs():
            if run.id not in ended and not (run.id in saved and saved[run.id].status == "finished"):
                return run
        return None

    def epochs_done(self, events: list[dict] | None = None) -> dict[str, int]:
        """Finished epochs of each run, over all attempts (a resumed run goes on counting where it stopped)."""
        done: dict[str, int] = {}
        for event in self.events() if events is None else events:
            if event["event"] == "epoch":
                done[event["run"]] = max(done.get(event["run"], 0), event["epoch"])
        return done

    def progress(self) -> JobProgress:
        """Everything the Train page shows of the job, from one reading of its events."""
        events = self.events()
        status = self.status(events)
        labels = {run.id: self.label(run.model, run.seed) for run in self.planned_runs()}
        batches = [event for event in events if event["event"] == "batch"]
        batch = batches[-1] if status.state == "running" and batches else None
        epochs: dict[str, dict[int, dict]] = {}
        for event in events:
            if event["event"] == "epoch":
                epochs.setdefault(event["run"], {})[event["epoch"]] = event  # a resumed job's later report wins
        done = self.epochs_done(events)
        counts = [
            f"{labels[run.id]}: {_plural(done[run.id], 'epoch')}" for run in self.planned_runs() if run.id in done
        ]
        return JobProgress(
            state=status.state,
            reason=status.reason,
            batch=batch,
            batch_text=_batch_text(batch, self.label(batch.get("model"), batch.get("seed"))) if batch else None,
            epochs={run: [rows[n] for n in sorted(rows)] for run, rows in epochs.items()},
            early_stops={event["run"]: event["epoch"] for event in events if event["event"] == "early_stop"},
            outcomes=tuple(self._outcomes(events, status)),
            epochs_done=done,
            labels=labels,
            epochs_text=(", ".join(counts) + " done") if counts else "no epoch done yet",
        )

    def _outcomes(self, events: list[dict], status: background.Status) -> list[Outcome]:
        """What earlier attempts finished still stands; failures only from the latest attempt (a resume overtakes
        them)."""
        earlier = [event for event in events[: status.attempt] if event["event"] in ("finished", "early_stop")]
        outcomes = []
        for event in earlier + events[status.attempt :]:
            kind, label, run = event["event"], self.label(event.get("model"), event.get("seed")), event.get("run")
            if kind in ("failed", "job_failed") or (kind == "exited" and event.get("reason")):
                outcomes.append(Outcome("failed", run, f"Training failed: {event.get('reason')}"))
            elif kind == "finished":
                text = f"{label}: test accuracy {event['test_accuracy']:.2%}, loss {event['test_loss']:.4f}"
                outcomes.append(Outcome("finished", run, text))
                if event.get("at_chance"):
                    outcomes.append(Outcome("at_chance", run, f"**{label} is at chance.** {event['at_chance_reason']}"))
            elif kind == "early_stop":
                text = (
                    f"{label}: early stop at epoch {event['epoch']}; the weights of the best epoch "
                    f"({event['best_epoch']}) were kept."
                )
                outcomes.append(Outcome("early_stop", run, text))
            elif kind == "cancelled":
                outcomes.append(Outcome("cancelled", run, f"{label} cancelled."))
        return outcomes


def _batch_text(batch: dict, label: str) -> str:
    return (
        f"{label} epoch {batch['epoch']}: step {batch['step']}/{batch['steps']}, "
        f"loss {batch['loss']:.3f}, accuracy {batch['accuracy']:.3f}"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def jobs_folder(models_dir: str | Path) -> Path:
    return Path(models_dir) / ".jobs"


def list_jobs(models_dir: str | Path) -> list[Job]:
    """Every job of the models dir, newest first."""
    folder = jobs_folder(models_dir)
    if not folder.is_dir():
        return []
    jobs = []
    for path in sorted(folder.iterdir(), reverse=True):
        if (path / "job.json").is_file():
            try:
                jobs.append(Job(path))
            except (OSError, ValueError):
                continue  # a job.json being written right now
    return jobs


def current(models_dir: str | Path) -> Job | None:
    """The running job, if there is one: a page reload or a second tab re-attaches through this."""
    return next((job for job in list_jobs(models_dir) if job.is_alive()), None)


def latest(models_dir: str | Path) -> Job | None:
    """The running job, else the newest one (what the Train page shows)."""
    jobs = list_jobs(models_dir)
    return next((job for job in jobs if job.is_alive()), None) or next(iter(jobs), None)


def list_all_runs(models_dir: str | Path) -> list[Run]:
    """Every run, newest first: the saved ones (`har.runs.list_runs`) and those of jobs still training them or
    killed before they were saved (`har runs` shows both). Reads each job's events once."""
    saved = {run.id: run for run in list_runs(models_dir)}
    for job in list_jobs(models_dir):
        for planned, status, reason in job.run_statuses():
            # A saved folder tells how a run ended, unless its job is training it again right now.
            if planned.id not in saved or status == "running":
                earlier = saved.get(planned.id)
                saved[planned.id] = Run(
                    planned.id,
                    earlier.path if earlier else None,
                    status,
                    planned.model,
                    earlier.metadata if earlier else {"seed": planned.seed, "job": job.id},
                    reason=reason,
                )
    return sorted(saved.values(), key=newest_first, reverse=True)


def start(
    cache: str | Path,
    models: list[str] | tuple[str, ...],
    models_dir: str | Path,
    *,
    config: Config | None = None,
    seeds: list[int] | tuple[int, ...] | None = None,
) -> Job:
    """Starts a job training `models` (in order) on the frame cache at `cache`, once per seed.

    `seeds` defaults to the config's one seed; with several, each seed trains every model in turn and the
    run ids end in `-seed<N>`. Everything else a run needs (trainer, devices, precision) is in `config`.

    Raises:
        JobBusy: a job or pipeline is already running in this models dir.
        ValueError: an unknown model name, bad seeds, or a path that is not a frame cache.
    """
    from har.datasets import load_cache

    unknown = [model for model in models if model not in MODEL_NAMES]
    if unknown or not models:
        raise ValueError(f"model {', '.join(unknown) or 'list is empty'}: choose from {', '.join(MODEL_NAMES)}.")
    config = config or Config()
    seeds = list(check_seeds(seeds)) if seeds else [config.seed]
    frames = load_cache(cache)  # a clear error now rather than a failed job later
    if any(model in BACKBONE_MODELS for model in models):
        resolve_weights(config.backbone_weights)  # likewise: the file is there, or downloaded now, or one line
    config = config.replace(
        classes=frames.class_names, sequence_length=frames.sequence_length, image_size=frames.image_size, seed=seeds[0]
    )
    spec = {"cache": str(Path(cache).resolve()), "models": list(models), "config": config.to_dict(), "seeds": seeds}
    job_id = background.new_id()
    folder = (jobs_folder(models_dir) / job_id).resolve()
    with background.models_lock(models_dir, _holder(folder, models)) as lock:
        folder.mkdir(parents=True)
        (folder / "job.json").write_text(json.dumps(spec, indent=1))
        background.spawn(folder, lock, "har.worker", "training")
        return Job(folder)


def resume(models_dir: str | Path, job_id: str) -> Job:
    """Restarts a killed, failed or cancelled job; finished models are kept, the rest resume from backup."""
    folder = (jobs_folder(models_dir) / job_id).resolve()
    if not (folder / "job.json").is_file():
        raise FileNotFoundError(
            f"{job_id}: no such job in {models_dir}; the run ids of `har runs` begin with their job's."
        )
    job = Job(folder)
    if job.state() == "finished":
        raise ValueError(f"job {job_id} already finished; nothing to resume.")
    with background.models_lock(models_dir, _holder(folder, job.models)) as lock:
        (folder / "cancel").unlink(missing_ok=True)
        background.spawn(folder, lock, "har.worker", "training")
        return Job(folder)


def _holder(folder: Path, models) -> background.Holder:
    return background.Holder("job", folder.name, str(folder), ", ".join(models))
