"""The mobilenet model: its backbone weights (file, Keras' cache, download, the one-line error), the feature
cache, training on features, and its runs answering like the report's two.

Nothing here downloads from Keras' host: the weights are the backbone's own `save_weights` of a seeded random
initialisation, written by the test, and the download is served by a local HTTPS server."""

import json

import numpy as np
import pytest

from tests.http_server import Behaviour, LocalServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A MobileNetV2 weights file of a seeded random initialisation (not ImageNet: nothing is downloaded)."""
    import keras

    from har.backbones import build_backbone

    keras.utils.set_random_seed(5)
    path = tmp_path_factory.mktemp("backbone") / "mobilenet_v2_seeded.weights.h5"
    build_backbone().save_weights(path)
    return path


@pytest.fixture(scope="module")
def mobilenet_run(tiny_cache, weights_file, tmp_path_factory):
    """A mobilenet run on the tiny cache (2 epochs), with its events; its features are computed on the way."""
    from har.config import Config
    from har.training import train_run

    models_dir, events = tmp_path_factory.mktemp("models"), []
    config = Config(epochs=2, backbone_weights=str(weights_file))
    run = train_run(tiny_cache, "mobilenet", models_dir, config=config, run_id="mobilenet-tiny", emit=events.append)
    return run, events, models_dir


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache and no weights variable: the state of a fresh machine."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("HAR_BACKBONE_WEIGHTS", raising=False)
    return tmp_path / "keras" / "models"


def test_training_loads_exactly_the_given_weights_and_records_them(mobilenet_run, weights_file):
    import keras

    from har.backbones import build_backbone, file_sha256

    run, _, _ = mobilenet_run
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["status"] == "finished"
    assert metadata["backbone"]["weights"] == {
        "file": weights_file.name,
        "sha256": file_sha256(weights_file),
        "source": "file",
    }
    saved = keras.saving.load_model(run / "model.keras", compile=False, safe_mode=True)
    expected = build_backbone(weights=weights_file).get_weights()
    backbone = saved.get_layer("backbone").layer.get_weights()
    assert len(backbone) == len(expected) == 260
    assert all(np.array_equal(a, b) for a, b in zip(backbone, expected))
    assert metadata["trainable_parameters"] == 168_196  # the head only: LSTM(32) on 1280 features, Dense(4)
    assert metadata["parameters"] == 168_196 + 2_257_984


def test_features_are_computed_once_and_reported(mobilenet_run, tiny_cache, weights_file):
    from har.backbones import MOBILENET_V2, Weights, file_sha256
    from har.datasets import load_cache
    from har.features import cached_features, feature_path

    _, events, _ = mobilenet_run
    progress = [event for event in events if event["event"] == "features"]
    cache = load_cache(tiny_cache)
    assert progress and progress[-1]["done"] == progress[-1]["total"] == len(cache)
    weights = Weights(weights_file, file_sha256(weights_file), "file")
    kept = cached_features(cache, MOBILENET_V2, weights)
    assert kept.shape == (len(cache), cache.sequence_length, 1280) and kept.dtype == np.float32
    assert feature_path(cache, MOBILENET_V2, weights).parent == tiny_cache / "features"
    other = Weights(weights_file, "0" * 64, "file")  # other weights: other features, none kept yet
    assert cached_features(cache, MOBILENET_V2, other) is None


def test_a_second_run_reuses_the_features_and_the_same_seed_gives_the_same_run(
    mobilenet_run, tiny_cache, weights_file, tmp_path
):
    import keras

    from har.config import Config
    from har.training import train_run

    first, _, _ = mobilenet_run
    events = []
    again = train_run(
        tiny_cache,
        "mobilenet",
        tmp_path,
        config=Config(epochs=2, backbone_weights=str(weights_file)),
        run_id="again",
        emit=events.append,
    )
    assert not [event for event in events if event["event"] == "features"]  # read from the cache, not computed
    one, two = (keras.saving.load_model(path / "model.keras", compile=False) for path in (first, again))
    assert all(np.array_equal(a, b) for a, b in zip(one.get_weights(), two.get_weights()))
    first_history = json.loads((first / "metadata.json").read_text())["history"]
    assert json.loads((again / "metadata.json").read_text())["history"] == first_history


def test_the_run_predicts_on_frames_what_its_head_gave_on_features(mobilenet_run, tiny_cache, weights_file):
    from har.backbones import MOBILENET_V2, Weights, file_sha256
    from har.datasets import load_cache
    from har.features import cached_features
    from har.inference import Predictor
    from har.models import split_at_features

    run, _, models_dir = mobilenet_run
    predictor = Predictor.from_run(run.name, models_dir)
    cache = load_cache(tiny_cache)
    on_frames = predictor.predict_frames(np.asarray(cache.frames[:6]))
    features = cached_features(cache, MOBILENET_V2, Weights(weights_file, file_sha256(weights_file), "file"))
    on_features = split_at_features(predictor.model)[1].predict_on_batch(np.asarray(features[:6]))
    np.testing.assert_allclose(on_frames, on_features, atol=1e-5)
    assert on_frames.shape == (6, 4)


def test_a_missing_weights_file_is_one_line_from_the_cli(tiny_cache, tmp_path, capsys):
    from har.cli import main

    missing = tmp_path / "nowhere.h5"
    code = main(
        ["--models-dir", str(tmp_path / "models"), "train", "--model", "mobilenet", "--data", str(tiny_cache)]
        + ["--backbone-weights", str(missing), "--detach"]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error
    assert error.startswith(f"har: error: backbone weights {missing}: no such file")
    assert not (tmp_path / "models" / "jobs").exists()  # refused before any job started


def test_no_file_and_no_download_names_both_ways(keras_home, monkeypatch):
    from har.backbones import resolve_weights

    with LocalServer(Behaviour(body=b"")) as server:
        closed = server.url.rsplit("/", 1)[0]
    monkeypatch.setenv("HAR_BACKBONE_WEIGHTS_URL", closed)  # a port nothing listens on any more: no network
    with pytest.raises(ValueError) as error:
        resolve_weights()
    message = str(error.value)
    assert "\n" not in message and "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in message
    assert "har data backbone" in message and "--backbone-weights FILE" in message and "HAR_BACKBONE_WEIGHTS" in message
    assert not keras_home.exists() or not any(keras_home.iterdir())  # nothing half-downloaded looks like weights


def test_the_weights_download_into_keras_cache_and_are_found_there_next_time(keras_home, weights_file, monkeypatch):
    from har.backbones import MOBILENET_V2, file_sha256, resolve_weights

    body = weights_file.read_bytes()
    with LocalServer(Behaviour(body=body), tls=True, name="") as server:
        monkeypatch.setenv("HAR_BACKBONE_WEIGHTS_URL", server.url)
        downloaded = resolve_weights(insecure_tls=True)  # the test server's certificate is self-signed
        assert len(server.behaviour.requests) == 1
    assert downloaded.source == "download" and downloaded.path == keras_home / MOBILENET_V2.weights_file
    assert downloaded.sha256 == file_sha256(weights_file)
    again = resolve_weights()  # the server is gone: the cached copy is what answers
    assert again.source == "keras cache" and again.sha256 == downloaded.sha256


def test_a_file_that_is_not_the_backbones_weights_is_refused(tmp_path):
    from har.backbones import build_backbone

    other = tmp_path / "other.weights.h5"
    import keras

    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(other)
    with pytest.raises(ValueError, match=r"^backbone weights .*other\.weights\.h5: not weights of MobileNetV2"):
        build_backbone(weights=other)


def test_a_mobilenet_run_is_explained_with_grad_cam_on_its_backbones_last_map(mobilenet_run, tiny_cache):
    from har.datasets import load_cache
    from har.explain import Explainer
    from har.inference import Predictor
    from har.runs import find_run

    run, _, models_dir = mobilenet_run
    explainer = Explainer(Predictor.from_run(run.name, models_dir), find_run(models_dir, run.name))
    cache = load_cache(tiny_cache)
    explanation = explainer.explain(np.asarray(cache.frames[1]))
    assert explanation.heat_layer == "mobilenet_v2" and explanation.heat_note is None
    assert explanation.heat_maps.shape == (8, 32, 32)
    assert explanation.heat_maps.min() >= 0 and explanation.heat_maps.max() == pytest.approx(1.0)
    assert explanation.feature_maps.shape == (8, 3, 3, 1280)  # the backbone's last map, per frame
    np.testing.assert_allclose(
        explanation.probabilities, explainer.predictor.predict_frames(np.asarray(cache.frames[1])), atol=1e-5
    )
    assert explanation.ood["ood_score"] is not None and explanation.ood["ood_note"] is None
