"""What the app's server was told by its environment, read once per script run by the entry script."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from app.navigation import leave_legacy_pages_mode
from har import config, sandbox
from har.access import Access, UploadLimits

_KEY = "_har_settings"


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: Path  # datasets and frame caches ($HAR_DATA_DIR, else $HAR_HOME/data, else ./data)
    models_dir: Path  # trained runs ($HAR_MODELS_DIR, else $HAR_HOME/models, else ./models)
    access: Access  # public mode and the owner token ($HAR_PUBLIC, $HAR_OWNER_TOKEN)
    # A UCF50 archive or folder already on the server (on a Space, the bucket at /data), so that the Overview's
    # "Reproduce" need not download 3.2 GB ($HAR_UCF50_SOURCE).
    ucf50_source: str | None
    upload_limits: UploadLimits | None  # a public server's ration ($HAR_UPLOADS...); None: set wrongly
    upload_limits_problem: str | None  # what is wrong with them, shown where an upload is refused

    @property
    def public(self) -> bool:
        return self.access.public

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        try:
            limits, problem = UploadLimits.from_environment(environ), None
        except ValueError as error:  # said where it matters (an upload), not on every page
            limits, problem = None, str(error)
        return cls(
            data_dir=config.data_dir(),
            models_dir=config.models_dir(),
            access=Access.from_environment(environ),
            ucf50_source=environ.get("HAR_UCF50_SOURCE") or None,
            upload_limits=limits,
            upload_limits_problem=problem,
        )


def setup(environ: Mapping[str, str]) -> Settings:
    """The entry script's first step on every run: reads the settings, sizes the upload decoders' worker pool
    ($HAR_WORKERS) and keeps the settings for the pages of this run."""
    settings = Settings.from_environment(environ)
    sandbox.configure_workers(sandbox.worker_count(environ.get("HAR_WORKERS")))
    st.session_state[_KEY] = settings
    return settings


def current() -> Settings:
    """The settings the entry script read for this session; every page asks for them first.

    A session without them is a page run that Streamlit started without the entry script (its legacy `pages/`
    mode, see `app.navigation`): it is sent back through the entry script, which reads them.
    """
    settings = st.session_state.get(_KEY)
    if settings is None:
        leave_legacy_pages_mode()  # reruns the session through the entry script
        raise RuntimeError("the app's settings are not read: run the app with `streamlit run streamlit_app.py`.")
    return settings
