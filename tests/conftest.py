import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory):
    """A small demo dataset, written for real: 4 classes x 8 groups x 4 clips of XVID video (the default is 25
    groups per class)."""
    from har.datasets import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo") / "demo", groups=8, clips_per_group=4)


@pytest.fixture(scope="session")
def tiny_cache(demo_dataset, tmp_path_factory):
    """The demo dataset decoded at 8 frames of 32x32: small enough to train on in seconds."""
    from har.datasets import build_cache

    return build_cache(
        demo_dataset, tmp_path_factory.mktemp("caches") / "demo-T8-S32", sequence_length=8, image_size=32
    )


@pytest.fixture(scope="session")
def trained(tiny_cache, tmp_path_factory):
    """One LRCN run, trained for real in this process with the report's batch size, long enough to learn.

    Returns (run folder, the events it emitted, models dir).
    """
    from har.config import Config
    from har.training import train_run

    events = []
    models_dir = tmp_path_factory.mktemp("models")
    run = train_run(
        tiny_cache,
        "lrcn",
        models_dir,
        config=Config(epochs=15, patience=15, trainer="twin"),
        run_id="lrcn-tiny",
        emit=events.append,
    )
    return run, events, models_dir


def pytest_collection_modifyitems(items):
    """Every test that needs a trained run trains one (the session's `trained` fixture): it is slow."""
    for item in items:
        if "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
