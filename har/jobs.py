"""Training as a background job: start it, follow its events, cancel it, re-attach to it, resume it.

A job trains one or more models, for one or more seeds, one run after the other, in its own processes (`python -m har.worker`: a
supervisor and its trainer), in a new session so that it outlives whoever started it (a browser tab, a CLI
that was closed). Its folder,
`<models_dir>/.jobs/<job_id>/`, holds:

    job.json       what to train (cache, models, config, options)
    pid            the supervisor's process id (trainer.pid: the trainer's)
    events.jsonl   one JSON event per line, appended as training goes; each attempt (the first start and
                   every resume) begins with an `attempt` event, and the job's state is its last attempt's
    cancel         present once a cancel was asked for
    backup/<run>/  the training state after each finished epoch (`har.training.TrainingState`), so an
                   interrupted run resumes where it stopped and goes on as if it never had

One job trains at a time per models dir. The lock is an `flock` on `<models_dir>/.train.lock` that the
supervisor holds for its whole life: the kernel releases it when the process ends however it ends, `kill -9`
included, so a crashed job never leaves the lock stuck.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from har.config import MODEL_NAMES, Config

TERMINAL_EVENTS = ("finished", "failed", "cancelled")


class JobBusy(RuntimeError):
    """A second training job was asked for while one runs."""


@dataclass(frozen=True)
class PlannedRun:
    """One run a job trains: which model, with which seed, under which run id."""

    id: str
    model: str
    seed: int


class Job:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder).resolve()
        self.id = self.folder.name
        self.models_dir = self.folder.parent.parent
        self.spec = json.loads((self.folder / "job.json").read_text())

    def __repr__(self) -> str:
        return f"Job({self.id!r}, {self.state()})"

    @property
    def models(self) -> list[str]:
        return self.spec["models"]

    @property
    def seeds(self) -> list[int]:
        return self.spec.get("seeds") or [self.spec["config"]["seed"]]

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

    def events(self, start: int = 0) -> list[dict]:
        """Events from the `start`-th on (count the ones you have to poll for new ones)."""
        path = self.folder / "events.jsonl"
        if not path.exists():
            return []
        lines = path.read_text().split("\n")[:-1]  # the last piece is empty or still being written
        return [json.loads(line) for line in lines[start:] if line]

    def attempt_events(self) -> list[dict]:
        """The events of the latest attempt (a resume starts a new one): what the job's state is read from."""
        events = self.events()
        starts = [index for index, event in enumerate(events) if event["event"] == "attempt"]
        return events[starts[-1] :] if starts else events

    def pid(self) -> int | None:
        try:
            return int((self.folder / "pid").read_text())
        except (OSError, ValueError):
            return None

    def is_alive(self) -> bool:
        pid = self.pid()
        if pid is None:
            # Between the start of an attempt and its pid file the starter holds the lock: starting is alive.
            return (
                _lock_is_held(self.models_dir)
                and bool(self.attempt_events())
                and not any(event["event"] in ("job_finished", "job_failed") for event in self.attempt_events())
            )
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read()
        except OSError:
            return False
        if state in ("Z", "X"):
            return False
        # An exiting process has an empty command line but may still hold the lock; a different non-empty one
        # means the pid was reused by an unrelated process.
        return not command or str(self.folder).encode() in command

    def state(self) -> str:
        """running, finished, failed, cancelled, or killed (the worker died without a last word)."""
        if self.is_alive():
            return "running"
        kinds = [event["event"] for event in self.attempt_events()]
        if "failed" in kinds or "job_failed" in kinds:
            return "failed"
        if "cancelled" in kinds:
            return "cancelled"
        if "job_finished" in kinds:
            return "finished"
        return "killed"

    def current_run(self) -> PlannedRun | None:
        """The run being trained (or that was, when the job stopped); None once every run has ended."""
        ended = {event.get("run") for event in self.attempt_events() if event["event"] in TERMINAL_EVENTS}
        for run in self.planned_runs():
            if run.id not in ended and not _saved_as_finished(self.models_dir / run.id):
                return run
        return None

    def run_statuses(self) -> list[tuple[PlannedRun, str, str | None]]:
        """(run, status, reason) of each run this job has started, as the job knows it.

        The one place where the state of a job's runs is decided: a saved run folder says how the run ended,
        unless the job is training that run again right now (a resume); the run being trained when the job
        died without saving it is failed, with the reason the supervisor recorded if there is one.
        """
        statuses = []
        current, state = self.current_run(), self.state()
        started = {event.get("run") for event in self.events() if event["event"] == "started"}
        # How runs ended that left no folder: the supervisor's word on a trainer killed mid-run.
        ended = {
            event["run"]: (event["event"], event.get("reason"))
            for event in self.attempt_events()
            if event["event"] in TERMINAL_EVENTS and event.get("run")
        }
        for run in self.planned_runs():
            if current is not None and run.id == current.id and state == "running":
                statuses.append((run, "running", None))
                continue
            saved = _saved_status(self.models_dir / run.id)
            if saved is not None:
                statuses.append((run, *saved))
            elif run.id in ended:
                statuses.append((run, *ended[run.id]))
            elif current is not None and run.id == current.id and run.id in started and state in ("failed", "killed"):
                statuses.append((run, "failed", self.failure() or "the training process stopped unexpectedly"))
        return statuses

    def failure(self) -> str | None:
        for event in reversed(self.attempt_events()):
            if event["event"] in ("failed", "job_failed"):
                return event.get("reason")
        return None

    def epochs_done(self) -> dict[str, int]:
        """Finished epochs of each run, over all attempts (a resumed run goes on counting where it stopped)."""
        done: dict[str, int] = {}
        for event in self.events():
            if event["event"] == "epoch":
                done[event["run"]] = max(done.get(event["run"], 0), event["epoch"])
        return done

    def cancel(self) -> None:
        """Asks the job to stop after the current batch; it saves the run as cancelled."""
        (self.folder / "cancel").touch()

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> str:
        """Waits until the job is no longer running; returns its final state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} still running after {timeout} s")
            time.sleep(poll)
        return self.state()


def _saved_status(run_folder: Path) -> tuple[str, str | None] | None:
    try:
        metadata = json.loads((run_folder / "metadata.json").read_text())
        return metadata["status"], metadata.get("reason")
    except (OSError, ValueError, KeyError):
        return None


def _saved_as_finished(run_folder: Path) -> bool:
    return (_saved_status(run_folder) or ("",))[0] == "finished"


def jobs_folder(models_dir: str | Path) -> Path:
    return Path(models_dir) / ".jobs"


def list_jobs(models_dir: str | Path) -> list[Job]:
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
    for job in list_jobs(models_dir):
        if job.is_alive():
            return job
    return None


def start(
    cache: str | Path,
    models: list[str] | tuple[str, ...],
    models_dir: str | Path,
    *,
    config: Config | None = None,
    seeds: list[int] | tuple[int, ...] | None = None,
    distribute: str | None = None,
    mixed_precision: bool = False,
) -> Job:
    """Starts a job training `models` (in order) on the frame cache at `cache`, once per seed.

    `seeds` defaults to the config's one seed; with several, each seed trains every model in turn and the
    run ids end in `-seed<N>`.

    Raises:
        JobBusy: a job is already training in this models dir.
        ValueError: an unknown model name, or a path that is not a frame cache.
    """
    from har.datasets import load_cache

    unknown = [model for model in models if model not in MODEL_NAMES]
    if unknown or not models:
        raise ValueError(f"model {', '.join(unknown) or 'list is empty'}: choose from {', '.join(MODEL_NAMES)}.")
    config = config or Config()
    seeds = list(seeds) if seeds else [config.seed]
    if any(not isinstance(seed, int) or isinstance(seed, bool) or seed < 0 for seed in seeds) or len(set(seeds)) != len(
        seeds
    ):
        raise ValueError(f"seeds {seeds}: give distinct whole numbers of 0 or more.")
    frames = load_cache(cache)  # a clear error now rather than a failed job later
    config = config.replace(
        classes=frames.class_names, sequence_length=frames.sequence_length, image_size=frames.image_size, seed=seeds[0]
    )
    models_dir = Path(models_dir)
    job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    spec = {
        "cache": str(Path(cache).resolve()),
        "models": list(models),
        "config": config.to_dict(),
        "seeds": seeds,
        "distribute": distribute,
        "mixed_precision": mixed_precision,
    }
    with training_lock(models_dir) as lock:
        folder = jobs_folder(models_dir) / job_id
        folder.mkdir(parents=True)
        (folder / "job.json").write_text(json.dumps(spec, indent=1))
        return _spawn(folder, lock)


def resume(models_dir: str | Path, job_id: str) -> Job:
    """Restarts a killed, failed or cancelled job; finished models are kept, the rest resume from backup."""
    folder = jobs_folder(models_dir) / job_id
    if not (folder / "job.json").is_file():
        raise FileNotFoundError(f"{job_id}: no such job in {models_dir}.")
    with training_lock(models_dir) as lock:
        job = Job(folder)
        if job.state() == "finished":
            raise ValueError(f"job {job_id} already finished; nothing to resume.")
        (folder / "cancel").unlink(missing_ok=True)
        (folder / "pid").unlink(missing_ok=True)  # the last attempt's process is gone; this one starts now
        return _spawn(folder, lock)


class training_lock:
    """Takes the models dir's training lock (shared by training jobs and `har reproduce` pipelines), or raises
    JobBusy naming what holds it."""

    def __init__(self, models_dir: Path):
        self.path = Path(models_dir) / ".train.lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+")
        deadline = time.monotonic() + 5
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self.handle
            except BlockingIOError:
                running = current(self.path.parent)
                # No live job but a held lock: a worker is still being torn down; it lets go within moments.
                if running is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        self.handle.close()
        if running is None:
            from har import pipeline

            busy = pipeline.current(self.path.parent)
            if busy is not None:
                raise JobBusy(
                    f"the pipeline {busy.id} (`har reproduce`) is running; wait for it to finish or cancel it first."
                )
        name = f" ({running.id}, {', '.join(running.models)})" if running else ""
        raise JobBusy(f"a training job is already running{name}; wait for it to finish or cancel it first.")

    def __exit__(self, *exc):
        self.handle.close()  # the worker keeps its own copy of the lock


def _spawn(folder: Path, lock) -> Job:
    """Starts an attempt of the job: its `attempt` event first (so it reads as starting, not killed), then
    the worker, then its pid file."""
    attempt = 1 + sum(event["event"] == "attempt" for event in Job(folder).events())
    with open(folder / "events.jsonl", "a") as events:
        events.write(json.dumps({"event": "attempt", "number": attempt, "time": time.time()}) + "\n")
    log = open(folder / "worker.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "har.worker", str(folder.resolve())],
        pass_fds=(lock.fileno(),),
        env={**os.environ, "HAR_LOCK_FD": str(lock.fileno())},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # outlives the caller's session and its Ctrl-C
    )
    log.close()
    staging = folder / f"pid.{process.pid}"
    staging.write_text(str(process.pid))
    staging.replace(folder / "pid")
    return Job(folder.resolve())


def _lock_is_held(models_dir: Path) -> bool:
    path = Path(models_dir) / ".train.lock"
    try:
        with open(path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
    except BlockingIOError:
        return True
    except OSError:
        return False
