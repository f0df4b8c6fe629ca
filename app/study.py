"""Compare-page pieces: the comparison itself, and what one run cannot say (luck across seeds, runs at chance, the
split lesson, calibration, the mistakes behind a confusion cell)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.ui import paths, predictor_for
from har.config import MODEL_LABELS
from har.glossary import GLOSSARY
from har.report import REPORT_RESULTS


@st.cache_data(show_spinner="Evaluating on the test split...")
def _comparison(run_ids: tuple[str, ...], models_dir: str, stamp: float) -> dict:
    from har.quiet import import_keras
    from har.services import compare_runs

    import_keras()  # evaluating loads the models: without TensorFlow's C++ start-up lines on the terminal
    return compare_runs(list(run_ids), models_dir)


def comparison(runs, models_dir: Path) -> dict:
    """`har.services.compare_runs` of `runs`, each row with its confusion matrix; evaluated again when a model is
    newer than what was cached.

    Raises:
        OSError, ValueError: a run's model or cache is gone or unreadable.
    """
    stamp = max((run.path / "model.keras").stat().st_mtime for run in runs)
    return _comparison(tuple(run.id for run in runs), str(models_dir), stamp)


SPLIT_LABELS = {"report": "report split (random clips)", "group": "group split (unseen groups)"}


def at_chance_warnings(table: dict) -> None:
    """A warning for every compared run that did no better than guessing, with what to try."""
    for row in table["runs"]:
        if row.get("at_chance"):
            st.warning(
                f"**{MODEL_LABELS[row['model']]} · {row['run_id']} is at chance.** {row['at_chance_reason']}",
                icon=":material/casino:",
            )


def seed_spread(table: dict) -> None:
    """Mean +- sd over seeds per model and split, every seed's point, and whether the gap beats the spread."""
    groups = table["groups"]
    st.subheader("Across seeds", help=GLOSSARY.get("seed"))
    rows = [
        {
            "model": MODEL_LABELS[g["model"]],
            "split": SPLIT_LABELS.get(g["split"], g["split"]),
            "seeds": g["n"],
            "test accuracy": f"{g['accuracy_mean']:.1%}"
            + (f" ± {g['accuracy_sd']:.1%}" if g["accuracy_sd"] is not None else ""),
            "lowest": f"{min(g['accuracies']):.1%}",
            "at chance": f"{g['at_chance']} of {g['n']}",
        }
        for g in groups
    ]
    for name, numbers in REPORT_RESULTS.items():
        rows.append(
            {
                "model": MODEL_LABELS[name],
                "split": "the report (one seed)",
                "seeds": 1,
                "test accuracy": f"{numbers['accuracy']:.1%}",
                "lowest": "–",
                "at chance": "–",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    figure = go.Figure()
    for group in groups:
        label = f"{MODEL_LABELS[group['model']]}, {group['split']}"
        figure.add_scatter(
            x=group["accuracies"],
            y=[label] * group["n"],
            mode="markers",
            marker={"size": 11},
            text=[f"seed {seed}" for seed in group["seeds"]],
            name=label,
            hovertemplate="%{text}: %{x:.1%}<extra></extra>",
        )
        if group["accuracy_sd"] is not None:
            figure.add_scatter(
                x=[group["accuracy_mean"] - group["accuracy_sd"], group["accuracy_mean"] + group["accuracy_sd"]],
                y=[label] * 2,
                mode="lines",
                line={"width": 6},
                opacity=0.35,
                showlegend=False,
                hoverinfo="skip",
            )
    for name, numbers in REPORT_RESULTS.items():
        figure.add_scatter(
            x=[numbers["accuracy"]],
            y=[f"{MODEL_LABELS[name]}, the report"],
            mode="markers",
            marker={"symbol": "diamond", "size": 12, "color": "grey"},
            name=f"{MODEL_LABELS[name]} (report)",
        )
    figure.update_layout(
        height=90 + 45 * (len(groups) + 2),
        margin={"t": 10, "b": 10},
        showlegend=False,
        xaxis={"title": "test accuracy (each point one seed; bar: mean ± sd)", "range": [0, 1.02], "tickformat": ".0%"},
    )
    st.plotly_chart(figure, width="stretch", key="seed-spread")
    for difference in table["differences"]:
        show = st.success if difference["beyond_seed_spread"] else st.info
        show(difference["verdict"], icon=":material/balance:")


def split_lesson(table: dict) -> None:
    """Where a model was run on both splits: the two side by side, and what the gap means."""
    by_key = {(g["model"], g["split"]): g for g in table["groups"]}
    both = [model for model in MODEL_LABELS if (model, "report") in by_key and (model, "group") in by_key]
    if not both:
        return
    st.subheader("Why the split matters")
    columns = st.columns(len(both))
    for column, model in zip(columns, both):
        report, group = by_key[(model, "report")]["accuracy_mean"], by_key[(model, "group")]["accuracy_mean"]
        column.metric(
            f"{MODEL_LABELS[model]}: report split → group split",
            f"{group:.1%}",
            f"{group - report:+.1%}",
            help="Mean test accuracy over the seeds on each split; the change is group minus report.",
        )
    st.markdown(
        "UCF50's clips come in groups: the clips of one group are cut from one video, with the same actor, scene "
        "and camera. A random split (the report's) puts clips of the same group in training and in test, so a "
        "model can score by recognising the scene; the group split keeps every group on one side, and the drop "
        "between the two is how much of the report's accuracy came from that leak."
    )


@st.cache_data(show_spinner="Predicting the test split...", max_entries=16)
def _test_predictions(run_path: str, stamp: float, models_dir: str):
    """A run's test-split probabilities (`har.calibration.predict_test_split`), kept while its model is unchanged."""
    from har.calibration import predict_test_split
    from har.runs import read_run

    run = read_run(Path(run_path))
    return predict_test_split(run, models_dir, predictor=predictor_for(run, Path(models_dir)))


def test_predictions(runs, models_dir) -> list:
    """Each run's test predictions; runs whose cache is gone are left out, with the reason shown."""
    predictions = []
    for run in runs:
        try:
            predictions.append(
                _test_predictions(str(run.path), (run.path / "model.keras").stat().st_mtime, str(models_dir))
            )
        except (OSError, ValueError) as error:
            st.caption(f"{run.id}: {error}")
    return predictions


def calibration(predictions: list) -> None:
    """Reliability diagrams: how often each run is right when it says it is x% sure."""
    from har.calibration import reliability

    if not predictions:
        return
    st.subheader(
        "Confidence you can read",
        help="A calibrated model is right 80% of the time when it says 80%. Bars below the diagonal: over-confident.",
    )
    figure = go.Figure()
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="calibrated")
    for prediction in predictions:
        diagram = reliability(prediction, bins=10)
        filled = [b for b in diagram["bins"] if b["clips"]]
        figure.add_scatter(
            x=[b["confidence"] for b in filled],
            y=[b["accuracy"] for b in filled],
            mode="lines+markers",
            name=f"{prediction.run_id} (ECE {diagram['ece']:.3f})",
            text=[f"{b['clips']} clips" for b in filled],
        )
    figure.update_layout(
        height=380,
        xaxis={"title": "confidence (top class probability)", "range": [0, 1]},
        yaxis={"title": "accuracy", "range": [0, 1.02]},
        margin={"t": 10, "b": 10},
    )
    st.plotly_chart(figure, width="stretch", key="reliability")


def mistakes(predictions: list) -> None:
    """Pick a cell of the first run's confusion matrix: its test clips, their frames, every run's answer."""
    from har.calibration import confusion_cell
    from har.datasets import load_cache
    from har.runs import find_run
    from har.video import frame_strip

    if not predictions:
        return
    first = predictions[0]
    st.subheader("Mistakes you can open")
    left, right = st.columns(2)
    names = list(first.class_names)
    true_class = left.selectbox("True class", names, key="cell-true")
    predicted = right.selectbox("Predicted as", names, index=min(1, len(names) - 1), key="cell-predicted")
    clips = confusion_cell(predictions, true_class, predicted)
    st.caption(
        f"{len(clips)} test clip{'s' if len(clips) != 1 else ''} of {true_class} that {first.run_id} "
        f"called {predicted}" + ("" if len(clips) <= 6 else "; the 6 it was surest of")
    )
    if not clips:
        return
    cache = load_cache(find_run(paths()[1], first.run_id).metadata["dataset"]["cache"])
    for clip in clips[:6]:
        st.image(frame_strip(cache.frames[clip["cache_index"]], columns=10), caption=Path(clip["source"]).name)
        st.dataframe(pd.DataFrame(clip["probabilities"]).T.style.format("{:.1%}"), width="stretch")
