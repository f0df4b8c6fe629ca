"""A training job's trainer: `python -m har.worker JOB_FOLDER`, run by the job's supervisor (`har.background`).

It trains the job's runs one after the other, skipping those already saved as finished, and dies with its
supervisor (the holder of the models dir's lock). Each event goes to the job's events.jsonl as it happens; what
goes wrong is logged with its traceback to the job's process.log, and said in one line in the events.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from har import background
from har.jobs import Job

log = logging.getLogger(__name__)


def train(job: Job) -> int:
    """Trains the job's runs not finished yet, in order; stops at the first that does not finish."""
    from har.runs import read_run
    from har.training import train_run

    emit = job.log.writer()
    try:
        config = job.config
        for planned in job.planned_runs():
            if read_run(job.models_dir / planned.id).status == "finished":
                continue
            if job.cancel_requested():
                emit({"event": "cancelled", "run": planned.id, "model": planned.model, "seed": planned.seed})
                break
            run = train_run(
                job.cache,
                planned.model,
                job.models_dir,
                config=config.replace(seed=planned.seed),
                run_id=planned.id,
                job_id=job.id,
                emit=emit,
                should_cancel=job.cancel_requested,
                backup_dir=job.folder / "backup" / planned.id,
            )
            if read_run(run).status != "finished":
                break
        else:
            emit({"event": "job_finished"})
        return 0
    except Exception as error:  # noqa: BLE001 - the job's last word, whatever went wrong
        log.exception("training job %s failed", job.id)
        emit({"event": "job_failed", "reason": f"{type(error).__name__}: {error}".splitlines()[0]})
        return 0  # the failure is told: a non-zero status is for a trainer that could not say so


def main(folder: str) -> int:
    background.die_with_supervisor(os.environ.get(background.SUPERVISOR_VARIABLE))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return train(Job(Path(folder)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
