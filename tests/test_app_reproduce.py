"""The Overview's one-click reproduction, through AppTest: it starts the background pipeline and shows its
progress, and the pipeline keeps running while the user is on another page."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from har import pipeline
from tests.test_pipeline import small_ucf50_folder

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
pytestmark = pytest.mark.slow  # the pipeline trains


def test_the_overview_button_starts_the_pipeline_and_it_survives_leaving_the_page(tmp_path, monkeypatch, demo_dataset):
    source = small_ucf50_folder(demo_dataset, tmp_path / "UCF50")
    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAR_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HAR_UCF50_SOURCE", str(source))  # the archive the Space keeps on its bucket
    app = AppTest.from_file(APP, default_timeout=180).run()
    next(button for button in app.button if button.label == "Reproduce the report on UCF50").click().run()
    assert not app.exception and not app.error, [e.value for e in (*app.exception, *app.error)]
    started = pipeline.current(tmp_path / "models")
    assert started is not None and started.options.source == str(source)
    try:
        progress = [bar for bar in app.get("progress") if "Background job" in str(bar.proto.text)]
        assert progress and started.id in str(progress[0].proto.text)
        app.switch_page("pages/compare.py").run()  # away...
        assert pipeline.current(tmp_path / "models").id == started.id  # ...and it goes on
        app.switch_page("pages/overview.py").run()  # ...and back: still shown
        shown = [str(bar.proto.text) for bar in app.get("progress")] + [caption.value for caption in app.caption]
        assert any(started.id in text for text in shown)
    finally:
        started.cancel()
        assert started.wait(300) == "cancelled"
