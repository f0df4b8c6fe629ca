"""The fault suite: hostile files, a crashing and a hanging decoder, broken and tampered runs, kill -9 of
training at every stage, concurrent callers. The README's fault table counts what is injected here (with
the archive and download faults of test_archives.py and test_download.py)."""

import json
import os
import shutil
import signal
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from har import jobs
from har.config import Config
from har.datasets import find_clips
from har.jobs import list_all_runs
from har.portable import export_run, import_run
from har.runs import list_runs
from har.sandbox import decode_untrusted
from har.video import VideoError
from tests.media import indexed_frames, write_with_ffmpeg
from tests.test_video import bad_files


def crash(*args, **kwargs):
    os.abort()


def hang(*args, **kwargs):
    while True:
        pass


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, demo_dataset):
    folder = tmp_path_factory.mktemp("hostile")
    good_avi = find_clips(demo_dataset)[0].path
    good_mp4 = write_with_ffmpeg(folder / "good.mp4", indexed_frames(30))
    files = bad_files(folder, good_mp4, good_avi)
    files["huge.mp4"] = write_with_ffmpeg(folder / "huge.mp4", indexed_frames(2, width=1920, height=1088))
    files["long.mp4"] = write_with_ffmpeg(folder / "long.mp4", indexed_frames(300), fps=25)
    files["script.avi"] = folder / "script.avi"
    files["script.avi"].write_bytes(b"#!/bin/sh\nrm -rf /\n")
    files["zip.mp4"] = folder / "zip.mp4"
    with zipfile.ZipFile(files["zip.mp4"], "w") as archive:
        archive.writestr("a.txt", "x")
    return files


HOSTILE = [
    "empty.mp4",
    "text.mp4",
    "truncated.mp4",
    "random.avi",
    "image.mp4",
    "header_only.avi",
    "script.avi",
    "zip.mp4",
    "huge.mp4",
    "long.mp4",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_uploads_fail_one_request_with_a_message(hostile, name):
    with pytest.raises(VideoError) as raised:
        decode_untrusted(hostile[name], timeout=30, max_seconds=10, max_pixels=1280 * 720)
    assert str(hostile[name]) in str(raised.value) and "\n" not in str(raised.value)


# The crash gets time to happen on a busy machine (a child's start can take over a second); the hang gets 1 s.
@pytest.mark.parametrize("decoder, timeout, message", [(crash, 60, "crashed"), (hang, 1, "did not finish")])
def test_a_crashing_or_hanging_decoder_fails_that_request_and_the_process_lives_on(hostile, decoder, timeout, message):
    with pytest.raises(VideoError, match=message):
        decode_untrusted(hostile["long.mp4"], timeout=timeout, decoder=decoder)
    assert decode_untrusted(hostile["long.mp4"]).frames.shape == (20, 64, 64, 3)  # still serving


def test_broken_runs_are_listed_with_their_reason_and_the_others_keep_working(trained, tmp_path):
    run, _, _ = trained
    for name in ("good", "corrupt", "no-metadata", "mismatched", "no-model"):
        shutil.copytree(run, tmp_path / name)
        metadata = json.loads((tmp_path / name / "metadata.json").read_text())
        metadata["run_id"] = name
        (tmp_path / name / "metadata.json").write_text(json.dumps(metadata))
    (tmp_path / "corrupt" / "model.keras").write_bytes(os.urandom(4096))
    (tmp_path / "no-metadata" / "metadata.json").unlink()
    metadata = json.loads((tmp_path / "mismatched" / "metadata.json").read_text())
    metadata["classes"] = metadata["classes"][:3]
    (tmp_path / "mismatched" / "metadata.json").write_text(json.dumps(metadata))
    (tmp_path / "no-model" / "model.keras").unlink()
    runs = {run.id: run for run in list_runs(tmp_path)}
    assert runs["good"].status == "finished"
    assert runs["corrupt"].status == "broken" and "damaged" in runs["corrupt"].reason
    assert runs["no-metadata"].status == "broken" and "metadata" in runs["no-metadata"].reason
    assert runs["mismatched"].status == "broken"
    assert runs["mismatched"].reason.endswith("-> 4 classes but metadata.json says [8, 32, 32, 3] -> 3")
    assert runs["no-model"].status == "broken" and "missing" in runs["no-model"].reason
    from har.inference import Predictor

    assert Predictor.from_run("good", tmp_path).predict_frames(np.zeros((8, 32, 32, 3), np.uint8)).shape == (4,)
    with pytest.raises(ValueError, match="broken"):
        Predictor.from_run("corrupt", tmp_path)


def test_export_and_import_move_a_run_without_loading_a_foreign_keras_file(trained, tmp_path):
    from har.inference import Predictor

    run, _, models_dir = trained
    archive = export_run(run.name, tmp_path / "run.zip", models_dir)
    imported = import_run(archive, tmp_path / "elsewhere")
    assert imported.status == "finished" and imported.id == run.name
    frames = np.random.default_rng(0).integers(0, 256, (3, 8, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        Predictor.from_run(run.name, tmp_path / "elsewhere").predict_frames(frames),
        Predictor.from_run(run, models_dir).predict_frames(frames),
        atol=1e-6,
    )
    with pytest.raises(FileExistsError):
        import_run(archive, tmp_path / "elsewhere")


def tampered(source, target, change):
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            data = change(info.filename, data, copy)
            if data is not None:
                copy.writestr(info.filename, data)
    return target


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda name, data, copy: copy.writestr("model.keras", b"x") or data, "exactly"),
        (lambda name, data, copy: data.replace(b'"lrcn"', b'"evil"') if name == "metadata.json" else data, "invalid"),
        (
            lambda name, data, copy: data.replace(b'"lrcn-tiny"', b'"../../x"') if name == "metadata.json" else data,
            "invalid",
        ),
        (
            lambda name, data, copy: data.replace(b'"lrcn"', b'"convlstm"', 1) if name == "metadata.json" else data,
            "do not fit",
        ),
        (lambda name, data, copy: b"{" if name == "metadata.json" else data, "not a run"),
    ],
)
def test_tampered_exports_are_refused(trained, tmp_path, change, message):
    run, _, models_dir = trained
    archive = export_run(run.name, tmp_path / "run.zip", models_dir)
    bad = tampered(archive, tmp_path / "bad.zip", change)
    with pytest.raises(ValueError, match=message):
        import_run(bad, tmp_path / "models")
    written = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if not path.is_dir())
    assert written == ["bad.zip", "run.zip"]  # nothing of the refused archive reached the disk
    assert import_run(archive, tmp_path / "models").status == "finished"  # the untampered one goes in


# Where a kill lands: (event to wait for, which model's run it is in, which runs of the job must survive).
KILL_POINTS = [
    ("started", "convlstm", {}),  # building the first model
    ("batch", "convlstm", {}),  # mid-epoch
    ("epoch", "convlstm", {}),  # just after an epoch's state was saved
    ("started", "lrcn", {"convlstm": "finished"}),  # between two models
    ("batch", "lrcn", {"convlstm": "finished"}),
]


@pytest.mark.slow
def test_kill_9_at_every_stage_never_loses_a_run_or_leaves_the_lock(trained, tiny_cache, tmp_path):
    from har.inference import Predictor

    saved = trained[0].name
    shutil.copytree(trained[0], tmp_path / saved)  # an earlier run that no kill may touch
    before = (tmp_path / saved / "model.keras").read_bytes()
    for kind, model, survivors in KILL_POINTS:
        job = jobs.start(
            tiny_cache, ["convlstm", "lrcn"], tmp_path, config=Config(epochs=2, batch_size=8, trainer="twin")
        )
        wait_for_event(job, kind, model)
        os.kill(job.pid(), signal.SIGKILL)
        assert job.wait(60) == "killed", (kind, model)
        assert jobs.current(tmp_path) is None  # the lock went with the job
        runs = {run.id: run.status for run in list_all_runs(tmp_path) if run.id.startswith(job.id)}
        expected = {f"{job.id}-{name}": status for name, status in survivors.items()} | {f"{job.id}-{model}": "failed"}
        assert runs == expected, (kind, model)
        assert not (tmp_path / f"{job.id}-{model}").exists()  # failed from the job's events: no half-written run
        assert {run.id: run.status for run in list_runs(tmp_path)}[saved] == "finished"
    assert (tmp_path / saved / "model.keras").read_bytes() == before
    Predictor.from_run(saved, tmp_path)


@pytest.mark.slow
def test_a_trainer_killed_like_the_oom_killer_does_fails_its_run_with_a_message(tiny_cache, tmp_path):
    """The kernel's out-of-memory killer sends SIGKILL to the biggest process: the trainer, not the server."""
    job = jobs.start(tiny_cache, ["convlstm", "lrcn"], tmp_path, config=Config(epochs=30, batch_size=4, trainer="twin"))
    wait_for_event(job, "batch")
    os.kill(job.child_pid(), signal.SIGKILL)
    assert job.wait(60) == "failed"
    assert "SIGKILL" in job.failure() and "out of memory" in job.failure()
    (run,) = [run for run in list_all_runs(tmp_path) if run.model == "convlstm"]
    assert run.status == "failed" and "out of memory" in run.reason
    assert jobs.current(tmp_path) is None
    assert (
        jobs.start(tiny_cache, ["lrcn"], tmp_path, config=Config(epochs=1, batch_size=8, trainer="twin")).wait(300)
        == "finished"
    )


@pytest.mark.slow
def test_killing_the_supervisor_takes_the_trainer_with_it(tiny_cache, tmp_path):
    job = jobs.start(tiny_cache, ["convlstm"], tmp_path, config=Config(epochs=30, batch_size=4, trainer="twin"))
    wait_for_event(job, "batch")
    trainer = job.child_pid()
    os.kill(job.pid(), signal.SIGKILL)
    assert job.wait(30) == "killed"
    deadline = time.monotonic() + 30
    while Path(f"/proc/{trainer}").exists() and open(f"/proc/{trainer}/stat").read().split()[2] != "Z":
        assert time.monotonic() < deadline, "the trainer outlived its supervisor"
        time.sleep(0.1)


def wait_for_event(job, kind, model=None, timeout=300):
    deadline = time.monotonic() + timeout
    while not any(event["event"] == kind and model in (None, event.get("model")) for event in job.events()):
        assert job.is_alive() and time.monotonic() < deadline, job.events()
        time.sleep(0.02)


@pytest.mark.slow
def test_predicting_while_a_job_trains(trained, tiny_cache, tmp_path, demo_dataset):
    from har.inference import Predictor

    run, _, models_dir = trained
    job = jobs.start(
        tiny_cache, ["convlstm"], tmp_path, config=Config(epochs=30, patience=30, batch_size=4, trainer="twin")
    )
    try:
        predictor = Predictor.from_run(run, models_dir)
        clips = [clip.path for clip in find_clips(demo_dataset)[::32]]
        alone = [predictor.predict_clip(path) for path in clips]
        wait_for_event(job, "batch")
        started = time.time()
        results = []

        def predict_while_training():
            # Each thread predicts until the job has reported progress made after the threads began: the two
            # really ran at the same time, however fast this machine is.
            deadline = time.monotonic() + 300
            while True:
                answers = [predictor.predict_clip(p) for p in clips]
                if any(e["event"] == "batch" and e["time"] > started for e in job.events()):
                    break
                assert time.monotonic() < deadline, "the job made no progress while the threads predicted"
            results.append(answers)

        threads = [threading.Thread(target=predict_while_training) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [alone] * 8
    finally:
        job.cancel()
        assert job.wait(120) == "cancelled"


@pytest.mark.slow
def test_a_server_killed_while_its_job_trains_leaves_the_job_running_and_a_new_server_reattaches(
    tiny_cache, tmp_path, monkeypatch
):
    """The app server starts a job and dies (kill -9, as a Space restart does); the job trains on, and the Train
    page of a fresh server shows it running with its Cancel button."""
    import subprocess
    import sys

    from streamlit.testing.v1 import AppTest

    code = (
        f"from har import jobs; from har.config import Config; "
        f"job = jobs.start({str(tiny_cache)!r}, ['convlstm'], {str(tmp_path)!r}, config=Config(epochs=30, batch_size=4, trainer='twin')); "
        "print(job.id, flush=True); import time; time.sleep(600)"
    )
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    job_id = server.stdout.readline().strip()
    job = jobs.Job(tmp_path / ".jobs" / job_id)
    wait_for_event(job, "batch")
    server.kill()  # the server goes; the job was started in its own session
    server.wait(30)
    try:
        assert job.is_alive() and jobs.current(tmp_path).id == job_id
        monkeypatch.setenv("HAR_MODELS_DIR", str(tmp_path))
        monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
        app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"), default_timeout=120)
        app.switch_page("pages/train.py").run()
        assert not app.exception
        assert any(header.value == f"Job {job_id}: running" for header in app.subheader)
        assert "Cancel training" in [button.label for button in app.button]
    finally:
        job.cancel()
        assert job.wait(120) == "cancelled"
