"""The suite's shared fixtures.

The expensive ones (the demo dataset, its tiny cache, a trained run) are made once per test session and
shared by the pytest-xdist workers, as xdist's docs recommend: the first worker to need one makes it in the
temporary folder that every worker of the session shares, under a file lock; the others wait for the lock
and reuse it. Tests read the dataset and the cache; each worker gets its own copy of the trained run's
models folder, so a test that writes beside the run (an evaluation, an OOD reference) never races another
worker.
"""

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `har data demo` imports the runs shipped in pretrained/ into an empty models dir; the tests' own runs must be
# what answers, so the suite ships none unless a test points HAR_PRETRAINED at pretrained/ itself.
os.environ["HAR_PRETRAINED"] = str(Path(__file__).resolve().parent / "no-shipped-runs")


def shared_folder(tmp_path_factory, name: str, make: Callable[[Path], object]) -> Path:
    """`<session's shared temp folder>/shared/<name>`, made by `make(folder)` in whichever worker asks first.

    A folder is complete once its marker exists; one left half-made by a worker that failed is made again.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # pytest-xdist: each worker's base temp lies in the session's one
    folder, locks, key = base / "shared" / name, base / "shared-locks", name.replace("/", "--")
    locks.mkdir(parents=True, exist_ok=True)
    marker = locks / f"{key}.done"
    with FileLock(locks / f"{key}.lock"):
        if not marker.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            make(folder)
            marker.touch()
    return folder


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory):
    """A small demo dataset, written for real: 4 classes x 8 groups x 4 clips of XVID video (the default is 25
    groups per class). Shared by every test of the session: read it, never write into it."""
    from har.datasets import generate_demo

    return shared_folder(tmp_path_factory, "demo", lambda folder: generate_demo(folder, groups=8, clips_per_group=4))


@pytest.fixture(scope="session")
def tiny_cache(demo_dataset, tmp_path_factory):
    """The demo dataset decoded at 8 frames of 32x32: small enough to train on in seconds. Shared: read only."""
    from har.datasets import build_cache

    return shared_folder(
        tmp_path_factory,
        "caches/demo-T8-S32",
        lambda folder: build_cache(demo_dataset, folder, sequence_length=8, image_size=32),
    )


@pytest.fixture(scope="session")
def trained(tiny_cache, tmp_path_factory):
    """One LRCN run, trained for real with the report's batch size, long enough to learn; trained once per
    session, and copied into a models folder of this worker's own.

    Returns (run folder, the events it emitted, models dir).
    """

    def train(folder: Path) -> None:
        from har.config import Config
        from har.training import train_run

        events = []
        train_run(
            tiny_cache,
            "lrcn",
            folder / "models",
            config=Config(epochs=15, patience=15, trainer="twin"),
            run_id="lrcn-tiny",
            emit=events.append,
        )
        (folder / "events.json").write_text(json.dumps(events))

    made = shared_folder(tmp_path_factory, "trained", train)
    models_dir = tmp_path_factory.mktemp("models")
    shutil.copytree(made / "models", models_dir, dirs_exist_ok=True)
    return models_dir / "lrcn-tiny", json.loads((made / "events.json").read_text()), models_dir


def pytest_collection_modifyitems(items):
    """Every test that needs the trained run is slow: the session's first one waits for the training."""
    for item in items:
        if "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
