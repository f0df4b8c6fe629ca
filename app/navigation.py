"""One workaround for Streamlit 1.67's multipage modes, kept in one place."""

from __future__ import annotations

import streamlit as st


def leave_legacy_pages_mode() -> None:
    """Sends a page run that Streamlit started in its legacy `pages/`-folder mode back through the entry script.

    Upstream behaviour (streamlit/runtime/pages_manager.py, 1.67): the first session of a server sets the class
    flag `PagesManager.uses_pages_directory` from whether a `pages/` folder lies beside the entry script, and
    only `st.navigation` clears it. While it is set, the script runner runs the legacy multipage app
    (`_mpa_v1`): a fresh server whose first visitor follows a deep link (/predict) runs that page without the
    entry script (no page config, no owner sign-in, every file in `pages/` listed as a page) for every visitor
    until someone opens "/". Streamlit has no option to turn the legacy mode off (its maintainers saw the same
    with a `pages/` folder and `st.navigation`, streamlit/streamlit#10276), and this app keeps its page scripts
    in `pages/`, so: clear the flag as `st.navigation` would, and rerun the session through the entry. Nothing
    happens when the flag is already clear, or gone in a later Streamlit. `app.settings.current` calls this when
    a page runs without the settings that the entry script reads; tests/test_browser_public.py opens a fresh
    server on a deep link first to hold it.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()
