"""Start-up tasks, run once before the app starts (`python -m har.bootstrap`, from docker/entrypoint.sh).

1. Exported runs (`har export` zips) in the repository's `pretrained/` folder are imported when the models dir
   has no finished run, each bound to the data dir's copy of the frame cache it was trained on, so a fresh
   Space opens with models that answer and can be evaluated.
2. The newest job or pipeline, when a restart killed it, resumes: a visitor cannot type `har train --resume`.
3. With `HAR_BOOTSTRAP=report`, a models dir with nothing to show and no pipeline yet starts `har reproduce`
   with the report's settings.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from har import config as config_module

log = logging.getLogger(__name__)

BOOTSTRAP_VARIABLE = "HAR_BOOTSTRAP"


def import_pretrained(folder: str | Path, models_dir: str | Path, data_dir: str | Path | None = None) -> list:
    """Imports every `*.zip` in `folder` when the models dir has no finished run; returns the imported runs.

    Each is bound to the local frame cache it was trained on, when `data_dir` holds one
    (`har.portable.bind_to_local_cache`). An archive that cannot be imported (damaged, a run id already taken)
    is logged and skipped.
    """
    from har.portable import import_run
    from har.runs import latest_runs

    archives = sorted(Path(folder).glob("*.zip")) if Path(folder).is_dir() else []
    if not archives or latest_runs(models_dir):
        return []
    imported = []
    for archive in archives:
        try:
            imported.append(import_run(archive, models_dir, data_dir))
        except (ValueError, OSError) as error:
            log.warning("pretrained run %s not imported: %s", archive, error)
    if imported:
        prepare_answering_runs(models_dir)
    return imported


def prepare_answering_runs(models_dir: str | Path) -> None:
    """Saves the out-of-distribution reference (`ood.npz`) of each run that answers on the pages, now.

    It is computed from the run's training clips (8 s for the ConvLSTM on the default demo, 2.6 s for the
    LRCN, on 2 cores); made here, it is not a fresh server's first visitor who waits for it. A run whose cache
    is not here is skipped: its pages say the check is unavailable.
    """
    import numpy as np

    from har.inference import Predictor
    from har.ood import out_of_distribution
    from har.runs import answering_runs

    for run in answering_runs(models_dir):
        try:
            predictor = Predictor.from_run(run.path, models_dir)
            blank = np.zeros((predictor.sequence_length, predictor.image_size, predictor.image_size, 3), np.uint8)
            out_of_distribution(predictor, run, blank)
        except (OSError, ValueError) as error:
            log.warning("run %s: its out-of-distribution reference was not made now: %s", run.id, error)


def resume_killed(models_dir: str | Path):
    """Resumes the newest training job or pipeline if it was killed (by a restart); returns it, else None.

    Only the newest: an older killed job was left that way by someone, since a newer one ran after it.
    """
    from har import jobs, pipeline

    # Both ids start with the time they were created (YYYYmmdd-HHMMSS-xxxx), so they sort together.
    candidates = [*jobs.list_jobs(models_dir), *pipeline.list_pipelines(models_dir)]
    if not candidates:
        return None
    newest = max(candidates, key=lambda item: item.id)
    if newest.state() != "killed":
        return None
    if isinstance(newest, pipeline.Pipeline):
        return pipeline.resume(models_dir, newest.id)
    return jobs.resume(models_dir, newest.id)


def start_report(models_dir: str | Path, data_dir: str | Path):
    """Starts `har reproduce` (the report's settings) if there is nothing to show and no pipeline yet."""
    from har import pipeline
    from har.runs import latest_runs

    if latest_runs(models_dir) or pipeline.list_pipelines(models_dir):
        return None
    return pipeline.start(pipeline.Options(data_dir=str(data_dir)), models_dir)


def run(pretrained: str | Path, models_dir: str | Path, data_dir: str | Path, *, report: bool = False) -> dict:
    """Every start-up task in order; returns what each did: {"imported": [run ids], "resumed": id, "started": id}.

    `report`: start `har reproduce` when there is nothing to show (`HAR_BOOTSTRAP=report`).
    """
    imported = import_pretrained(pretrained, models_dir, data_dir)
    resumed = resume_killed(models_dir)
    started = start_report(models_dir, data_dir) if report else None
    return {
        "imported": [run.id for run in imported],
        "resumed": resumed.id if resumed is not None else None,
        "started": started.id if started is not None else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m har.bootstrap", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pretrained",
        default=str(config_module.pretrained_dir()),
        help="folder of exported runs (default: $HAR_PRETRAINED, else the repository's pretrained/)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="har: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    done = run(
        args.pretrained,
        config_module.models_dir(),
        config_module.data_dir(),
        report=os.environ.get(BOOTSTRAP_VARIABLE, "").strip() == "report",
    )
    for run_id in done["imported"]:
        log.info("imported pretrained run %s", run_id)
    if done["resumed"]:
        log.info("resumed %s, which a restart had killed", done["resumed"])
    if done["started"]:
        log.info("started pipeline %s (HAR_BOOTSTRAP=report)", done["started"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
