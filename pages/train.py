"""Train the ConvLSTM, the LRCN or both as a background job, and watch it live."""

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app.ui import owner, owner_only, paths
from har import devices, jobs
from har.config import MODEL_LABELS, MODEL_NAMES, REPORT_MODELS, SPLITS, Config, parse_seeds
from har.datasets import list_caches
from har.glossary import GLOSSARY

CHOICE_LABELS = {"both": "The report's two, one after the other", "all": "All three"}
MODEL_CHOICES = {"both": list(REPORT_MODELS), "all": list(MODEL_NAMES)}
data_dir, models_dir = paths()
st.title("Train")


@st.cache_data(show_spinner=False)
def _device_name() -> str:
    """Asked of a child process, so the server does not load TensorFlow; Streamlit caches no exception, so a
    failure is asked again on the next run."""
    return devices.describe_in_child()


def device_name() -> str:
    try:
        return _device_name()
    except (RuntimeError, OSError):
        return "unknown for now (asked again on the next visit)"


caches = list_caches(data_dir)
if not caches:
    st.info("No frame cache yet: build one on the Data page first.")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/video_library:")
elif owner_only("Training"):
    defaults = Config()
    cache = st.selectbox("Frame cache", caches, format_func=lambda path: path.name)
    left, right = st.columns(2)
    choice = left.radio(
        "Model",
        ["both", *MODEL_NAMES, "all"],
        horizontal=True,
        format_func=lambda name: CHOICE_LABELS.get(name) or MODEL_LABELS[name],
    )
    split = right.radio(
        "Split",
        SPLITS,
        horizontal=True,
        help=GLOSSARY["group split"],
        format_func={"report": "The report's (random clips)", "group": "By group (no shared scenes)"}.get,
    )
    with st.expander("Hyperparameters (prefilled with the report's)"):
        a, b, c, d = st.columns(4)
        epochs = a.number_input("Epochs (at most)", 1, 500, defaults.epochs, help=GLOSSARY["epoch"])
        batch_size = b.number_input("Batch size", 1, 512, defaults.batch_size)
        patience = c.number_input(
            "Early-stopping patience",
            0,
            100,
            defaults.patience,
            help=GLOSSARY["patience"] + " " + GLOSSARY["early stopping"],
        )
        learning_rate = d.number_input("Learning rate", 1e-6, 1.0, defaults.learning_rate, format="%.5f")
        seeds_text = a.text_input(
            "Seeds",
            str(defaults.seed),
            help=GLOSSARY["seed"] + " Several (27,28,29) train one run per seed and model, one after the other.",
        )
        validation_fraction = b.number_input(
            "Validation fraction", 0.05, 0.5, defaults.validation_fraction, help=GLOSSARY["validation"]
        )
        test_fraction = c.number_input("Test fraction", 0.05, 0.5, defaults.test_fraction)
        fast = d.checkbox(
            "Fast twin trainer",
            value=defaults.trainer == "twin",
            help="Train HAR Studio's weight-sharing twin of the model instead of the report's model.fit: "
            "the same steps to float rounding and 1.7-4x faster on CPUs, but over a whole run the "
            "rounding can grow into another run than model.fit's for the same seed.",
        )
    st.caption(f"Device: {device_name()}")
    if st.button("Start training", type="primary"):
        try:
            seeds = parse_seeds(seeds_text)
            config = Config(
                split=split,
                epochs=int(epochs),
                batch_size=int(batch_size),
                patience=int(patience),
                learning_rate=float(learning_rate),
                seed=seeds[0],
                validation_fraction=float(validation_fraction),
                test_fraction=float(test_fraction),
                trainer="twin" if fast else "plain",
            )
            job = jobs.start(cache, MODEL_CHOICES.get(choice, [choice]), models_dir, config=config, seeds=seeds)
            st.toast(f"Training job {job.id} started.")
        except (jobs.JobBusy, OSError, ValueError) as error:
            st.error(str(error))


def curves(progress: jobs.JobProgress) -> go.Figure:
    """Loss and accuracy per epoch for each run, with its best epoch and any early stop marked."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for run, rows in progress.epochs.items():
        label = progress.labels.get(run, run)
        for column, metric in ((1, "loss"), (2, "accuracy")):
            for prefix, dash in (("", "solid"), ("val_", "dot")):
                figure.add_scatter(
                    x=[row["epoch"] for row in rows],
                    y=[row.get(prefix + metric) for row in rows],
                    name=f"{label} {'validation' if prefix else 'train'} {metric}",
                    mode="lines+markers",
                    line={"dash": dash},
                    row=1,
                    col=column,
                )
        mark_best_epoch(figure, label, rows)
        if run in progress.early_stops:
            figure.add_vline(
                x=progress.early_stops[run],
                line_dash="dash",
                line_color="grey",
                annotation_text=f"{label} early stop",
                row=1,
                col=1,
            )
    figure.update_xaxes(title_text="epoch", tick0=1, dtick=1, rangemode="tozero")
    figure.update_layout(height=380, margin={"t": 40, "b": 10})
    return figure


def mark_best_epoch(figure: go.Figure, label: str, rows: list[dict]) -> None:
    """A star on the lowest validation loss: the epoch whose weights early stopping keeps."""
    scored = [row for row in rows if row.get("val_loss") is not None]
    if not scored:
        return
    best = min(scored, key=lambda row: row["val_loss"])
    figure.add_scatter(
        x=[best["epoch"]],
        y=[best["val_loss"]],
        mode="markers",
        marker={"symbol": "star", "size": 15},
        name=f"{label} best epoch ({best['epoch']})",
        row=1,
        col=1,
    )


def job_history(all_jobs) -> None:
    """Every job: what ran, when, with which settings, and how it ended."""
    rows = []
    for job in all_jobs:
        summary = job.summary()
        rows.append(
            {
                "job": summary["id"],
                "started": datetime.fromtimestamp(summary["started"]).strftime("%Y-%m-%d %H:%M"),
                "models": ", ".join(MODEL_LABELS[model] for model in summary["models"]),
                "settings": summary["settings"],
                "ended": summary["state"],
            }
        )
    st.subheader("Job history")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


SHOW_OUTCOME = {
    "failed": st.error,
    "finished": st.success,
    "at_chance": lambda text: st.warning(text, icon=":material/casino:"),
    "early_stop": lambda text: st.info(text, icon=":material/flag:"),
    "cancelled": st.warning,
}


def job_controls(job, state: str) -> None:
    """Cancel a running job; resume a cancelled, killed or failed one from its last saved epoch."""
    if state == "running" and owner():
        if st.button("Cancel training"):
            job.cancel()
            st.toast("Cancelling after the current batch...")
    elif state in ("cancelled", "killed", "failed") and owner():
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
    """Polls the running (or last) job; reruns alone, so the page stays responsive."""
    job = jobs.latest(models_dir)
    if job is None:
        st.caption("No training job yet.")
        return
    progress = job.progress()
    st.subheader(f"Job {job.id}: {progress.state}")
    job_controls(job, progress.state)
    for outcome in progress.outcomes:
        SHOW_OUTCOME[outcome.kind](outcome.text)
    if progress.batch is not None:
        st.progress(progress.batch["step"] / progress.batch["steps"], text=progress.batch_text)
    st.caption(progress.epochs_text)
    if progress.epochs:
        st.plotly_chart(curves(progress), width="stretch", key="curves")


live_panel()
all_jobs = jobs.list_jobs(models_dir)
if all_jobs:
    job_history(all_jobs)
