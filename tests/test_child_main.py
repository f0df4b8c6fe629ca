"""Children of har's multiprocessing start from har._child_main, not from the parent's __main__.

Under `streamlit run` the app script is `__main__` while a page runs; a child that re-imported it ran the whole
app in bare mode. Here a stand-in main script records every import of itself in a file.
"""

import multiprocessing
import sys
import types

import pytest

from har.datasets import build_cache, generate_demo
from har.sandbox import decode_untrusted
from tests.media import indexed_frames, write_with_opencv

MAIN_SCRIPT = """
import os
with open({marker!r}, "a") as handle:
    handle.write(f"imported as {{__name__}} in {{os.getpid()}}\\n")
"""


@pytest.fixture
def app_script_as_main(tmp_path, monkeypatch):
    """A fake `__main__` the way Streamlit installs one: a bare module whose __file__ is the script."""
    marker = tmp_path / "imports.txt"
    script = tmp_path / "app_script.py"
    script.write_text(MAIN_SCRIPT.format(marker=str(marker)))
    module = types.ModuleType("__main__")
    module.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", module)
    return marker


def _square(number: int) -> int:
    return number * number


def test_a_plain_spawn_child_reimports_the_main_script(app_script_as_main):
    # The behaviour har works around; if multiprocessing stopped doing this, the fixture would prove nothing.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.map(_square, [3]) == [9]
    assert "imported as __mp_main__" in app_script_as_main.read_text()


def test_the_upload_decoder_does_not_import_the_main_script(app_script_as_main, tmp_path):
    clip = write_with_opencv(tmp_path / "clip.avi", indexed_frames(10))
    assert decode_untrusted(clip, 4, 16).frames.shape == (4, 16, 16, 3)
    assert not app_script_as_main.exists()
    assert sys.modules["__main__"].__file__.endswith("app_script.py")  # the parent's __main__ is put back


def test_cache_workers_do_not_import_the_main_script(app_script_as_main, tmp_path):
    demo = generate_demo(tmp_path / "demo", groups=1, clips_per_group=1)
    build_cache(demo, tmp_path / "cache", sequence_length=4, image_size=16, workers=2)
    assert not app_script_as_main.exists()


def test_the_upload_decoders_run_as_many_at_once_as_the_entry_point_says(caplog):
    import threading

    from har import sandbox

    assert sandbox.worker_count("3") == 3 and sandbox.worker_count(None) == sandbox.default_workers()
    assert sandbox.worker_count("lots") == sandbox.default_workers()
    assert "HAR_WORKERS='lots' is not a positive whole number" in caplog.text  # said once, in one line
    sandbox.configure_workers(1)
    try:
        second_in = threading.Event()

        def second() -> None:
            with sandbox.worker_slot():
                second_in.set()

        with sandbox.worker_slot():
            thread = threading.Thread(target=second)
            thread.start()
            assert not second_in.wait(0.3)  # one slot: the second waits for it
        assert second_in.wait(5)
        thread.join()
    finally:
        sandbox.configure_workers(sandbox.default_workers())
