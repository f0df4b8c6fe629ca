"""The training job's process: `python -m har.worker JOB_FOLDER` (started by `har.jobs`, not by hand).

It inherits the models dir's training lock and holds it until it exits. Each event goes to the job's
events.jsonl as one line, written and flushed at once, so followers see it immediately and a kill loses
at most the line being written.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path


def main(folder: str) -> int:
    # Keep the inherited lock out of any program this process runs (libraries fork and exec helpers):
    # such a child outliving a killed worker would hold the lock after the job is gone.
    lock_fd = os.environ.get("HAR_LOCK_FD")
    if lock_fd is not None:
        os.set_inheritable(int(lock_fd), False)
    folder = Path(folder)
    spec = json.loads((folder / "job.json").read_text())
    models_dir = folder.parent.parent
    events = open(folder / "events.jsonl", "a")

    def emit(event: dict) -> None:
        events.write(json.dumps({"time": time.time(), **event}) + "\n")
        events.flush()

    cancel = folder / "cancel"
    try:
        from har.config import Config
        from har.training import train_run

        config = Config.from_dict(spec["config"])
        for model in spec["models"]:
            run_id = f"{folder.name}-{model}"
            if _finished(models_dir / run_id):
                continue
            if cancel.exists():
                emit({"event": "cancelled", "run": run_id, "model": model})
                break
            run = train_run(
                spec["cache"], model, models_dir, config=config, run_id=run_id, emit=emit,
                should_cancel=cancel.exists, backup_dir=folder / "backup" / model,
                distribute=spec.get("distribute"), mixed_precision=spec.get("mixed_precision", False),
            )  # fmt: skip
            if json.loads((run / "metadata.json").read_text())["status"] != "finished":
                break
        else:
            emit({"event": "job_finished"})
        return 0
    except Exception as error:  # noqa: BLE001 - the job's last word, whatever went wrong
        logging.error("training job failed:\n%s", traceback.format_exc())
        emit({"event": "job_failed", "reason": f"{type(error).__name__}: {error}".splitlines()[0]})
        return 1


def _finished(run: Path) -> bool:
    try:
        return json.loads((run / "metadata.json").read_text())["status"] == "finished"
    except (OSError, ValueError, KeyError):
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
