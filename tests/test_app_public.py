"""Public mode (HAR_PUBLIC=1), through AppTest: what a visitor can reach, and what the owner token unlocks."""

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from har import jobs
from har.datasets import find_clips

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PAGES = ["overview", "data", "train", "predict", "compare", "explain"]
OWNER_BUTTONS = (
    "Start training",
    "Generate the demo dataset",
    "Get UCF50 and build its frame cache",
    "Build the frame cache",
    "Reproduce the report on UCF50",
    "Train the demo models",
    "Cancel training",
    "Resume training",
)
# What a visitor might type to reach the server's files or make it fetch an address.
HOSTILE_STRINGS = [
    "/etc/passwd",
    "../../models",
    "file:///etc/shadow",
    "http://127.0.0.1:8501/_stcore/health",
    "https://example.com/UCF50.rar",
    "~/.ssh/id_rsa",
    "C:\\Windows\\system.ini",
]


@pytest.fixture
def public(tmp_path, monkeypatch, demo_dataset, tiny_cache, trained):
    run, _, _ = trained
    shutil.copytree(demo_dataset, tmp_path / "data" / "demo")
    shutil.copytree(tiny_cache, tmp_path / "data" / "caches" / tiny_cache.name)
    shutil.copytree(run, tmp_path / "models" / run.name)
    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAR_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HAR_PUBLIC", "1")
    monkeypatch.setenv("HAR_OWNER_TOKEN", "owner-secret-27")
    return tmp_path


def open_page(page: str, token: str | None = None) -> AppTest:
    """The page as a visitor reaches it, with `token` as what they typed into the sidebar's token field.

    AppTest (Streamlit 1.67) drops the entry script's sidebar elements after its first run in an st.navigation
    app, so a test cannot type into that field on later runs: the typed token is put where the field puts it,
    in the session state, and `har.access.Access.is_owner` decides from there as it does behind the field.
    """
    app = AppTest.from_file(APP, default_timeout=180).run()
    if token is not None:
        app.session_state["owner_token"] = token
    if page != "overview":
        app.switch_page(f"pages/{page}.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def buttons(app: AppTest) -> set[str]:
    return {button.label for button in app.button}


@pytest.mark.parametrize("page", PAGES)
def test_a_visitor_gets_no_path_or_url_input_no_owner_action_and_no_folder_names(public, page):
    app = open_page(page)
    inputs = [widget.label for widget in app.main.text_input]
    assert inputs == []  # the only text input a visitor sees is the sidebar's token field
    assert not buttons(app) & set(OWNER_BUTTONS)
    shown = " ".join(str(element.value) for element in (*app.markdown, *app.caption, *app.info, *app.sidebar.caption))
    assert str(public) not in shown  # the server's folders stay private


def test_anything_but_the_token_unlocks_nothing(public):
    first_run = AppTest.from_file(APP, default_timeout=180).run()
    assert [widget.label for widget in first_run.sidebar.text_input] == ["Owner token"]  # where a visitor types it
    for typed in [*HOSTILE_STRINGS, "owner-secret-2", "owner-secret-27 ", "OWNER-SECRET-27"]:
        app = open_page("train", token=typed)
        assert "Start training" not in buttons(app), typed
        assert any("Owner only" in info.value for info in app.info), typed
    assert sorted(path.name for path in (public / "models").iterdir()) == ["lrcn-tiny"]  # nothing was started
    assert not (public / "data" / "etc").exists() and not list(public.rglob("id_rsa"))


def test_the_owner_token_unlocks_training_and_its_cancel(public):
    app = open_page("train", token="owner-secret-27")
    assert "Start training" in buttons(app)
    next(button for button in app.button if button.label == "Start training").click().run()
    job = jobs.current(public / "models")
    assert job is not None
    job.cancel()
    assert job.wait(300) == "cancelled"


def test_without_a_configured_token_public_mode_allows_no_owner_action(public, monkeypatch):
    monkeypatch.delenv("HAR_OWNER_TOKEN")
    app = open_page("data", token="owner-secret-27")
    assert not buttons(app) & set(OWNER_BUTTONS)
    assert any("switched off here" in info.value for info in app.info)


def test_an_upload_named_like_a_path_stays_in_the_scratch_folder(public):
    clip = find_clips(public / "data" / "demo")[0].path
    app = open_page("predict")
    app.get("file_uploader")[0].set_value(("../../../escaped.avi", clip.read_bytes(), "video/x-msvideo")).run()
    assert not app.exception
    assert any(text.value.startswith("**LRCN**: ") for text in app.markdown)
    assert not list(public.rglob("escaped*")) and not list(Path("/tmp").glob("escaped*"))
    assert not any((public / "data" / ".scratch").iterdir())  # the upload was removed after use
