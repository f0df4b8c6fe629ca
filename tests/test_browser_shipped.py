"""The README's start on a fresh home, answered by the shipped runs, in a real browser; and the README's pictures.

The home is made by the README's start command exactly: `har data demo` with its defaults (the full demo, and the
shipped runs of `pretrained/`, or of `$HAR_PRETRAINED`, imported since the home has none), then `streamlit run
streamlit_app.py`. Nothing is trained. Chromium opens Predict as soon as the server answers and uploads a demo
clip at once, so the background loader (`app.warmup`) may still be at work: the seconds from the server's start
to the first answer and from the upload to both models' probabilities land in test-artifacts/first-answer.json
(benchmarks/README.md, "First answer on a fresh server"); nothing here asserts a time. Then Compare and Explain.
docs/predict.png, docs/compare.png and docs/explain.png, the README's screenshots, are remade on every run.
`HAR_TEST_PRETRAINED=DIR` takes the shipped runs from DIR instead of pretrained/.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from har.config import MODEL_LABELS, REPORT_MODELS  # the shipped runs are the report's two
from har.datasets import DEMO_CLASSES, find_clips
from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, NOISE, open_page, streamlit_server, wait_idle

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
VIEWPORT = {"width": 1280, "height": 900}
MAX_PICTURE_BYTES = 400_000  # the README's pictures stay light enough to read on a slow connection
LOG_NAME = "browser_shipped-server.log"
# The runs the README's start imports: the repository's pretrained/; HAR_TEST_PRETRAINED points this test at another
# folder of `har export` zips (stand-ins, say, while the real ones train).
SHIPPED = Path(os.environ.get("HAR_TEST_PRETRAINED") or ROOT / "pretrained")
READY_LINE = re.compile(r"(\d+) models ready, loaded in the background in ([\d.]+) s")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh HAR_HOME after the README's `har data demo`, with its defaults; returns (home, its environment)."""
    home = tmp_path_factory.mktemp("shipped-home")
    env = {key: value for key, value in os.environ.items() if key not in ("HAR_DATA_DIR", "HAR_MODELS_DIR")}
    env["HAR_HOME"] = str(home)
    env["HAR_PRETRAINED"] = str(SHIPPED)  # the suite ships none by default (tests/conftest.py); this test asks
    subprocess.run(
        [sys.executable, "-m", "har", "data", "demo"], cwd=home, env=env, check=True, capture_output=True, timeout=1200
    )
    from har.runs import latest_runs

    answering = sorted(run.model for run in latest_runs(home / "models"))
    assert answering == sorted(REPORT_MODELS), (
        f"`har data demo` left runs of {answering or 'no model'} in {home / 'models'}: it should import the shipped "
        f"runs ({SHIPPED}/*.zip)"
    )
    from har.runs import answering_runs

    # The answering runs' OOD references were made at import, so the first visitor does not wait for them.
    assert all((run.path / "ood.npz").is_file() for run in answering_runs(home / "models"))
    return home, env


@pytest.fixture(scope="module")
def browser():
    """Chromium, started before the server so that the server's clock does not count the browser's start."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(home, browser):
    """One fresh server for the module and one tab; yields (url, home, the server's start, the tab)."""
    home, env = home
    tab = browser.new_page(viewport=VIEWPORT)
    started = time.perf_counter()
    with streamlit_server(home, env, log_name=LOG_NAME) as (url, _):
        yield url, home, started, tab


def settle(tab) -> None:
    """Waits until the script has finished, no spinner is left and every chart has drawn its SVG."""
    wait_idle(tab, timeout=600_000)
    tab.wait_for_function(
        """() => !document.querySelector("[data-testid='stSpinner']")
            && [...document.querySelectorAll('.js-plotly-plot')].every(plot => plot.querySelector('.main-svg'))""",
        timeout=120_000,
    )
    tab.wait_for_timeout(500)  # Plotly's last transition


def picture(tab, name: str, *, top: str | None = None, bottom: str | None = None) -> Path:
    """docs/<name>: the page at the fixed width, from heading `top` to just above heading `bottom` (default: the
    whole page, sidebar included; a part is the main column only); reduced to 256 colours if over
    MAX_PICTURE_BYTES."""
    from PIL import Image

    height = tab.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    tab.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(height + 50, VIEWPORT["height"]), 8000)})
    settle(tab)  # charts re-lay themselves out to the new size

    def edge(heading: str | None, default: float) -> float:
        if heading is None:
            return default
        return tab.get_by_role("heading", name=heading).first.bounding_box()["y"] - 16

    y0, y1 = edge(top, 0), edge(bottom, height + 50)
    x0 = 0 if top is None else tab.locator("[data-testid='stMain']").bounding_box()["x"]
    DOCS.mkdir(exist_ok=True)
    path = DOCS / name
    tab.screenshot(path=str(path), clip={"x": x0, "y": y0, "width": VIEWPORT["width"] - x0, "height": y1 - y0})
    tab.set_viewport_size(VIEWPORT)
    if path.stat().st_size > MAX_PICTURE_BYTES:
        with Image.open(path) as shot:
            shot.convert("RGB").quantize(colors=256).save(path, optimize=True)
    assert path.stat().st_size <= MAX_PICTURE_BYTES, f"{path}: {path.stat().st_size:,} bytes"
    return path


def held_out_by_both(models_dir: Path) -> Path:
    """A TaiChi clip in the test split of every answering run (seeds and so splits differ between them)."""
    from har.runs import answering_runs, held_out_clips

    held_out = [
        {clip["path"] for clip in held_out_clips(run) if clip["class"] == "TaiChi"}
        for run in answering_runs(models_dir)
    ]
    return Path(sorted(set.intersection(*held_out))[0])


def sidebar_text(tab) -> str:
    return tab.locator("[data-testid='stSidebar']").inner_text()


def test_the_first_upload_is_answered_by_both_shipped_models(server):
    url, home, started, tab = server
    healthy = time.perf_counter() - started
    open_page(tab, url, "predict")
    shown = time.perf_counter() - started
    clip = held_out_by_both(home / "models")  # the screenshot shows a clip neither answering run trained on
    sidebar_at_upload = sidebar_text(tab)
    upload = time.perf_counter()
    tab.locator("input[type='file']").set_input_files(str(clip))
    tab.wait_for_function(
        """() => {
            const plots = [...document.querySelectorAll('.js-plotly-plot')];
            return plots.length >= 2 && plots.every(plot => /%/.test(plot.textContent));
        }""",
        timeout=600_000,
    )
    answered = time.perf_counter()
    settle(tab)
    answers = tab.locator("[data-testid='stMarkdownContainer'] p", has=tab.locator("code")).all_inner_texts()
    shipped = {path.name for path in (home / "models").iterdir() if not path.name.startswith(".")}
    answering = {}
    for text in answers:
        if match := re.match(r"(\w+): (\w+) \([\d.]+%\)\s+run (\S+)", text):
            answering[match[1]] = match[3]
    assert sorted(answering) == sorted(MODEL_LABELS[name] for name in REPORT_MODELS), answers
    assert set(answering.values()) <= shipped, (answering, shipped)
    assert tab.locator(".js-plotly-plot").count() == 2
    for chart in tab.locator(".js-plotly-plot").all():
        for name in DEMO_CLASSES:
            assert chart.get_by_text(name).count() >= 1, name
    assert list((home / "models" / ".jobs").glob("*")) == []  # the shipped runs answered: nothing was trained
    assert tab.locator("[data-testid='stException']").count() == 0

    video = tab.locator("video").first
    video.wait_for(timeout=60_000)
    video.evaluate("""video => new Promise(resolve => {
        if (video.readyState >= 2) return resolve();
        video.addEventListener('loadeddata', () => resolve());
        setTimeout(resolve, 30000);
    })""")
    picture(tab, "predict.png")

    log = (ARTIFACTS / LOG_NAME).read_text()
    loaded = READY_LINE.search(log)
    timing = {
        "server_start_to_first_answer_seconds": round(answered - started, 3),
        "upload_to_both_models_seconds": round(answered - upload, 3),
        "server_start_to_healthy_seconds": round(healthy, 3),
        "server_start_to_predict_page_seconds": round(shown, 3),
        "background_loader_seconds": float(loaded[2]) if loaded else None,  # its own clock, from the first page
        "sidebar_at_upload": sidebar_at_upload.strip().splitlines()[-1:] if sidebar_at_upload.strip() else [],
        "runs": answering,
        "pretrained": str(SHIPPED.relative_to(ROOT)) if SHIPPED.is_relative_to(ROOT) else str(SHIPPED),
        "clip": clip.name,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "first-answer.json").write_text(json.dumps(timing, indent=1))
    print(
        f"fresh server: first answer {answered - started:.2f} s after the server's start, "
        f"{answered - upload:.2f} s after the upload (load average {os.getloadavg()[0]:.1f})"
    )


def test_the_models_finish_loading_in_the_background(server):
    url, _, _, tab = server
    for _ in range(300):
        if READY_LINE.search((ARTIFACTS / LOG_NAME).read_text()):
            break
        time.sleep(1)
    ready = READY_LINE.search((ARTIFACTS / LOG_NAME).read_text())
    assert ready and int(ready[1]) == len(REPORT_MODELS), "the background loader did not say that both models are ready"
    open_page(tab, url, "")
    assert "Loading the models" not in sidebar_text(tab)


def test_compare_shows_the_shipped_seeds_beside_the_report(server):
    url, home, _, tab = server
    open_page(tab, url, "compare")
    for heading in ("Compare", "Across seeds", "Why the split matters", "Training curves"):
        tab.get_by_role("heading", name=heading).first.wait_for(timeout=600_000)
    settle(tab)
    assert tab.locator("[data-testid='stException']").count() == 0
    assert tab.get_by_text("report split → group split").count() == len(REPORT_MODELS)
    shipped = [path for path in (home / "models").iterdir() if not path.name.startswith(".")]
    for run in shipped:
        assert tab.get_by_text(run.name).count() >= 1, run.name  # every shipped run is compared by default
    picture(tab, "compare.png", top="Across seeds", bottom="Training curves")


def test_explain_shows_both_models_heat_maps(server):
    url, home, _, tab = server
    open_page(tab, url, "explain")
    clip = find_clips(home / "data" / "demo", ["HorseRace"])[0].path
    tab.locator("input[type='file']").set_input_files(str(clip))
    for heading in ("The answers", "Which frames mattered", "Where in the frame", "What the first layer sees"):
        tab.get_by_role("heading", name=heading).first.wait_for(timeout=600_000)
    settle(tab)
    assert tab.get_by_text("Grad-CAM on").count() == len(REPORT_MODELS)
    assert tab.locator("[data-testid='stException']").count() == 0
    picture(tab, "explain.png", top="The answers", bottom="What the first layer sees")


def test_the_server_terminal_stays_clean(server):
    lines = (ARTIFACTS / LOG_NAME).read_text().splitlines()
    noisy = [line for line in lines if any(pattern in line for pattern in NOISE)]
    assert not noisy, "\n".join(noisy[:20])
