"""End to end in a real browser: Debian's Chromium driven by Playwright against `streamlit run`.

One walk through the app as a new user takes it, on a fresh home: the README's start command (`har data demo`,
then `streamlit run`), Data, Explain with an upload, Train with cancel and resume, Predict with an .avi that
plays and a damaged file that is flagged, Compare with chosen runs, and a server terminal that stayed clean
throughout. The tests run in file order and share one server and one tab (tests/test_browser_public.py starts
the one other server: public mode is a setting of the server).
Playwright never downloads a browser here: it launches /usr/bin/chromium. Screenshots land in test-artifacts/.
"""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from har.datasets import DEMO_CLASSES, find_clips
from tests.media import indexed_frames, truncated_copy, write_with_opencv

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# What a clean server terminal must not show (each was there before: bare-mode reruns of the app script in
# multiprocessing children, and TensorFlow's C++ start-up lines).
NOISE = (
    "missing ScriptRunContext",
    "use Streamlit in a file and run it with",
    "cuInit",
    "cuda_",
    "E0000",
    "Traceback",
    "WARN:",
    "RuntimeWarning",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(home: Path, env: dict, log_name: str):
    """`streamlit run` of the app on a free port, as the README starts it; yields (url, process)."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / log_name).open("w")  # what a user sees in the terminal, kept for a person to read
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "streamlit_app.py"),
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start")
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def server_log(module) -> str:
    return f"{module.__name__.rsplit('.', 1)[-1].removeprefix('test_')}-server.log"


def demo_home(home: Path, trained_run: Path) -> dict:
    """A fresh home after the README's start command (a smaller demo, to keep the suite short) plus one run."""
    env = {**os.environ, "HAR_DATA_DIR": str(home / "data"), "HAR_MODELS_DIR": str(home / "models")}
    subprocess.run(
        [sys.executable, "-m", "har", "data", "demo", "--groups", "2", "--clips-per-group", "2"],
        cwd=home,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.copytree(trained_run, home / "models" / trained_run.name)
    return env


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, trained):
    """A fresh home after the README's start command, and a second run to choose between on Compare.

    The public tests (tests/test_browser_public.py) start a server of their own, with its own terminal log.
    """
    home = tmp_path_factory.mktemp("home")
    env = demo_home(home, trained[0])
    with streamlit_server(home, env, log_name=server_log(request.module)) as (url, _):
        yield url, home


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield tab
        browser.close()


def wait_idle(page, timeout=120_000):
    """Waits until Streamlit has finished running the page's script."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


def shoot(page, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its own container, so the window grows to fit."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000")
    page.set_viewport_size({"width": 1400, "height": min(max(height + 50, 1000), 8000)})
    page.wait_for_timeout(500)  # charts re-layout to the new size
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def open_page(page, url: str, path: str) -> None:
    page.goto(f"{url}/{path}")
    wait_idle(page)


def test_overview_has_the_report_and_no_deploy_button(server, page):
    url, _ = server
    open_page(page, url, "")
    page.get_by_role("heading", name="HAR Studio").first.wait_for(timeout=60_000)
    assert page.get_by_text("Read the report").count() == 1
    assert page.get_by_role("button", name="Deploy").count() == 0
    shoot(page, "overview.png")


def test_data_page_after_the_start_command(server, page):
    url, _ = server
    open_page(page, url, "data")
    assert page.get_by_text("No frame cache yet").count() == 0
    page.get_by_role("button", name="Generate the demo dataset").click()
    page.get_by_text("was already here: reused").first.wait_for(timeout=120_000)
    wait_idle(page)
    shoot(page, "data.png")


def test_explain_shows_what_the_model_looks_at_in_an_upload(server, page):
    url, home = server
    open_page(page, url, "explain")
    clip = find_clips(home / "data" / "demo", ["HorseRace"])[0].path
    page.locator("input[type='file']").set_input_files(str(clip))
    page.get_by_role("heading", name="Which frames").first.wait_for(timeout=240_000)
    wait_idle(page, timeout=240_000)
    for heading in (
        "Which frames",
        "The answers",
        "Which frames mattered",
        "Does it use motion?",
        "Where in the frame",
        "What the first layer sees",
    ):
        page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    page.get_by_text("Like the training clips").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stImage']").count() == 4
    assert page.locator(".js-plotly-plot").count() == 3  # the timeline, the importance bars, the order test
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "explain.png")


def test_train_cancel_and_resume(server, page):
    from har import jobs

    url, home = server
    open_page(page, url, "train")
    page.get_by_text("Hyperparameters").click()
    # Enough epochs, and patience, that the cancel lands mid-run rather than after an early stop or the last epoch.
    for label, value in (("Epochs (at most)", "12"), ("Batch size", "8"), ("Early-stopping patience", "12")):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Enter")
    page.get_by_text("Fast twin trainer").click()  # the report's model.fit is the default; this test needs speed
    page.get_by_text("LRCN", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"LRCN: [123] epochs? done")).wait_for(timeout=180_000)
    page.get_by_role("button", name="Cancel training").click()
    page.get_by_role("button", name="Resume training").wait_for(timeout=120_000)
    shoot(page, "train-cancelled.png")
    page.get_by_role("button", name="Resume training").click()
    page.get_by_text("LRCN: test accuracy").wait_for(timeout=600_000)
    page.get_by_text("LRCN: 12 epochs done").wait_for(timeout=30_000)
    assert page.get_by_text("Job history").count() == 1
    (job,) = jobs.list_jobs(home / "models")
    metadata = json.loads((home / "models" / job.planned_runs()[0].id / "metadata.json").read_text())
    assert metadata["network"] == "twin"  # the checkbox reached the trainer
    shoot(page, "train.png")


def upload_and_time(page, clip: Path) -> float:
    """Seconds from handing the file to the page until the probability bars are drawn."""
    started = time.perf_counter()
    page.locator("input[type='file']").set_input_files(str(clip))
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    page.locator(".js-plotly-plot text", has_text="%").first.wait_for(timeout=60_000)
    return time.perf_counter() - started


def test_predict_plays_the_avi_and_flags_a_damaged_file(server, page, tmp_path):
    url, home = server
    clips = find_clips(home / "data" / "demo")
    open_page(page, url, "predict")
    first = upload_and_time(page, clips[0].path)  # includes loading the models
    warm = []
    for clip in (clips[-1], clips[1], clips[2]):  # models loaded: what every later upload costs
        open_page(page, url, "predict")
        warm.append(upload_and_time(page, clip.path))
    for name in DEMO_CLASSES:
        assert page.locator(".js-plotly-plot").first.get_by_text(name).count() >= 1, name
    video = page.locator("video").first
    video.wait_for(timeout=60_000)
    width = video.evaluate("""video => new Promise(resolve => {
        if (video.readyState >= 2) return resolve(video.videoWidth);
        video.addEventListener('loadeddata', () => resolve(video.videoWidth));
        video.addEventListener('error', () => resolve(-1));
        setTimeout(() => resolve(0), 30000);
    })""")
    assert width > 0, "the browser cannot decode the clip's preview"
    shoot(page, "predict.png")
    timing = {
        "upload_to_probabilities_seconds": {
            "first (loads the models)": round(first, 3),
            "warm": [round(seconds, 3) for seconds in warm],
        },
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    (ARTIFACTS / "upload-timing.json").write_text(json.dumps(timing, indent=1))
    print(
        f"upload -> probabilities: {first:.2f} s first, warm {', '.join(f'{s:.2f}' for s in warm)} s "
        f"(load average {os.getloadavg()[0]:.1f})"
    )

    whole = write_with_opencv(tmp_path / "whole.avi", indexed_frames(300))
    damaged = truncated_copy(whole, tmp_path / "cut-short.avi", 0.2)
    open_page(page, url, "predict")
    upload_and_time(page, damaged)
    page.get_by_text("says it has 300 frames but only").first.wait_for(timeout=30_000)
    shoot(page, "predict-damaged.png")


def test_compare_chosen_runs(server, page, trained):
    url, home = server
    open_page(page, url, "compare")
    page.get_by_role("heading", name="Compare").first.wait_for(timeout=60_000)
    job_run = next(path.name for path in (home / "models").iterdir() if path.name.endswith("-lrcn"))
    if page.get_by_text(job_run).count() == 0:
        page.locator("[data-testid='stMultiSelect']").first.click()
        page.get_by_role("option", name=re.compile(re.escape(job_run))).click()
        page.keyboard.press("Escape")
        wait_idle(page, timeout=300_000)
    page.get_by_text(job_run).first.wait_for(timeout=60_000)
    page.get_by_text("F1 per class").wait_for(timeout=120_000)
    wait_idle(page, timeout=300_000)
    shoot(page, "compare.png")


def test_the_server_terminal_stays_clean(server):
    lines = (ARTIFACTS / server_log(sys.modules[__name__])).read_text().splitlines()
    noisy = [line for line in lines if any(pattern in line for pattern in NOISE)]
    assert not noisy, "\n".join(noisy[:20])
