"""The Explain page through streamlit.testing's AppTest, with real uploads and a really trained run."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from har.datasets import find_clips
from tests.media import write_with_opencv

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def open_explain() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=180)
    app.switch_page("pages/explain.py")
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]


@pytest.fixture
def ready(tmp_path, monkeypatch, demo_dataset, tiny_cache, trained):
    """Data and models dirs holding the demo dataset and a trained LRCN run (its cache where it was trained)."""
    run, _, _ = trained
    shutil.copytree(demo_dataset, tmp_path / "data" / "demo")
    shutil.copytree(run, tmp_path / "models" / run.name)
    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAR_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


def test_without_a_trained_model_the_page_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAR_MODELS_DIR", str(tmp_path / "models"))
    app = open_explain()
    assert_clean(app)
    assert app.title[0].value == "Explain" and "Train" in app.info[0].value


def test_an_uploaded_clip_is_explained_frame_by_frame(ready):
    app = open_explain()
    clip = find_clips(ready / "data" / "demo", ["Swing"])[0].path
    app.get("file_uploader")[0].set_value((clip.name, clip.read_bytes(), "video/x-msvideo"))
    app.run()
    assert_clean(app)
    assert not app.error, [e.value for e in app.error]
    assert [metric.label for metric in app.metric] == ["LRCN"]
    assert any("Like the training clips" in caption.value for caption in app.caption)
    assert [subheader.value for subheader in app.subheader] == [
        "Which frames",
        "The answers",
        "Which frames mattered",
        "Does it use motion?",
        "Where in the frame",
        "What the first layer sees",
    ]
    captions = [image.captions[0] if image.captions else "" for image in app.get("image")]
    assert len(captions) == 4  # sampled frames, the model's frame strip, heat maps, feature maps
    assert captions[0].startswith("8 frames of") and "Grad-CAM" in captions[2] and "16 maps of conv2d" in captions[3]
    app.slider(key="maps-lrcn-tiny").set_value(0).run()
    assert_clean(app)
    length = app.slider[0]
    assert length.value == 8
    length.set_value(4).run()
    assert_clean(app)
    assert app.get("image")[0].captions[0].startswith("4 frames of")


def test_noise_is_flagged_as_unlike_the_training_clips(ready):
    rng = np.random.default_rng(5)
    noise = write_with_opencv(ready / "noise.avi", [rng.integers(0, 256, (120, 160, 3), np.uint8) for _ in range(40)])
    app = open_explain()
    app.get("file_uploader")[0].set_value(("noise.avi", noise.read_bytes(), "video/x-msvideo"))
    app.run()
    assert_clean(app)
    assert len(app.warning) == 1 and "unlike anything" in app.warning[0].value


def test_a_bad_upload_shows_an_error_not_a_crash(ready):
    app = open_explain()
    app.get("file_uploader")[0].set_value(("holiday.mp4", b"this is text, not a video" * 10, "video/mp4"))
    app.run()
    assert_clean(app)
    assert len(app.error) == 1 and "holiday.mp4" in app.error[0].value


def test_explain_offers_the_held_out_test_clips_that_predict_offers_and_explains_one(ready):
    from har.runs import held_out_clips, read_run

    explain = open_explain()
    predict = AppTest.from_file(APP, default_timeout=180)
    predict.switch_page("pages/predict.py").run()
    (offered,) = [box for box in explain.selectbox if box.label.startswith("...or a held-out test clip")]
    (on_predict,) = [box for box in predict.selectbox if box.label.startswith("...or a held-out test clip")]
    assert offered.options == on_predict.options
    test_clips = held_out_clips(read_run(ready / "models" / "lrcn-tiny"))
    assert len(offered.options) == 1 + len(test_clips)  # "none", then every test clip and nothing else
    assert all(Path(clip["path"]).name in " ".join(offered.options) for clip in test_clips)
    offered.select_index(1).run()
    assert_clean(explain)
    assert not explain.error, [e.value for e in explain.error]
    assert [metric.label for metric in explain.metric] == ["LRCN"]
    assert not any((ready / "data" / ".scratch").iterdir())  # the copy it explained was removed
