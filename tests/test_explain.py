"""Explanations of what a model looks at, on tiny real models and real video files."""

import json
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from har.calibration import SplitPredictions, confusion_cell, predict_test_split, reliability
from har.datasets import find_clips, load_cache, make_split
from har.drawing import architecture_dot, heat_overlay, map_grid
from har.explain import ORDERS, Explainer, occlusion_neighbours, order_variants
from har.glossary import explain_term
from har.inference import Predictor
from har.models import build_model
from har.ood import APPEARANCE_SIZE, OOD_FILE, OodReference, appearance
from har.runs import find_run
from har.video import VideoError, decode_clip, sample_indices
from tests.media import write_with_opencv

CLASSES = ("HorseRace", "Swing", "TaiChi", "WalkingWithDog")


def metadata(model: str, classes=CLASSES, sequence_length=8, image_size=32) -> dict:
    return {
        "run_id": f"{model}-built",
        "model": model,
        "classes": list(classes),
        "sequence_length": sequence_length,
        "image_size": image_size,
    }


@pytest.fixture
def run_copy(trained, tmp_path):
    """The trained tiny LRCN, copied into a models dir of its own (explanations write ood.npz beside it)."""
    run, _, _ = trained
    models_dir = tmp_path / "models"
    shutil.copytree(run, models_dir / run.name)
    (models_dir / run.name / OOD_FILE).unlink(missing_ok=True)  # an earlier test's reference: this one computes its own
    return find_run(models_dir, run.name), models_dir


@pytest.fixture(scope="module")
def lrcn_explainer(trained):
    run, _, models_dir = trained
    return Explainer(Predictor.from_run(run.name, models_dir))


def test_occlusion_neighbours_are_the_previous_frame_or_the_next_for_the_first():
    assert occlusion_neighbours(5) == [1, 0, 1, 2, 3]
    assert occlusion_neighbours(1) == [0]


def test_order_variants_come_from_the_same_sampled_frames():
    frames = np.arange(6)[:, None, None, None] * np.ones((6, 2, 2, 3), np.uint8)
    variants, middle, permutation = order_variants(frames)
    assert middle == 3 and (variants["frozen"] == frames[3]).all()
    assert (order_variants(variants["reversed"])[0]["reversed"] == frames).all()
    assert sorted(permutation) == list(range(6)) and permutation != list(range(6))
    assert (variants["shuffled"] == frames[permutation]).all()
    assert order_variants(frames)[2] == permutation  # seeded: the same order every call


def test_explanation_of_a_real_clip_has_one_value_per_sampled_frame(lrcn_explainer, demo_dataset):
    path = find_clips(demo_dataset, ["WalkingWithDog"])[0].path
    clip = decode_clip(path, 8, 32)
    explanation = lrcn_explainer.explain(clip, ood=False)
    assert explanation.sampled_frames == sample_indices(clip.frame_count, 8)
    assert explanation.frame_importance.shape == (8,)
    assert explanation.heat_maps.shape == (8, 32, 32)
    assert 0 <= explanation.heat_maps.min() and explanation.heat_maps.max() == pytest.approx(1.0)
    assert explanation.feature_maps.shape == (8, 32, 32, 16)  # the first Conv2D: 16 filters, 'same' padding
    assert set(explanation.order) == set(ORDERS)


def test_importance_and_order_are_the_models_own_answers_on_the_changed_clips(lrcn_explainer, tiny_cache):
    frames = np.array(load_cache(tiny_cache).frames[5])
    explanation = lrcn_explainer.explain(frames, ood=False)
    predictor = lrcn_explainer.predictor
    top = int(np.argmax(explanation.probabilities))
    np.testing.assert_allclose(explanation.probabilities, predictor.predict_frames(frames), atol=1e-5)
    variants, _, _ = order_variants(frames)
    for name in ORDERS:
        np.testing.assert_allclose(explanation.order[name], predictor.predict_frames(variants[name]), atol=1e-5)
    occluded = frames.copy()
    occluded[4] = frames[3]
    drop = predictor.predict_frames(frames)[top] - predictor.predict_frames(occluded)[top]
    assert explanation.frame_importance[4] == pytest.approx(drop, abs=1e-5)


def test_occluding_a_frame_by_an_identical_neighbour_changes_nothing(lrcn_explainer, tiny_cache):
    frames = np.array(load_cache(tiny_cache).frames[9])
    frames[6] = frames[5]
    explanation = lrcn_explainer.explain(frames, ood=False)
    assert explanation.frame_importance[6] == 0.0
    assert (explanation.frame_importance[:6] != 0).any()  # real frames do matter somewhere


def test_a_still_clip_is_the_same_clip_frozen_reversed_and_shuffled(lrcn_explainer, tiny_cache):
    frames = np.repeat(np.array(load_cache(tiny_cache).frames[0][:1]), 8, axis=0)
    explanation = lrcn_explainer.explain(frames, ood=False)
    assert (explanation.frame_importance == 0).all()
    for name in ORDERS:
        np.testing.assert_array_equal(explanation.order[name], explanation.order["original"])


def order_blind_model(classes: int = 3) -> keras.Model:
    """Averages per-frame features over time: it cannot tell a clip from its reversal or a shuffle."""
    return keras.Sequential(
        [
            keras.Input((8, 32, 32, 3)),
            keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, padding="same", activation="relu")),
            keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D()),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


def test_a_model_blind_to_order_answers_the_same_reversed_and_shuffled(tiny_cache):
    keras.utils.set_random_seed(27)
    explainer = Explainer(Predictor(order_blind_model(), metadata("blind", CLASSES[:3])))
    explanation = explainer.explain(np.array(load_cache(tiny_cache).frames[3]), ood=False)
    for name in ("reversed", "shuffled"):
        np.testing.assert_allclose(explanation.order[name], explanation.order["original"], atol=1e-6)
    assert np.abs(explanation.order["frozen"] - explanation.order["original"]).max() > 1e-4


def brightness_model() -> keras.Model:
    """Class 0's score is the mean brightness seen by one convolution: Grad-CAM must point at bright pixels."""
    model = keras.Sequential(
        [
            keras.Input((8, 32, 32, 3)),
            keras.layers.TimeDistributed(keras.layers.Conv2D(1, 3, padding="same", activation="relu")),
            keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D()),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    convolution, dense = model.layers[0].layer, model.layers[-1]
    convolution.set_weights([np.full((3, 3, 3, 1), 1 / 27, np.float32), np.zeros(1, np.float32)])
    dense.set_weights([np.tile([[1.0, -1.0]], (8, 1)).astype(np.float32), np.zeros(2, np.float32)])
    return model


def test_grad_cam_lights_up_where_the_evidence_is():
    explainer = Explainer(Predictor(brightness_model(), metadata("bright", ("bright", "dark"))))
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    frames[:, 4:12, 20:28] = 255  # a white square, top right
    explanation = explainer.explain(frames, ood=False)
    assert explanation.label == "bright"
    for heat in explanation.heat_maps:
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        assert 4 <= y < 12 and 20 <= x < 28
        assert heat[20:, :12].max() == 0.0  # far from the square the convolution saw nothing


def test_convlstm_explanation_has_hidden_states_over_time_and_heat_maps():
    keras.utils.set_random_seed(27)
    explainer = Explainer(Predictor(build_model("convlstm", sequence_length=8, image_size=32), metadata("convlstm")))
    frames = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    explanation = explainer.explain(frames, ood=False)
    assert explanation.feature_maps.shape == (8, 30, 30, 4)  # first ConvLSTM2D: 4 filters, 'valid' padding
    assert explanation.heat_maps.shape == (8, 32, 32) and explanation.frame_importance.shape == (8,)
    assert explanation.heat_layer == "conv_lstm2d_2" or explanation.heat_layer.startswith("conv_lstm2d")
    assert explainer.layers[explainer.heat_position].output.shape[2] == 5  # the last one at least 4 wide
    features = explainer.features(frames[None])
    # The final Dense layer's input (Flatten of the last block), then the clip's appearance.
    assert features.shape == (1, 8 * 1 * 1 * 16 + APPEARANCE_SIZE)
    np.testing.assert_allclose(features[0, 128:], appearance(frames[None])[0])
    dense = explainer.predictor.model.layers[-1]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(dense(features[:, :128]))[0], explanation.probabilities, atol=1e-5
    )


def noise_video(path, count=48):
    rng = np.random.default_rng(3)
    return write_with_opencv(path, [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(count)])


def test_noise_is_out_of_distribution_and_a_test_clip_is_not(run_copy, tiny_cache, tmp_path):
    run, models_dir = run_copy
    explainer = Explainer(Predictor.from_run(run, models_dir), run)
    noise = explainer.explain(decode_clip(noise_video(tmp_path / "noise.avi"), 8, 32))
    assert noise.ood["out_of_distribution"] is True and noise.ood["ood_score"] > noise.ood["ood_threshold"]
    assert (run.path / OOD_FILE).is_file()
    # A typical test clip (median score among the held-out ones), read again from its video file.
    cache = load_cache(tiny_cache)
    config = run.metadata["config"]
    split = make_split(
        cache.groups,
        split=config["split"],
        test_fraction=config["test_fraction"],
        validation_fraction=config["validation_fraction"],
        seed=config["seed"],
    )
    reference = explainer.reference()
    scores = reference.score(np.concatenate([explainer.features(cache.frames[[i]]) for i in split.test]))
    typical = split.test[np.argsort(scores)[len(scores) // 2]]
    clip = explainer.explain(decode_clip(cache.sources[typical], 8, 32))
    assert clip.ood["out_of_distribution"] is False
    assert (scores > reference.threshold).mean() <= 0.05


def street_video(path, count=48):
    """A drawn street: sky, houses with windows, grey road with lane marks, a red car driving left to right."""
    frames = []
    for i in range(count):
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:50] = (135, 190, 235)
        for left, height, colour in ((5, 45, (150, 90, 60)), (45, 60, (200, 200, 190)), (100, 40, (120, 120, 140))):
            frame[60 - height // 2 - 10 : 70, left : left + 40] = colour
            frame[60 - height // 2 : 65 : 8, left + 5 : left + 35 : 10] = (250, 240, 120)
        frame[70:] = (90, 90, 90)
        frame[93:97, ::20] = (255, 255, 255)
        car = 10 + 3 * i
        frame[80:95, car : car + 30] = (200, 20, 30)
        frames.append(frame)
    return write_with_opencv(path, frames)


def test_a_street_scene_is_out_of_distribution(run_copy, tmp_path):
    run, models_dir = run_copy
    explainer = Explainer(Predictor.from_run(run, models_dir), run)
    street = explainer.explain(decode_clip(street_video(tmp_path / "street.avi"), 8, 32))
    assert street.ood["out_of_distribution"] is True, street.ood


def test_the_reference_is_saved_once_and_reused(run_copy):
    run, models_dir = run_copy
    predictor = Predictor.from_run(run, models_dir)
    first = OodReference.for_run(run, Explainer(predictor).features)
    stamp = (run.path / OOD_FILE).stat().st_mtime_ns
    again = OodReference.for_run(run, lambda frames: pytest.fail("features recomputed"))
    assert (run.path / OOD_FILE).stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.train_features, first.train_features)
    assert again.threshold == first.threshold


def test_a_run_whose_cache_is_gone_says_so_instead_of_crashing(run_copy, tmp_path, demo_dataset):
    run, models_dir = run_copy
    metadata_path = run.path / "metadata.json"
    saved = json.loads(metadata_path.read_text())
    saved["dataset"]["cache"] = str(tmp_path / "deleted-cache")
    metadata_path.write_text(json.dumps(saved))
    run = find_run(models_dir, run.id)
    explainer = Explainer(Predictor.from_run(run, models_dir), run)
    explanation = explainer.explain(decode_clip(find_clips(demo_dataset)[0].path, 8, 32))
    assert explanation.ood["out_of_distribution"] is None
    assert "deleted-cache" in explanation.ood["ood_note"] and "gone" in explanation.ood["ood_note"]


def har(*args, models_dir):
    result = subprocess.run(
        [sys.executable, "-m", "har", "--models-dir", str(models_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, result.stdout, result.stderr


def test_cli_explain_json_for_a_real_clip(run_copy, demo_dataset):
    run, models_dir = run_copy
    path = find_clips(demo_dataset, ["Swing"])[0].path
    code, out, err = har("explain", str(path), "--json", models_dir=models_dir)
    assert code == 0, err
    result = json.loads(out)
    clip = decode_clip(path, 8, 32)
    assert result["clip"] == str(path) and result["frame_count"] == clip.frame_count
    (explanation,) = result["runs"]
    assert explanation["run_id"] == run.id and explanation["sequence_length"] == 8
    assert explanation["sampled_frames"] == sample_indices(clip.frame_count, 8)
    assert len(explanation["frame_importance"]) == 8 and len(explanation["heat_maps"]["peak_yx"]) == 8
    assert set(explanation["order"]) == set(ORDERS)
    assert all(set(p) == set(CLASSES) for p in explanation["order"].values())
    assert explanation["frozen_frame"] == explanation["sampled_frames"][4]
    assert explanation["out_of_distribution"] is False and explanation["ood_threshold"] > 0
    code, out, err = har("predict", str(path), "--json", models_dir=models_dir)
    (prediction,) = json.loads(out)["runs"]
    assert prediction["out_of_distribution"] is False
    assert prediction["ood_score"] == pytest.approx(explanation["ood_score"], rel=1e-4)


def test_cli_explain_mistakes_get_one_line(run_copy, tmp_path):
    _, models_dir = run_copy
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    # The clip is decoded at the chosen runs' own settings, so an unknown run (or none) is named first.
    for args, fragment in (
        ([str(bad)], str(bad)),
        ([str(bad), "--run", "no-such-run"], "no-such-run: no such run"),
        (["missing.avi"], "no such file"),
    ):
        code, _, err = har("explain", *args, "--json", models_dir=models_dir)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("har: error: ") and fragment in lines[0], err
    code, _, err = har("explain", str(bad), models_dir=tmp_path / "empty")
    assert code == 2 and "no finished runs" in err


def test_explain_clip_refuses_a_non_video_before_loading_any_model(run_copy, tmp_path, monkeypatch):
    from har import explain

    run, models_dir = run_copy
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    monkeypatch.setattr(explain.Predictor, "from_run", lambda *args: pytest.fail("a model was loaded"))
    with pytest.raises(VideoError, match="notes.mp4"):
        explain.explain_clip(bad, [run], models_dir)


def test_heat_overlay_keeps_cold_pixels_darker_blue_and_hot_ones_red():
    frames = np.full((2, 4, 4, 3), 100, np.uint8)
    heat = np.zeros((2, 4, 4), np.float32)
    heat[1, 0, 0] = 1.0
    overlay = heat_overlay(frames, heat, opacity=0.5)
    assert overlay.shape == (2, 4, 4, 3) and overlay.dtype == np.uint8
    assert overlay[1, 0, 0, 0] > overlay[1, 0, 0, 2]  # hot: red over blue
    assert overlay[0, 0, 0, 2] > overlay[0, 0, 0, 0]  # cold: blue over red
    with pytest.raises(ValueError, match="differ"):
        heat_overlay(frames, heat[:, :2])


def test_map_grid_enlarges_each_map_with_its_own_range():
    maps = np.stack([np.arange(4.0).reshape(2, 2), np.full((2, 2), 7.0), 1000 * np.eye(2)])
    grid = map_grid(maps, columns=2, cell=10, gap=2)
    assert grid.shape == (22, 22) and grid.dtype == np.uint8
    assert [grid[0, 0], grid[0, 9], grid[9, 0], grid[9, 9]] == [0, 85, 170, 255]  # the first map's 0..3, scaled
    assert (grid[:10, 12:] == 0).all()  # a constant map is flat, not noise
    assert grid[12, 0] == 255 and grid[12, 9] == 0  # the third map: its own range, however large


def test_architecture_diagram_is_drawn_from_the_model():
    model = build_model("lrcn")
    dot = architecture_dot(model)
    assert dot.count(" -> ") == len(model.layers)
    assert "TimeDistributed(Conv2D 16, 3x3)\\n20 x 64 x 64 x 16\\n448 parameters" in dot
    assert "LSTM 32\\n32\\n12,416 parameters" in dot
    counts = [int(count.replace(",", "")) for count in re.findall(r"\\n([\d,]+) parameters", dot)]
    assert sum(counts) == model.count_params() == 73_060


def test_glossary_covers_the_terms_learners_meet():
    for term in (
        "epoch",
        "validation",
        "early stopping",
        "patience",
        "ConvLSTM gates",
        "TimeDistributed",
        "chance level",
        "Grad-CAM",
        "out of distribution",
    ):
        text = explain_term(term)
        assert 20 < len(text) < 400 and text.count(". ") <= 2, term
    with pytest.raises(KeyError, match="backpropagation"):
        explain_term("backpropagation")


def test_reliability_bins_hold_every_test_clip_and_match_the_evaluation(run_copy):
    from har.evaluation import evaluate

    run, models_dir = run_copy
    predictions = predict_test_split(run, models_dir)
    evaluation = evaluate(run.id, models_dir, latency_repeats=1)
    diagram = reliability(predictions, bins=5)
    assert [row["low"] for row in diagram["bins"]] == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert sum(row["clips"] for row in diagram["bins"]) == diagram["clips"] == evaluation["test_clips"]
    hits = sum(row["clips"] * row["accuracy"] for row in diagram["bins"] if row["clips"])
    assert hits == pytest.approx(evaluation["accuracy"] * evaluation["test_clips"])
    for row in diagram["bins"]:
        assert row["clips"] == 0 or row["low"] <= row["confidence"] <= row["high"]
    assert 0 <= diagram["ece"] <= 1


def test_reliability_of_a_perfectly_calibrated_toy():

    probabilities = np.array([[0.75, 0.25]] * 4 + [[0.25, 0.75]] * 4, np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 0])  # 3 of 4 right in each group: 75% at 75% confidence
    toy = SplitPredictions("toy", ("a", "b"), np.arange(8), labels, probabilities, [""] * 8, "x")
    diagram = reliability(toy, bins=4)
    assert diagram["ece"] == pytest.approx(0.0)
    assert diagram["bins"][3] == {"low": 0.75, "high": 1.0, "clips": 8, "confidence": 0.75, "accuracy": 0.75}


def test_confusion_cells_list_exactly_the_clips_the_matrix_counts(run_copy):
    from har.evaluation import evaluate

    run, models_dir = run_copy
    predictions = predict_test_split(run, models_dir)
    matrix = evaluate(run.id, models_dir, latency_repeats=1)["confusion_matrix"]
    for i, true_class in enumerate(CLASSES):
        for j, predicted_class in enumerate(CLASSES):
            clips = confusion_cell([predictions, predictions], true_class, predicted_class)
            assert len(clips) == matrix[i][j]
            for clip in clips:
                probabilities = clip["probabilities"][run.id]
                assert max(probabilities, key=probabilities.get) == predicted_class
                assert f"/{true_class}/" in clip["source"] or true_class in clip["source"]
    with pytest.raises(ValueError, match="Swimming"):
        confusion_cell([predictions], "Swimming", "Swing")
