"""What the command line and the app's pages both do, written once: one function per user-level action.

- `prepare_cache`: a dataset folder or archive -> a frame cache (extracting the archive's classes first).
- `predict_file`: one video file -> every chosen run's class probabilities, decoding once per preprocessing.
- `select_runs`: the runs a command names (ids, folders, model names) or the one that answers for each model
  (`har.runs.answering_runs`: the lowest validation loss of its job's runs).
- `compare_runs`: the comparison table (`har.evaluation.compare`), each row with its confusion matrix.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from har import archives
from har.config import MODEL_NAMES, Config
from har.datasets import build_cache, default_cache_path, ucf50
from har.inference import Predictor, preprocessing
from har.runs import answering_runs, find_run
from har.video import check_video_file, decode_clip


def prepare_cache(
    source: str | os.PathLike,
    *,
    data_dir: str | os.PathLike,
    classes: list[str] | tuple[str, ...] | None = None,
    sequence_length: int = Config.sequence_length,
    image_size: int = Config.image_size,
    out: str | os.PathLike | None = None,
    workers: int | None = None,
    on_extract: Callable[[int, int], None] | None = None,
    on_decode: Callable[[int, int], None] | None = None,
) -> Path:
    """Builds (or reuses) the frame cache of `source` and returns its folder.

    Args:
        source: a dataset folder in the UCF50 layout, or an archive of one (extracted first, the chosen classes
            only, to `<data_dir>/<archive name>`).
        data_dir: where extracted archives and default cache folders go.
        classes: class names in label order; None takes every class found.
        out: the cache folder; None: `<data_dir>/caches/<source>-T<sequence_length>-S<image_size>`.
        on_extract, on_decode: progress callbacks, called with (done, total).

    Raises:
        FileNotFoundError: `source` does not exist.
        ValueError: bad settings, or a source without clips of the classes.
    """
    Config(sequence_length=sequence_length, image_size=image_size)  # validates both
    data_dir = Path(data_dir)
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such dataset folder or archive; check the path.")
    if archives.is_archive(source):
        source = ucf50.extract_classes(source, data_dir / source.name.split(".")[0], classes, progress=on_extract)
    out = Path(out) if out else default_cache_path(data_dir, source, sequence_length, image_size, classes)
    return build_cache(
        source,
        out,
        classes=classes,
        sequence_length=sequence_length,
        image_size=image_size,
        workers=workers,
        progress=on_decode,
    )


@dataclasses.dataclass
class Predictions:
    """Every run's prediction for one clip, and the frames each preprocessing sampled from it."""

    clip: str
    runs: list[dict]  # {"run_id", "model", "label", "probabilities": {class: p, most likely first}}
    clips: dict  # (sequence_length, image_size) -> har.video.Clip, the frames that the runs saw

    def to_dict(self) -> dict:
        """The `har predict --json` shape."""
        return {"clip": self.clip, "runs": self.runs}


def predict_file(
    path: str | os.PathLike,
    runs: list | None,
    models_dir: str | os.PathLike,
    *,
    decoder: Callable | None = None,
    load: Callable | None = None,
) -> Predictions:
    """Class probabilities of the clip at `path` from each run; runs with the same preprocessing share a decode.

    The clip is decoded at each chosen run's (sequence length, image size), read from the run's metadata,
    before any model is loaded: a bad file costs no model load.

    Args:
        runs: run ids, folders, `Run`s or model names (`select_runs`); None: the run that answers for each model
            (`har.runs.answering_runs`).
        models_dir: the folder holding the runs.
        decoder: `(path, sequence_length, image_size) -> Clip`; default `har.video.decode_clip` (the app passes
            `har.sandbox.decode_untrusted` for uploads).
        load: `(run, models_dir) -> Predictor`; default `Predictor.from_run` (the app passes its cached loader).

    Raises:
        FileNotFoundError: no finished run to predict with.
        VideoError: no such file, or not a readable video; raised before any model is loaded.
    """
    from har.ood import out_of_distribution  # Keras: imported only when predicting

    decoder = decoder or decode_clip
    load = load or Predictor.from_run
    check_video_file(path)  # a missing, empty or non-video file fails here, before any run is looked up
    chosen = select_runs(runs, models_dir)
    keys = [preprocessing(run.metadata)[1:] for run in chosen]
    clips = {key: decoder(path, *key) for key in dict.fromkeys(keys)}
    results = []
    for run in chosen:
        predictor = load(run, models_dir)
        key = (predictor.sequence_length, predictor.image_size)
        if key not in clips:
            clips[key] = decoder(path, *key)
        probabilities = predictor.as_dict(predictor.predict_frames(clips[key].frames))
        results.append(
            {
                "run_id": predictor.run_id,
                "model": predictor.model_name,
                "label": next(iter(probabilities)),
                "probabilities": probabilities,
                "problems": clips[key].problems(),
                **out_of_distribution(predictor, run, clips[key].frames),
            }
        )
    return Predictions(str(path), results, clips)


def select_runs(runs: list | None, models_dir: str | os.PathLike) -> list:
    """`Run`s from ids, folders, `Run`s or model names (`lrcn`, `convlstm`: the run that answers for that model);
    None: the run that answers for each model (`har.runs.answering_runs`: among the runs of the job that made
    its newest finished run, the lowest validation loss).

    Raises:
        FileNotFoundError: an unknown run, no finished run of a named model, or no finished run at all.
    """
    if runs:
        latest = {run.model: run for run in answering_runs(models_dir)}
        chosen = []
        for run in runs:
            if hasattr(run, "metadata"):
                chosen.append(run)
            elif run in MODEL_NAMES and not (Path(models_dir) / run).is_dir():
                if run not in latest:
                    raise FileNotFoundError(
                        f"--run {run}: no finished {run} run in {models_dir}; train one with `har train --model {run}`."
                    )
                chosen.append(latest[run])
            else:
                chosen.append(find_run(models_dir, run))
        return chosen
    chosen = answering_runs(models_dir)
    if not chosen:
        raise FileNotFoundError(f"{models_dir}: no finished runs; train with `har train` first.")
    return chosen


def compare_runs(runs: list[str] | None, models_dir: str | os.PathLike) -> dict:
    """`har compare`'s table: `har.evaluation.compare`, whose rows carry `class_names` and `confusion_matrix`.

    Args:
        runs: run ids; None: the newest finished run of each model on each split, with the other seeds of the
            job that made it (`har.runs.latest_study`), so a `har reproduce` shows both models on both splits.
        models_dir: the folder holding the runs.
    """
    from har.evaluation import compare  # scikit-learn and SciPy: imported only when comparing

    return compare(runs or None, models_dir)
