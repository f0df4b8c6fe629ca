"""Evaluation, comparison, prediction and timelines on a really trained run."""

import json
import subprocess
import sys
import threading

import cv2
import numpy as np
import pandas as pd
import pytest

from har.datasets import find_clips
from har.evaluation import compare, evaluate
from har.inference import Predictor, write_timeline
from tests.media import write_with_ffmpeg


def test_evaluate_reports_sklearn_metrics_and_saves_them(trained):
    run, _, models_dir = trained
    result = evaluate(run.name, models_dir)
    metadata = json.loads((run / "metadata.json").read_text())
    assert result["model"] == "lrcn" and result["test_clips"] == 32
    assert result["accuracy"] == pytest.approx(metadata["test"]["accuracy"], abs=1e-6)
    assert result["loss"] == pytest.approx(metadata["test"]["loss"], rel=1e-3)
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (4, 4) and matrix.sum() == 32
    assert np.trace(matrix) / 32 == pytest.approx(result["accuracy"])
    assert [values["support"] for values in result["per_class"].values()] == matrix.sum(axis=1).tolist()
    assert result["latency_ms"] > 0
    assert json.loads((run / "evaluation.json").read_text()) == result


def test_compare_puts_the_runs_beside_the_reports_numbers(trained):
    run, _, models_dir = trained
    table = compare([run.name], models_dir)
    (row,) = table["runs"]
    assert row["model"] == "lrcn" and row["parameters"] == 73_060 and row["split"] == "report"
    assert set(row["f1"]) == {"HorseRace", "Swing", "TaiChi", "WalkingWithDog"}
    assert table["report"] == {  # as printed in the report's results table
        "convlstm": {"accuracy": 0.7925, "loss": 0.5773, "parameters": 44_524},
        "lrcn": {"accuracy": 0.8693, "loss": 0.2854, "parameters": 73_060},
    }
    assert compare(None, models_dir)["runs"][0]["run_id"] == run.name  # latest finished run by default


def test_held_out_clips_are_the_runs_test_split_and_nothing_it_trained_on(trained):
    from har.datasets import load_cache, make_split
    from har.runs import find_run, held_out_clips

    run, _, models_dir = trained
    clips = held_out_clips(find_run(models_dir, run.name))
    metadata = json.loads((run / "metadata.json").read_text())
    assert len(clips) == metadata["split"]["test"] == 32
    cache = load_cache(metadata["dataset"]["cache"])
    split = make_split(cache.groups, split="report", test_fraction=0.25, validation_fraction=0.2, seed=27)
    seen = {cache.sources[i] for i in (*split.train, *split.validation)}
    assert not seen & {clip["path"] for clip in clips}
    assert all(clip["split"] == "test" and clip["class"] in cache.class_names for clip in clips)


def test_predict_clip_gives_a_probability_per_class_top_first(trained, demo_dataset):
    run, _, models_dir = trained
    predictor = Predictor.from_run(run, models_dir)
    probabilities = predictor.predict_clip(find_clips(demo_dataset)[0].path)
    assert set(probabilities) == set(predictor.class_names)
    values = list(probabilities.values())
    assert values == sorted(values, reverse=True) and sum(values) == pytest.approx(1, abs=1e-5)


def test_predictor_is_safe_to_share_between_threads(trained, demo_dataset):
    run, _, models_dir = trained
    predictor = Predictor.from_run(run, models_dir)
    clips = [clip.path for clip in find_clips(demo_dataset)[::16]]
    alone = [predictor.predict_clip(path) for path in clips]
    results = {}

    def work(worker):
        results[worker] = [predictor.predict_clip(path) for path in clips]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[i] == alone for i in range(8))


@pytest.fixture(scope="module")
def long_video(demo_dataset, tmp_path_factory):
    """A 9.6 s video made of demo clips of the four classes, two of each, one after the other."""
    frames = []
    names = ("Swing", "TaiChi", "HorseRace", "WalkingWithDog")
    for clip in [clip for name in names for clip in find_clips(demo_dataset, [name])[:2]]:
        capture = cv2.VideoCapture(str(clip.path))
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    frames = frames[:240]
    return write_with_ffmpeg(tmp_path_factory.mktemp("long") / "long.mp4", frames, fps=25)


def test_timeline_gives_one_observation_per_window(trained, long_video, tmp_path):
    run, _, models_dir = trained
    predictor = Predictor.from_run(run, models_dir)
    frame = predictor.timeline(long_video, window_seconds=2.0, stride_seconds=1.0)
    assert list(frame.columns) == ["start", "end", "label", "confidence", *predictor.class_names]
    assert list(frame["start"]) == pytest.approx([float(i) for i in range(len(frame))], abs=0.05)
    assert len(frame) == 8  # windows start at 0..7 s in a 9.6 s video
    assert (frame["end"] - frame["start"]).max() == pytest.approx(2.0, abs=0.05)
    assert np.allclose(frame[list(predictor.class_names)].sum(axis=1), 1, atol=1e-5)
    for suffix in ("csv", "json"):
        written = write_timeline(frame, tmp_path / f"timeline.{suffix}")
        loaded = pd.read_csv(written) if suffix == "csv" else pd.read_json(written)
        assert list(loaded["label"]) == list(frame["label"])
    with pytest.raises(ValueError, match=".txt"):
        write_timeline(frame, tmp_path / "timeline.txt")


def har(*args, models_dir):
    result = subprocess.run(
        [sys.executable, "-m", "har", "--models-dir", str(models_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, result.stdout, result.stderr


def test_cli_predict_evaluate_runs_compare_and_timeline(trained, demo_dataset, long_video, tmp_path):
    run, _, models_dir = trained
    clip = find_clips(demo_dataset)[0].path
    code, out, err = har("predict", str(clip), "--json", models_dir=models_dir)
    assert code == 0, err
    (prediction,) = json.loads(out)["runs"]
    assert prediction["run_id"] == run.name and set(prediction["probabilities"]) == {
        "HorseRace",
        "Swing",
        "TaiChi",
        "WalkingWithDog",
    }
    code, out, err = har("evaluate", run.name, "--json", models_dir=models_dir)
    assert code == 0, err
    assert {"model", "accuracy", "loss"} <= set(json.loads(out))
    code, out, _ = har("runs", "--json", models_dir=models_dir)
    assert [(r["id"], r["status"]) for r in json.loads(out)] == [(run.name, "finished")]
    code, out, _ = har("compare", "--json", models_dir=models_dir)
    assert json.loads(out)["report"]["lrcn"]["accuracy"] == 0.8693
    code, out, err = har(
        "timeline", str(long_video), "--out", str(tmp_path / "t.csv"), "--window", "2", models_dir=models_dir
    )
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "t.csv")) == 8


def assert_one_line_error(code, err, *fragments):
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err and len(lines) == 1 and lines[0].startswith("har: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "--data", "missing-cache"], ["missing-cache", "no frame cache"]),
        (["train", "--model", "cnn3d"], ["cnn3d"]),
        (["train", "--epochs", "0", "--data", "."], ["epochs=0"]),
        (["predict", "clip.mp4"], ["clip.mp4", "no such file"]),
        (["evaluate", "no-such-run"], ["no-such-run", "har runs"]),
        (["compare"], ["no finished runs"]),
        (["timeline", "clip.mp4", "--out", "t.csv"], ["clip.mp4", "no such file"]),  # arguments are checked first
    ],
)
def test_cli_mistakes_with_an_empty_models_dir_get_one_line(tmp_path, args, fragments):
    code, _, err = har(*args, models_dir=tmp_path / "models")
    assert_one_line_error(code, err, *fragments)


def test_cli_predict_on_a_bad_file_names_it(trained, tmp_path):
    _, _, models_dir = trained
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    code, _, err = har("predict", str(bad), models_dir=models_dir)
    assert_one_line_error(code, err, str(bad))
    code, out, _ = har("runs", models_dir=tmp_path / "empty")
    assert code == 0 and "no runs yet" in out
