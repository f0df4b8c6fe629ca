"""A pipeline's stage runner: `python -m har.pipeline_runner FOLDER`, run by its supervisor (`har.background`).

It runs the stages not done yet (`har.pipeline`), records each one's completion, and says how it ended in one
event (`pipeline_finished`, `pipeline_failed` with a one-line reason, `pipeline_cancelled`); a traceback goes to
the pipeline's process.log. It trains in this process, and dies with its supervisor, which records a kill (an
out-of-memory one included) with its reason.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from har import background
from har.pipeline import Pipeline

log = logging.getLogger(__name__)

PROGRESS_EVENT_SECONDS = 0.5  # at most two progress events a second per stage


class Cancelled(Exception):
    """The pipeline was asked to stop."""


class Runner:
    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.options = pipeline.options
        self.folder = pipeline.folder
        self.emit = pipeline.log.writer()
        self.last_progress = 0.0

    def cancelled(self) -> bool:
        return self.pipeline.cancel_requested()

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
        record = self.pipeline.stage_record(name)
        record.parent.mkdir(exist_ok=True)
        staging = record.with_name(f".{record.name}.tmp")
        staging.write_text(json.dumps({"finished": time.time(), **result}, indent=1))
        staging.replace(record)
        self.emit({"event": "stage", "stage": name, "status": "done", **result})
        return result

    def run(self) -> None:
        options = self.options
        archive = options.source
        if archive is None:
            archive = self.stage("download", self.fetch, lambda done: Path(done["archive"]).is_file())["archive"]
            if options.until == "download":
                return
        root = self.stage("extract", lambda: self.extract(archive), lambda done: Path(done["root"]).is_dir())["root"]
        if options.until == "extract":
            return
        cache_path = self.stage("cache", lambda: self.build_cache(root), _cache_unchanged)["cache"]
        if options.until == "cache":
            return
        from har.runs import read_run

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

    def fetch(self) -> dict:
        from har.datasets import ucf50
        from har.download import insecure_tls_requested

        path = ucf50.download_archive(
            Path(self.options.data_dir),
            url=self.options.url or ucf50.UCF50_URL,
            progress=self.progress("download"),
            # This process is an entry point: a pipeline started without a word on it (the app's) follows
            # $HAR_INSECURE_TLS, read here once.
            insecure_tls=insecure_tls_requested(self.options.insecure_tls),
        )
        return {"archive": str(path.resolve())}

    def extract(self, archive: str) -> dict:
        from har.datasets import ucf50

        data_dir, classes = Path(self.options.data_dir), self.options.config.classes
        root = ucf50.prepare(data_dir, classes, source=archive, on_extract=self.progress("extract"))
        return {"root": str(Path(root).resolve())}

    def build_cache(self, root: str) -> dict:
        from har.datasets import build_cache, default_cache_path, load_cache

        config = self.options.config
        out = default_cache_path(Path(self.options.data_dir), root, config.sequence_length, config.image_size)
        path = build_cache(
            root,
            out,
            classes=list(config.classes),
            sequence_length=config.sequence_length,
            image_size=config.image_size,
            progress=self.progress("cache"),
        )
        return {"cache": str(Path(path).resolve()), "fingerprint": load_cache(path).fingerprint}

    def train(self, cache_path: str, model: str, split: str, seed: int, run_id: str) -> dict:
        from har.runs import read_run
        from har.training import train_run

        run = self.pipeline.models_dir / run_id
        if read_run(run).status != "finished":
            run = train_run(
                cache_path,
                model,
                self.pipeline.models_dir,
                config=self.options.run_config(split, seed),
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
        from har.evaluation import compare

        table = compare(self.pipeline.run_ids(), self.pipeline.models_dir)
        staging = self.folder / ".comparison.json.tmp"
        staging.write_text(json.dumps(table, indent=1))
        staging.replace(self.folder / "comparison.json")
        return {"comparison": str(self.folder / "comparison.json")}


def _cache_unchanged(done: dict) -> bool:
    from har.datasets import load_cache

    try:
        return load_cache(done["cache"]).fingerprint == done["fingerprint"]
    except (OSError, ValueError):
        return False


def run(pipeline: Pipeline) -> int:
    """Runs the stages not done and records how it ended, failures included; then 0 (a non-zero status is for a
    runner that could not say how it ended, which its supervisor then records)."""
    runner = Runner(pipeline)
    runner.emit({"event": "pipeline_started", "pid": os.getpid()})
    try:
        runner.run()
    except Cancelled:
        runner.emit({"event": "pipeline_cancelled"})
        return 0
    except Exception as error:  # noqa: BLE001 - the pipeline's last word, whatever went wrong
        log.exception("pipeline %s failed", pipeline.id)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        runner.emit({"event": "pipeline_failed", "reason": reason})
        return 0
    runner.emit({"event": "pipeline_finished"})
    return 0


def main(folder: str) -> int:
    background.die_with_supervisor(os.environ.get(background.SUPERVISOR_VARIABLE))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(Pipeline(folder))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
