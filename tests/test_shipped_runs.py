"""Shipped runs: exported on one machine, imported on another and bound to its own copy of the data; one run per
model answers, chosen by validation loss; `har data demo` imports them; and the real ones in pretrained/.

The last group (`test_pretrained_*`) reads the repository's pretrained/ folder, whatever zips it holds, and fails
when it holds none: the README's start command promises them. `HAR_SHIPPED_RUNS=DIR` points those tests at
another folder (a stand-in made with `har export`) to check the tests themselves.
"""

import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from har.config import Config
from har.datasets.demo import DEMO_CLASSES, VERSION, clips_fingerprint
from har.portable import export_run, import_run
from har.runs import answering_runs, find_run, list_runs, trained_on_demo
from har.services import select_runs

REPOSITORY = Path(__file__).resolve().parents[1]
SHIPPED = Path(os.environ.get("HAR_SHIPPED_RUNS") or REPOSITORY / "pretrained")


def har(*args, home: Path, pretrained: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """`har ARGS` as a user runs it, in a fresh HAR_HOME, importing shipped runs only from `pretrained`."""
    env = {**os.environ, "HAR_HOME": str(home), "HAR_PRETRAINED": str(pretrained)}
    for name in ("HAR_DATA_DIR", "HAR_MODELS_DIR"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "har", *args], cwd=home, env=env, capture_output=True, text=True, timeout=timeout
    )


def copy_run(source: Path, models_dir: Path, run_id: str, **changes) -> Path:
    """A copy of a run folder under another id, its metadata changed by `changes` (top-level keys)."""
    target = models_dir / run_id
    shutil.copytree(source, target)
    metadata = json.loads((target / "metadata.json").read_text())
    metadata.update(run_id=run_id, **changes)
    (target / "metadata.json").write_text(json.dumps(metadata))
    return target


@pytest.fixture(scope="module")
def foreign_export(trained, tiny_cache, tmp_path_factory):
    """The tiny LRCN run exported as another machine would: trained on a cache at a path that does not exist
    here (a copy of the tiny cache, removed after the export read it). Returns (zip, its metadata)."""
    run, _, _ = trained
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    cache = elsewhere / "caches" / tiny_cache.name
    shutil.copytree(tiny_cache, cache)
    models_dir = elsewhere / "models"
    metadata = json.loads((run / "metadata.json").read_text())
    copy_run(run, models_dir, "lrcn-foreign", dataset={**metadata["dataset"], "cache": str(cache)})
    archive = export_run("lrcn-foreign", elsewhere / "lrcn-foreign.zip", models_dir)
    shutil.rmtree(cache)
    with zipfile.ZipFile(archive) as handle:
        return archive, json.loads(handle.read("metadata.json"))


def test_an_export_records_what_the_data_is_not_only_where_it_was(foreign_export, tiny_cache, demo_dataset):
    _, metadata = foreign_export
    dataset = metadata["dataset"]
    assert dataset["name"] == "demo"
    assert dataset["demo"] == {
        "name": "demo",
        "groups": 8,
        "clips_per_group": 4,
        "seed": 27,
        "version": VERSION,
        "fingerprint": clips_fingerprint(demo_dataset),
    }
    assert dataset["content"] == json.loads((tiny_cache / "meta.json").read_text())["content"]
    assert (dataset["classes"], dataset["sequence_length"], dataset["image_size"]) == (sorted(DEMO_CLASSES), 8, 32)


@pytest.fixture(scope="module")
def fresh_home(tmp_path_factory):
    """A fresh HAR_HOME where the fixture's demo was made again by `har data demo` (8 groups x 4 clips, as the
    fixture's) and its cache built at the tiny settings by `har data build`; no shipped run imported."""
    home = tmp_path_factory.mktemp("fresh-home")
    nothing = tmp_path_factory.mktemp("no-pretrained")
    made = har("data", "demo", "--groups", "8", "--clips-per-group", "4", "--no-cache", home=home, pretrained=nothing)
    assert made.returncode == 0, made.stderr
    built = har("data", "build", "--sequence-length", "8", "--image-size", "32", home=home, pretrained=nothing)
    assert built.returncode == 0, built.stderr
    return home, nothing


def test_an_import_binds_to_the_local_demo_cache_and_har_evaluate_works(foreign_export, fresh_home):
    archive, exported = foreign_export
    home, nothing = fresh_home
    imported = har("import", str(archive), home=home, pretrained=nothing)
    assert imported.returncode == 0, imported.stderr
    local = (home / "data" / "caches" / "demo-T8-S32").resolve()
    assert f"bound to the local frame cache {local} (the same frames)" in imported.stdout
    dataset = find_run(home / "models", "lrcn-foreign").metadata["dataset"]
    assert dataset["cache"] == str(local)
    assert dataset["fingerprint"] == json.loads((local / "meta.json").read_text())["fingerprint"]
    assert dataset["fingerprint"] != exported["dataset"]["fingerprint"]  # other files (times), the same clips
    assert dataset["trained_on"] == {key: exported["dataset"][key] for key in ("cache", "fingerprint", "content")}
    assert dataset["same_frames"] is True
    evaluated = har("evaluate", "lrcn-foreign", "--json", home=home, pretrained=nothing)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["test_clips"] == exported["split"]["test"]
    assert result["accuracy"] == pytest.approx(exported["test"]["accuracy"], abs=1 / result["test_clips"])


def test_other_decoded_frames_bind_but_say_they_differ(foreign_export, tiny_cache, tmp_path):
    archive, _ = foreign_export
    cache = tmp_path / "data" / "caches" / tiny_cache.name
    shutil.copytree(tiny_cache, cache)
    frames = np.load(cache / "frames.npy", mmap_mode="r+")
    frames[0, 0, 0, 0] ^= 1  # one pixel of one frame decoded differently, as another OpenCV build may
    frames.flush()
    del frames
    meta = json.loads((cache / "meta.json").read_text())
    del meta["content"]  # a cache built before contents were recorded: computed at import
    (cache / "meta.json").write_text(json.dumps(meta))
    dataset = import_run(archive, tmp_path / "models", tmp_path / "data").metadata["dataset"]
    assert dataset["cache"] == str(cache.resolve())
    assert dataset["same_frames"] is False


def test_without_a_matching_cache_the_run_imports_with_one_log_line(
    foreign_export, tiny_cache, demo_dataset, tmp_path, caplog
):
    archive, exported = foreign_export
    near_miss = tmp_path / "data" / "caches" / "demo-T8-S32"
    shutil.copytree(tiny_cache, near_miss)
    meta = json.loads((near_miss / "meta.json").read_text())
    meta["class_names"] = meta["class_names"][::-1]  # the same clips, the labels in another order: no match
    (near_miss / "meta.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.INFO, logger="har.portable"):
        run = import_run(archive, tmp_path / "models", tmp_path / "data")
    lines = [record.getMessage() for record in caplog.records if record.name == "har.portable"]
    assert len(lines) == 1 and "lrcn-foreign" in lines[0] and "no frame cache" in lines[0], lines
    assert run.status == "finished"
    assert (
        run.metadata["dataset"]["cache"] == exported["dataset"]["cache"] and "trained_on" not in run.metadata["dataset"]
    )
    from har.services import predict_file

    clip = sorted(demo_dataset.glob("Swing/*.avi"))[0]
    (answer,) = predict_file(clip, ["lrcn-foreign"], tmp_path / "models").runs
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)  # it still predicts


def test_the_answering_run_has_the_lowest_validation_loss_not_the_best_test_accuracy(trained, tmp_path):
    run, _, _ = trained
    models_dir = tmp_path / "models"
    old = copy_run(run, models_dir, "old-lrcn", job="job-old", history={"val_loss": [0.05]}, test={"accuracy": 1.0})
    os.utime(old / "metadata.json", (1_000_000, 1_000_000))  # saved long ago: another job, not a candidate
    copy_run(
        run, models_dir, "lrcn-s27", job="job-new", seed=27, history={"val_loss": [0.9, 0.6]}, test={"accuracy": 0.95}
    )
    copy_run(
        run,
        models_dir,
        "lrcn-s28",
        job="job-new",
        seed=28,
        history={"val_loss": [0.8, 0.3, 0.4]},
        test={"accuracy": 0.55},
    )
    (chosen,) = answering_runs(models_dir)
    assert chosen.id == "lrcn-s28"
    assert chosen.choice == "chosen by the lowest validation loss (0.300) of its job's 2 runs (seed 28, report split)"
    assert [r.id for r in select_runs(None, models_dir)] == ["lrcn-s28"]
    assert [r.id for r in select_runs(["lrcn"], models_dir)] == ["lrcn-s28"]
    from app.ui import run_description

    assert run_description(chosen).endswith("; " + chosen.choice)


def test_a_run_without_a_job_answers_alone(trained, tmp_path):
    run, _, _ = trained
    copy_run(run, tmp_path / "models", "solo", job=None)
    (chosen,) = answering_runs(tmp_path / "models")
    assert chosen.id == "solo" and chosen.choice.startswith("the newest finished run of this model")


def test_the_demo_notice_shows_only_for_demo_trained_runs(trained, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    run, _, _ = trained
    metadata = json.loads((run / "metadata.json").read_text())
    demo_dir, ucf50_dir = tmp_path / "demo-models", tmp_path / "ucf50-models"
    copy_run(run, demo_dir, "lrcn-demo")
    copy_run(run, ucf50_dir, "lrcn-ucf50", dataset={**metadata["dataset"], "name": "UCF50"})
    assert trained_on_demo(find_run(demo_dir, "lrcn-demo")) and not trained_on_demo(find_run(ucf50_dir, "lrcn-ucf50"))
    notices = {}
    for models_dir in (demo_dir, ucf50_dir):
        monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("HAR_MODELS_DIR", str(models_dir))
        app = AppTest.from_file(str(REPOSITORY / "streamlit_app.py"), default_timeout=120)
        app.switch_page("pages/explain.py")
        app.run()
        assert not app.exception, [e.value for e in app.exception]
        notices[models_dir.name] = [info.value for info in app.info if "stick-figure demo" in info.value]
        assert any("the newest finished run of this model" in m.value for m in app.markdown)
    assert len(notices["demo-models"]) == 1 and notices["ucf50-models"] == []


@pytest.fixture(scope="module")
def stand_in_folder(trained, tmp_path_factory):
    """A pretrained/ folder of two exported fixture runs under their own ids."""
    run, _, _ = trained
    models_dir, folder = tmp_path_factory.mktemp("stand-in-models"), tmp_path_factory.mktemp("stand-in")
    for seed in (27, 28):
        copy_run(run, models_dir, f"lrcn-stand-in-s{seed}", job="stand-in", seed=seed)
        export_run(f"lrcn-stand-in-s{seed}", folder / f"lrcn-stand-in-s{seed}.zip", models_dir)
    return folder


def test_har_data_demo_imports_the_shipped_runs_once_and_trains_nothing(stand_in_folder, tmp_path):
    settings = ("data", "demo", "--groups", "2", "--clips-per-group", "2")
    first = har(*settings, home=tmp_path, pretrained=stand_in_folder)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    (line,) = [line for line in first.stdout.splitlines() if line.startswith("imported ")]
    assert line.startswith("imported 2 shipped runs (") and "`har runs` lists them" in line
    listed = har("runs", "--json", home=tmp_path, pretrained=stand_in_folder)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert sorted((r["id"], r["status"]) for r in runs) == [
        ("lrcn-stand-in-s27", "finished"),
        ("lrcn-stand-in-s28", "finished"),
    ]
    jobs = tmp_path / "models" / ".jobs"
    assert not jobs.exists() or not any(jobs.iterdir())
    second = har(*settings, home=tmp_path, pretrained=stand_in_folder)
    assert second.returncode == 0, second.stderr
    assert "imported" not in second.stdout
    assert len(list_runs(tmp_path / "models")) == 2


def test_har_data_demo_with_nothing_shipped_says_nothing_more(tmp_path):
    nothing = tmp_path / "pretrained"
    nothing.mkdir()
    made = har("data", "demo", "--groups", "1", "--clips-per-group", "1", home=tmp_path, pretrained=nothing)
    assert made.returncode == 0, made.stderr
    assert [line.split(":")[0] for line in made.stdout.splitlines()] == ["demo dataset ready", "frame cache ready"]


# The shipped runs: whatever pretrained/ holds (`SHIPPED`).


def shipped_metadata() -> dict[Path, dict]:
    """Every shipped zip's metadata; fails when there is none."""
    archives = sorted(SHIPPED.glob("*.zip"))
    assert archives, (
        f"{SHIPPED} holds no shipped runs (*.zip): the README's start command promises them; make them with "
        "`har reproduce --source demo --seeds 27,28,29 --export pretrained/`."
    )
    metadata = {}
    for archive in archives:
        with zipfile.ZipFile(archive) as handle:
            metadata[archive] = json.loads(handle.read("metadata.json"))
    return metadata


def test_pretrained_runs_are_both_models_times_three_seeds_times_both_splits():
    runs = shipped_metadata().values()
    found = sorted((m["model"], m["seed"], m["split"]["name"]) for m in runs)
    assert found == sorted(itertools.product(("convlstm", "lrcn"), (27, 28, 29), ("report", "group"))), found
    assert len({m["job"] for m in runs}) == 1  # one `har reproduce`: one job, so each model's 6 runs compete


def test_pretrained_runs_name_the_default_demo_and_its_fingerprint():
    for archive, metadata in shipped_metadata().items():
        dataset = metadata["dataset"]
        assert dataset.get("name") == "demo", f"{archive.name}: trained on {dataset.get('name')!r}, not the demo"
        demo = dataset["demo"]
        assert (demo["groups"], demo["clips_per_group"], demo["seed"], demo["version"]) == (25, 4, 27, VERSION), (
            f"{archive.name}: trained on a demo of {demo}, not the default one `har data demo` makes"
        )
        assert len(demo["fingerprint"]) == 64 and len(dataset["content"]) == 64, archive.name
        assert (dataset["classes"], dataset["sequence_length"], dataset["image_size"]) == (sorted(DEMO_CLASSES), 20, 64)
        # Through Config: a field added since the runs were made (backbone_weights) reads as its default.
        assert Config.from_dict(metadata["config"]) == Config(
            classes=tuple(dataset["classes"]), seed=metadata["seed"], split=metadata["split"]["name"]
        ), f"{archive.name}: not the report's recipe"


def test_pretrained_runs_import_with_the_reports_layer_tables(tmp_path):
    import keras

    from har.models import layer_table
    from har.report import REPORT_LAYERS, REPORT_RESULTS

    for archive in shipped_metadata():
        run = import_run(archive, tmp_path / "models")
        assert run.status == "finished", f"{archive.name}: {run.reason}"
        model = keras.saving.load_model(run.path / "model.keras", compile=False)
        assert layer_table(model) == REPORT_LAYERS[run.model], archive.name
        assert model.count_params() == REPORT_RESULTS[run.model]["parameters"], archive.name


def as_on_another_machine(archive: Path, out: Path) -> None:
    """A copy of a shipped zip whose recorded frame cache does not exist here, as on any machine but the one that
    trained it (here it may be this one, and an import would then keep that cache rather than the fresh one)."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(out, "w") as copy:
        metadata = json.loads(source.read("metadata.json"))
        metadata["dataset"]["cache"] = "/another-machine" + metadata["dataset"]["cache"]
        copy.writestr("metadata.json", json.dumps(metadata))
        copy.writestr("model.weights.h5", source.read("model.weights.h5"))


@pytest.fixture(scope="module")
def shipped_home(tmp_path_factory):
    """A fresh HAR_HOME after the README's start step `har data demo` (the demo the shipped runs name: the
    default one for the real runs), which imports the shipped runs as a fresh clone on another machine would
    (`as_on_another_machine`)."""
    metadata = shipped_metadata()
    moved = tmp_path_factory.mktemp("shipped-elsewhere")
    for archive in metadata:
        as_on_another_machine(archive, moved / archive.name)
    demos = {json.dumps(m["dataset"].get("demo"), sort_keys=True) for m in metadata.values()}
    sizes = {(m["sequence_length"], m["image_size"]) for m in metadata.values()}
    assert len(demos) == 1 and len(sizes) == 1, f"the shipped runs name several demos: {demos} {sizes}"
    demo, (length, size) = json.loads(demos.pop()) or {}, sizes.pop()
    home = tmp_path_factory.mktemp("shipped-home")
    settings = [
        f"--{key.replace('_', '-')}={demo[key]}" for key in ("groups", "clips_per_group", "seed") if key in demo
    ]
    if (length, size) != (Config.sequence_length, Config.image_size):  # a stand-in's: its cache first
        made = har("data", "demo", *settings, "--no-cache", home=home, pretrained=SHIPPED)
        assert made.returncode == 0, made.stderr
        built = har(
            "data", "build", f"--sequence-length={length}", f"--image-size={size}", home=home, pretrained=SHIPPED
        )
        assert built.returncode == 0, built.stderr
    made = har("data", "demo", *settings, home=home, pretrained=moved, timeout=1200)
    assert made.returncode == 0, made.stderr
    return home, made.stdout, metadata


@pytest.mark.slow
def test_pretrained_runs_were_trained_on_this_very_demo(shipped_home):
    home, output, metadata = shipped_home
    assert f"imported {len(metadata)} shipped runs (trained on this demo)" in output, output
    here = clips_fingerprint(home / "data" / "demo")
    assert json.loads((home / "data" / "demo" / "demo.json").read_text())["fingerprint"] == here
    for archive, recorded in metadata.items():
        assert recorded["dataset"]["demo"]["fingerprint"] == here, (
            f"{archive.name}: the demo generated here differs byte for byte from the one it was trained on: "
            "this machine's OpenCV (its XVID encoder) writes other bytes, so scores here are not the recorded ones"
        )


@pytest.mark.slow
def test_pretrained_runs_score_their_recorded_test_accuracy_on_a_fresh_demo(shipped_home):
    from har.evaluation import evaluate

    home, _, metadata = shipped_home
    for archive, recorded in metadata.items():
        run = find_run(home / "models", recorded["run_id"])
        assert "trained_on" in run.metadata["dataset"], f"{archive.name}: not bound to the fresh demo's cache"
        result = evaluate(run, home / "models", latency_repeats=1)
        assert result["test_clips"] == recorded["split"]["test"], archive.name
        assert abs(result["accuracy"] - recorded["test"]["accuracy"]) <= 1 / result["test_clips"] + 1e-9, (
            f"{archive.name}: {result['accuracy']:.4f} here, {recorded['test']['accuracy']:.4f} recorded "
            f"(same frames: {run.metadata['dataset']['same_frames']})"
        )
