"""Helpers shared by the pages. Only UI glue lives here; the work is done by `har`."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from har import config as config_module


def paths() -> tuple[Path, Path]:
    """The data and models dirs ($HAR_DATA_DIR and $HAR_MODELS_DIR, else ./data and ./models)."""
    return config_module.data_dir(), config_module.models_dir()


def progress_callback(bar, label: str):
    """A har (done, total) callback that moves an st.progress bar."""

    def update(done: int, total: int | None) -> None:
        if total:
            bar.progress(min(done / total, 1.0), text=f"{label}: {done:,} / {total:,}")

    return update


@st.cache_resource(max_entries=8, show_spinner="Loading model...")
def _predictor(run_path: str, model_mtime: float, models_dir: str):
    from har.quiet import import_keras

    import_keras()  # without TensorFlow's C++ start-up lines on the server's terminal
    from har.inference import Predictor

    return Predictor.from_run(Path(run_path), models_dir)


def predictor_for(run, models_dir: Path):
    """A loaded Predictor, shared by every session; a new or retrained run gets a new cache entry."""
    mtime = (run.path / "model.keras").stat().st_mtime
    return _predictor(str(run.path), mtime, str(models_dir))


def finished_runs(models_dir: Path) -> list:
    """The latest finished run of each model."""
    from har.runs import latest_runs

    return latest_runs(models_dir)


MODEL_LABELS = {"convlstm": "ConvLSTM", "lrcn": "LRCN"}


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 epoch`, `2 epochs`, `1,234 clips`, `4 classes` (with nouns="classes")."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def run_description(run) -> str:
    """One markdown line: model, run id, the data it learnt from, its classes."""
    metadata = run.metadata
    dataset = metadata.get("dataset") or {}
    split = metadata.get("split") or {}
    cache = Path(dataset["cache"]).name if dataset.get("cache") else "an unknown cache"
    clips = f", {plural(dataset['clips'], 'clip')}" if dataset.get("clips") else ""
    classes = ", ".join(metadata.get("classes") or []) or "unknown"
    return (f"**{MODEL_LABELS.get(run.model, run.model)}** run `{run.id}`: trained on `{cache}`{clips} "
            f"({split.get('name', '?')} split), {plural(metadata.get('epochs_run') or 0, 'epoch')}; "
            f"knows {plural(len(metadata.get('classes') or []), 'class', 'classes')}: {classes}")
