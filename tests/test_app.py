"""The Streamlit app through streamlit.testing's AppTest: every page, uploads, a real training job."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from har import jobs
from har.datasets import find_clips

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PAGES = ["overview", "data", "train", "predict", "compare"]


def open_page(page: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    if page != "overview":
        app.switch_page(f"pages/{page}.py")
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAR_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


@pytest.fixture
def ready(tmp_path, monkeypatch, demo_dataset, tiny_cache, trained):
    """Data and models dirs holding the demo dataset, a tiny cache and a trained LRCN run."""
    run, _, _ = trained
    shutil.copytree(demo_dataset, tmp_path / "data" / "demo")
    shutil.copytree(tiny_cache, tmp_path / "data" / "caches" / tiny_cache.name)
    shutil.copytree(run, tmp_path / "models" / run.name)
    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAR_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_fresh_install_and_points_to_the_next_step(fresh, page):
    app = open_page(page)
    assert_clean(app)
    assert app.title[0].value in ("HAR Studio", page.capitalize())
    if page in ("train", "compare", "predict"):
        assert app.info, f"{page} should say what to do first"


def test_overview_does_not_import_tensorflow():
    code = f"""
        import sys
        from streamlit.testing.v1 import AppTest
        app = AppTest.from_file({APP!r}, default_timeout=60).run()
        assert not app.exception
        print("tensorflow" in sys.modules, "keras" in sys.modules)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr[-2000:]


def test_data_page_shows_counts_and_a_strip_per_class(ready):
    app = open_page("data")
    assert_clean(app)
    assert len(app.dataframe) == 1
    assert app.dataframe[0].value["clips"].to_dict() == {"HorseRace": 32, "Swing": 32, "TaiChi": 32, "WalkingWithDog": 32}


def test_uploading_a_clip_shows_probabilities_from_each_model(ready):
    app = open_page("predict")
    clip = find_clips(ready / "data" / "demo", ["Swing"])[0].path
    app.get("file_uploader")[0].set_value((clip.name, clip.read_bytes(), "video/x-msvideo"))
    app.run()
    assert_clean(app)
    assert not app.error
    (metric,) = app.metric
    assert metric.label == "LRCN" and metric.value in ("HorseRace", "Swing", "TaiChi", "WalkingWithDog")


def test_a_bad_upload_shows_an_error_not_a_crash(ready):
    app = open_page("predict")
    app.get("file_uploader")[0].set_value(("holiday.mp4", b"this is text, not a video" * 10, "video/mp4"))
    app.run()
    assert_clean(app)
    assert len(app.error) == 1 and "holiday.mp4" in app.error[0].value


def test_starting_a_tiny_training_shows_its_events(ready):
    app = open_page("train")
    inputs = {number.label: number for number in app.number_input}
    inputs["Epochs (at most)"].set_value(1)
    inputs["Batch size"].set_value(8)
    app.radio[0].set_value("lrcn")
    app.button[0].click().run()
    assert_clean(app)
    job = jobs.current(ready / "models") or jobs.list_jobs(ready / "models")[0]
    assert job.wait(300) == "finished"
    app.run()  # the live fragment reads the job's events
    assert_clean(app)
    assert any("finished" in header.value for header in app.subheader)
    assert any("test accuracy" in message.value for message in app.success)
    second = open_page("train")
    assert any(job.id in header.value for header in second.subheader)  # a new session re-attaches


def test_a_second_start_while_a_job_runs_is_refused(ready, tiny_cache):
    from har.config import Config

    running = jobs.start(ready / "data" / "caches" / tiny_cache.name, ["convlstm"], ready / "models",
                         config=Config(epochs=50))  # fmt: skip
    try:
        app = open_page("train")
        app.button[0].click().run()
        assert_clean(app)
        assert any("already running" in error.value for error in app.error)
    finally:
        running.cancel()
        running.wait(120)


def test_compare_page_puts_runs_beside_the_report(ready):
    app = open_page("compare")
    assert_clean(app)
    table = app.dataframe[0].value
    assert list(table[""]) == ["LRCN (this deployment)", "ConvLSTM (report)", "LRCN (report)"]
    assert table["test accuracy"].iloc[1] == pytest.approx(0.7925)
