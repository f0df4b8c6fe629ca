"""Train the ConvLSTM, the LRCN or both as a background job, and watch it live."""

import subprocess
import sys

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from har import jobs
from har.config import MODEL_NAMES, SPLITS, Config
from har.datasets import list_caches
from pages._ui import MODEL_LABELS, paths

data_dir, models_dir = paths()
st.title("Train")


@st.cache_data(show_spinner=False)
def device_name() -> str:
    """The device a job will train on, asked in a child process so the server does not load TensorFlow."""
    code = "from har.training import configure_devices; print(configure_devices())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 and result.stdout.strip() else "unknown"


caches = list_caches(data_dir)
if not caches:
    st.info("No frame cache yet: build one on the Data page first.")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/video_library:")
else:
    defaults = Config()
    cache = st.selectbox("Frame cache", caches, format_func=lambda path: path.name)
    left, right = st.columns(2)
    choice = left.radio("Model", ["both", *MODEL_NAMES], horizontal=True,
                        format_func=lambda name: "Both, one after the other" if name == "both" else MODEL_LABELS[name])  # fmt: skip
    split = right.radio("Split", SPLITS, horizontal=True,
                        format_func={"report": "The report's (random clips)", "group": "By group (no shared scenes)"}.get)  # fmt: skip
    with st.expander("Hyperparameters (prefilled with the report's)"):
        a, b, c, d = st.columns(4)
        epochs = a.number_input("Epochs (at most)", 1, 500, defaults.epochs)
        batch_size = b.number_input("Batch size", 1, 512, defaults.batch_size)
        patience = c.number_input("Early-stopping patience", 0, 100, defaults.patience)
        learning_rate = d.number_input("Learning rate", 1e-6, 1.0, defaults.learning_rate, format="%.5f")
        seed = a.number_input("Seed", 0, 2**31 - 1, defaults.seed)
        validation_fraction = b.number_input("Validation fraction", 0.05, 0.5, defaults.validation_fraction)
        test_fraction = c.number_input("Test fraction", 0.05, 0.5, defaults.test_fraction)
    st.caption(f"Device: {device_name()}")
    if st.button("Start training", type="primary"):
        config = Config(split=split, epochs=int(epochs), batch_size=int(batch_size), patience=int(patience),
                        learning_rate=float(learning_rate), seed=int(seed),
                        validation_fraction=float(validation_fraction), test_fraction=float(test_fraction))  # fmt: skip
        try:
            job = jobs.start(cache, list(MODEL_NAMES) if choice == "both" else [choice], models_dir, config=config)
            st.toast(f"Training job {job.id} started.")
        except jobs.JobBusy as error:
            st.error(str(error))
        except (OSError, ValueError) as error:
            st.error(str(error))


def curves(events: list[dict]) -> go.Figure:
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for model in dict.fromkeys(event["model"] for event in events):
        epochs = [event for event in events if event["model"] == model]
        for column, metric in ((1, "loss"), (2, "accuracy")):
            for prefix, dash in (("", "solid"), ("val_", "dot")):
                figure.add_scatter(x=[e["epoch"] for e in epochs], y=[e.get(prefix + metric) for e in epochs],
                                   name=f"{MODEL_LABELS[model]} {'validation' if prefix else 'train'} {metric}",
                                   line={"dash": dash}, row=1, col=column)  # fmt: skip
    figure.update_xaxes(title_text="epoch")
    figure.update_layout(height=360, margin={"t": 40, "b": 10})
    return figure


@st.fragment(run_every=1.0)
def live_panel() -> None:
    """Polls the running (or last) job's events; reruns alone, so the page stays responsive."""
    job = jobs.current(models_dir) or next(iter(jobs.list_jobs(models_dir)), None)
    if job is None:
        st.caption("No training job yet.")
        return
    state = job.state()
    events = job.events()
    st.subheader(f"Job {job.id}: {state}")
    if state == "running":
        if st.button("Cancel training"):
            job.cancel()
            st.toast("Cancelling after the current batch...")
    for event in events:
        if event["event"] in ("failed", "job_failed"):
            st.error(f"Training failed: {event.get('reason')}")
        elif event["event"] == "finished":
            st.success(f"{MODEL_LABELS[event['model']]}: test accuracy {event['test_accuracy']:.2%}, "
                       f"loss {event['test_loss']:.4f}")  # fmt: skip
        elif event["event"] == "cancelled":
            st.warning(f"{MODEL_LABELS.get(event.get('model'), 'Job')} cancelled.")
    if state == "killed":
        st.error(f"The job stopped unexpectedly. Resume it with `har train --resume {job.id}`.")
    batches = [event for event in events if event["event"] == "batch"]
    if state == "running" and batches:
        last = batches[-1]
        st.progress(last["step"] / last["steps"],
                    text=f"{MODEL_LABELS[last['model']]} epoch {last['epoch']}: step {last['step']}/{last['steps']}, "
                         f"loss {last['loss']:.3f}, accuracy {last['accuracy']:.3f}")  # fmt: skip
    epochs = [event for event in events if event["event"] == "epoch"]
    st.caption(f"{len(epochs)} epochs done")
    if epochs:
        st.plotly_chart(curves(epochs), width="stretch", key="curves")


live_panel()
