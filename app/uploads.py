"""The Streamlit side of the one guarded upload path (`har.uploads`): who the visitor is, and which uploads this
browser session has already had counted."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import streamlit as st

from app.settings import current
from har.access import UploadLimits, visitor_key
from har.uploads import Upload, UploadGate

_COUNTED = "counted_uploads"


@st.cache_resource(show_spinner=False)
def _gate(scratch_root: str, limits: UploadLimits | None, problem: str | None, public: bool) -> UploadGate:
    """Shared by every session: one allowance and one capped scratch folder per server."""
    return UploadGate(scratch_root, limits, public=public, problem=problem)


def gate() -> UploadGate:
    settings = current()
    return _gate(
        str(settings.data_dir / ".scratch"), settings.upload_limits, settings.upload_limits_problem, settings.public
    )


def visitor() -> str:
    """Who is uploading, for the allowance (`har.access.visitor_key`)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return visitor_key(dict(st.context.headers), st.context.ip_address, context.session_id if context else "local")


@contextlib.contextmanager
def opened(upload: Upload) -> Iterator[Path]:
    """`UploadGate.open` for this session's visitor: the upload as a scratch file while the block runs.

    Raises:
        har.uploads.UploadRefused: over the visitor's allowance, or no room in the scratch folder.
    """
    counted = st.session_state.setdefault(_COUNTED, set())
    with gate().open(upload, visitor(), counted) as path:
        yield path
