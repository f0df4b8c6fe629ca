"""Upload clips (or pick a sample) and see what every trained model thinks of them."""

from functools import partial
from pathlib import Path

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from har import access, jobs
from har.config import Config
from har.datasets import build_cache, generate_demo
from har.glossary import GLOSSARY
from har.sandbox import decode_untrusted, preview_untrusted, run_isolated, start_decoder_server
from har.video import VIDEO_EXTENSIONS, VideoError, frame_strip, read_windows
from pages._ui import MODEL_LABELS, finished_runs, owner_only, paths, predictor_for, progress_callback, run_description

data_dir, models_dir = paths()
LONG_CLIP_SECONDS = 12.0  # longer clips also get an activity timeline


def offer_demo_training() -> None:
    st.info("No trained model yet. Train the report's two models on the demo data (a few minutes on a CPU).")
    if owner_only("Training") and st.button("Train the demo models", type="primary"):
        bar = st.progress(0.0)
        try:
            demo = generate_demo(data_dir / "demo", progress=progress_callback(bar, "demo clips"))
            cache = build_cache(demo, data_dir / "caches" / "demo-T20-S64", progress=progress_callback(bar, "frames"))
            jobs.start(cache, ["convlstm", "lrcn"], models_dir, config=Config(epochs=10))
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


def decode(path: Path, name: str, predictors) -> dict | None:
    """Sampled frames per (T, size) the runs need, decoded in a child process: uploads are untrusted."""
    sampled = {}
    try:
        for predictor in predictors:
            key = (predictor.sequence_length, predictor.image_size)
            if key not in sampled:
                sampled[key] = decode_untrusted(path, *key)
    except VideoError as error:
        st.error(str(error).replace(str(path), name))
        return None
    return sampled


@st.cache_resource
def upload_guards(scratch_root: str) -> tuple[access.UploadAllowance, access.ScratchSpace]:
    """Shared by every session: the per-visitor upload allowance and the capped folder uploads are written to."""
    scratch = access.ScratchSpace(scratch_root, cap_megabytes=2048)
    scratch.remove_stale()  # what a killed server left
    return access.UploadAllowance.from_environment(), scratch


def visitor() -> str:
    """Who is uploading, for the allowance (`har.access.visitor_key`)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return access.visitor_key(
        dict(st.context.headers), st.context.ip_address, context.session_id if context else "local"
    )


@st.cache_data(show_spinner=False, max_entries=64)
def test_samples(run_path: str, stamp: float) -> list[dict]:
    """The run's held-out test clips (it never trained on them); raises when its cache is gone (not cached)."""
    from har.evaluation import held_out_clips
    from har.runs import read_run

    return held_out_clips(read_run(Path(run_path)))


def sample_clips(runs) -> list[dict]:
    run = runs[0]
    try:
        return test_samples(str(run.path), (run.path / "model.keras").stat().st_mtime)
    except (OSError, ValueError):
        return []


def show_ood(column, predictor, run, frames) -> None:
    """Beside the answer: whether the clip is unlike everything the run was trained on."""
    from har.explain import out_of_distribution

    verdict = out_of_distribution(predictor, run, frames)
    if verdict["out_of_distribution"]:
        column.warning(
            f"Unlike the clips this model was trained on (score {verdict['ood_score']:.2f} > "
            f"{verdict['ood_threshold']:.2f}): its answer means little here.",
            icon=":material/help:",
        )


def admit(allowance: access.UploadAllowance, upload_id: str | None, size: int) -> str | None:
    """Counts each upload once against the visitor's allowance: a rerun of the page is not a new upload, and a
    held-out sample (`upload_id` None) is not an upload at all. Returns the refusal, if any."""
    if not access.public_mode() or upload_id is None:
        return None
    admitted = st.session_state.setdefault("admitted_uploads", set())
    if upload_id in admitted:
        return None
    refused = allowance.admit(visitor(), size)
    if refused is None:
        admitted.add(upload_id)
    return refused


def show_clip(name: str, data: bytes, upload_id: str | None, runs, predictors, order: list[str]) -> None:
    st.divider()
    st.subheader(name)
    try:
        allowance, scratch = upload_guards(str(data_dir / ".scratch"))
    except ValueError as error:  # the owner's HAR_UPLOADS... settings (not cached: a fixed setting works)
        st.error(str(error))
        return
    refused = admit(allowance, upload_id, len(data))
    if refused:
        st.error(f"{name}: {refused}")
        return
    try:
        with scratch.file(Path(name).suffix.lower(), len(data)) as path:
            path.write_bytes(data)
            answer_clip(path, name, runs, predictors, order)
    except access.ScratchFull as error:
        st.error(f"{name}: {error}")


def answer_clip(path: Path, name: str, runs, predictors, order: list[str]) -> None:
    """The sampled frames, every model's answer beside its warnings, the clip playing, timelines if long."""
    folder = str(path.parent)
    sampled = decode(path, name, predictors)
    if sampled is None:
        return
    first = next(iter(sampled.values()))
    left, right = st.columns([1, 2])
    player = left.empty()
    right.image(
        frame_strip(first.frames, columns=10),
        width="stretch",
        caption=f"{first.real_frames} frames sampled of {first.frame_count:,}",
    )
    for problem in first.problems():
        st.warning(f"{name}: {problem} The answer below rests on what could be read.", icon=":material/warning:")
    columns = st.columns(len(predictors))
    for column, run, predictor in zip(columns, runs, predictors):
        clip = sampled[(predictor.sequence_length, predictor.image_size)]
        probabilities = predictor.as_dict(predictor.predict_frames(clip.frames))
        top = next(iter(probabilities))
        column.markdown(
            f"**{MODEL_LABELS[predictor.model_name]}**: {top} ({probabilities[top]:.1%})  \nrun `{predictor.run_id}`"
        )
        column.plotly_chart(probability_chart(probabilities, order), width="stretch", key=f"{name}-{predictor.run_id}")
        show_ood(column, predictor, run, clip.frames)
    show_player(player, path, name, folder)
    seconds = first.frame_count / first.fps if first.fps else 0
    if seconds >= LONG_CLIP_SECONDS:
        show_timelines(path, name, predictors)


def show_player(player, path: Path, name: str, folder: str) -> None:
    """Every clip plays: re-encoded as H.264 on the server, since browsers cannot play XVID (UCF50's codec)."""
    try:
        preview = preview_untrusted(path, Path(folder) / "preview.mp4")
    except VideoError as error:
        player.caption(str(error).replace(str(path), name))
        return
    player.video(preview.read_bytes(), format="video/mp4")


def show_timelines(path: Path, name: str, predictors) -> None:
    """One activity timeline per model: 4 s windows every second, decoded in a child process."""
    st.markdown("**Activity timeline** (4 s windows, one every second)", help=GLOSSARY["sequence length"])
    columns = st.columns(len(predictors))
    for column, predictor in zip(columns, predictors):
        label = MODEL_LABELS[predictor.model_name]
        try:
            timeline = predictor.timeline(path, reader=partial(run_isolated, read_windows, timeout=300))
        except VideoError as error:
            column.error(str(error).replace(str(path), name))
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
show_runs(runs)
start_decoder_server()  # before the first upload, not during it

uploads = st.file_uploader(
    "Video clips", type=[suffix.lstrip(".") for suffix in VIDEO_EXTENSIONS], accept_multiple_files=True
)
samples = sample_clips(runs)
sample = st.selectbox(
    "...or a held-out test clip (one the models never trained on)",
    [None, *samples],
    format_func=lambda clip: (
        "none" if clip is None else f"{Path(clip['path']).name} ({clip['class']}, test split of run {runs[0].id})"
    ),
)

clips = [(upload.name, upload.getvalue(), upload.file_id) for upload in uploads or []]
if sample is not None and Path(sample["path"]).is_file():
    clips.append((Path(sample["path"]).name, Path(sample["path"]).read_bytes(), None))
if not clips:
    st.caption("Upload a clip (mp4, avi, mov, webm, mkv, gif) to see each model's probabilities.")
    st.stop()

predictors = [predictor_for(run, models_dir) for run in runs]
order = class_order(predictors)
for name, data, upload_id in clips:
    show_clip(name, data, upload_id, runs, predictors, order)
