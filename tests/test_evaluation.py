"""The comparison's numbers: means and spreads over seeds, and the bootstrap interval of the model gap."""

import json
import math
import shutil

import numpy as np
import pytest

from har.evaluation import compare, differences, seed_groups, seed_spread_interval

CLASSES = ["HorseRace", "Swing", "TaiChi", "WalkingWithDog"]


def hand_written_interval(first, second, *, draws=10_000, seed=27):
    """The seed-spread interval as har.evaluation computed it before SciPy: percentiles of resampled means."""
    rng = np.random.default_rng(seed)
    first, second = np.asarray(first), np.asarray(second)
    boot = rng.choice(first, (draws, len(first))).mean(axis=1) - rng.choice(second, (draws, len(second))).mean(axis=1)
    return np.percentile(boot, [2.5, 97.5])


@pytest.mark.parametrize(
    "lrcn, convlstm",
    [
        ([0.80, 0.82, 0.81], [0.50, 0.52, 0.51]),
        ([0.5, 0.9, 0.6], [0.7, 0.4, 0.8]),
        ([0.9, 0.85, 0.7, 0.95, 0.6], [0.6, 0.8, 0.5, 0.7, 0.75]),
        ([0.562, 0.9, 0.1, 0.7], [0.669, 0.3, 0.95, 0.8]),
    ],
)
def test_scipys_bootstrap_interval_agrees_with_the_hand_written_resampling(lrcn, convlstm):
    low, high = seed_spread_interval(lrcn, convlstm, rng=np.random.default_rng(27))
    old_low, old_high = hand_written_interval(lrcn, convlstm)
    # Both are percentile bootstraps of 10,000 resamples with different draws: they differ by resampling noise.
    assert low == pytest.approx(old_low, abs=0.01) and high == pytest.approx(old_high, abs=0.01)
    assert low <= np.mean(lrcn) - np.mean(convlstm) <= high


def rows(model, accuracies, split="group"):
    return [
        {
            "model": model,
            "split": split,
            "seed": 27 + i,
            "accuracy": a,
            "loss": 1 - a,
            "at_chance": False,
            "run_id": f"{model}-{i}",
        }
        for i, a in enumerate(accuracies)
    ]


def test_groups_hold_mean_and_sample_sd_over_seeds_and_no_sd_for_one_seed():
    groups = seed_groups(rows("lrcn", [0.8, 0.9, 1.0], "report") + rows("convlstm", [0.5], "report"))
    assert [(g["model"], g["n"]) for g in groups] == [("convlstm", 1), ("lrcn", 3)]
    assert groups[0]["accuracy_sd"] is None
    assert groups[1]["accuracy_mean"] == pytest.approx(0.9) and groups[1]["accuracy_sd"] == pytest.approx(0.1)
    assert groups[1]["seeds"] == [27, 28, 29] and groups[1]["loss_mean"] == pytest.approx(0.1)


def test_a_clear_gap_is_beyond_the_seed_spread_and_overlapping_seeds_are_not():
    (clear,) = differences(seed_groups(rows("lrcn", [0.80, 0.82, 0.81]) + rows("convlstm", [0.50, 0.52, 0.51])))
    assert clear["beyond_seed_spread"] is True and clear["interval_95"][0] > 0
    assert clear["lrcn_minus_convlstm"] == pytest.approx(0.30)
    assert clear["interval_method"] == "percentile bootstrap, 10,000 resamples"
    (overlap,) = differences(seed_groups(rows("lrcn", [0.5, 0.9, 0.6]) + rows("convlstm", [0.7, 0.4, 0.8])))
    assert overlap["beyond_seed_spread"] is False and overlap["interval_95"][0] < 0 < overlap["interval_95"][1]
    assert "can't say which model is better" in overlap["verdict"]
    (single,) = differences(seed_groups(rows("lrcn", [0.9], "report") + rows("convlstm", [0.5], "report")))
    assert single["interval_95"] is None and single["interval_method"] is None
    assert single["beyond_seed_spread"] is None and "--seeds" in single["verdict"]


def evaluation(accuracy: float) -> dict:
    """An evaluation.json of a 4-class run tested on 8 clips, `accuracy` of them right."""
    right = round(accuracy * 8)
    matrix = [[0] * 4 for _ in range(4)]
    matrix[0][0], matrix[1][2] = right, 8 - right
    return {
        "split": "report",
        "accuracy": accuracy,
        "loss": 1 - accuracy,
        "latency_ms": 1.0,
        "classes": CLASSES,
        "per_class": {name: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2} for name in CLASSES},
        "confusion_matrix": matrix,
    }


def test_compare_gives_the_mean_and_sample_sd_of_three_seeds_with_different_accuracies(trained, tmp_path):
    run, _, _ = trained
    models_dir = tmp_path / "models"
    accuracies = {27: 0.5, 28: 0.75, 29: 0.875}
    for seed, accuracy in accuracies.items():
        folder = models_dir / f"lrcn-seed{seed}"
        shutil.copytree(run, folder)
        metadata = json.loads((folder / "metadata.json").read_text())
        metadata.update(run_id=folder.name, seed=seed, job="study")
        metadata["config"]["seed"] = seed
        (folder / "metadata.json").write_text(json.dumps(metadata))
        (folder / "evaluation.json").write_text(json.dumps(evaluation(accuracy)))  # newer than model.keras: used

    table = compare([f"lrcn-seed{seed}" for seed in accuracies], models_dir)

    mean = (0.5 + 0.75 + 0.875) / 3
    sd = math.sqrt(((0.5 - mean) ** 2 + (0.75 - mean) ** 2 + (0.875 - mean) ** 2) / (3 - 1))
    assert (mean, sd) == (pytest.approx(0.708333, abs=1e-6), pytest.approx(0.190941, abs=1e-6))
    (group,) = table["groups"]
    assert group["seeds"] == [27, 28, 29] and group["accuracies"] == [0.5, 0.75, 0.875]
    assert group["accuracy_mean"] == pytest.approx(mean, abs=1e-12)
    assert group["accuracy_sd"] == pytest.approx(sd, abs=1e-12)
    assert group["loss_mean"] == pytest.approx(1 - mean, abs=1e-12)
    for row, seed in zip(table["runs"], accuracies):
        assert (
            row["class_names"] == CLASSES
            and row["confusion_matrix"] == evaluation(accuracies[seed])["confusion_matrix"]
        )
