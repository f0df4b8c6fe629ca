"""Train the ConvLSTM, the LRCN or both as a background job, and watch it live."""

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from har import jobs
from har.config import MODEL_NAMES, SPLITS, Config
from har.datasets import list_caches
from pages._ui import MODEL_LABELS, paths, plural

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


def curves(epochs: list[dict], stops: list[dict]) -> go.Figure:
    """Loss and accuracy per epoch for each model, with its best epoch and any early stop marked."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for model in dict.fromkeys(event["model"] for event in epochs):
        rows = latest_per_epoch([event for event in epochs if event["model"] == model])
        for column, metric in ((1, "loss"), (2, "accuracy")):
            for prefix, dash in (("", "solid"), ("val_", "dot")):
                figure.add_scatter(x=[e["epoch"] for e in rows], y=[e.get(prefix + metric) for e in rows],
                                   name=f"{MODEL_LABELS[model]} {'validation' if prefix else 'train'} {metric}",
                                   mode="lines+markers", line={"dash": dash}, row=1, col=column)  # fmt: skip
        mark_best_epoch(figure, model, rows)
        for stop in (event for event in stops if event["model"] == model):
            figure.add_vline(x=stop["epoch"], line_dash="dash", line_color="grey",
                             annotation_text=f"{MODEL_LABELS[model]} early stop", row=1, col=1)  # fmt: skip
    figure.update_xaxes(title_text="epoch", tick0=1, dtick=1, rangemode="tozero")
    figure.update_layout(height=380, margin={"t": 40, "b": 10})
    return figure


def latest_per_epoch(events: list[dict]) -> list[dict]:
    """One point per epoch number (a resumed job may report an epoch again; the later report wins)."""
    return sorted({event["epoch"]: event for event in events}.values(), key=lambda event: event["epoch"])


def mark_best_epoch(figure: go.Figure, model: str, rows: list[dict]) -> None:
    """A star on the lowest validation loss: the epoch whose weights early stopping keeps."""
    scored = [row for row in rows if row.get("val_loss") is not None]
    if not scored:
        return
    best = min(scored, key=lambda row: row["val_loss"])
    figure.add_scatter(x=[best["epoch"]], y=[best["val_loss"]], mode="markers", marker={"symbol": "star", "size": 15},
                       name=f"{MODEL_LABELS[model]} best epoch ({best['epoch']})", row=1, col=1)  # fmt: skip


def epoch_counts(job, epochs: list[dict]) -> str:
    """`ConvLSTM: 1 epoch, LRCN: 3 epochs`: per model, the count `har runs` shows once a run is saved."""
    from har.runs import find_run

    parts = []
    for model, run_id in ((model, run_id) for run_id, model in job.run_ids().items()):
        try:
            count = find_run(models_dir, run_id).metadata.get("epochs_run")
        except (OSError, ValueError):
            count = None
        if count is None:
            count = len({event["epoch"] for event in epochs if event["model"] == model})
        parts.append(f"{MODEL_LABELS[model]}: {plural(count, 'epoch')}")
    return ", ".join(parts) + " done"


def job_settings(job) -> str:
    config = job.spec.get("config", {})
    return (f"{Path(job.spec.get('cache', '?')).name}, {config.get('split', '?')} split, "
            f"{plural(config.get('epochs', 0), 'epoch')} at most, batch {config.get('batch_size', '?')}, "
            f"patience {config.get('patience', '?')}, lr {config.get('learning_rate', '?')}, seed {config.get('seed', '?')}")  # fmt: skip


def job_history(all_jobs) -> None:
    """Every job: what ran, when, with which settings, and how it ended."""
    rows = []
    for job in all_jobs:
        events = job.events()
        started = events[0]["time"] if events and "time" in events[0] else (job.folder / "job.json").stat().st_mtime
        rows.append({"job": job.id, "started": datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M"),
                     "models": ", ".join(MODEL_LABELS[model] for model in job.models), "settings": job_settings(job),
                     "ended": job.state()})  # fmt: skip
    st.subheader("Job history")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def still_true(events: list[dict]) -> list[dict]:
    """Drops the cancelled and failed events that a resume overtook (the model started again after them)."""
    last_start = {}
    for i, event in enumerate(events):
        if event["event"] == "started":
            last_start[event.get("model")] = i
    newest = max(last_start.values(), default=-1)
    return [event for i, event in enumerate(events)
            if not (event["event"] in ("cancelled", "failed") and last_start.get(event.get("model"), -1) > i)
            and not (event["event"] == "job_failed" and newest > i)]  # fmt: skip


def outcome_messages(events: list[dict]) -> None:
    for event in still_true(events):
        if event["event"] in ("failed", "job_failed"):
            st.error(f"Training failed: {event.get('reason')}")
        elif event["event"] == "finished":
            st.success(f"{MODEL_LABELS[event['model']]}: test accuracy {event['test_accuracy']:.2%}, "
                       f"loss {event['test_loss']:.4f}")  # fmt: skip
        elif event["event"] == "early_stop":
            st.info(f"{MODEL_LABELS[event['model']]}: early stop at epoch {event['epoch']}; the weights of the best "
                    f"epoch ({event['best_epoch']}) were kept.")  # fmt: skip
        elif event["event"] == "cancelled":
            st.warning(f"{MODEL_LABELS.get(event.get('model'), 'Job')} cancelled.")


def job_controls(job, state: str) -> None:
    """Cancel a running job; resume a cancelled, killed or failed one from its last saved epoch."""
    if state == "running":
        if st.button("Cancel training"):
            job.cancel()
            st.toast("Cancelling after the current batch...")
    elif state in ("cancelled", "killed", "failed"):
        if state == "killed":
            st.error("The job stopped unexpectedly (its process was killed). Resume continues from its last epoch.")
        if st.button("Resume training", type="primary", help=f"the same as `har train --resume {job.id}`"):
            try:
                jobs.resume(models_dir, job.id)
                st.toast(f"Job {job.id} resumed.")
            except (jobs.JobBusy, OSError, ValueError) as error:
                st.error(str(error))


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
    job_controls(job, state)
    outcome_messages(events)
    batches = [event for event in events if event["event"] == "batch"]
    if state == "running" and batches:
        last = batches[-1]
        st.progress(last["step"] / last["steps"],
                    text=f"{MODEL_LABELS[last['model']]} epoch {last['epoch']}: step {last['step']}/{last['steps']}, "
                         f"loss {last['loss']:.3f}, accuracy {last['accuracy']:.3f}")  # fmt: skip
    epochs = [event for event in events if event["event"] == "epoch"]
    st.caption(epoch_counts(job, epochs))
    if epochs:
        stops = [event for event in events if event["event"] == "early_stop"]
        st.plotly_chart(curves(epochs, stops), width="stretch", key="curves")


live_panel()
all_jobs = jobs.list_jobs(models_dir)
if all_jobs:
    job_history(all_jobs)
