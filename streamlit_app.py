"""HAR Studio in the browser: `streamlit run streamlit_app.py`.

The entry file is only a frame: page config, navigation, and where data and models live. Each page in
`pages/` reads its widgets, calls one `har` function and renders the result.
"""

import streamlit as st

from har import access
from pages._ui import owner_sign_in, paths

st.set_page_config(page_title="HAR Studio", page_icon=":material/directions_run:", layout="wide")

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
if not access.public_mode():  # a public server keeps its folder names to itself
    data_dir, models_dir = paths()
    st.sidebar.caption(f"Data: `{data_dir}`  \nModels: `{models_dir}`")
navigation.run()
