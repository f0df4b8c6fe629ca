"""HAR Studio in the browser. The full multipage app is its own issue; this page shows what is ready."""

import streamlit as st

st.set_page_config(page_title="HAR Studio", page_icon=":material/directions_run:", layout="wide")
st.title("HAR Studio")
st.write(
    "Human activity recognition on UCF50 with the ConvLSTM and LRCN of Rana (2025). "
    "The data layer is ready: generate the built-in demo dataset with `har data demo` and build a frame cache "
    "with `har data build`."
)
