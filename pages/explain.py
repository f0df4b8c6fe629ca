"""Explain: what each trained model looks at in one clip, side by side."""

import pandas as pd
import plotly.express as px
import streamlit as st

from app.clips import pick_clips
from app.ui import demo_notice, explainer_for, finished_runs, paths, run_description
from app.uploads import opened
from har import uploads
from har.config import MODEL_LABELS
from har.drawing import heat_overlay, map_grid
from har.glossary import GLOSSARY
from har.video import VideoError, frame_strip, sample_indices

data_dir, models_dir = paths()
PREVIEW_SIZE = 48  # pixels of the frames shown for a chosen sequence length (a preview, not a model input)
st.title("Explain")
runs = finished_runs(models_dir)
if not runs:
    st.info("No trained model yet: train the models on the Train page, then come back to see what they look at.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()
demo_notice(runs)
with st.expander("Which runs answer", expanded=False):
    for run in runs:
        st.markdown(f"- {run_description(run)}")


def explain(path, explainers) -> tuple:
    """Every explanation of the clip at `path`, its frame count, the sampled positions and their preview."""
    clips = uploads.decode(path, [(e.sequence_length, e.image_size) for e in explainers])
    explanations = [e.explain(clips[(e.sequence_length, e.image_size)]) for e in explainers]
    frame_count = next(iter(clips.values())).frame_count
    st.subheader("Which frames", help=GLOSSARY["sequence length"])
    length = st.slider(
        "Sequence length",
        1,
        min(max(frame_count, 1), 60),
        explainers[0].sequence_length,
        help="Move it to see which frames a model taking this many would sample.",
    )
    preview = uploads.decode(path, [(length, PREVIEW_SIZE)])[(length, PREVIEW_SIZE)]
    return explanations, frame_count, sample_indices(frame_count, length), preview


(clip,) = pick_clips(runs, several=False) or [None]
if clip is None:
    st.caption("Upload a clip (mp4, avi, mov, webm, mkv, gif) or pick a test clip to see what each model looks at.")
    st.stop()
try:
    with opened(clip) as path:
        try:
            explanations, frame_count, chosen, preview = explain(path, [explainer_for(run, models_dir) for run in runs])
        except (VideoError, ValueError, OSError) as error:
            st.error(uploads.shown(error, path, clip.name))
            st.stop()
except uploads.UploadRefused as error:
    st.error(f"{clip.name}: {error}")
    st.stop()

timeline = pd.DataFrame(
    {"frame": range(frame_count), "sampled": ["sampled" if i in set(chosen) else "skipped" for i in range(frame_count)]}
)
chart = px.scatter(
    timeline,
    x="frame",
    y=[0] * frame_count,
    color="sampled",
    height=140,
    color_discrete_map={"sampled": "crimson", "skipped": "lightgrey"},
)
chart.update_yaxes(visible=False)
chart.update_layout(margin={"t": 10, "b": 10}, legend_title_text="")
st.plotly_chart(chart, width="stretch")
st.image(
    frame_strip(preview.frames[: len(chosen)], columns=min(len(chosen), 20)),
    caption=f"{len(chosen)} frames of {frame_count}: every {max(frame_count // len(chosen), 1)}th frame from 0",
)

st.subheader("The answers")
columns = st.columns(len(explanations))
for column, explanation in zip(columns, explanations):
    top = explanation.label
    column.metric(
        MODEL_LABELS.get(explanation.model, explanation.model),
        top,
        f"{explanation.probabilities.max():.1%}",
        delta_color="off",
    )
    ood = explanation.ood
    if ood["out_of_distribution"]:
        column.warning(
            f"This clip is unlike anything this model was trained on (score {ood['ood_score']:.3g}, "
            f"threshold {ood['ood_threshold']:.3g}): the {explanation.probabilities.max():.0%} means "
            "little.",
            icon=":material/help:",
        )
    elif ood["out_of_distribution"] is False:
        column.caption(
            f"Like the training clips (score {ood['ood_score']:.3g} ≤ {ood['ood_threshold']:.3g}).",
            help=GLOSSARY["out-of-distribution"],
        )
    else:
        column.caption(f"Cannot tell how unusual this clip is: {ood['ood_note']}", help=GLOSSARY["out-of-distribution"])

st.subheader("Which frames mattered", help=GLOSSARY["frame importance"])
columns = st.columns(len(explanations))
for column, explanation in zip(columns, explanations):
    column.image(frame_strip(explanation.frames, columns=len(explanation.frames)), width="stretch")
    bars = pd.DataFrame({"frame": [str(i) for i in explanation.sampled_frames], "drop": explanation.frame_importance})
    chart = px.bar(bars, x="frame", y="drop", height=220, labels={"drop": f"drop of P({explanation.label})"})
    chart.update_xaxes(type="category")
    chart.update_layout(margin={"t": 10, "b": 10})
    column.plotly_chart(chart, width="stretch", key=f"importance-{explanation.run_id}")

st.subheader("Does it use motion?", help=GLOSSARY["order test"])
columns = st.columns(len(explanations))
for column, explanation in zip(columns, explanations):
    table = pd.DataFrame(explanation.order, index=list(explanation.class_names))  # original, frozen, reversed...
    long_form = table.reset_index(names="class").melt(id_vars="class", var_name="clip", value_name="probability")
    chart = px.bar(long_form, x="clip", y="probability", color="class", barmode="group", height=260, range_y=[0, 1])
    chart.update_layout(margin={"t": 10, "b": 10})
    column.plotly_chart(chart, width="stretch", key=f"order-{explanation.run_id}")
    column.caption(
        f"Frozen: frame {explanation.sampled_frames[explanation.frozen_position]} repeated; shuffled "
        "with seed 27. The same answer for all four means the model reads the scene, not the motion."
    )

st.subheader("Where in the frame", help=GLOSSARY["grad-cam"])
columns = st.columns(len(explanations))
for column, explanation in zip(columns, explanations):
    if explanation.heat_maps is None:
        column.info(explanation.heat_note)
        continue
    column.image(
        frame_strip(heat_overlay(explanation.frames, explanation.heat_maps), columns=5),
        width="stretch",
        caption=f"Grad-CAM on {explanation.heat_layer} for {explanation.label}: red = strong evidence",
    )

st.subheader("What the first layer sees", help=GLOSSARY["feature maps"])
columns = st.columns(len(explanations))
for column, explanation in zip(columns, explanations):
    maps = explanation.feature_maps  # (T, h, w, C)
    position = column.slider(
        "Frame",
        0,
        len(maps) - 1,
        len(maps) // 2,
        key=f"maps-{explanation.run_id}",
        help=GLOSSARY["timedistributed" if explanation.model == "lrcn" else "convlstm gates"],
    )
    column.image(
        map_grid(maps[position].transpose(2, 0, 1), columns=4, cell=128),
        width="stretch",
        caption=f"{maps.shape[-1]} maps of {explanation.feature_layer} at frame "
        f"{explanation.sampled_frames[position]}"
        + (" (hidden states: the memory of every frame so far)" if explanation.model == "convlstm" else ""),
    )
