"""Upload clips (or pick a held-out test clip) and see what every trained model thinks of them."""

from pathlib import Path

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app.clips import pick_clips
from app.ui import demo_notice, finished_runs, owner_only, paths, predictor_for, progress_callback, run_description
from app.uploads import opened
from har import jobs, uploads
from har.config import MODEL_LABELS, REPORT_MODELS, Config
from har.datasets import ensure_demo
from har.glossary import GLOSSARY
from har.sandbox import decode_untrusted, start_decoder_server
from har.services import predict_file
from har.video import VideoError, frame_strip

data_dir, models_dir = paths()
LONG_CLIP_SECONDS = 12.0  # longer clips also get an activity timeline
DEMO_EPOCHS = 10  # a few minutes on a CPU


def offer_demo_training() -> None:
    st.info("No trained model yet. Train the report's two models on the demo data (a few minutes on a CPU).")
    if owner_only("Training") and st.button("Train the demo models", type="primary"):
        bar = st.progress(0.0)
        try:
            demo = ensure_demo(
                data_dir,
                Config(),
                on_generate=progress_callback(bar, "demo clips"),
                on_decode=progress_callback(bar, "frames"),
            )
            jobs.start(demo.cache, list(REPORT_MODELS), models_dir, config=Config(epochs=DEMO_EPOCHS))
        except (jobs.JobBusy, OSError, ValueError) as error:
            st.error(str(error))
        else:
            st.switch_page("pages/train.py")


def show_runs(runs) -> None:
    """Which run answers for each model, what it learnt from, and the classes it knows."""
    st.caption(
        "Each model only knows the classes it was trained on: any clip gets one of those, however "
        "different it is. Probabilities say how sure the model is among them, not whether the clip "
        "shows any of them.",
        help=GLOSSARY["out-of-distribution"],
    )
    with st.expander("Which runs answer", expanded=False):
        for run in runs:
            st.markdown(f"- {run_description(run)}")


def class_order(predictors) -> list[str]:
    """One class order for every chart: the first run's label order, then classes only later runs know."""
    return list(dict.fromkeys(name for predictor in predictors for name in predictor.class_names))


def probability_chart(probabilities: dict[str, float], order: list[str]) -> go.Figure:
    names = [name for name in order if name in probabilities]
    values = [probabilities[name] for name in names]
    top = max(probabilities, key=probabilities.get)
    chart = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            text=[f"{value:.1%}" for value in values],
            textposition="outside",
            cliponaxis=False,
            marker_color=["#1f77b4" if name == top else "#aec7e8" for name in names],
        )
    )
    chart.update_xaxes(range=[0, 1], tickformat=".0%", title_text="probability")
    chart.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=names)
    chart.update_layout(height=90 + 30 * len(names), margin={"t": 10, "b": 10, "l": 10, "r": 50})
    return chart


def timeline_chart(timeline, class_names) -> go.Figure:
    long_form = timeline.melt(
        id_vars=["start"], value_vars=list(class_names), var_name="class", value_name="probability"
    )
    chart = px.line(
        long_form, x="start", y="probability", color="class", markers=True, category_orders={"class": list(class_names)}
    )
    chart.update_xaxes(title_text="window start (seconds)", ticksuffix=" s")
    chart.update_yaxes(range=[0, 1], tickformat=".0%")
    chart.update_layout(height=300, margin={"t": 10, "b": 10})
    return chart


def show_ood(column, result: dict) -> None:
    """Beside the answer: whether the clip is unlike everything the run was trained on."""
    if result["out_of_distribution"]:
        column.warning(
            f"Unlike the clips this model was trained on (score {result['ood_score']:.2f} > "
            f"{result['ood_threshold']:.2f}): its answer means little here.",
            icon=":material/help:",
        )


def show_clip(clip, runs, predictors, order: list[str]) -> None:
    """One clip through the guarded upload path, then its answers."""
    st.divider()
    st.subheader(clip.name)
    try:
        with opened(clip) as path:
            answer_clip(path, clip.name, runs, predictors, order)
    except uploads.UploadRefused as error:
        st.error(f"{clip.name}: {error}")


def answer_clip(path: Path, name: str, runs, predictors, order: list[str]) -> None:
    """The sampled frames, every model's answer beside its warnings, the clip playing, timelines if long."""
    try:
        answers = predict_file(path, runs, models_dir, decoder=decode_untrusted, load=predictor_for)
    except VideoError as error:
        st.error(uploads.shown(error, path, name))
        return
    first = answers.clips[(predictors[0].sequence_length, predictors[0].image_size)]
    left, right = st.columns([1, 2])
    player = left.empty()
    right.image(
        frame_strip(first.frames, columns=10),
        width="stretch",
        caption=f"{first.real_frames} frames sampled of {first.frame_count:,}",
    )
    for problem in first.problems():
        st.warning(f"{name}: {problem} The answer below rests on what could be read.", icon=":material/warning:")
    columns = st.columns(len(answers.runs))
    for column, result in zip(columns, answers.runs):
        probabilities = result["probabilities"]
        top = result["label"]
        column.markdown(
            f"**{MODEL_LABELS[result['model']]}**: {top} ({probabilities[top]:.1%})  \nrun `{result['run_id']}`"
        )
        column.plotly_chart(probability_chart(probabilities, order), width="stretch", key=f"{name}-{result['run_id']}")
        show_ood(column, result)
    show_player(player, path, name)
    seconds = first.frame_count / first.fps if first.fps else 0
    if seconds >= LONG_CLIP_SECONDS:
        show_timelines(path, name, predictors)


def show_player(player, path: Path, name: str) -> None:
    """Every clip plays: re-encoded as H.264 on the server, since browsers cannot play XVID (UCF50's codec)."""
    try:
        preview = uploads.preview(path)
    except VideoError as error:
        player.caption(uploads.shown(error, path, name))
        return
    player.video(preview.read_bytes(), format="video/mp4")


def show_timelines(path: Path, name: str, predictors) -> None:
    """One activity timeline per model: 4 s windows every second, decoded in a child process."""
    st.markdown("**Activity timeline** (4 s windows, one every second)", help=GLOSSARY["sequence length"])
    columns = st.columns(len(predictors))
    for column, predictor in zip(columns, predictors):
        label = MODEL_LABELS[predictor.model_name]
        try:
            timeline = uploads.timeline(predictor, path)
        except VideoError as error:
            column.error(uploads.shown(error, path, name))
            continue
        column.markdown(f"{label} (run `{predictor.run_id}`)")
        column.plotly_chart(
            timeline_chart(timeline, predictor.class_names), width="stretch", key=f"{name}-timeline-{predictor.run_id}"
        )
        column.download_button(
            f"Download the {label} observation sequence (CSV)",
            timeline.to_csv(index=False),
            file_name=f"{Path(name).stem}-{predictor.model_name}-timeline.csv",
            mime="text/csv",
            key=f"{name}-csv-{predictor.run_id}",
        )


st.title("Predict")
runs = finished_runs(models_dir)
if not runs:
    offer_demo_training()
    st.stop()
demo_notice(runs)
show_runs(runs)
start_decoder_server()  # before the first upload, not during it

clips = pick_clips(runs, several=True)
if not clips:
    st.caption("Upload a clip (mp4, avi, mov, webm, mkv, gif) to see each model's probabilities.")
    st.stop()

predictors = [predictor_for(run, models_dir) for run in runs]
order = class_order(predictors)
for clip in clips:
    show_clip(clip, runs, predictors, order)
