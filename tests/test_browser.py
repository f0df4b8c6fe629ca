"""End to end in a real browser: Debian's Chromium driven by Playwright against `streamlit run`.

Playwright never downloads a browser here: it launches /usr/bin/chromium. Screenshots of every page land in
test-artifacts/ for a person to look at.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from har.datasets import find_clips

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run"]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_dataset, tiny_cache, trained):
    folder = tmp_path_factory.mktemp("served")
    run, _, _ = trained
    shutil.copytree(demo_dataset, folder / "data" / "demo")
    shutil.copytree(tiny_cache, folder / "data" / "caches" / tiny_cache.name)
    shutil.copytree(run, folder / "models" / run.name)
    port = free_port()
    env = {**os.environ, "HAR_DATA_DIR": str(folder / "data"), "HAR_MODELS_DIR": str(folder / "models")}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start")
    yield url, folder
    process.terminate()
    process.wait(30)


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


@pytest.mark.parametrize("path, heading", [("", "HAR Studio"), ("data", "Data"), ("compare", "Compare")])
def test_pages_render_in_chromium(server, page, path, heading):
    url, _ = server
    page.goto(f"{url}/{path}")
    wait_idle(page)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / f"{path or 'overview'}.png"), full_page=True)


def test_upload_a_clip_and_see_every_class(server, page):
    url, folder = server
    page.goto(f"{url}/predict")
    wait_idle(page)
    clip = find_clips(folder / "data" / "demo", ["TaiChi"])[0].path
    page.locator("input[type='file']").set_input_files(str(clip))
    page.get_by_text(clip.name).first.wait_for(timeout=60_000)
    wait_idle(page)
    page.locator("[data-testid='stMetric']").first.wait_for(timeout=60_000)
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=60_000)
    for name in ("HorseRace", "Swing", "TaiChi", "WalkingWithDog"):
        assert chart.get_by_text(name).count() >= 1, name
    page.screenshot(path=str(ARTIFACTS / "predict.png"), full_page=True)


def test_start_a_tiny_training_and_see_the_chart_update(server, page):
    url, _ = server
    page.goto(f"{url}/train")
    wait_idle(page)
    page.get_by_text("Hyperparameters").click()
    epochs = page.get_by_label("Epochs (at most)")
    epochs.fill("2")
    epochs.press("Enter")
    batch = page.get_by_label("Batch size")
    batch.fill("8")
    batch.press("Enter")
    page.get_by_text("LRCN", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    # The fragment polls every second; a tiny job can finish between two polls, so wait for the end state.
    page.get_by_text("2 epochs done").wait_for(timeout=180_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "train.png"), full_page=True)
