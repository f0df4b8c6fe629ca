"""`har reproduce`: the whole study as one resumable background pipeline, from an archive served over HTTPS."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from har import pipeline
from har.config import Config
from har.datasets import find_clips
from har.jobs import JobBusy
from har.report import REPORT_RESULTS
from tests.http_server import Behaviour, LocalServer

ROOT = Path(__file__).resolve().parents[1]
# The demo's four actions are the report's four UCF50 classes.
AS_UCF50 = {"WalkingWithDog": "WalkingWithDog", "TaiChi": "TaiChi", "Swing": "Swing", "HorseRace": "HorseRace"}
TINY = ["--epochs", "1", "--sequence-length", "8", "--image-size", "32"]
SMALL_FRAMES = Config(sequence_length=8, image_size=32)


def ucf50_archive(demo, path: Path) -> Path:
    """A UCF50-layout zip (`UCF50/<Class>/v_<Class>_gXX_cYY.avi`) of real demo clips under UCF50 class names."""
    with zipfile.ZipFile(path, "w") as archive:
        for clip in find_clips(demo):
            name = AS_UCF50[clip.class_name]
            archive.write(clip.path, f"UCF50/{name}/{clip.path.name.replace(clip.class_name, name)}")
    return path


def small_ucf50_folder(demo, folder: Path) -> Path:
    """Two clips per class of the demo, in a UCF50-layout folder under the report's class names."""
    for clip in find_clips(demo):
        if clip.path.stem.endswith(("g01_c01", "g02_c01")):
            name = AS_UCF50[clip.class_name]
            (folder / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(clip.path, folder / name / clip.path.name.replace(clip.class_name, name))
    return folder


def har(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HAR_HOME": str(home), **(env or {})}
    for name in ("HAR_DATA_DIR", "HAR_MODELS_DIR", "HAR_INSECURE_TLS"):
        environment.pop(name, None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "har", *args], capture_output=True, text=True, env=environment, timeout=900
    )


def wait_for(predicate, timeout: float = 300, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError("the condition did not come true in time")


@pytest.mark.slow
def test_reproduce_from_empty_dirs_over_https_survives_a_kill_and_never_downloads_twice(demo_dataset, tmp_path):
    home = tmp_path / "home"
    behaviour = Behaviour(body=ucf50_archive(demo_dataset, tmp_path / "UCF50.zip").read_bytes())
    with LocalServer(behaviour, tls=True, name="UCF50.zip") as server:
        command = ["reproduce", "--url", server.url, *TINY]

        # Verified TLS: refused with one line naming the cause and the opt-in; nothing downloaded or extracted.
        refused = har(home, *command)
        assert refused.returncode == 2
        errors = [line for line in refused.stderr.splitlines() if line.startswith("har: error:")]
        assert errors == [
            "har: error: 127.0.0.1: its TLS certificate failed verification (self-signed certificate); "
            "if you trust this host, run again with --insecure-tls (or HAR_INSECURE_TLS=1)."
        ]
        assert behaviour.requests == []
        assert not (home / "data" / "UCF50").exists()
        assert not list((home / "data").rglob("*.zip*"))

        # With the opt-in (here from the environment), started detached and killed -9 during the second run.
        started = har(home, *command, "--detach", env={"HAR_INSECURE_TLS": "1"})
        assert started.returncode == 0, started.stderr
        (job,) = pipeline.list_pipelines(home / "models")
        first, second = job.run_ids()[:2]
        wait_for(lambda: any(e["event"] == "started" and e.get("run") == second for e in job.events()))
        os.kill(job.pid(), signal.SIGKILL)
        assert wait_for(lambda: not job.is_alive())
        assert job.state() == "killed"
        assert behaviour.requests == [None]  # one download, whole
        kept = (home / "models" / first / "model.keras").stat().st_mtime_ns

        # The same command again continues: no second download, no cache rebuild, the finished run kept.
        shipped = tmp_path / "shipped"
        finished = har(home, *command, "--insecure-tls", "--json", "--export", str(shipped))
        assert finished.returncode == 0, finished.stderr
        assert behaviour.requests == [None]
    table = json.loads(finished.stdout)  # stdout holds the JSON alone; the export's line went to stderr
    assert f"exported 4 runs -> {shipped}" in finished.stderr
    assert sorted(path.name for path in shipped.iterdir()) == sorted(f"{run}.zip" for run in job.run_ids())
    for run in job.run_ids():
        with zipfile.ZipFile(shipped / f"{run}.zip") as exported:
            assert json.loads(exported.read("metadata.json"))["run_id"] == run
    assert sorted((row["model"], row["split"]) for row in table["runs"]) == [
        ("convlstm", "group"),
        ("convlstm", "report"),
        ("lrcn", "group"),
        ("lrcn", "report"),
    ]
    assert table["report"] == REPORT_RESULTS
    assert (home / "models" / first / "model.keras").stat().st_mtime_ns == kept
    stages = [e for e in job.events(job.first_event) if e["event"] == "stage"]
    rerun = stages[[i for i, e in enumerate(stages) if e["stage"] == "download"][-1] :]
    assert [(e["stage"], e["status"]) for e in rerun[:4]] == [
        ("download", "skipped"),
        ("extract", "skipped"),
        ("cache", "skipped"),
        (f"train {first}", "skipped"),
    ]
    assert job.state() == "finished"

    # `har compare` shows the same four runs from the models dir: the latest of each model on each split.
    compared = har(home, "compare", "--json")
    assert compared.returncode == 0, compared.stderr
    assert [row["run_id"] for row in json.loads(compared.stdout)["runs"]] == job.run_ids()


def test_options_are_checked_before_anything_starts(tmp_path):
    with pytest.raises(ValueError, match="--splits 'random'"):
        pipeline.Options(data_dir=str(tmp_path), splits=("random",))
    with pytest.raises(ValueError, match="epochs=0"):
        pipeline.Options(data_dir=str(tmp_path), config=Config(epochs=0))
    with pytest.raises(ValueError, match="Tai_Chi"):
        pipeline.Options(data_dir=str(tmp_path), config=Config(classes=("Tai_Chi", "Swing")))
    with pytest.raises(FileNotFoundError, match="missing.rar"):
        pipeline.start(pipeline.Options(data_dir=str(tmp_path), source=str(tmp_path / "missing.rar")), tmp_path)
    assert not (tmp_path / ".pipelines").exists()


def test_the_same_options_are_the_same_pipeline_whatever_the_tls_choice(tmp_path):
    options = pipeline.Options(data_dir=str(tmp_path / "data"), seeds=(27, 28))
    assert (
        options.identity()
        == pipeline.Options(data_dir=str(tmp_path / "data"), seeds=(27, 28), insecure_tls=True).identity()
    )
    assert options.identity() != pipeline.Options(data_dir=str(tmp_path / "data"), seeds=(27,)).identity()
    # Every hyperparameter is part of what the pipeline produces; a config's own seed and split are not (each
    # run has its own).
    faster = pipeline.Options(data_dir=str(tmp_path / "data"), seeds=(27, 28), config=Config(batch_size=8))
    assert faster.identity() != options.identity()
    same = pipeline.Options(data_dir=str(tmp_path / "data"), seeds=(27, 28), config=Config(seed=3, split="group"))
    assert same.identity() == options.identity()
    assert pipeline.Options.from_dict(faster.to_dict()) == faster
    assert options.runs() == [
        ("convlstm", "report", 27),
        ("lrcn", "report", 27),
        ("convlstm", "group", 27),
        ("lrcn", "group", 27),
        ("convlstm", "report", 28),
        ("lrcn", "report", 28),
        ("convlstm", "group", 28),
        ("lrcn", "group", 28),
    ]


def test_cli_refuses_bad_seeds_in_one_line(tmp_path):
    result = har(tmp_path, "reproduce", "--seeds", "27,x", "--detach")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "har: error: seeds '27,x': give distinct whole numbers of 0 or more separated by commas, like 27,28,29."
    )


def test_an_old_pipeline_json_with_its_training_settings_at_the_top_still_reads(tmp_path):
    old = {"data_dir": str(tmp_path), "classes": ["TaiChi", "Swing"], "epochs": 3, "sequence_length": 8}
    options = pipeline.Options.from_dict({**old, "image_size": 32, "seeds": [27]})
    assert options.config == Config(classes=("TaiChi", "Swing"), epochs=3, sequence_length=8, image_size=32)


@pytest.mark.slow
def test_reproduce_trains_with_every_hyperparameter_given_and_a_killed_training_reads_with_its_reason(
    demo_dataset, tmp_path
):
    home, source = tmp_path / "home", small_ucf50_folder(demo_dataset, tmp_path / "UCF50")
    flags = ["--batch-size", "2", "--learning-rate", "0.0005", "--patience", "3", "--fast", "--splits", "report"]
    command = ["reproduce", "--source", str(source), *TINY, *flags]
    started = har(home, *command, "--detach")
    assert started.returncode == 0, started.stderr
    (job,) = pipeline.list_pipelines(home / "models")
    second = job.run_ids()[1]

    # The pipeline trains under the supervisor: a SIGKILL of its training process (the out-of-memory killer's
    # way) fails the pipeline with that reason, not a bare "killed".
    wait_for(lambda: any(e["event"] == "batch" and e.get("run") == second for e in job.events()))
    os.kill(job.child_pid(), signal.SIGKILL)
    assert wait_for(lambda: not job.is_alive())
    assert job.state() == "failed" and "SIGKILL" in job.failure() and "out of memory" in job.failure()

    finished = har(home, *command)  # the same command continues it
    assert finished.returncode == 0, finished.stderr[-3000:]
    configs = [json.loads((home / "models" / run / "metadata.json").read_text())["config"] for run in job.run_ids()]
    assert len(configs) == 2  # both models on the report's split
    for config in configs:
        hyperparameters = (config["batch_size"], config["learning_rate"], config["patience"], config["trainer"])
        assert hyperparameters == (2, 0.0005, 3, "twin")
        assert (config["epochs"], config["sequence_length"], config["image_size"]) == (1, 8, 32)


def test_until_cache_is_the_data_pages_job_and_a_second_start_skips_every_stage(demo_dataset, tmp_path):
    source = small_ucf50_folder(demo_dataset, tmp_path / "UCF50")
    options = pipeline.Options(data_dir=str(tmp_path / "data"), source=str(source), config=SMALL_FRAMES, until="cache")
    first = pipeline.start(options, tmp_path / "models")
    assert first.wait(timeout=300) == "finished", first.events()
    assert first.stage_names() == ["extract", "cache"] and first.run_ids() == []
    assert pipeline.status(tmp_path / "models")["stages_done"] == 2
    cache = Path(first.cache())
    assert json.loads((cache / "meta.json").read_text())["class_names"] == list(pipeline.REPORT_CLASSES)
    built = (cache / "frames.npy").stat().st_mtime_ns

    again = pipeline.start(options, tmp_path / "models")
    assert again.id == first.id and again.wait(timeout=300) == "finished"
    assert [(e["stage"], e["status"]) for e in again.events(again.first_event) if e["event"] == "stage"] == [
        ("extract", "skipped"),
        ("cache", "skipped"),
    ]
    assert (cache / "frames.npy").stat().st_mtime_ns == built


def test_ctrl_c_cancels_the_download_and_the_same_command_continues_it(tmp_path):
    body = os.urandom(3 * 1024 * 1024)
    behaviour = Behaviour(body=body, hold_after=1024 * 1024)  # 1 MB, then the server waits: time to press Ctrl-C
    home = tmp_path / "home"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HAR_HOME": str(home)}
    with LocalServer(behaviour, tls=True, name="UCF50.rar") as server:
        command = [
            sys.executable,
            "-m",
            "har",
            "reproduce",
            "--url",
            server.url,
            "--insecure-tls",
            "--until",
            "download",
        ]
        following = subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        job = wait_for(lambda: next(iter(pipeline.list_pipelines(home / "models")), None), timeout=60)
        wait_for(lambda: any(e["event"] == "progress" and e["stage"] == "download" for e in job.events()), timeout=60)
        # The same command while it runs follows the same pipeline; another one is refused.
        same = pipeline.Options(data_dir=str(home / "data"), url=server.url, until="download")
        assert pipeline.start(same, home / "models").id == job.id
        with pytest.raises(JobBusy, match=f"pipeline {job.id} is already running"):
            pipeline.start(pipeline.Options(data_dir=str(home / "data"), url=server.url), home / "models")
        following.send_signal(signal.SIGINT)
        # A cancel is seen when a chunk arrives: if the held server already sent its 1 MB (a busy machine), it
        # waits for the download's 60 s read timeout. Known limit, to fix in har.download.
        _, errors = following.communicate(timeout=150)
        assert following.returncode == 130, errors
        assert f"pipeline {job.id} cancelled; run the same command again to continue it" in errors
        assert job.state() == "cancelled"
        part = home / "data" / "downloads" / "UCF50.rar.part"
        resumed_at = part.stat().st_size
        assert 0 < resumed_at < len(body)

        behaviour.release.set()
        finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
    assert (home / "data" / "downloads" / "UCF50.rar").read_bytes() == body
    assert behaviour.requests == [None, f"bytes={resumed_at}-"]  # continued, not started over


def test_source_demo_trains_on_the_cache_that_har_data_demo_builds(tmp_path):
    refused = har(tmp_path, "reproduce", "--source", "demo", "--classes", "Swing,TaiChi", "--until", "cache")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "har: error: --source demo: the demo has its own four classes; drop --classes."
    )
    refused = har(tmp_path, "reproduce", "--source", "demo", "--export", str(tmp_path / "out"), "--detach")
    assert refused.returncode == 2 and "drop --detach" in refused.stderr
    assert not (tmp_path / "data").exists()

    frames = ["--sequence-length", "8", "--image-size", "32"]
    made = har(tmp_path, "reproduce", "--source", "demo", *frames, "--until", "cache")
    assert made.returncode == 0, made.stderr
    (job,) = pipeline.list_pipelines(tmp_path / "models")
    demo_cache = tmp_path / "data" / "caches" / "demo-T8-S32"
    assert Path(job.cache()) == demo_cache.resolve()
    assert job.options.source == str((tmp_path / "data" / "demo").resolve())
    assert len(find_clips(tmp_path / "data" / "demo")) == 400  # the default demo, 25 groups x 4 clips per class
    meta = json.loads((demo_cache / "meta.json").read_text())
    assert meta["class_names"] == sorted(meta["class_names"]) == list(job.options.config.classes)
    stages = [(e["stage"], e["status"]) for e in job.events() if e["event"] == "stage" and e["status"] != "started"]
    assert stages == [("extract", "done"), ("cache", "done")]
    built = (demo_cache / "frames.npy").stat().st_mtime_ns
    again = har(tmp_path, "reproduce", "--source", "demo", *frames, "--until", "cache")
    assert again.returncode == 0, again.stderr
    assert pipeline.list_pipelines(tmp_path / "models")[0].id == job.id
    assert (demo_cache / "frames.npy").stat().st_mtime_ns == built


def test_a_stage_whose_output_was_deleted_runs_again(demo_dataset, tmp_path):
    source = small_ucf50_folder(demo_dataset, tmp_path / "UCF50")
    options = pipeline.Options(data_dir=str(tmp_path / "data"), source=str(source), config=SMALL_FRAMES, until="cache")
    first = pipeline.start(options, tmp_path / "models")
    assert first.wait(timeout=300) == "finished", first.events()
    shutil.rmtree(first.cache())  # deleted by hand: the record alone must not skip the stage
    again = pipeline.start(options, tmp_path / "models")
    assert again.wait(timeout=300) == "finished", again.events()
    assert [(e["stage"], e["status"]) for e in again.events(again.first_event) if e["event"] == "stage"] == [
        ("extract", "skipped"),
        ("cache", "started"),
        ("cache", "done"),
    ]
    assert (Path(again.cache()) / "meta.json").is_file()
