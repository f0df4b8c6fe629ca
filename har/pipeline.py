"""The whole study as one background job: `har reproduce`.

Get UCF50 (download, or an archive or folder on disk) -> extract the chosen classes -> build the frame cache
-> train both models on each split for each seed -> evaluate every run -> the comparison. It runs in its own
process (`python -m har.pipeline FOLDER`, started here in a new session so that it outlives whoever started
it), which holds the models dir's training lock (`har.jobs`) for its whole life: one pipeline or training job
at a time. Its folder, `<models_dir>/.pipelines/<pipeline_id>/`, holds:

    pipeline.json   what to do (the options)
    pid             the process's id
    events.jsonl    one JSON event per line: stages, download and decoding progress, training events
    stages/         one `<stage>.json` per completed stage, with what it produced
    backup/<run>/   Keras BackupAndRestore state of the run being trained
    cancel          present once a cancel was asked for
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
import logging
import os
import secrets
import subprocess
import sys
import time
import traceback
from pathlib import Path

from har import config as config_module
from har.config import MODEL_NAMES, REPORT_CLASSES, SPLITS

log = logging.getLogger(__name__)

PROGRESS_EVENT_SECONDS = 0.5  # at most two progress events a second per stage
DATA_STAGES = ("download", "extract", "cache")


class Cancelled(Exception):
    """The pipeline was asked to stop."""


@dataclasses.dataclass(frozen=True)
class Options:
    """What `har reproduce` does; everything but `insecure_tls` identifies the pipeline."""

    data_dir: str  # downloads, extracted classes and the frame cache go here
    source: str | None = None  # a UCF50 archive or extracted folder on disk; None downloads `url`
    url: str | None = None  # None: the official UCF50 address
    classes: tuple[str, ...] = REPORT_CLASSES
    splits: tuple[str, ...] = SPLITS
    seeds: tuple[int, ...] = (27,)
    models: tuple[str, ...] = MODEL_NAMES
    epochs: int = 30
    sequence_length: int = 20
    image_size: int = 64
    until: str | None = None  # "download", "extract" or "cache": stop after that stage (the Data page's job)
    insecure_tls: bool | None = None  # None: $HAR_INSECURE_TLS

    def __post_init__(self):
        from har.datasets import ucf50

        for name in ("classes", "splits", "seeds", "models"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        ucf50.check_classes(self.classes)
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
        if not self.seeds or not all(isinstance(seed, int) and seed >= 0 for seed in self.seeds):
            raise ValueError(f"--seeds {self.seeds!r}: give whole numbers of 0 or more.")
        # The training settings are checked the way every run checks them.
        config_module.Config(
            classes=self.classes, epochs=self.epochs, sequence_length=self.sequence_length, image_size=self.image_size
        )

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        for name in ("classes", "splits", "seeds", "models"):
            values[name] = list(values[name])
        return values

    def identity(self) -> str:
        """A short hash of what the pipeline produces (everything but how it downloads)."""
        values = {key: value for key, value in self.to_dict().items() if key != "insecure_tls"}
        values["data_dir"] = str(Path(self.data_dir).resolve())
        values["source"] = str(Path(self.source).resolve()) if self.source else None
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]

    def runs(self) -> list[tuple[str, str, int]]:
        """(model, split, seed) of every run, in training order: the report's split first, both models each."""
        return [(model, split, seed) for seed in self.seeds for split in self.splits for model in self.models]


class Pipeline:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder).resolve()
        self.id = self.folder.name
        self.models_dir = self.folder.parent.parent
        spec = json.loads((self.folder / "pipeline.json").read_text())
        self.options = Options(**spec["options"])
        self.identity = spec["identity"]
        self.first_event = 0  # where this try's events begin (set by start and resume)
        self.attached = False  # start() found it running already

    def __repr__(self) -> str:
        return f"Pipeline({self.id!r}, {self.state()})"

    # The same reading interface as har.jobs.Job, so followers and pages treat both alike.
    def events(self, start: int = 0) -> list[dict]:
        path = self.folder / "events.jsonl"
        if not path.exists():
            return []
        lines = path.read_text().split("\n")[:-1]  # the last piece is empty or still being written
        return [json.loads(line) for line in lines[start:] if line]

    def pid(self) -> int | None:
        try:
            return int((self.folder / "pid").read_text())
        except (OSError, ValueError):
            return None

    def is_alive(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read()
        except OSError:
            return False
        # A zombie has ended; a different command line means the pid was reused.
        return state not in ("Z", "X") and (not command or str(self.folder).encode() in command)

    def state(self) -> str:
        """running, finished, failed, cancelled, or killed (the process died without a last word)."""
        if self.is_alive():
            return "running"
        for event in reversed(self.events()):
            kind = event["event"]
            if kind == "pipeline_finished":
                return "finished"
            if kind == "pipeline_failed":
                return "failed"
            if kind == "pipeline_cancelled":
                return "cancelled"
            if kind == "pipeline_started":
                break
        return "killed"

    def failure(self) -> str | None:
        for event in reversed(self.events()):
            if event["event"] == "pipeline_failed":
                return event.get("reason")
        return None

    def cancel(self) -> None:
        """Asks the pipeline to stop (within a batch when training, within a chunk when downloading)."""
        (self.folder / "cancel").touch()

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> str:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"pipeline {self.id} still running after {timeout} s")
            time.sleep(poll)
        return self.state()

    def stage_names(self) -> list[str]:
        """Every stage, in order."""
        names = [] if self.options.source else ["download"]
        names += ["extract", "cache"]
        if self.options.until:
            return names[: names.index(self.options.until) + 1]
        names += [f"train {self.run_id(*run)}" for run in self.options.runs()]
        return names + ["evaluate", "compare"]

    def done(self, stage: str) -> dict | None:
        """What a completed stage recorded, or None if it has not completed."""
        try:
            return json.loads((self.folder / "stages" / f"{_file_name(stage)}.json").read_text())
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
        stages = self.stage_names()
        done = [stage for stage in stages if self.done(stage)]
        current, progress = None, None
        for event in reversed(self.events()):
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
            "state": self.state(),
            "stages": stages,
            "stages_done": len(done),
            "current_stage": current,
            "stage_progress": progress,
            "runs": self.run_ids(),
            "reason": self.failure(),
            "options": self.options.to_dict(),
        }


def pipelines_folder(models_dir: str | Path) -> Path:
    return Path(models_dir) / ".pipelines"


def list_pipelines(models_dir: str | Path | None = None) -> list[Pipeline]:
    """Every pipeline of the models dir, newest first."""
    folder = pipelines_folder(config_module.models_dir(models_dir))
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


def current(models_dir: str | Path | None = None) -> Pipeline | None:
    """The running pipeline, if there is one."""
    return next((pipeline for pipeline in list_pipelines(models_dir) if pipeline.is_alive()), None)


def latest(models_dir: str | Path | None = None) -> Pipeline | None:
    """The newest pipeline, whatever its state (for a page to show)."""
    return next(iter(list_pipelines(models_dir)), None)


def status(models_dir: str | Path | None = None) -> dict | None:
    """The newest pipeline's `summary()` (state, stage, progress), or None if there has been none: for a page."""
    newest = latest(models_dir)
    return newest.summary() if newest is not None else None


def start(options: Options, models_dir: str | Path | None = None) -> Pipeline:
    """Starts (or continues) the pipeline for `options` in the background and returns it.

    The same options continue the same pipeline: its completed stages are skipped; while it runs, they return
    it as it is (to follow it again).

    Raises:
        JobBusy: a pipeline or a training job is already running in this models dir.
    """
    from har import jobs

    models_dir = config_module.models_dir(models_dir)
    if options.source is not None and not Path(options.source).exists():
        raise FileNotFoundError(f"{options.source}: no such archive or folder; check the --source path.")
    identity = options.identity()
    running = current(models_dir)
    if running is not None and running.identity == identity:
        running.first_event = len(running.events())  # the same pipeline: follow it from here on
        running.attached = True
        return running
    if running is not None:
        raise jobs.JobBusy(f"pipeline {running.id} is already running; wait for it to finish or cancel it first.")
    with jobs.training_lock(models_dir) as lock:
        folder = next((p.folder for p in list_pipelines(models_dir) if p.identity == identity), None)
        if folder is None:
            folder = pipelines_folder(models_dir) / (time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2))
            folder.mkdir(parents=True)
        # insecure_tls may change between tries; the rest is the same by construction.
        staging = folder / ".pipeline.json.tmp"
        staging.write_text(json.dumps({"identity": identity, "options": options.to_dict()}, indent=1))
        staging.replace(folder / "pipeline.json")
        (folder / "cancel").unlink(missing_ok=True)
        return _spawn(folder, lock)


def resume(models_dir: str | Path | None, pipeline_id: str) -> Pipeline:
    """Continues a killed, failed or cancelled pipeline from its first stage not done."""
    from har import jobs

    models_dir = config_module.models_dir(models_dir)
    folder = pipelines_folder(models_dir) / pipeline_id
    if not (folder / "pipeline.json").is_file():
        raise FileNotFoundError(f"{pipeline_id}: no such pipeline in {models_dir}.")
    with jobs.training_lock(models_dir) as lock:
        (folder / "cancel").unlink(missing_ok=True)
        return _spawn(folder, lock)


def _spawn(folder: Path, lock) -> Pipeline:
    first_event = len(Pipeline(folder).events())
    log_file = open(folder / "pipeline.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "har.pipeline", str(folder.resolve())],
        pass_fds=(lock.fileno(),),
        env={**os.environ, "HAR_LOCK_FD": str(lock.fileno())},
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # outlives the caller's session and its Ctrl-C
    )
    log_file.close()
    (folder / "pid").write_text(str(process.pid))
    pipeline = Pipeline(folder)
    pipeline.first_event = first_event
    return pipeline


# ---------------------------------------------------------------------------------------------------------
# The pipeline's own process.


class _Runner:
    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.options = pipeline.options
        self.folder = pipeline.folder
        self.events = open(self.folder / "events.jsonl", "a")
        self.last_progress = 0.0

    def emit(self, event: dict) -> None:
        self.events.write(json.dumps({"time": time.time(), **event}) + "\n")
        self.events.flush()

    def cancelled(self) -> bool:
        return (self.folder / "cancel").exists()

    def progress(self, stage: str):
        def report(done: int, total: int | None) -> None:
            if self.cancelled():
                raise Cancelled()
            now = time.monotonic()
            if now - self.last_progress >= PROGRESS_EVENT_SECONDS or (total is not None and done >= total):
                self.last_progress = now
                self.emit({"event": "progress", "stage": stage, "done": done, "total": total})

        return report

    def stage(self, name: str, work, still_there=lambda recorded: True) -> dict:
        """Runs `work()` unless the stage is recorded as done and `still_there(record)`; records what it returned.

        `still_there` checks that what the stage produced was not deleted since (then the stage runs again, and
        its own reuse of what is left, such as a `.part` file, applies).
        """
        recorded = self.pipeline.done(name)
        if recorded is not None and still_there(recorded):
            self.emit({"event": "stage", "stage": name, "status": "skipped"})
            return recorded
        if self.cancelled():
            raise Cancelled()
        self.emit({"event": "stage", "stage": name, "status": "started"})
        result = work() or {}
        stages = self.folder / "stages"
        stages.mkdir(exist_ok=True)
        staging = stages / f".{_file_name(name)}.tmp"
        staging.write_text(json.dumps({"finished": time.time(), **result}, indent=1))
        staging.replace(stages / f"{_file_name(name)}.json")
        self.emit({"event": "stage", "stage": name, "status": "done", **result})
        return result

    def run(self) -> None:
        from har.datasets import build_cache, default_cache_path, load_cache, ucf50
        from har.runs import read_run

        options, data_dir = self.options, Path(self.options.data_dir)
        archive = options.source
        if archive is None:

            def fetch():
                path = ucf50.download_archive(
                    data_dir,
                    url=options.url or ucf50.UCF50_URL,
                    progress=self.progress("download"),
                    insecure_tls=options.insecure_tls,
                )
                return {"archive": str(path.resolve())}

            archive = self.stage("download", fetch, lambda done: Path(done["archive"]).is_file())["archive"]
            if options.until == "download":
                return

        def extract():
            root = ucf50.prepare(data_dir, options.classes, source=archive, on_extract=self.progress("extract"))
            return {"root": str(Path(root).resolve())}

        root = self.stage("extract", extract, lambda done: Path(done["root"]).is_dir())["root"]
        if options.until == "extract":
            return

        def cache():
            out = default_cache_path(data_dir, root, options.sequence_length, options.image_size)
            path = build_cache(
                root,
                out,
                classes=list(options.classes),
                sequence_length=options.sequence_length,
                image_size=options.image_size,
                progress=self.progress("cache"),
            )
            return {"cache": str(Path(path).resolve()), "fingerprint": load_cache(path).fingerprint}

        def cache_unchanged(done: dict) -> bool:
            try:
                return load_cache(done["cache"]).fingerprint == done["fingerprint"]
            except (OSError, ValueError):
                return False

        cache_path = self.stage("cache", cache, cache_unchanged)["cache"]
        if options.until == "cache":
            return
        for model, split, seed in options.runs():
            run_id = self.pipeline.run_id(model, split, seed)
            self.stage(
                f"train {run_id}",
                lambda model=model, split=split, seed=seed, run_id=run_id: self.train(
                    cache_path, model, split, seed, run_id
                ),
                lambda done: read_run(self.pipeline.models_dir / done["run"]).status == "finished",
            )
        self.stage("evaluate", self.evaluate)
        self.stage("compare", self.compare, lambda done: Path(done["comparison"]).is_file())

    def train(self, cache_path: str, model: str, split: str, seed: int, run_id: str) -> dict:
        from har.runs import read_run
        from har.training import train_run

        run = self.pipeline.models_dir / run_id
        if read_run(run).status != "finished":
            config = config_module.Config(split=split, seed=seed, epochs=self.options.epochs)
            run = train_run(
                cache_path,
                model,
                self.pipeline.models_dir,
                config=config,
                run_id=run_id,
                job_id=self.pipeline.id,
                emit=self.emit,
                should_cancel=self.cancelled,
                backup_dir=self.folder / "backup" / run_id,
            )
            finished = read_run(run)
            if finished.status == "cancelled":
                raise Cancelled()
            if finished.status != "finished":
                raise RuntimeError(f"run {run_id} {finished.status}: {finished.reason}")
        return {"run": run_id}

    def evaluate(self) -> dict:
        from har.evaluation import evaluate

        accuracies = {}
        for run_id in self.pipeline.run_ids():
            if self.cancelled():
                raise Cancelled()
            accuracies[run_id] = evaluate(run_id, self.pipeline.models_dir)["accuracy"]
        return {"accuracy": accuracies}

    def compare(self) -> dict:
        from har.services import compare_runs

        table = compare_runs(self.pipeline.run_ids(), self.pipeline.models_dir)
        staging = self.folder / ".comparison.json.tmp"
        staging.write_text(json.dumps(table, indent=1))
        staging.replace(self.folder / "comparison.json")
        return {"comparison": str(self.folder / "comparison.json")}


def _file_name(stage: str) -> str:
    return stage.replace(" ", "-")


def main(folder: str) -> int:
    """The pipeline's process: holds the inherited lock, runs the stages not done, records how it ended."""
    os.set_inheritable(int(os.environ["HAR_LOCK_FD"]), False)  # no child may outlive this with the lock
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = _Runner(Pipeline(folder))
    runner.emit({"event": "pipeline_started", "pid": os.getpid()})
    try:
        runner.run()
    except Cancelled:
        runner.emit({"event": "pipeline_cancelled"})
        return 0
    except Exception as error:  # noqa: BLE001 - the pipeline's last word, whatever went wrong
        log.error("pipeline failed:\n%s", traceback.format_exc())
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        runner.emit({"event": "pipeline_failed", "reason": reason})
        return 1
    runner.emit({"event": "pipeline_finished"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
