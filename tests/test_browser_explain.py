"""The Explain page in a real browser: Debian's Chromium driven by Playwright against `streamlit run`.

The server, browser and waiting helpers are tests/test_browser.py's; a screenshot lands in test-artifacts/.
"""

from pathlib import Path

import pytest

from har.datasets import find_clips
from tests.test_browser import ARTIFACTS, CHROMIUM, page, server, wait_idle  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


def test_upload_a_clip_and_see_what_the_model_looks_at(server, page):  # noqa: F811 - fixtures
    url, folder = server
    page.goto(f"{url}/explain")
    wait_idle(page)
    clip = find_clips(folder / "data" / "demo", ["HorseRace"])[0].path
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
    page.screenshot(path=str(ARTIFACTS / "explain.png"), full_page=True)
