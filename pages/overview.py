"""What the report did and found, the two architectures, and a path through the app. No TensorFlow here."""

from pathlib import Path

import pandas as pd
import streamlit as st

from app.settings import current
from app.ui import owner_only, paths, pipeline_panel, public
from har import jobs, pipeline, probe
from har.config import Config
from har.glossary import GLOSSARY
from har.report import REPORT_LAYERS, REPORT_RESULTS

data_dir, models_dir = paths()
REPORT = Config()  # the report's recipe


def storage_note() -> None:
    """Says so when trained runs would vanish at the next restart (a Space without a Storage Bucket)."""
    from har import storage

    where = storage.status(data_dir, models_dir)
    if where["persistent"]:
        return
    if public():  # no folder names for visitors
        st.warning(
            "Storage here is not persistent: runs trained on this Space vanish when it restarts.",
            icon=":material/cloud_off:",
        )
    else:
        st.warning(f"Storage is not persistent: {where['reason']}", icon=":material/cloud_off:")


st.title("HAR Studio")
st.markdown(
    "A companion to the report **Human Activity Recognition using ConvLSTM and LRCN on UCF50** (Rana, 2025). "
    "It trained two Keras models on four UCF50 classes (WalkingWithDog, TaiChi, Swing, HorseRace), "
    f"{REPORT.sequence_length} frames of {REPORT.image_size}x{REPORT.image_size} per clip, and found the LRCN "
    "ahead of the ConvLSTM."
)

REPORT_TEXT = Path(__file__).resolve().parents[1] / "docs" / "report.txt"
# The layer inside each TimeDistributed wrapper, in the order of the report's tables (the figures print only
# "TimeDistributed"; the layers are those of the code the report trained, which har.models rebuilds).
INNER_LAYERS = {
    "convlstm": ["Dropout"] * 3,
    "lrcn": ["Conv2D", "MaxPooling2D", "Dropout"] * 3 + ["Conv2D", "MaxPooling2D", "Flatten"],
}

st.subheader("The report's results (test split)", help=GLOSSARY["test split"])
columns = st.columns(4)
for i, (name, label) in enumerate((("convlstm", "ConvLSTM"), ("lrcn", "LRCN"))):
    results = REPORT_RESULTS[name]
    columns[2 * i].metric(
        f"{label} test accuracy", f"{results['accuracy']:.2%}", help=f"{results['parameters']:,} parameters"
    )
    columns[2 * i + 1].metric(f"{label} test loss", f"{results['loss']:.4f}")
if REPORT_TEXT.is_file():
    with st.expander("Read the report", icon=":material/description:"):
        report = REPORT_TEXT.read_text()
        st.download_button("Download the report (text)", report, file_name="report.txt", mime="text/plain")
        st.text(report)


def layer_names(name: str) -> list[str]:
    """The report's layer names, with the wrapped layer inside each TimeDistributed."""
    inner = iter(INNER_LAYERS[name])
    return [f"TimeDistributed({next(inner)})" if row[0] == "TimeDistributed" else row[0] for row in REPORT_LAYERS[name]]


@st.cache_data(show_spinner="Building both models to read their layers...")
def _live_models() -> dict:
    """Layer tables and diagrams of the models as har builds them (`har.probe`: in a child process, so the server
    never imports TensorFlow for them). A failure raises (and is not cached)."""
    return probe.architectures()


def live_models() -> dict:
    try:
        return _live_models()
    except probe.ProbeFailed as error:
        st.error(f"The models could not be built to check them ({error}); switch the toggle off and on to retry.")
        return {}


st.subheader("The two architectures", help=GLOSSARY["convlstm gates"] + "\n\n" + GLOSSARY["timedistributed"])
st.caption(
    "The report's prose describes three ConvLSTM layers, and Conv2D(32) with LSTM(64) for the LRCN; its layer "
    "tables (Figures 1 and 2) show what was trained, and HAR Studio follows the tables."
)
show_live = st.toggle("Check against the models as built here, with their diagrams", value=False)
live = live_models() if show_live else {}
tabs = st.tabs(["ConvLSTM (Figure 1)", "LRCN (Figure 2)"])
for tab, name in zip(tabs, ("convlstm", "lrcn")):
    table = pd.DataFrame(
        {
            "Layer": layer_names(name),
            "Output shape": [
                "(None, " + ", ".join(f"{size:,}" for size in row[1]) + ")" for row in REPORT_LAYERS[name]
            ],
            "Parameters": [f"{row[2]:,}" for row in REPORT_LAYERS[name]],
        }
    )
    if live:
        built = live["tables"][name]
        table["Matches har's model"] = [row == tuple(REPORT_LAYERS[name][i]) for i, row in enumerate(built)]
    # Tall enough for every row: no scrolling inside the table.
    tab.dataframe(table, hide_index=True, width="stretch", height=38 + 35 * len(table))
    tab.caption(f"Total parameters: {sum(row[2] for row in REPORT_LAYERS[name]):,}")
    if live:
        tab.markdown("**The model as built here**, drawn from its layers (tensor shapes flow top to bottom):")
        tab.graphviz_chart(live["diagrams"][name])

st.subheader("Reproduce the report")
st.markdown(
    "One background job does the whole study on real UCF50: download (3.2 GB) -> the report's four classes -> "
    "frame cache -> both models on the report's split and on the group split -> evaluation -> the comparison. "
    "It survives closing this tab and continues where it stopped after a restart (`har reproduce` does the same)."
)
if owner_only("Reproducing the report") and st.button("Reproduce the report on UCF50", type="primary"):
    try:
        # A UCF50 archive or folder already on the server (HAR_UCF50_SOURCE), so the button need not download it.
        started = pipeline.start(pipeline.Options(data_dir=str(data_dir), source=current().ucf50_source), models_dir)
        st.toast(f"Background job {started.id} started.")
    except (jobs.JobBusy, OSError, ValueError) as error:
        st.error(str(error))
pipeline_panel()
storage_note()

st.subheader("Try it")
st.markdown(
    "1. **Data**: generate the built-in demo dataset (stick figures, no internet needed) or get UCF50, then build "
    "the frame cache.\n"
    "2. **Train**: train the ConvLSTM, the LRCN or both with the report's recipe, and watch the curves live.\n"
    "3. **Predict**: upload a clip and see what each model thinks, frame by frame sampled.\n"
    "4. **Compare**: your runs beside the report's numbers."
)
