"""ConvLSTM vs LRCN: the runs the user picks, beside the report's numbers."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app.downloads import run_downloads
from app.study import (
    at_chance_warnings,
    calibration,
    comparison,
    mistakes,
    seed_spread,
    split_lesson,
    test_predictions,
)
from app.ui import demo_notice, finished_runs, paths
from har.config import MODEL_LABELS
from har.glossary import GLOSSARY
from har.report import REPORT_RESULTS
from har.runs import latest_study, list_runs

_, models_dir = paths()


def run_label(run) -> str:
    flag = " · at chance" if run.at_chance() else ""
    return f"{MODEL_LABELS.get(run.model, run.model)} · {run.id}{flag}"


def pick_runs() -> list:
    """Every finished run can be compared; to begin with, the newest of each model on each split and the
    other seeds of the job that made it (what `har compare` shows)."""
    runs = [run for run in list_runs(models_dir) if run.status == "finished"]
    by_id = {run.id: run for run in runs}
    default = [run.id for run in latest_study(models_dir)]
    chosen = st.multiselect("Runs to compare", list(by_id), default=default, format_func=lambda i: run_label(by_id[i]))
    return [by_id[run_id] for run_id in chosen]


def summary_table(table: dict, runs) -> None:
    """Test accuracy and loss of each run and of the report, formatted (no empty cells shown as None)."""
    by_id = {run.id: run for run in runs}
    rows = [
        {
            "run": run_label(by_id[row["run_id"]]),
            "test accuracy": f"{row['accuracy']:.2%}",
            "test loss": f"{row['loss']:.4f}",
            "parameters": f"{row['parameters']:,}",
            "epochs": str(row["epochs_run"]),
            "training": f"{row['training_seconds']:,.0f} s",
            "per clip": f"{row['latency_ms']:.1f} ms",
            "split": row["split"],
        }
        for row in table["runs"]
    ]
    for name, numbers in table["report"].items():
        rows.append(
            {
                "run": f"{MODEL_LABELS[name]} · the report",
                "test accuracy": f"{numbers['accuracy']:.2%}",
                "test loss": f"{numbers['loss']:.4f}",
                "parameters": f"{numbers['parameters']:,}",
                "epochs": "–",
                "training": "–",
                "per clip": "–",
                "split": "report (random)",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        "The report used UCF50's WalkingWithDog, TaiChi, Swing and HorseRace; runs here use the classes of "
        "their frame cache. A 'group' split keeps each UCF50 group (actor and scene) on one side.",
        help=GLOSSARY["group split"],
    )


def f1_table(table: dict, runs) -> None:
    by_id = {run.id: run for run in runs}
    frame = pd.DataFrame({run_label(by_id[row["run_id"]]): row["f1"] for row in table["runs"]}).T
    st.markdown("**F1 per class** (test split)", help=GLOSSARY["f1"])
    st.dataframe(frame.style.format("{:.3f}"), width="stretch")


def explain_reversal(table: dict) -> None:
    """When the picked runs rank the models the other way round from the report, say why that can happen."""
    best = {}
    for row in table["runs"]:
        best[row["model"]] = max(best.get(row["model"], 0.0), row["accuracy"])
    if len(best) < 2:
        return
    report_order = sorted(REPORT_RESULTS, key=lambda name: REPORT_RESULTS[name]["accuracy"])
    here_order = sorted(best, key=best.get)
    if best[here_order[0]] != best[here_order[1]] and here_order != report_order:
        st.info(
            f"Here the {MODEL_LABELS[here_order[1]]} is ahead; in the report the {MODEL_LABELS[report_order[1]]} "
            "was. That can happen: different data (the demo's synthetic versions of the report's four classes are not UCF50's videos), a "
            "small test split where a few clips change the ranking, another split (random clips vs groups), and "
            "seeds: one training run per model is one draw, and two seeds of the same model can differ by more "
            "than the report's gap.",
            icon=":material/info:",
        )


def training_curves(runs) -> go.Figure:
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for run in runs:
        history = run.metadata.get("history", {})
        for column, metric in ((1, "loss"), (2, "accuracy")):
            for prefix, dash in (("", "solid"), ("val_", "dot")):
                values = history.get(prefix + metric, [])
                figure.add_scatter(
                    x=list(range(1, len(values) + 1)),
                    y=values,
                    mode="lines+markers",
                    line={"dash": dash},
                    row=1,
                    col=column,
                    name=f"{run_label(run)} {'validation' if prefix else 'train'} {metric}",
                )
    figure.update_xaxes(title_text="epoch", tick0=1, dtick=1)
    figure.update_layout(height=380, margin={"t": 40, "b": 10})
    return figure


def confusion_matrices(table: dict, runs, normalise: bool) -> go.Figure:
    """Every picked run's confusion matrix on one colour scale (counts, or each true class's row to 100%)."""
    rows = table["runs"]
    by_id = {run.id: run for run in runs}
    matrices = []
    for row in rows:
        matrix = np.array(row["confusion_matrix"], dtype=float)
        if normalise:
            matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        matrices.append(matrix)
    titles = [run_label(by_id[row["run_id"]]) for row in rows]
    figure = make_subplots(rows=1, cols=len(rows), subplot_titles=titles, horizontal_spacing=0.08)
    for i, (row, matrix) in enumerate(zip(rows, matrices), 1):
        text = [[f"{value:.0%}" if normalise else f"{value:.0f}" for value in row] for row in matrix]
        figure.add_heatmap(
            z=matrix.tolist(),
            x=row["class_names"],
            y=row["class_names"],
            text=text,
            texttemplate="%{text}",
            coloraxis="coloraxis",
            row=1,
            col=i,
        )
        figure.update_xaxes(title_text="predicted", row=1, col=i)
        figure.update_yaxes(autorange="reversed", row=1, col=i)
    figure.update_yaxes(title_text="true", row=1, col=1)
    top = 1.0 if normalise else max(float(matrix.max()) for matrix in matrices)
    figure.update_layout(
        coloraxis={"colorscale": "Blues", "cmin": 0, "cmax": top}, height=380, margin={"t": 40, "b": 10}
    )
    return figure


st.title("Compare")
if not finished_runs(models_dir):
    st.info("No finished run yet: train the models on the Train page, then come back.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()
runs = pick_runs()
if not runs:
    st.info("Pick at least one run above.")
    st.stop()
demo_notice(runs)
try:
    table = comparison(runs, models_dir)
except (OSError, ValueError) as error:
    st.error(str(error))
    st.stop()

summary_table(table, runs)
with st.expander("Download these models for a phone or a small board (ONNX, LiteRT)", icon=":material/download:"):
    for run in runs:
        run_downloads(run, models_dir)
at_chance_warnings(table)
explain_reversal(table)
f1_table(table, runs)
seed_spread(table)
split_lesson(table)
st.subheader("Training curves", help=GLOSSARY["loss curves"])
st.plotly_chart(training_curves(runs), width="stretch")
st.subheader("Confusion matrices (test split)", help=GLOSSARY["confusion matrix"])
normalise = st.radio("Show", ["counts", "share of each true class"], horizontal=True) != "counts"
st.plotly_chart(confusion_matrices(table, runs, normalise), width="stretch")
predictions = test_predictions(runs, models_dir)
mistakes(predictions)
calibration(predictions)
