"""Start-up tasks: pretrained runs imported into an empty models dir, a killed job resumed, HAR_BOOTSTRAP=report."""

import json
import os
import shutil
import signal
import zipfile

import pytest

from har import bootstrap, jobs, pipeline
from har.config import Config
from har.runs import latest_runs, list_runs


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """A `pretrained/` folder holding the tiny LRCN run, exported for real."""
    from har.portable import export_run

    run, _, models_dir = trained
    folder = tmp_path_factory.mktemp("pretrained")
    export_run(run.name, folder / "lrcn-tiny.zip", models_dir)
    return folder


def test_pretrained_runs_are_imported_into_an_empty_models_dir_once(exported, tmp_path):
    models_dir = tmp_path / "models"
    imported = bootstrap.import_pretrained(exported, models_dir)
    assert [run.id for run in imported] == ["lrcn-tiny"]
    assert [(run.id, run.status) for run in latest_runs(models_dir)] == [("lrcn-tiny", "finished")]
    assert bootstrap.import_pretrained(exported, models_dir) == []  # a finished run exists: nothing to do


def test_a_damaged_archive_is_skipped_and_the_others_imported(exported, tmp_path):
    folder = tmp_path / "pretrained"
    folder.mkdir()
    (folder / "aaa-broken.zip").write_bytes(b"not a zip")
    (folder / "lrcn-tiny.zip").write_bytes((exported / "lrcn-tiny.zip").read_bytes())
    assert [run.id for run in bootstrap.import_pretrained(folder, tmp_path / "models")] == ["lrcn-tiny"]


def test_no_pretrained_folder_is_nothing_to_do(tmp_path):
    assert bootstrap.import_pretrained(tmp_path / "absent", tmp_path / "models") == []
    assert bootstrap.run(tmp_path / "absent", tmp_path / "models", tmp_path / "data") == {
        "imported": [],
        "resumed": None,
        "started": None,
    }


@pytest.mark.slow
def test_the_newest_job_killed_by_a_restart_resumes_and_finishes(tiny_cache, tmp_path):
    models_dir = tmp_path / "models"
    job = jobs.start(tiny_cache, ["lrcn"], models_dir, config=Config(epochs=1, trainer="twin"))
    os.kill(job.pid(), signal.SIGKILL)  # what a container restart does to the supervisor (the trainer follows)
    job.wait(timeout=60)
    assert job.state() == "killed"
    resumed = bootstrap.resume_killed(models_dir)
    assert resumed is not None and resumed.id == job.id
    assert resumed.wait(timeout=600) == "finished"
    assert [run.status for run in list_runs(models_dir)] == ["finished"]
    assert bootstrap.resume_killed(models_dir) is None  # the newest is finished now


def test_bootstrap_report_starts_the_pipeline_only_when_there_is_nothing_to_show(trained, tmp_path):
    _, _, trained_models = trained
    assert bootstrap.start_report(trained_models, tmp_path / "data") is None  # a finished run to show
    models_dir = tmp_path / "models"
    started = bootstrap.start_report(models_dir, tmp_path / "data")
    started.cancel()  # before its first stage: this test never reaches for the real UCF50 host
    assert started.wait(timeout=60) == "cancelled"
    assert started.options == pipeline.Options(data_dir=str(tmp_path / "data"))  # the report's settings
    assert bootstrap.start_report(models_dir, tmp_path / "data") is None  # a pipeline exists already


def test_the_start_up_binds_imported_runs_to_the_data_dirs_copy_of_their_cache(
    exported, tiny_cache, tmp_path, monkeypatch
):
    # The zip as another machine wrote it: its cache at a path that does not exist here.
    folder = tmp_path / "pretrained"
    folder.mkdir()
    with zipfile.ZipFile(exported / "lrcn-tiny.zip") as source, zipfile.ZipFile(folder / "lrcn-tiny.zip", "w") as copy:
        metadata = json.loads(source.read("metadata.json"))
        metadata["dataset"]["cache"] = "/elsewhere/data/caches/demo-T8-S32"
        copy.writestr("metadata.json", json.dumps(metadata))
        copy.writestr("model.weights.h5", source.read("model.weights.h5"))
    local = tmp_path / "data" / "caches" / "demo-T8-S32"
    shutil.copytree(tiny_cache, local)
    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAR_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("HAR_BOOTSTRAP", raising=False)
    assert bootstrap.main(["--pretrained", str(folder)]) == 0
    (run,) = latest_runs(tmp_path / "models")
    dataset = run.metadata["dataset"]
    assert dataset["cache"] == str(local.resolve()) and dataset["same_frames"] is True
    assert dataset["trained_on"]["cache"] == "/elsewhere/data/caches/demo-T8-S32"
