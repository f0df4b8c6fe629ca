"""HAR Studio in the browser: `streamlit run streamlit_app.py`.

The entry file is only a frame: the settings read from the environment, page config, the models' background load
(`app.warmup`), navigation, the owner's sign-in. Each page in `pages/` reads its widgets, calls `har` and renders the
result; what pages share is in `app/`.
"""

import os

import streamlit as st

from app.settings import setup
from app.ui import owner_sign_in
from app.warmup import show_progress, start

settings = setup(os.environ)  # the one place the app reads its environment
st.set_page_config(page_title="HAR Studio", page_icon=":material/directions_run:", layout="wide")
warmup = start(str(settings.models_dir))  # the models load in a thread of their own, once per server

navigation = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("pages/data.py", title="Data", icon=":material/video_library:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/predict.py", title="Predict", icon=":material/upload:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("pages/explain.py", title="Explain", icon=":material/visibility:"),
    ]
)
owner_sign_in()
if not settings.public:  # a public server keeps its folder names to itself
    st.sidebar.caption(f"Data: `{settings.data_dir}`  \nModels: `{settings.models_dir}`")
progress_line = st.sidebar.empty()
try:
    navigation.run()
finally:  # after the page, which may have waited for the loader: the line says where it is now
    show_progress(warmup, progress_line)
