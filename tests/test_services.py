"""The service layer that the CLI and the pages share: prepare a cache, predict a file, compare runs."""

import zipfile

import numpy as np
import pytest

from har import services
from har.datasets import find_clips, load_cache
from har.video import VideoError, decode_clip


def test_prepare_cache_extracts_an_archive_then_builds_and_reuses_the_cache(demo_dataset, tmp_path):
    archive = tmp_path / "UCF50.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for clip in find_clips(demo_dataset, ["Swing", "WalkingWithDog"]):
            handle.write(clip.path, f"UCF50/{clip.class_name}/{clip.path.name}")
    seen = []
    path = services.prepare_cache(
        archive,
        data_dir=tmp_path / "data",
        classes=["WalkingWithDog", "Swing"],
        sequence_length=8,
        image_size=32,
        on_decode=lambda done, total: seen.append((done, total)),
    )
    assert path == tmp_path / "data" / "caches" / "UCF50-T8-S32"
    cache = load_cache(path)
    assert list(cache.class_names) == ["WalkingWithDog", "Swing"] and cache.frames.shape == (64, 8, 32, 32, 3)
    assert seen[-1] == (64, 64)
    modified = (path / "frames.npy").stat().st_mtime_ns
    assert (
        services.prepare_cache(
            archive, data_dir=tmp_path / "data", classes=["WalkingWithDog", "Swing"], sequence_length=8, image_size=32
        )
        == path
    )
    assert (path / "frames.npy").stat().st_mtime_ns == modified


def test_prepare_cache_names_a_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere: no such dataset folder or archive"):
        services.prepare_cache(tmp_path / "nowhere", data_dir=tmp_path)


def test_predict_file_decodes_once_per_preprocessing_and_gives_every_runs_probabilities(trained, demo_dataset):
    run, _, models_dir = trained
    clip = find_clips(demo_dataset, ["TaiChi"])[0].path
    decoded = []

    def decoder(path, sequence_length, image_size):
        decoded.append((sequence_length, image_size))
        return decode_clip(path, sequence_length, image_size)

    predictions = services.predict_file(clip, [run.name, run.name], models_dir, decoder=decoder)
    assert decoded == [(8, 32)]  # the run's own settings, from its metadata; once for both runs
    assert [row["run_id"] for row in predictions.runs] == ["lrcn-tiny", "lrcn-tiny"]
    probabilities = predictions.runs[0]["probabilities"]
    assert list(probabilities) == sorted(probabilities, key=probabilities.get, reverse=True)
    assert predictions.runs[0]["label"] == next(iter(probabilities))
    assert np.isclose(sum(probabilities.values()), 1.0, atol=1e-5)
    assert predictions.clips[(8, 32)].frames.shape == (8, 32, 32, 3)
    assert predictions.to_dict() == {"clip": str(clip), "runs": predictions.runs}


def test_predict_file_refuses_a_non_video_before_loading_any_model(trained, tmp_path):
    run, _, models_dir = trained
    (tmp_path / "notes.mp4").write_text("not a video")

    def load(run, models_dir):
        pytest.fail("a model was loaded for a file that is not a video")

    with pytest.raises(VideoError, match="notes.mp4"):
        services.predict_file(tmp_path / "notes.mp4", [run.name], models_dir, load=load)
    with pytest.raises(VideoError, match="no such file"):  # before any run is even looked up
        services.predict_file(tmp_path / "missing.mp4", ["no-such-run"], tmp_path / "models")


def test_compare_runs_adds_each_runs_confusion_matrix(trained):
    run, _, models_dir = trained
    table = services.compare_runs([run.name], models_dir)
    (row,) = table["runs"]
    matrix = np.array(row["confusion_matrix"])
    assert row["class_names"] == list(load_cache(row_cache(run)).class_names)
    assert matrix.shape == (4, 4) and matrix.sum() > 0
    assert np.isclose(np.trace(matrix) / matrix.sum(), row["accuracy"])


def row_cache(run):
    import json

    return json.loads((run / "metadata.json").read_text())["dataset"]["cache"]


def test_the_default_comparison_takes_the_newest_finished_run_of_each_model_on_each_split(trained, tmp_path):
    import json
    import shutil

    run, _, _ = trained
    models_dir = tmp_path / "models"
    for run_id, split in [("a-lrcn", "group"), ("b-lrcn", "report"), ("c-lrcn", "report"), ("d-lrcn", "group")]:
        shutil.copytree(run, models_dir / run_id)
        metadata = json.loads((models_dir / run_id / "metadata.json").read_text())
        metadata["run_id"], metadata["split"]["name"] = run_id, split
        (models_dir / run_id / "metadata.json").write_text(json.dumps(metadata))
    (models_dir / "e-lrcn").mkdir()  # broken (no metadata): never chosen
    from har.runs import latest_study

    assert [run.id for run in latest_study(models_dir)] == ["c-lrcn", "d-lrcn"]
