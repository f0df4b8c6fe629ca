"""UI glue shared by the pages: settings, the owner's sign-in, progress bars, the cached model loader, labels."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.settings import current
from har.config import MODEL_LABELS


def paths() -> tuple[Path, Path]:
    """The data and models dirs the entry script read."""
    settings = current()
    return settings.data_dir, settings.models_dir


def progress_callback(bar, label: str):
    """A har (done, total) callback that moves an st.progress bar."""

    def update(done: int, total: int | None) -> None:
        if total:
            bar.progress(min(done / total, 1.0), text=f"{label}: {done:,} / {total:,}")

    return update


# Room for the 12 shipped runs (Compare reads them all) and a few more; predictor_for shows the spinner.
@st.cache_resource(max_entries=16, show_spinner=False)
def _predictor(run_path: str, model_mtime: float, models_dir: str):
    from har.quiet import import_keras

    import_keras()  # without TensorFlow's C++ start-up lines on the server's terminal
    from har.inference import Predictor

    return Predictor.from_run(Path(run_path), models_dir)


def predictor_for(run, models_dir: Path):
    """A loaded Predictor, shared by every session; a new or retrained run gets a new cache entry. The `load`
    that `har.services.predict_file` takes, and what `app.warmup` fills in the background.

    A page waiting for a load (its own, or the background loader's under the cache's per-entry lock) shows a
    spinner after half a second; the background thread has no page, and a spinner there would log Streamlit's
    "missing ScriptRunContext" warning, so it loads without one.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    mtime = (run.path / "model.keras").stat().st_mtime
    if get_script_run_ctx(suppress_warning=True) is None:  # app.warmup's thread
        return _predictor(str(run.path), mtime, str(models_dir))
    with st.spinner("Loading model..."):
        return _predictor(str(run.path), mtime, str(models_dir))


@st.cache_resource(max_entries=8, show_spinner="Preparing the explanation...")
def _explainer(run_path: str, model_mtime: float, _predictor, _run):
    from har.explain import Explainer  # Keras, already imported quietly by the predictor

    return Explainer(_predictor, _run)


def explainer_for(run, models_dir: Path):
    """One `har.explain.Explainer` per run, shared by every session (it holds a lock); retraining makes a new one."""
    mtime = (run.path / "model.keras").stat().st_mtime
    return _explainer(str(run.path), mtime, predictor_for(run, models_dir), run)


def finished_runs(models_dir: Path) -> list:
    """The run that answers for each model (`har.runs.answering_runs`: of the job that made its newest finished
    run, the one with the lowest validation loss), each with `choice` saying why."""
    from har.runs import answering_runs

    return answering_runs(models_dir)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 epoch`, `2 epochs`, `1,234 clips`, `4 classes` (with nouns="classes")."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def run_description(run) -> str:
    """One markdown line: model, run id, the data it learnt from, its classes, and why it answers."""
    metadata = run.metadata
    dataset = metadata.get("dataset") or {}
    split = metadata.get("split") or {}
    cache = Path(dataset["cache"]).name if dataset.get("cache") else "an unknown cache"
    clips = f", {plural(dataset['clips'], 'clip')}" if dataset.get("clips") else ""
    classes = ", ".join(metadata.get("classes") or []) or "unknown"
    choice = f"; {run.choice}" if getattr(run, "choice", None) else ""
    return (
        f"**{MODEL_LABELS.get(run.model, run.model)}** run `{run.id}`: trained on `{cache}`{clips} "
        f"({split.get('name', '?')} split), {plural(metadata.get('epochs_run') or 0, 'epoch')}; "
        f"knows {plural(len(metadata.get('classes') or []), 'class', 'classes')}: {classes}{choice}"
    )


DEMO_NOTICE = (
    "These runs were trained on the synthetic stick-figure demo, not on UCF50: on a real clip their answer is a "
    "guess among its four classes, not evidence. For real answers, get UCF50 on the Data page and train on it "
    "on the Train page."
)


def demo_notice(runs) -> None:
    """Says once, on Predict, Explain and Compare, what answers from demo-trained runs mean; nothing when no run
    shown learnt from the demo (an owner's shipped UCF50 runs, say)."""
    from har.runs import trained_on_demo

    if any(trained_on_demo(run) for run in runs):
        st.info(DEMO_NOTICE, icon=":material/science:")


def public() -> bool:
    """Whether this server is a public copy (`HAR_PUBLIC`): visitors see no folder names and no owner actions."""
    return current().public


def owner() -> bool:
    """Whether this browser session may take owner actions: always on a local run; in public mode only after
    the owner token was entered in the sidebar (`har.access.Access`)."""
    return current().access.is_owner(st.session_state.get("owner_token"))


def owner_only(action: str) -> bool:
    """True when the session may `action`; otherwise says why (once) and returns False."""
    if owner():
        return True
    st.info(f"{action}: {current().access.refusal()}", icon=":material/lock:")
    return False


def owner_sign_in() -> None:
    """The sidebar's token field in public mode (nothing on a local run)."""
    access = current().access
    if not access.public:
        return
    if owner():
        st.sidebar.success("Owner mode: you can get data, train and manage runs.", icon=":material/key:")
        return
    token = st.sidebar.text_input(
        "Owner token",
        type="password",
        key="owner_token_input",
        help="Only the Space's owner has it (the HAR_OWNER_TOKEN secret).",
    )
    if token:
        if access.is_owner(token):
            st.session_state["owner_token"] = token
            st.rerun()
        st.sidebar.error("That is not the owner token.")


@st.fragment(run_every=2.0)
def pipeline_panel() -> None:
    """The newest background pipeline (`har reproduce`, or the Data page's download and cache build): its
    stage and progress, refreshed on its own, from any page and any tab."""
    from har import pipeline

    _, models_dir = paths()
    status = pipeline.status(models_dir)
    if status is None:
        return
    stage = status["current_stage"] or "finishing"
    label = (
        f"Background job {status['id']}: {status['state']}, {status['stages_done']} of {len(status['stages'])} "
        "stages done"
    )
    if status["state"] == "running":
        progress = status["stage_progress"]
        st.progress(progress or 0.0, text=f"{label}; now: {stage}" + (f" ({progress:.0%})" if progress else ""))
    elif status["state"] == "failed":
        st.error(f"{label}. {status['reason']}")
    else:
        st.caption(label)
