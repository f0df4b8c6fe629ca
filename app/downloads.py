"""Beside a run: its model as an ONNX or a LiteRT file to download (`har.edge`), for everyone (the run's own weights).

A run is converted on the first click of its "Prepare" button, once per format for the whole server: the file is
cached in the run's folder, and from then on every visitor gets the download button straight away. A model
that a format cannot run is told in one line, with the format that works instead.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import streamlit as st

from har.config import MODEL_LABELS
from har.edge import FORMAT_LABELS, FORMATS, RUNTIMES, cached_export, export_for_device

_REFUSED = "edge_export_refused"  # session state: {(run id, format): the one-line refusal}


@st.cache_resource(show_spinner=False)
def _export_lock(run_path: str, fmt: str) -> threading.Lock:
    """One lock per run and format for the whole server: two visitors' clicks convert it once."""
    return threading.Lock()


def run_downloads(run, models_dir: Path) -> None:
    """One row for a finished run: its label, then per format a download button (or a "Prepare" button)."""
    label, *columns = st.columns([2, 1, 1], vertical_alignment="center")
    label.markdown(f"{MODEL_LABELS.get(run.model, run.model)} · `{run.id}`")
    for column, fmt in zip(columns, FORMATS):
        with column:
            _download(run, fmt, models_dir)


def _download(run, fmt: str, models_dir: Path) -> None:
    name, key = FORMAT_LABELS[fmt], f"edge-{fmt}-{run.id}"
    refused = st.session_state.setdefault(_REFUSED, {})
    exported = cached_export(run, fmt)
    if exported is None and (run.id, fmt) in refused:
        st.info(refused[run.id, fmt], icon=":material/block:")
        return
    if exported is None:
        if not st.button(f"Prepare {name}", key=f"{key}-prepare", help=f"a {FORMATS[fmt]} file for {RUNTIMES[fmt]}"):
            return
        exported = _export(run, fmt, models_dir)
        if exported is None:
            return
    st.download_button(
        f"{name} ({exported.bytes / 1e6:.1f} MB)",
        data=functools.partial(exported.path.read_bytes),  # read on the click, not kept in every session
        file_name=exported.file_name,
        mime="application/octet-stream",
        key=key,
        on_click="ignore",
        icon=":material/download:",
        help=f"{exported.file_name}: runs in {RUNTIMES[fmt]}; sha256 {exported.sha256[:12]}...",
    )


def _export(run, fmt: str, models_dir: Path):
    """The run's export in `fmt`, converted now if no one has yet; None (and one st.info line) when refused."""
    from har.quiet import import_keras

    with st.spinner(f"Exporting {run.id} as {FORMAT_LABELS[fmt]} (a few seconds; up to a minute for a big model)..."):
        import_keras()  # without TensorFlow's C++ start-up lines on the server's terminal
        try:
            with _export_lock(str(run.path), fmt):
                return export_for_device(run, fmt, None, models_dir)
        except (ValueError, OSError) as error:
            message = str(error) if not isinstance(error, OSError) else f"{FORMAT_LABELS[fmt]} export failed: {error}"
            st.session_state[_REFUSED][run.id, fmt] = message
            st.info(message, icon=":material/block:")
            return None
