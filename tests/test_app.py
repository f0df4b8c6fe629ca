"""The Streamlit app through streamlit.testing's AppTest: every page, uploads, a real training job."""

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from har import jobs
from har.datasets import DEMO_CLASSES, find_clips
from tests.media import break_first_frame, indexed_frames, truncated_copy, write_with_opencv

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
    assert app.dataframe[0].value["clips"].to_dict() == {
        "HorseRace": 32,
        "Swing": 32,
        "TaiChi": 32,
        "WalkingWithDog": 32,
    }
    (datasets,) = [box for box in app.selectbox if box.label == "Dataset"]
    assert datasets.options == ["demo", "Other folder or archive..."]  # the folder's name, not the server's path
    assert datasets.value == str(ready / "data" / "demo")


def upload(app: AppTest, path: Path) -> AppTest:
    app.get("file_uploader")[0].set_value((path.name, path.read_bytes(), "video/x-msvideo"))
    return app.run()


def figure(chart) -> dict:
    return json.loads(chart.proto.spec)


def test_uploading_a_clip_shows_probabilities_from_each_model(ready):
    app = open_page("predict")
    clip = find_clips(ready / "data" / "demo", [DEMO_CLASSES[-1]])[0].path
    upload(app, clip)
    assert_clean(app)
    assert not app.error and not app.warning
    assert not app.metric  # no up-arrow "delta" beside the top class
    answer = next(text.value for text in app.markdown if text.value.startswith("**LRCN**: "))
    assert "run `lrcn-tiny`" in answer
    bars = figure(app.get("plotly_chart")[0])
    assert bars["layout"]["xaxis"]["range"] == [0, 1]
    (trace,) = bars["data"]
    labels = json.loads((ready / "models" / "lrcn-tiny" / "metadata.json").read_text())["classes"]
    assert trace["y"] == labels  # the run's label order, the same in every model's chart
    assert trace["text"] == [f"{value:.1%}" for value in trace["x"]]
    assert sum(trace["x"]) == pytest.approx(1, abs=1e-3)


def test_an_xvid_upload_gets_an_h264_player(ready):
    app = open_page("predict")
    upload(app, find_clips(ready / "data" / "demo")[0].path)
    (video,) = app.get("video")
    assert video.proto.url.endswith(".mp4")  # served as H.264 MP4, re-encoded from the XVID .avi


def test_the_page_says_which_run_answers_and_that_it_only_knows_its_classes(ready):
    app = open_page("predict")
    assert any("only knows the classes it was trained on" in caption.value for caption in app.caption)
    (run_line,) = [text.value for text in app.expander[0].markdown]
    assert "`lrcn-tiny`" in run_line and "demo-T8-S32" in run_line and "knows 4 classes" in run_line


@pytest.mark.parametrize(
    "damage, says",
    [
        ("truncated", "says it has 300 frames but only"),
        ("first frame", "could not be decoded and was skipped (frame 0)"),
        ("short", "the last one is repeated"),
    ],
)
def test_a_damaged_file_is_flagged_beside_the_answer(ready, tmp_path, damage, says):
    whole = write_with_opencv(tmp_path / "whole.avi", indexed_frames(6 if damage == "short" else 300))
    damaged = {
        "truncated": lambda: truncated_copy(whole, tmp_path / "cut.avi", 0.2),
        "first frame": lambda: break_first_frame(whole, tmp_path / "broken.avi"),
        "short": lambda: whole,
    }[damage]()
    app = upload(open_page("predict"), damaged)
    assert_clean(app)
    flagged = [warning.value for warning in app.warning if warning.value.startswith(damaged.name)]
    assert len(flagged) == 1 and says in flagged[0]
    assert any(text.value.startswith("**LRCN**: ") for text in app.markdown)  # still answered


def test_a_long_clip_gets_a_timeline_per_model_in_seconds(ready, tmp_path):
    clip = write_with_opencv(tmp_path / "long.avi", indexed_frames(13 * 10), fps=10)
    app = upload(open_page("predict"), clip)
    assert_clean(app)
    timelines = [figure(chart) for chart in app.get("plotly_chart") if "seconds" in json.dumps(figure(chart)["layout"])]
    assert len(timelines) == 1  # one per model; `ready` has the LRCN only
    assert timelines[0]["layout"]["xaxis"]["title"]["text"] == "window start (seconds)"
    assert [button.label for button in app.get("download_button")] == ["Download the LRCN observation sequence (CSV)"]


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
    assert any(caption.value == "LRCN: 1 epoch done" for caption in app.caption)
    assert any("test accuracy" in message.value for message in app.success)
    second = open_page("train")
    assert any(job.id in header.value for header in second.subheader)  # a new session re-attaches


def test_a_second_start_while_a_job_runs_is_refused(ready, tiny_cache):
    from har.config import Config

    running = jobs.start(
        ready / "data" / "caches" / tiny_cache.name,
        ["convlstm"],
        ready / "models",
        config=Config(epochs=50, trainer="twin"),
    )
    try:
        app = open_page("train")
        app.button[0].click().run()
        assert_clean(app)
        assert any("already running" in error.value for error in app.error)
    finally:
        running.cancel()
        running.wait(120)


def test_compare_page_puts_picked_runs_beside_the_report(ready):
    app = open_page("compare")
    assert_clean(app)
    assert app.multiselect[0].value == ["lrcn-tiny"]  # the latest run of each model, picked by default
    table = app.dataframe[0].value
    assert list(table["run"]) == ["LRCN · lrcn-tiny", "ConvLSTM · the report", "LRCN · the report"]
    assert table["test accuracy"].iloc[1] == "79.25%" and table["parameters"].iloc[1] == "44,524"
    assert table.notna().all().all()  # no grey None in the report's rows
    f1 = app.dataframe[1].value
    labels = json.loads((ready / "models" / "lrcn-tiny" / "metadata.json").read_text())["classes"]
    assert list(f1.columns) == labels and list(f1.index) == ["LRCN · lrcn-tiny"]


def test_compare_curves_show_accuracy_and_one_colour_scale_for_confusion(ready):
    app = open_page("compare")
    charts = [figure(chart) for chart in app.get("plotly_chart")]
    curves = next(chart for chart in charts if "Loss" in json.dumps(chart["layout"].get("annotations", [])))
    confusion = next(chart for chart in charts if "coloraxis" in chart["layout"])
    assert {trace["name"].rsplit(" ", 1)[1] for trace in curves["data"]} == {"loss", "accuracy"}
    assert all(trace["coloraxis"] == "coloraxis" for trace in confusion["data"])
    app.radio[0].set_value("share of each true class").run()
    confusion = next(figure(chart) for chart in app.get("plotly_chart") if "coloraxis" in figure(chart)["layout"])
    assert confusion["layout"]["coloraxis"]["cmax"] == 1.0
    rows = np.array(confusion["data"][0]["z"])
    assert rows.sum(axis=1) == pytest.approx(np.ones(len(rows)))


def test_data_page_knows_the_demo_cache_is_there_and_generate_says_so(ready):
    from har.datasets import build_cache

    build_cache(ready / "data" / "demo", ready / "data" / "caches" / "demo-T20-S64")
    app = open_page("data")
    assert not any("No frame cache yet" in info.value for info in app.info)
    assert any("Already here" in caption.value for caption in app.caption)
    app.button[0].click().run()
    assert_clean(app)
    assert any("was already here: reused" in message.value for message in app.success)


def test_data_page_on_a_fresh_home_generates_the_demo_and_its_cache(fresh):
    app = open_page("data")
    assert any("generate the demo dataset" in info.value for info in app.info)
    app.button[0].click().run()
    assert_clean(app)
    assert any("ready" in message.value for message in app.success)
    assert (fresh / "data" / "caches" / "demo-T20-S64" / "meta.json").is_file()


def test_predict_on_a_fresh_home_trains_both_models_on_the_demo_that_is_there(fresh):
    from har.datasets import generate_demo

    generate_demo(fresh / "data" / "demo", groups=1, clips_per_group=2)  # as `har data demo --groups 1` leaves it
    app = open_page("predict")
    next(button for button in app.button if button.label == "Train the demo models").click().run()
    assert_clean(app)
    assert not app.error, [error.value for error in app.error]
    (job,) = jobs.list_jobs(fresh / "models")
    try:
        assert job.models == ["convlstm", "lrcn"] and job.config.epochs == 10
        assert Path(job.cache) == (fresh / "data" / "caches" / "demo-T20-S64").resolve()  # the report's frames
        assert len(find_clips(fresh / "data" / "demo")) == 8  # kept, not regenerated at the default size
    finally:
        job.cancel()
        job.wait(120)


def test_overview_names_wrapped_layers_and_shows_the_report():
    app = open_page("overview")
    convlstm, lrcn = (table.value for table in app.dataframe)
    assert list(lrcn["Layer"][:3]) == [
        "TimeDistributed(Conv2D)",
        "TimeDistributed(MaxPooling2D)",
        "TimeDistributed(Dropout)",
    ]
    assert "TimeDistributed(Dropout)" in list(convlstm["Layer"]) and "11,524" in list(convlstm["Parameters"])
    assert [metric.value for metric in app.metric] == ["79.25%", "0.5773", "86.93%", "0.2854"]
    assert "Human Activity Recognition using ConvLSTM and LRCN" in app.expander[0].text[0].value
    assert app.get("download_button")


def test_overview_checks_the_reports_tables_against_the_models_a_child_process_builds():
    app = open_page("overview")
    app.toggle[0].set_value(True).run()
    assert_clean(app)
    assert not app.error, [error.value for error in app.error]
    for table in app.dataframe:
        assert table.value["Matches har's model"].all(), table.value
    diagrams = [chart.proto.spec for chart in app.get("graphviz_chart")]
    assert len(diagrams) == 2 and all(spec.startswith("digraph") for spec in diagrams)


def test_the_deploy_button_is_hidden_by_the_apps_config():
    import tomllib

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "viewer"


def train_events(job) -> list[str]:
    return [event["event"] for event in job.events()]


@pytest.mark.slow
def test_train_page_cancel_resume_history_and_per_model_epochs(ready, tiny_cache):
    from har.config import Config

    job = jobs.start(
        ready / "data" / "caches" / tiny_cache.name,
        ["lrcn"],
        ready / "models",
        config=Config(epochs=40, batch_size=8, patience=40, trainer="twin"),
    )
    while "epoch" not in train_events(job):
        assert job.is_alive(), job.events()
        time.sleep(0.2)
    app = open_page("train")
    next(button for button in app.button if button.label == "Cancel training").click().run()
    assert job.wait(120) == "cancelled"
    app.run()
    assert_clean(app)
    (count,) = [caption.value for caption in app.caption if caption.value.startswith("LRCN: ")]
    done = int(count.split()[1])
    assert count == f"LRCN: {done} epoch{'s' if done != 1 else ''} done"  # per model, singular or plural
    history = app.dataframe[-1].value
    assert list(history["job"]) == [job.id] and list(history["ended"]) == ["cancelled"]
    assert "demo-T8-S32, report split, 40 epochs at most, batch 8" in history["settings"].iloc[0]
    curves = figure(app.get("plotly_chart")[0])
    assert curves["layout"]["xaxis"]["dtick"] == 1
    assert any(trace["name"].startswith("LRCN best epoch") for trace in curves["data"])
    assert all(trace["mode"] in ("lines+markers", "markers") for trace in curves["data"])
    next(button for button in app.button if button.label == "Resume training").click().run()
    assert_clean(app)
    assert not app.error
    resumed = jobs.Job(job.folder)
    assert resumed.state() == "running"
    while train_events(resumed).count("started") < 2:
        assert resumed.is_alive(), resumed.events()
        time.sleep(0.2)
    app.run()
    assert not app.warning  # the first attempt's "LRCN cancelled." no longer holds
    resumed.cancel()
    assert resumed.wait(120) == "cancelled"


def test_compare_says_why_the_ranking_can_be_the_reverse_of_the_reports(ready):
    # A second run labelled ConvLSTM whose saved test evaluation beats the LRCN: the report had the LRCN ahead.
    from har.evaluation import evaluate

    lrcn = ready / "models" / "lrcn-tiny"
    other = ready / "models" / "convlstm-ahead"
    shutil.copytree(lrcn, other)
    metadata = json.loads((other / "metadata.json").read_text())
    (other / "metadata.json").write_text(json.dumps({**metadata, "run_id": "convlstm-ahead", "model": "convlstm"}))
    evaluation = evaluate("convlstm-ahead", ready / "models")  # for real, then made better than the LRCN's
    (other / "evaluation.json").write_text(json.dumps({**evaluation, "accuracy": evaluation["accuracy"] + 0.1}))
    app = open_page("compare")
    assert_clean(app)
    (info,) = [info.value for info in app.info if "Here the ConvLSTM is ahead" in info.value]
    assert "in the report the LRCN was" in info and "seeds" in info and "split" in info


def tooltips(app: AppTest) -> str:
    """Every `help=` text on the page (headings, captions, inputs), joined."""
    found = []

    def walk(node) -> None:
        help_text = getattr(getattr(node, "proto", None), "help", "")
        if isinstance(help_text, str) and help_text:
            found.append(help_text)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(app._tree)
    return "\n".join(found)


@pytest.mark.parametrize(
    "page, terms",
    [
        ("overview", ["test split", "convlstm gates", "timedistributed"]),
        ("data", ["frame cache"]),
        ("train", ["epoch", "patience", "early stopping", "validation", "seed", "group split"]),
        ("predict", ["out-of-distribution"]),
        ("compare", ["group split", "f1", "loss curves", "confusion matrix"]),
    ],
)
def test_terms_are_explained_where_they_appear(ready, page, terms):
    from har.glossary import GLOSSARY

    app = open_page(page)
    assert_clean(app)
    shown = tooltips(app)
    assert [term for term in terms if GLOSSARY[term] not in shown] == []
