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
from har.glossary import GLOSSARY
from pages._ui import MODEL_LABELS, owner, owner_only, paths, plural

data_dir, models_dir = paths()
st.title("Train")


@st.cache_data(show_spinner=False)
def _device_name() -> str:
    """The device a job will train on, asked in a child process so the server does not load TensorFlow.
    A failure raises, and Streamlit caches no exception: the next run asks again."""
    code = "from har.training import configure_devices; print(configure_devices())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(result.stderr.strip()[-300:] or "no answer")
    return result.stdout.strip().splitlines()[-1]


def device_name() -> str:
    try:
        return _device_name()
    except (RuntimeError, OSError, subprocess.TimeoutExpired):
        return "unknown for now (asked again on the next visit)"


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"Seeds {text!r}: give distinct whole numbers separated by commas, like 27,28,29.")
    return seeds


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
        ["both", *MODEL_NAMES],
        horizontal=True,
        format_func=lambda name: "Both, one after the other" if name == "both" else MODEL_LABELS[name],
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
            job = jobs.start(
                cache, list(MODEL_NAMES) if choice == "both" else [choice], models_dir, config=config, seeds=seeds
            )
            st.toast(f"Training job {job.id} started.")
        except (jobs.JobBusy, OSError, ValueError) as error:
            st.error(str(error))


def run_label(job, event: dict) -> str:
    """`LRCN`, or `LRCN seed 28` when the job trains several seeds."""
    label = MODEL_LABELS.get(event.get("model"), "Job")
    return f"{label} seed {event['seed']}" if len(job.seeds) > 1 and "seed" in event else label


def curves(job, epochs: list[dict], stops: list[dict]) -> go.Figure:
    """Loss and accuracy per epoch for each run, with its best epoch and any early stop marked."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for run in dict.fromkeys(event["run"] for event in epochs):
        rows = latest_per_epoch([event for event in epochs if event["run"] == run])
        label = run_label(job, rows[0])
        for column, metric in ((1, "loss"), (2, "accuracy")):
            for prefix, dash in (("", "solid"), ("val_", "dot")):
                figure.add_scatter(
                    x=[e["epoch"] for e in rows],
                    y=[e.get(prefix + metric) for e in rows],
                    name=f"{label} {'validation' if prefix else 'train'} {metric}",
                    mode="lines+markers",
                    line={"dash": dash},
                    row=1,
                    col=column,
                )
        mark_best_epoch(figure, label, rows)
        for stop in (event for event in stops if event.get("run") == run):
            figure.add_vline(
                x=stop["epoch"],
                line_dash="dash",
                line_color="grey",
                annotation_text=f"{label} early stop",
                row=1,
                col=1,
            )
    figure.update_xaxes(title_text="epoch", tick0=1, dtick=1, rangemode="tozero")
    figure.update_layout(height=380, margin={"t": 40, "b": 10})
    return figure


def latest_per_epoch(events: list[dict]) -> list[dict]:
    """One point per epoch number (a resumed job may report an epoch again; the later report wins)."""
    return sorted({event["epoch"]: event for event in events}.values(), key=lambda event: event["epoch"])


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


def epoch_counts(job) -> str:
    """`ConvLSTM: 1 epoch, LRCN: 3 epochs done`: per run, the count `har runs` shows (a resumed run goes on
    counting where it stopped)."""
    done = job.epochs_done()
    parts = [
        f"{run_label(job, {'model': run.model, 'seed': run.seed})}: {plural(done[run.id], 'epoch')}"
        for run in job.planned_runs()
        if run.id in done
    ]
    return (", ".join(parts) + " done") if parts else "no epoch done yet"


def job_settings(job) -> str:
    config = job.spec.get("config", {})
    return (
        f"{Path(job.spec.get('cache', '?')).name}, {config.get('split', '?')} split, "
        f"{plural(config.get('epochs', 0), 'epoch')} at most, batch {config.get('batch_size', '?')}, "
        f"patience {config.get('patience', '?')}, lr {config.get('learning_rate', '?')}, "
        f"seed{'s' if len(job.seeds) > 1 else ''} {', '.join(map(str, job.seeds))}"
    )


def job_history(all_jobs) -> None:
    """Every job: what ran, when, with which settings, and how it ended."""
    rows = []
    for job in all_jobs:
        events = job.events()
        started = events[0]["time"] if events and "time" in events[0] else (job.folder / "job.json").stat().st_mtime
        rows.append(
            {
                "job": job.id,
                "started": datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M"),
                "models": ", ".join(MODEL_LABELS[model] for model in job.models),
                "settings": job_settings(job),
                "ended": job.state(),
            }
        )
    st.subheader("Job history")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def outcome_messages(job) -> None:
    """How each run ended: what earlier attempts finished still stands, failures only from the latest attempt
    (a resume overtakes them)."""
    events = job.events()
    latest = job.attempt_events()
    earlier = events[: len(events) - len(latest)]
    for event in [e for e in earlier if e["event"] in ("finished", "early_stop")] + latest:
        label = run_label(job, event)
        if event["event"] in ("failed", "job_failed"):
            st.error(f"Training failed: {event.get('reason')}")
        elif event["event"] == "finished":
            st.success(f"{label}: test accuracy {event['test_accuracy']:.2%}, loss {event['test_loss']:.4f}")
            if event.get("at_chance"):
                st.warning(f"**{label} is at chance.** {event['at_chance_reason']}", icon=":material/casino:")
        elif event["event"] == "early_stop":
            st.info(
                f"{label}: early stop at epoch {event['epoch']}; the weights of the best epoch "
                f"({event['best_epoch']}) were kept.",
                icon=":material/flag:",
            )
        elif event["event"] == "cancelled":
            st.warning(f"{label} cancelled.")


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
    """Polls the running (or last) job's events; reruns alone, so the page stays responsive."""
    job = jobs.current(models_dir) or next(iter(jobs.list_jobs(models_dir)), None)
    if job is None:
        st.caption("No training job yet.")
        return
    state = job.state()
    events = job.events()
    st.subheader(f"Job {job.id}: {state}")
    job_controls(job, state)
    outcome_messages(job)
    batches = [event for event in events if event["event"] == "batch"]
    if state == "running" and batches:
        last = batches[-1]
        st.progress(
            last["step"] / last["steps"],
            text=f"{run_label(job, last)} epoch {last['epoch']}: step {last['step']}/{last['steps']}, "
            f"loss {last['loss']:.3f}, accuracy {last['accuracy']:.3f}",
        )
    epochs = [event for event in events if event["event"] == "epoch"]
    st.caption(epoch_counts(job))
    if epochs:
        stops = [event for event in events if event["event"] == "early_stop"]
        st.plotly_chart(curves(job, epochs, stops), width="stretch", key="curves")


live_panel()
all_jobs = jobs.list_jobs(models_dir)
if all_jobs:
    job_history(all_jobs)
