"""ConvLSTM vs LRCN: the runs the user picks, beside the report's numbers."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from har.evaluation import compare
from har.glossary import GLOSSARY
from har.report import REPORT_RESULTS
from har.runs import latest_study, list_runs
from pages._study import at_chance_warnings, calibration, mistakes, seed_spread, split_lesson, test_predictions
from pages._ui import MODEL_LABELS, finished_runs, paths

_, models_dir = paths()


@st.cache_data(show_spinner="Evaluating on the test split...")
def comparison(run_ids: tuple[str, ...], models_folder: str, stamp: float) -> dict:
    """compare()'s table plus each run's saved evaluation (its confusion matrix); `stamp` is the newest model's
    mtime, so a retrained run is evaluated again."""
    from har.quiet import import_keras

    import_keras()  # evaluating loads the models: without TensorFlow's C++ start-up lines on the terminal
    table = compare(list(run_ids), models_folder)
    table["evaluations"] = {
        run_id: json.loads((Path(models_folder) / run_id / "evaluation.json").read_text()) for run_id in run_ids
    }
    return table


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


def confusion_matrices(runs, table: dict, normalise: bool) -> go.Figure:
    """Every picked run's confusion matrix on one colour scale (counts, or each true class's row to 100%)."""
    evaluations = [table["evaluations"][run.id] for run in runs]
    matrices = []
    for evaluation in evaluations:
        matrix = np.array(evaluation["confusion_matrix"], dtype=float)
        if normalise:
            matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        matrices.append(matrix)
    figure = make_subplots(
        rows=1, cols=len(runs), subplot_titles=[run_label(run) for run in runs], horizontal_spacing=0.08
    )
    for i, (evaluation, matrix) in enumerate(zip(evaluations, matrices), 1):
        text = [[f"{value:.0%}" if normalise else f"{value:.0f}" for value in row] for row in matrix]
        figure.add_heatmap(
            z=matrix.tolist(),
            x=evaluation["classes"],
            y=evaluation["classes"],
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
try:
    stamp = max((run.path / "model.keras").stat().st_mtime for run in runs)
    table = comparison(tuple(run.id for run in runs), str(models_dir), stamp)
except (OSError, ValueError) as error:
    st.error(str(error))
    st.stop()

summary_table(table, runs)
at_chance_warnings(table)
explain_reversal(table)
f1_table(table, runs)
seed_spread(table)
split_lesson(table)
st.subheader("Training curves", help=GLOSSARY["loss curves"])
st.plotly_chart(training_curves(runs), width="stretch")
st.subheader("Confusion matrices (test split)", help=GLOSSARY["confusion matrix"])
normalise = st.radio("Show", ["counts", "share of each true class"], horizontal=True) != "counts"
st.plotly_chart(confusion_matrices(runs, table, normalise), width="stretch")
predictions = test_predictions(runs, models_dir)
mistakes(predictions)
calibration(predictions)
