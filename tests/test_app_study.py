"""The Compare page on several seeds and on runs that did not learn (AppTest, real runs and evaluations)."""

import json
import math
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def copy_run(run: Path, models_dir: Path, run_id: str, **changes) -> None:
    """A copy of a real trained run under another id, with metadata changed as a seed or a flag would."""
    shutil.copytree(run, models_dir / run_id)
    (models_dir / run_id / "evaluation.json").unlink(missing_ok=True)
    metadata = json.loads((models_dir / run_id / "metadata.json").read_text())
    metadata.update(run_id=run_id, **changes)
    metadata["config"]["seed"] = metadata.get("seed", 27)
    (models_dir / run_id / "metadata.json").write_text(json.dumps(metadata))


# Each seed's test accuracy, different so that the spread is not 0 (the copies share one model).
ACCURACIES = {27: 0.5, 28: 0.625, 29: 0.875}


def give_accuracy(models_dir: Path, run_id: str, evaluation: dict, accuracy: float) -> None:
    """The run's saved test evaluation, as `evaluate` wrote it for the model they share, with `accuracy`; newer
    than the model, so Compare reads it instead of evaluating again."""
    (models_dir / run_id / "evaluation.json").write_text(json.dumps({**evaluation, "accuracy": accuracy}))


@pytest.fixture
def seeds(tmp_path, monkeypatch, trained):
    """Three seeds of one LRCN job with different test accuracies, one of them at chance (said aloud), and
    nothing else."""
    from har.evaluation import evaluate

    run, _, _ = trained
    models_dir = tmp_path / "models"
    copy_run(run, models_dir, "job1-lrcn-seed27", seed=27, job="job1")
    copy_run(run, models_dir, "job1-lrcn-seed28", seed=28, job="job1")
    copy_run(
        run,
        models_dir,
        "job1-lrcn-seed29",
        seed=29,
        job="job1",
        at_chance=True,
        at_chance_reason="This run did not learn: its validation loss never fell clearly below 1.39.",
    )
    evaluation = evaluate("job1-lrcn-seed27", models_dir)  # for real, once: the three share one model
    for seed, accuracy in ACCURACIES.items():
        give_accuracy(models_dir, f"job1-lrcn-seed{seed}", evaluation, accuracy)
    monkeypatch.setenv("HAR_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
    return models_dir


def test_compare_shows_every_seed_of_the_latest_job_with_mean_and_sd(seeds):
    app = AppTest.from_file(APP, default_timeout=300)
    app.switch_page("pages/compare.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert set(app.multiselect[0].value) == {"job1-lrcn-seed27", "job1-lrcn-seed28", "job1-lrcn-seed29"}
    assert any(header.value == "Across seeds" for header in app.subheader)
    spread = next(frame.value for frame in app.dataframe if "seeds" in frame.value.columns)
    lrcn = spread[spread["split"].str.startswith("report split")].iloc[0]
    accuracies = list(ACCURACIES.values())
    mean = sum(accuracies) / 3  # 0.6667
    sd = math.sqrt(sum((accuracy - mean) ** 2 for accuracy in accuracies) / (3 - 1))  # over seeds: n - 1; 0.1909
    assert lrcn["test accuracy"] == f"{mean:.1%} ± {sd:.1%}" == "66.7% ± 19.1%"
    assert lrcn["lowest"] == "50.0%"
    assert lrcn["seeds"] == 3 and lrcn["at chance"] == "1 of 3"
    assert list(spread["split"]).count("the report (one seed)") == 2  # the report's single-seed numbers beside


def test_compare_says_aloud_which_run_is_at_chance(seeds):
    app = AppTest.from_file(APP, default_timeout=300)
    app.switch_page("pages/compare.py")
    app.run()
    warnings = [warning.value for warning in app.warning if "at chance" in warning.value]
    assert len(warnings) == 1 and "job1-lrcn-seed29" in warnings[0] and "did not learn" in warnings[0]
