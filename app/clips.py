"""The one clip picker of the Predict and Explain pages: the visitor's uploads, or a held-out test clip."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from har.uploads import Upload
from har.video import VIDEO_EXTENSIONS

SAMPLE_LABEL = "...or a held-out test clip (one the models never trained on)"


@st.cache_data(show_spinner=False, max_entries=64)
def _held_out(run_path: str, stamp: float) -> list[dict]:
    """The run's held-out test clips; raises when its cache is gone (and is then not cached)."""
    from har.runs import held_out_clips, read_run

    return held_out_clips(read_run(Path(run_path)))


def held_out_samples(run) -> list[dict]:
    """`har.runs.held_out_clips` of `run` ([{"path", "class", "split"}]), or none when its cache is gone."""
    try:
        return _held_out(str(run.path), (run.path / "model.keras").stat().st_mtime)
    except (OSError, ValueError):
        return []


def pick_clips(runs, *, several: bool) -> list[Upload]:
    """An uploader (several files, or one) and a box of the first run's held-out test clips.

    Returns:
        The uploads in the order given, then the chosen test clip; with `several` False, at most one clip (the
        upload before the test clip).
    """
    types = [suffix.lstrip(".") for suffix in VIDEO_EXTENSIONS]
    given = st.file_uploader("Video clips" if several else "A video clip", type=types, accept_multiple_files=several)
    uploads = list(given or []) if several else [given] if given is not None else []
    samples = held_out_samples(runs[0])
    sample = st.selectbox(
        SAMPLE_LABEL,
        [None, *samples],
        format_func=lambda clip: (
            "none" if clip is None else f"{Path(clip['path']).name} ({clip['class']}, test split of run {runs[0].id})"
        ),
    )
    clips = [Upload(upload.name, upload.getvalue(), upload.file_id) for upload in uploads]
    if sample is not None and Path(sample["path"]).is_file():
        clips.append(Upload.from_file(sample["path"]))
    return clips if several else clips[:1]
