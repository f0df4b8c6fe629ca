"""`har data backbone`: the mobilenet model's weights put in Keras' cache from a file (here; a download where
there is internet), and what later commands then find."""

import pytest


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("HAR_BACKBONE_WEIGHTS", raising=False)
    return tmp_path / "keras" / "models"


def test_har_data_backbone_from_a_file_fills_keras_cache_once(keras_home, tmp_path, capsys):
    import keras

    from har.backbones import MOBILENET_V2, build_backbone, file_sha256, resolve_weights
    from har.cli import main

    keras.utils.set_random_seed(3)
    source = tmp_path / "seeded.weights.h5"
    build_backbone().save_weights(source)
    assert main(["data", "backbone", "--from", str(source)]) == 0
    target = keras_home / MOBILENET_V2.weights_file
    assert f"weights ready: {target}" in capsys.readouterr().out
    assert file_sha256(target) == file_sha256(source)
    assert main(["data", "backbone"]) == 0  # already there: nothing downloaded
    assert "already in" in capsys.readouterr().out
    found = resolve_weights()
    assert (found.path, found.source) == (target, "keras cache")


def test_har_data_backbone_refuses_a_file_of_another_model(keras_home, tmp_path, capsys):
    import keras

    from har.cli import main

    other = tmp_path / "dense.weights.h5"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(other)
    assert main(["data", "backbone", "--from", str(other)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"har: error: backbone weights {other}: not weights of MobileNetV2") and "\n" not in error
    assert not keras_home.exists() or not any(keras_home.iterdir())
