"""Compare-page pieces for what one run cannot say: luck across seeds, runs at chance, and the split lesson."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from har.glossary import GLOSSARY
from har.report import REPORT_RESULTS
from pages._ui import MODEL_LABELS

SPLIT_LABELS = {"report": "report split (random clips)", "group": "group split (unseen groups)"}


def at_chance_warnings(table: dict) -> None:
    """A warning for every compared run that did no better than guessing, with what to try."""
    for row in table["runs"]:
        if row.get("at_chance"):
            st.warning(f"**{MODEL_LABELS[row['model']]} · {row['run_id']} is at chance.** {row['at_chance_reason']}",
                       icon=":material/casino:")  # fmt: skip


def seed_spread(table: dict) -> None:
    """Mean +- sd over seeds per model and split, every seed's point, and whether the gap beats the spread."""
    groups = table["groups"]
    st.subheader("Across seeds", help=GLOSSARY.get("seed"))
    rows = [{"model": MODEL_LABELS[g["model"]], "split": SPLIT_LABELS.get(g["split"], g["split"]), "seeds": g["n"],
             "test accuracy": f"{g['accuracy_mean']:.1%}" + (f" ± {g['accuracy_sd']:.1%}" if g["accuracy_sd"] is not None else ""),
             "lowest": f"{min(g['accuracies']):.1%}", "at chance": f"{g['at_chance']} of {g['n']}"}
            for g in groups]  # fmt: skip
    for name, numbers in REPORT_RESULTS.items():
        rows.append({"model": MODEL_LABELS[name], "split": "the report (one seed)", "seeds": 1,
                     "test accuracy": f"{numbers['accuracy']:.1%}", "lowest": "–", "at chance": "–"})  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    figure = go.Figure()
    for group in groups:
        label = f"{MODEL_LABELS[group['model']]}, {group['split']}"
        figure.add_scatter(x=group["accuracies"], y=[label] * group["n"], mode="markers", marker={"size": 11},
                           text=[f"seed {seed}" for seed in group["seeds"]], name=label,
                           hovertemplate="%{text}: %{x:.1%}<extra></extra>")  # fmt: skip
        if group["accuracy_sd"] is not None:
            figure.add_scatter(x=[group["accuracy_mean"] - group["accuracy_sd"], group["accuracy_mean"] + group["accuracy_sd"]],
                               y=[label] * 2, mode="lines", line={"width": 6}, opacity=0.35, showlegend=False,
                               hoverinfo="skip")  # fmt: skip
    for name, numbers in REPORT_RESULTS.items():
        figure.add_scatter(x=[numbers["accuracy"]], y=[f"{MODEL_LABELS[name]}, the report"], mode="markers",
                           marker={"symbol": "diamond", "size": 12, "color": "grey"}, name=f"{MODEL_LABELS[name]} (report)")  # fmt: skip
    figure.update_layout(height=90 + 45 * (len(groups) + 2), margin={"t": 10, "b": 10}, showlegend=False,
                         xaxis={"title": "test accuracy (each point one seed; bar: mean ± sd)", "range": [0, 1.02],
                                "tickformat": ".0%"})  # fmt: skip
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
        column.metric(f"{MODEL_LABELS[model]}: report split → group split", f"{group:.1%}", f"{group - report:+.1%}",
                      help="Mean test accuracy over the seeds on each split; the change is group minus report.")  # fmt: skip
    st.markdown(
        "UCF50's clips come in groups: the clips of one group are cut from one video, with the same actor, scene "
        "and camera. A random split (the report's) puts clips of the same group in training and in test, so a "
        "model can score by recognising the scene; the group split keeps every group on one side, and the drop "
        "between the two is how much of the report's accuracy came from that leak."
    )
