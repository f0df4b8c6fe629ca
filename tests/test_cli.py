"""The `har` CLI as a user runs it: a real subprocess, real files, and one-line errors for user mistakes."""

import json
import subprocess
import sys
import zipfile

import pytest


def har(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "har", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout, result.stderr


def assert_user_error(code, stderr, *fragments):
    assert code == 2
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("har: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_demo_then_build_then_info(tmp_path):
    code, out, err = har("data", "demo", "--groups", "2", "--clips-per-group", "2", cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / "data" / "demo" / "Swing").is_dir()
    code, out, err = har("data", "build", "--sequence-length", "6", "--image-size", "24", cwd=tmp_path)
    assert code == 0, err
    cache = tmp_path / "data" / "caches" / "demo-T6-S24"
    assert str(cache.relative_to(tmp_path)) in out
    code, out, err = har("data", "info", str(cache), "--json", cwd=tmp_path)
    info = json.loads(out)
    assert info["classes"] == {"HorseRace": 4, "Swing": 4, "TaiChi": 4, "WalkingWithDog": 4}
    assert info["shape"] == [16, 6, 24, 24, 3]


def test_build_from_a_ucf50_layout_archive_and_data_dir_from_the_environment(tmp_path):
    har("--data-dir", str(tmp_path / "d"), "data", "demo", "--groups", "2", "--clips-per-group", "1", cwd=tmp_path)
    archive = tmp_path / "UCF50.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for clip in sorted((tmp_path / "d" / "demo").glob("*/*.avi")):
            handle.write(clip, f"UCF50/{clip.parent.name}/{clip.name}")
    env_cwd = tmp_path / "elsewhere"
    env_cwd.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "har", "data", "build", "--source", str(archive), "--classes", "TaiChi,Swing"],
        cwd=env_cwd,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "HAR_DATA_DIR": str(tmp_path / "e")},
    )
    assert result.returncode == 0, result.stderr
    code, out, _ = har("data", "info", str(tmp_path / "e" / "caches" / "UCF50-T20-S64"), "--json", cwd=tmp_path)
    assert json.loads(out)["classes"] == {"TaiChi": 2, "Swing": 2}


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["data", "build"], ["data/demo", "har data demo"]),
        (["data", "build", "--source", "nowhere"], ["nowhere", "no such dataset"]),
        (["data", "build", "--image-size", "0"], ["image_size=0"]),
        (["data", "info", "."], ["not a frame cache"]),
        (["data", "ucf50", "--classes", "Tai_Chi"], ["Tai_Chi"]),
        (["data", "ucf50", "--classes", "TaiChi", "--source", "missing.rar"], ["missing.rar"]),
        (["data", "demo", "--groups", "0"], ["groups=0"]),
    ],
)
def test_user_mistakes_get_one_line_without_traceback(tmp_path, args, fragments):
    code, _, err = har(*args, cwd=tmp_path)
    assert_user_error(code, err, *fragments)


def test_a_folder_without_class_folders_is_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = har("data", "build", "--source", "empty", cwd=tmp_path)
    assert_user_error(code, err, "holds no class folders")


@pytest.mark.parametrize(
    "args, expected", [([], "usage: har [-h]"), (["data"], "usage: har data [-h] {demo,ucf50,build,info,backbone}")]
)
def test_a_command_without_its_subcommand_shows_its_own_help(tmp_path, args, expected):
    code, out, err = har(*args, cwd=tmp_path)
    assert code == 2 and out.startswith(expected) and "Traceback" not in err


def test_demo_also_builds_the_cache_that_train_reads_by_default(tmp_path):
    from har.datasets import DEMO_CLASSES

    code, out, err = har("data", "demo", "--groups", "1", "--clips-per-group", "1", cwd=tmp_path)
    assert code == 0, err
    assert "data/caches/demo-T20-S64" in out
    code, out, _ = har("data", "info", "data/caches/demo-T20-S64", "--json", cwd=tmp_path)
    assert json.loads(out)["classes"] == {name: 1 for name in DEMO_CLASSES}


@pytest.mark.slow
def test_train_builds_the_missing_demo_cache_before_starting(tmp_path):
    from har import jobs

    code, _, err = har("data", "demo", "--groups", "1", "--clips-per-group", "1", "--no-cache", cwd=tmp_path)
    assert code == 0 and not (tmp_path / "data" / "caches").exists(), err
    code, out, err = har("train", "--model", "lrcn", "--epochs", "1", "--detach", cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / "data" / "caches" / "demo-T20-S64" / "meta.json").is_file()
    (job,) = jobs.list_jobs(tmp_path / "models")
    assert job.wait(300) == "finished"
    metadata = json.loads((tmp_path / "models" / job.planned_runs()[0].id / "metadata.json").read_text())
    assert metadata["network"] == "plain" and metadata["config"]["trainer"] == "plain"  # by default: model.fit


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["predict", "missing.mp4"], ["missing.mp4", "no such file"]),
        (["timeline", "missing.mp4", "--out", "t.csv"], ["missing.mp4", "no such file"]),
        (["timeline", "clip.txt", "--out", "t.txt"], ["--out t.txt", ".csv or .json"]),
        (["timeline", "clip.txt", "--out", "nowhere/t.csv"], ["nowhere", "does not exist"]),
    ],
)
def test_arguments_are_checked_before_tensorflow_is_imported(tmp_path, args, fragments):
    (tmp_path / "clip.txt").write_text("not checked for content before --out")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "har", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    imports = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert not any("tensorflow" in line or "keras" in line for line in imports)
    message = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert_user_error(result.returncode, "\n".join(message), *fragments)


def test_a_text_file_named_like_a_video_gets_one_line_without_opencv_warnings(tmp_path, trained):
    (tmp_path / "notes.avi").write_text("plain text, not a video\n" * 20)
    code, _, err = har("--models-dir", str(trained[2]), "predict", "notes.avi", cwd=tmp_path)
    assert_user_error(code, err, "notes.avi", "cannot be opened")


def test_run_by_model_name_means_its_latest_finished_run(tmp_path, trained):
    from tests.media import indexed_frames, write_with_opencv

    run, _, models_dir = trained
    clip = write_with_opencv(tmp_path / "clip.avi", indexed_frames(12))
    code, out, err = har("--models-dir", str(models_dir), "predict", str(clip), "--run", "lrcn", "--json", cwd=tmp_path)
    assert code == 0, err
    assert [result["run_id"] for result in json.loads(out)["runs"]] == [run.name]
    assert json.loads(out)["runs"][0]["problems"] == []
    short = write_with_opencv(tmp_path / "short.avi", indexed_frames(5))
    code, out, err = har("--models-dir", str(models_dir), "predict", str(short), "--run", "lrcn", cwd=tmp_path)
    assert code == 0 and out.startswith(f"lrcn ({run.name}): ")
    assert err.strip() == (
        f"har: warning: {short}: Only 5 distinct frames for the 8 the model takes: the last one is repeated 3 times."
    )
    code, _, err = har("--models-dir", str(models_dir), "predict", str(clip), "--run", "convlstm", cwd=tmp_path)
    assert_user_error(code, err, "no finished convlstm run")
