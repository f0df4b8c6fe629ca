"""The feature cache of a frozen backbone: what a cancelled extraction leaves, and a run cancelled during it."""

import json
import shutil

import pytest

pytestmark = pytest.mark.slow


def test_a_run_cancelled_while_its_features_are_computed_is_saved_cancelled_and_keeps_nothing_half_made(
    tiny_cache, tmp_path
):
    import keras

    from har.backbones import build_backbone
    from har.config import Config
    from har.training import train_run

    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache, cache, ignore=shutil.ignore_patterns("features"))
    keras.utils.set_random_seed(11)
    weights = tmp_path / "seeded.weights.h5"
    build_backbone().save_weights(weights)
    asked, events = [], []

    def cancel_on_second_batch() -> bool:
        asked.append(True)
        return len(asked) > 1

    run = train_run(
        cache,
        "mobilenet",
        tmp_path / "models",
        config=Config(epochs=2, backbone_weights=str(weights)),
        run_id="cancelled",
        emit=events.append,
        should_cancel=cancel_on_second_batch,
    )
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["status"] == "cancelled" and metadata["epochs_run"] == 0
    assert not (run / "model.keras").exists()
    assert [event["done"] for event in events if event["event"] == "features"] == [8]  # one batch, then cancelled
    assert events[-1]["event"] == "cancelled"
    assert list((cache / "features").iterdir()) == []  # no partial file, nothing that could pass for features
