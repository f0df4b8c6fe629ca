"""HAR Studio's Streamlit glue: what the page scripts in `pages/` share (settings, sign-in, the clip picker, the
one guarded upload path, the Compare page's renderers). The work itself is done by `har`; nothing here reads the
environment (the entry script hands it to `app.settings.setup`) or starts a process.
"""
