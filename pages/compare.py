"""ConvLSTM vs LRCN: this deployment's runs beside the report's numbers."""

import json

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from har.evaluation import compare
from pages._ui import MODEL_LABELS, finished_runs, paths

_, models_dir = paths()
st.title("Compare")
runs = finished_runs(models_dir)
if not runs:
    st.info("No finished run yet: train the models on the Train page, then come back.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()


@st.cache_data(show_spinner="Evaluating on the test split...")
def comparison(run_ids: tuple[str, ...]) -> dict:
    return compare(list(run_ids), models_dir)


try:
    table = comparison(tuple(run.id for run in runs))
except (OSError, ValueError) as error:
    st.error(str(error))
    st.stop()

rows = []
for row in table["runs"]:
    rows.append({"": f"{MODEL_LABELS[row['model']]} (this deployment)", "test accuracy": row["accuracy"],
                 "test loss": row["loss"], "parameters": row["parameters"], "epochs": row["epochs_run"],
                 "training s": row["training_seconds"], "ms per clip": row["latency_ms"], "split": row["split"],
                 **{f"F1 {name}": value for name, value in row["f1"].items()}})  # fmt: skip
for name, numbers in table["report"].items():
    rows.append({"": f"{MODEL_LABELS[name]} (report)", "test accuracy": numbers["accuracy"],
                 "test loss": numbers["loss"], "parameters": numbers["parameters"], "split": "report"})  # fmt: skip
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
             column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})  # fmt: skip
st.caption("The report used UCF50's WalkingWithDog, TaiChi, Swing and HorseRace; runs here use the classes of "
           "their frame cache. A 'group' split keeps each UCF50 group (actor and scene) on one side.")  # fmt: skip

st.subheader("Training curves")
figure = go.Figure()
for run in runs:
    history = run.metadata.get("history", {})
    for metric, dash in (("val_loss", "dot"), ("loss", "solid")):
        values = history.get(metric, [])
        figure.add_scatter(x=list(range(1, len(values) + 1)), y=values, line={"dash": dash},
                           name=f"{MODEL_LABELS[run.model]} {metric.replace('val_', 'validation ')}")  # fmt: skip
figure.update_layout(xaxis_title="epoch", yaxis_title="loss", height=360)
st.plotly_chart(figure, width="stretch")

st.subheader("Confusion matrices (test split)")
columns = st.columns(len(runs))
for column, run in zip(columns, runs):
    evaluation = json.loads((run.path / "evaluation.json").read_text())
    heatmap = px.imshow(evaluation["confusion_matrix"], x=evaluation["classes"], y=evaluation["classes"],
                        text_auto=True, labels={"x": "predicted", "y": "true"}, color_continuous_scale="Blues")  # fmt: skip
    column.markdown(f"**{MODEL_LABELS[run.model]}**")
    column.plotly_chart(heatmap, width="stretch", key=f"confusion-{run.id}")
