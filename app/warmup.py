"""Loading the models in the background from a server's first page view, so that the first upload waits less.

On a fresh server the first upload used to wait for TensorFlow's import (about 11 s on 2 cores), the models'
load and their first traced calls. `start` hands that work to one daemon thread per server process, started by
the entry script's first run (Streamlit runs no app code before a browser connects): it starts
the upload decoders' forkserver, imports Keras quietly, and loads the predictor of every run that the pages
answer with into the very cache that `app.ui.predictor_for` reads, each followed by one prediction and one
out-of-distribution check of a blank clip, so that their functions are traced and the run's OOD reference is
read (or made) before a visitor asks. A page that asks for a model still loading waits for it in that cache
(one load per entry, under the cache's lock), never loads it twice. Streamlit's own calls stay in the pages'
threads: the thread only fills caches, and a failure in it is logged with its traceback, never shown on a page.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.logger import get_logger

log = get_logger(__name__)  # the server terminal, in Streamlit's format


@dataclasses.dataclass
class Warmup:
    """How far the background loader has got; written by its thread, read by the pages'."""

    total: int | None = None  # runs to load; None until they are listed
    ready: int = 0  # of them, loaded and traced
    seconds: float | None = None  # from the start to the last one ready
    failed: str | None = None  # why it stopped early; the pages then load the rest themselves
    finished: threading.Event = dataclasses.field(default_factory=threading.Event)

    def line(self) -> str | None:
        """The sidebar's one quiet line while it runs; None when done (or failed: the pages take over)."""
        if self.finished.is_set():
            return None
        if self.total is None:
            return "Loading the models in the background..."
        return f"Loading the models in the background ({self.ready} of {self.total} ready)"


@st.cache_resource(show_spinner=False)
def start(models_dir: str) -> Warmup:
    """Starts the background loader for `models_dir`, once per server process; returns its progress.

    Called by the entry script on every run: the first call starts the thread and returns at once, later ones
    return the same `Warmup`.
    """
    warmup = Warmup()
    thread = threading.Thread(target=_warm, args=(warmup, Path(models_dir)), name="har-warmup", daemon=True)
    thread.start()
    return warmup


def show_progress(warmup: Warmup, slot) -> None:
    """The quiet line in `slot` (an `st.empty()`) while the models load; nothing once done.

    It says how far the loader had got when this script run's page ended. A timer to refresh it (a fragment with
    `run_every`) would cost more than it tells: every script run, a fragment's included, ends with Streamlit's
    Keras `clear_session` and a full garbage collection, about 1 s of CPU on 2 cores with TensorFlow loaded.
    """
    line = warmup.line()
    if line:
        slot.caption(line)


def _warm(warmup: Warmup, models_dir: Path) -> None:
    """The thread: the decoders' forkserver, Keras, then each run's predictor into `app.ui`'s cache."""
    started = time.perf_counter()
    try:
        from app.ui import finished_runs, predictor_for
        from har.sandbox import start_decoder_server

        start_decoder_server()  # before Keras: its quiet import sends file descriptor 2 to /dev/null meanwhile
        runs = finished_runs(models_dir)
        warmup.total = len(runs)
        if not runs:  # nothing trained yet: Predict offers training, and TensorFlow waits until it is needed
            return
        from har.quiet import import_keras

        import_keras()
        from har.ood import out_of_distribution

        for run in runs:
            predictor = predictor_for(run, models_dir)
            blank = np.zeros((predictor.sequence_length, predictor.image_size, predictor.image_size, 3), np.uint8)
            predictor.predict_frames(blank)
            out_of_distribution(predictor, run, blank)  # traces the feature model; reads or makes ood.npz
            warmup.ready += 1
        warmup.seconds = time.perf_counter() - started
        log.info("%d models ready, loaded in the background in %.1f s", warmup.ready, warmup.seconds)
    except Exception as error:  # noqa: BLE001 - whatever it is, the pages load the models when asked
        warmup.failed = f"{type(error).__name__}: {error}"
        log.exception("Loading the models in the background failed; each page loads them when it needs them")
    finally:
        warmup.finished.set()
