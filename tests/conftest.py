import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory):
    """The default demo dataset, written for real: 4 classes x 8 groups x 4 clips of XVID video."""
    from har.datasets import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo") / "demo")


@pytest.fixture(scope="session")
def tiny_cache(demo_dataset, tmp_path_factory):
    """The demo dataset decoded at 8 frames of 32x32: small enough to train on in seconds."""
    from har.datasets import build_cache

    return build_cache(demo_dataset, tmp_path_factory.mktemp("caches") / "demo-T8-S32", sequence_length=8, image_size=32)
