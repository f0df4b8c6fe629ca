"""Upload clips (or pick a sample) and see what every trained model thinks of them."""

import tempfile
from functools import partial
from pathlib import Path

import plotly.express as px
import streamlit as st

from har import jobs
from har.config import Config
from har.datasets import build_cache, find_clips, generate_demo
from har.sandbox import decode_untrusted, run_isolated
from har.video import VIDEO_EXTENSIONS, VideoError, frame_strip, read_windows
from pages._ui import MODEL_LABELS, finished_runs, paths, predictor_for, progress_callback

data_dir, models_dir = paths()
LONG_CLIP_SECONDS = 12.0  # longer clips also get an activity timeline

st.title("Predict")
runs = finished_runs(models_dir)
if not runs:
    st.info("No trained model yet. Train the report's two models on the demo data (a few minutes on a CPU).")
    if st.button("Train the demo models", type="primary"):
        bar = st.progress(0.0)
        demo = generate_demo(data_dir / "demo", progress=progress_callback(bar, "demo clips"))
        cache = build_cache(demo, data_dir / "caches" / "demo-T20-S64", progress=progress_callback(bar, "frames"))
        try:
            jobs.start(cache, ["convlstm", "lrcn"], models_dir, config=Config(epochs=10))
        except jobs.JobBusy as error:
            st.error(str(error))
        else:
            st.switch_page("pages/train.py")
    st.stop()

uploads = st.file_uploader("Video clips", type=[suffix.lstrip(".") for suffix in VIDEO_EXTENSIONS],
                           accept_multiple_files=True)  # fmt: skip
samples = find_clips(data_dir / "demo") if (data_dir / "demo").is_dir() else []
sample = st.selectbox("...or a sample clip", [None, *samples],
                      format_func=lambda clip: "none" if clip is None else clip.path.name)  # fmt: skip

clips = [(upload.name, upload.getvalue()) for upload in uploads or []]
if sample is not None:
    clips.append((sample.path.name, sample.path.read_bytes()))
if not clips:
    st.caption("Upload a clip (mp4, avi, mov, webm, mkv, gif) to see each model's probabilities.")
    st.stop()

predictors = [predictor_for(run, models_dir) for run in runs]
for name, data in clips:
    st.divider()
    st.subheader(name)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{Path(name).suffix.lower()}"
        path.write_bytes(data)
        try:
            sampled = {}
            for predictor in predictors:
                key = (predictor.sequence_length, predictor.image_size)
                if key not in sampled:
                    sampled[key] = decode_untrusted(path, *key)  # in a child process: uploads are untrusted
        except VideoError as error:
            st.error(str(error).replace(str(path), name))
            continue
        first = next(iter(sampled.values()))
        left, right = st.columns([1, 2])
        left.video(data)
        right.image(frame_strip(first.frames, columns=10),
                    caption=f"{first.real_frames} frames sampled of {first.frame_count}", width="stretch")  # fmt: skip
        columns = st.columns(len(predictors))
        for column, predictor in zip(columns, predictors):
            clip = sampled[(predictor.sequence_length, predictor.image_size)]
            probabilities = predictor.as_dict(predictor.predict_frames(clip.frames))
            top = next(iter(probabilities))
            column.metric(MODEL_LABELS[predictor.model_name], top, f"{probabilities[top]:.1%}", delta_color="off")
            chart = px.bar(x=list(probabilities.values()), y=list(probabilities), orientation="h",
                           labels={"x": "probability", "y": ""}, range_x=[0, 1])  # fmt: skip
            chart.update_layout(height=60 + 28 * len(probabilities), margin={"t": 10, "b": 10})
            chart.update_yaxes(autorange="reversed")  # most likely class on top
            column.plotly_chart(chart, width="stretch", key=f"{name}-{predictor.run_id}")
        seconds = first.frame_count / first.fps if first.fps else 0
        if seconds >= LONG_CLIP_SECONDS:
            predictor = predictors[-1]
            timeline = predictor.timeline(path, reader=partial(run_isolated, read_windows, timeout=300))
            st.markdown(f"**Activity timeline** ({MODEL_LABELS[predictor.model_name]}, 4 s windows every second)")
            long_form = timeline.melt(id_vars=["start"], value_vars=list(predictor.class_names),
                                      var_name="class", value_name="probability")  # fmt: skip
            st.plotly_chart(px.line(long_form, x="start", y="probability", color="class"), width="stretch",
                            key=f"{name}-timeline")  # fmt: skip
            st.download_button("Download the observation sequence (CSV)", timeline.to_csv(index=False),
                               file_name=f"{Path(name).stem}-timeline.csv", mime="text/csv", key=f"{name}-csv")  # fmt: skip
