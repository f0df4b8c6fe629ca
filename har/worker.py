"""The training job's processes: `python -m har.worker JOB_FOLDER` (started by `har.jobs`, not by hand).

Two processes: a small supervisor, which inherits the models dir's training lock and holds it until it exits,
and the trainer it starts. When the trainer dies from a signal (the kernel's out-of-memory killer sends
SIGKILL to the largest process, which is the trainer), the supervisor is still there to record why; the
trainer in turn is killed with its supervisor, so a job never trains without holding the lock.

Each event goes to the job's events.jsonl as one line, written and flushed at once, so followers see it
immediately and a kill loses at most the line being written.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path


def main(folder: str) -> int:
    folder = Path(folder)
    if os.environ.get("HAR_TRAINER") == "1":
        return train(folder)
    return supervise(folder)


def _emitter(folder: Path):
    events = open(folder / "events.jsonl", "a")

    def emit(event: dict) -> None:
        events.write(json.dumps({"time": time.time(), **event}) + "\n")
        events.flush()

    return emit


def supervise(folder: Path) -> int:
    """Holds the lock, runs the trainer, and records a trainer killed by a signal as a failed run."""
    # Keep the inherited lock out of every program started from here (the trainer included, and whatever
    # libraries fork and exec): such a child outliving this process would hold the lock after the job ended.
    os.set_inheritable(int(os.environ["HAR_LOCK_FD"]), False)
    trainer = subprocess.Popen(
        [sys.executable, "-m", "har.worker", str(folder)],
        env={**os.environ, "HAR_TRAINER": "1", "HAR_SUPERVISOR": str(os.getpid())},
    )
    (folder / "trainer.pid").write_text(str(trainer.pid))
    code = trainer.wait()
    if code < 0:
        from har.jobs import Job

        name = signal.Signals(-code).name
        reason = f"the training process was killed by {name}"
        if -code == signal.SIGKILL:
            reason += "; if nobody killed it, the machine ran out of memory: lower the batch size or the classes"
        run = Job(folder).current_run()
        event = {"event": "failed", "reason": reason}
        if run:
            event.update(model=run.model, run=run.id, seed=run.seed)
        _emitter(folder)(event)
    return code


def train(folder: Path) -> int:
    """Trains the job's runs one after the other; dies with its supervisor."""
    _die_with_parent()
    from har.jobs import Job

    job = Job(folder)
    spec, models_dir = job.spec, job.models_dir
    emit = _emitter(folder)

    cancel = folder / "cancel"
    try:
        from har.config import Config
        from har.training import train_run

        config = Config.from_dict({"trainer": "twin", **spec["config"]})  # jobs from before `trainer` used the twin
        for planned in job.planned_runs():
            if _finished(models_dir / planned.id):
                continue
            if cancel.exists():
                emit({"event": "cancelled", "run": planned.id, "model": planned.model, "seed": planned.seed})
                break
            run = train_run(
                spec["cache"],
                planned.model,
                models_dir,
                config=config.replace(seed=planned.seed),
                run_id=planned.id,
                job_id=job.id,
                emit=emit,
                should_cancel=cancel.exists,
                backup_dir=folder / "backup" / planned.id,
                distribute=spec.get("distribute"),
                mixed_precision=spec.get("mixed_precision", False),
            )
            if json.loads((run / "metadata.json").read_text())["status"] != "finished":
                break
        else:
            emit({"event": "job_finished"})
        return 0
    except Exception as error:  # noqa: BLE001 - the job's last word, whatever went wrong
        logging.error("training job failed:\n%s", traceback.format_exc())
        emit({"event": "job_failed", "reason": f"{type(error).__name__}: {error}".splitlines()[0]})
        return 1


def _die_with_parent() -> None:
    """Asks Linux to SIGKILL this process when its parent (the supervisor, holder of the lock) dies."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if str(os.getppid()) != os.environ.get("HAR_SUPERVISOR"):  # it died before the request took effect
        os._exit(1)


def _finished(run: Path) -> bool:
    try:
        return json.loads((run / "metadata.json").read_text())["status"] == "finished"
    except (OSError, ValueError, KeyError):
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
