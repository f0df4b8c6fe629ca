"""Real TensorFlow training on a tiny real cache: learning, events, saving, jobs, cancel, kill, resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from har import jobs
from har.config import Config
from har.jobs import list_all_runs
from har.runs import find_run, list_runs

TINY = Config(epochs=2, batch_size=8)
FAST = TINY.replace(trainer="twin")  # for tests of job mechanics, not of the trainer: har's faster twin
pytestmark = pytest.mark.slow  # every test here trains for real


def wait_for(job, kind, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(event["event"] == kind for event in job.events()):
            return
        if not job.is_alive():
            raise AssertionError(f"job ended before a {kind!r} event: {job.events()}")
        time.sleep(0.1)
    raise AssertionError(f"no {kind!r} event within {timeout} s")


def test_a_tiny_run_on_demo_data_learns_above_chance(trained):
    run, _, _ = trained
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["status"] == "finished"
    assert metadata["test"]["accuracy"] > 0.5  # four classes: chance is 0.25
    assert metadata["history"]["loss"][-1] < metadata["history"]["loss"][0]


def test_everything_the_run_used_is_saved_beside_the_model(trained, tiny_cache):
    run, _, _ = trained
    assert {"events.jsonl", "metadata.json", "model.keras"} <= {p.name for p in run.iterdir()}
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["config"]["seed"] == 27 and metadata["config"]["batch_size"] == 4
    assert metadata["classes"] == ["HorseRace", "Swing", "TaiChi", "WalkingWithDog"]
    assert (metadata["sequence_length"], metadata["image_size"]) == (8, 32)
    assert metadata["dataset"]["fingerprint"] == json.loads((tiny_cache / "meta.json").read_text())["fingerprint"]
    assert metadata["split"] == {"name": "report", "train": 76, "validation": 20, "test": 32}
    assert {"keras", "tensorflow", "numpy", "python"} <= set(metadata["versions"])
    assert metadata["epochs_run"] == len(metadata["history"]["val_loss"]) and metadata["training_seconds"] > 0


def test_events_arrive_in_order(trained):
    _, events, _ = trained
    kinds = [event["event"] for event in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert set(kinds) <= {"started", "batch", "epoch", "early_stop", "finished"}
    epochs = [event["epoch"] for event in events if event["event"] == "epoch"]
    assert epochs == list(range(1, len(epochs) + 1))
    batches = [(event["epoch"], event["step"]) for event in events if event["event"] == "batch"]
    assert batches == sorted(batches) and batches[-1][1] == events[0]["steps"]
    assert all(json.loads(json.dumps(event)) == event for event in events)
    epoch = next(event for event in events if event["event"] == "epoch")
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(epoch)


def test_save_reload_gives_identical_predictions(trained, tiny_cache):
    from har.datasets import load_cache
    from har.inference import Predictor

    run, _, models_dir = trained
    first, second = Predictor.from_run(run, models_dir), Predictor.from_run(run.name, models_dir)
    frames = load_cache(tiny_cache).frames[:5]
    np.testing.assert_array_equal(first.predict_frames(frames), second.predict_frames(frames))
    np.testing.assert_allclose(first.predict_frames(frames).sum(axis=1), 1.0, rtol=1e-5)
    import keras

    model = keras.saving.load_model(run / "model.keras")
    np.testing.assert_allclose(first.predict_frames(frames), model.predict(frames / 255.0, verbose=0), atol=1e-6)


def test_runs_are_only_loaded_from_inside_the_models_dir(trained, tmp_path):
    import shutil

    from har.inference import Predictor

    run, _, _ = trained
    foreign = shutil.copytree(run, tmp_path / "elsewhere" / run.name)
    with pytest.raises(ValueError, match="only loaded from inside the models dir"):
        Predictor.from_run(foreign, tmp_path / "models")


def test_a_job_reports_events_and_refuses_a_second_job(tiny_cache, tmp_path):
    job = jobs.start(tiny_cache, ["convlstm", "lrcn"], tmp_path, config=FAST)
    with pytest.raises(jobs.JobBusy, match=job.id):
        jobs.start(tiny_cache, ["lrcn"], tmp_path, config=FAST)
    assert jobs.current(tmp_path).id == job.id  # a new caller re-attaches
    assert job.wait(300) == "finished"
    kinds = [event["event"] for event in job.events()]
    assert kinds.count("started") == 2 and kinds.count("finished") == 2
    assert kinds[-2:] == ["job_finished", "exited"] and job.events()[-1]["code"] == 0  # the supervisor's last word
    assert [run.status for run in list_runs(tmp_path)] == ["finished", "finished"]
    assert jobs.current(tmp_path) is None
    assert jobs.start(tiny_cache, ["lrcn"], tmp_path, config=FAST).wait(300) == "finished"  # the lock was released


def test_cancel_saves_a_cancelled_run_and_frees_the_lock(tiny_cache, tmp_path):
    job = jobs.start(tiny_cache, ["convlstm", "lrcn"], tmp_path, config=Config(epochs=30, batch_size=4, trainer="twin"))
    wait_for(job, "batch")
    job.cancel()
    assert job.wait(120) == "cancelled"
    run = find_run(tmp_path, f"{job.id}-convlstm")
    assert run.status == "cancelled" and not (run.path / "model.keras").exists()
    assert not (tmp_path / f"{job.id}-lrcn").exists()
    assert jobs.current(tmp_path) is None


def test_har_training_follows_the_plain_model_fit_run_for_the_same_seed(tiny_cache, tmp_path):
    """The trainer's twin and the report's plain `model.fit`, same seed and recipe: the same epochs, losses and
    weights, to float rounding (the twin fuses and reorders sums, nothing else)."""
    import keras

    config = Config(epochs=3, batch_size=8)
    runs = {
        twin: train_run_history(tiny_cache, tmp_path / str(twin), config.replace(trainer="twin" if twin else "plain"))
        for twin in (True, False)
    }  # the config's trainer, as `har train --plain-fit` sets it
    assert runs[True][0]["network"] == "twin" and runs[False][0]["network"] == "plain"
    assert runs[False][0]["config"]["trainer"] == "plain"
    histories = {twin: metadata["history"] for twin, (metadata, _) in runs.items()}
    assert histories[True].keys() == histories[False].keys() and len(histories[True]["loss"]) == 3
    # Other dropout masks move losses by ~1e-2 after these 30 steps; float reordering by ~1e-4 at most. An
    # accuracy can differ by one borderline clip whose top class flips with the last digits.
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(histories[True][key], histories[False][key], rtol=1e-3)
    for key in ("accuracy", "val_accuracy"):
        np.testing.assert_allclose(histories[True][key], histories[False][key], atol=1 / 19)
    twin, plain = (keras.saving.load_model(path / "model.keras") for _, path in (runs[True], runs[False]))
    for a, b in zip(twin.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)


def train_run_history(cache, models_dir, config, **options):
    from har.training import train_run

    run = train_run(cache, "convlstm", models_dir, config=config, run_id="run", **options)
    return json.loads((run / "metadata.json").read_text()), run


def test_a_run_killed_at_a_random_epoch_resumes_into_the_uninterrupted_run(tiny_cache, tmp_path):
    """kill -9 mid-training, then resume: the same run as one never interrupted (same seed), down to where early
    stopping ends it; one history numbered 1..n; the job reads finished and the CLI exits 0."""
    config = Config(epochs=4, batch_size=8, patience=1)  # a few epochs are enough to land a kill between two
    whole = jobs.start(tiny_cache, ["convlstm"], tmp_path / "whole", config=config)
    assert whole.wait(600) == "finished"
    expected = find_run(tmp_path / "whole", f"{whole.id}-convlstm").metadata
    assert 2 <= expected["epochs_run"]

    kill_after = int(np.random.default_rng(27).integers(1, expected["epochs_run"]))  # 1 .. epochs_run - 1
    job = jobs.start(tiny_cache, ["convlstm"], tmp_path / "cut", config=config)
    wait_for_epoch(job, kill_after)
    os.kill(job.pid(), signal.SIGKILL)  # the supervisor; the trainer dies with it
    assert job.wait(60) == "killed"
    assert list_runs(tmp_path / "cut") == []  # nothing saved: the run is known from its job alone
    assert [run.status for run in list_all_runs(tmp_path / "cut")] == ["failed"]

    result = subprocess.run(
        [sys.executable, "-m", "har", "--models-dir", str(tmp_path / "cut"), "train", "--resume", job.id],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert job.state() == "finished" and job.failure() is None
    resumed = find_run(tmp_path / "cut", f"{job.id}-convlstm")
    assert resumed.status == "finished"
    assert resumed.metadata["epochs_run"] == expected["epochs_run"]
    assert resumed.metadata["best_epoch"] == expected["best_epoch"]
    for key, values in expected["history"].items():
        np.testing.assert_allclose(resumed.metadata["history"][key], values, rtol=1e-5)
    epochs = [event["epoch"] for event in job.events() if event["event"] == "epoch"]
    assert epochs == list(range(1, expected["epochs_run"] + 1))  # no gap, no repeat across the two attempts
    assert not (job.folder / "backup").exists() or not any((job.folder / "backup").iterdir())


def wait_for_epoch(job, epoch, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(event["event"] == "epoch" and event["epoch"] >= epoch for event in job.events()):
            return
        assert job.is_alive(), f"job ended before epoch {epoch}: {job.events()}"
        time.sleep(0.05)
    raise AssertionError(f"no epoch {epoch} within {timeout} s")


def test_a_cancelled_job_resumed_to_the_end_reads_finished(tiny_cache, tmp_path):
    job = jobs.start(tiny_cache, ["lrcn"], tmp_path, config=Config(epochs=3, batch_size=8, trainer="twin"))
    wait_for_epoch(job, 1)
    job.cancel()
    assert job.wait(120) == "cancelled"
    cancelled = find_run(tmp_path, f"{job.id}-lrcn")
    assert cancelled.status == "cancelled"
    done = len(cancelled.metadata["history"]["loss"])
    assert cancelled.metadata["epochs_run"] == done == job.epochs_done()[cancelled.id]  # one count everywhere
    resumed = jobs.resume(tmp_path, job.id)
    assert resumed.wait(300) == "finished"
    assert [run.status for run in list_runs(tmp_path)] == ["finished"]
    assert find_run(tmp_path, f"{job.id}-lrcn").metadata["epochs_run"] == 3


def test_several_seeds_train_one_run_per_seed_and_model(tiny_cache, tmp_path):
    from har.evaluation import compare

    job = jobs.start(
        tiny_cache, ["lrcn"], tmp_path, config=Config(epochs=1, batch_size=8, trainer="twin"), seeds=[27, 28]
    )
    assert job.wait(300) == "finished"
    runs = {run.id: run for run in list_runs(tmp_path)}
    assert set(runs) == {f"{job.id}-lrcn-seed27", f"{job.id}-lrcn-seed28"}
    assert {run.metadata["seed"] for run in runs.values()} == {27, 28}
    assert {run.metadata["config"]["seed"] for run in runs.values()} == {27, 28}
    first, second = (np.asarray(run.metadata["history"]["loss"]) for run in runs.values())
    assert not np.allclose(first, second)  # another seed is another run
    table = compare(None, tmp_path)
    (group,) = table["groups"]
    assert (group["model"], group["split"], group["n"], sorted(group["seeds"])) == ("lrcn", "report", 2, [27, 28])
    accuracies = [row["accuracy"] for row in table["runs"]]
    assert group["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert group["accuracy_sd"] == pytest.approx(np.std(accuracies, ddof=1))
    assert sorted(group["runs"]) == sorted(runs)


def test_a_run_that_cannot_learn_is_marked_at_chance_everywhere(tiny_cache, tmp_path):
    """A learning rate of 1e-9 leaves the weights where they started: the run must say so, not report a score."""
    from har.evaluation import evaluate
    from har.training import train_run

    run = train_run(
        tiny_cache, "lrcn", tmp_path, config=Config(epochs=2, batch_size=8, learning_rate=1e-9), run_id="stuck"
    )
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["status"] == "finished" and metadata["at_chance"] is True
    assert (
        "did not learn" in metadata["at_chance_reason"] and "validation loss never fell" in metadata["at_chance_reason"]
    )
    (summary,) = [run.summary() for run in list_runs(tmp_path)]
    assert summary["at_chance"] is True and summary["at_chance_reason"] == metadata["at_chance_reason"]
    assert evaluate("stuck", tmp_path)["at_chance"] is True
    result = subprocess.run(
        [sys.executable, "-m", "har", "--models-dir", str(tmp_path), "runs"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "AT CHANCE" in result.stdout


def test_a_run_that_learned_is_not_marked_at_chance(trained):
    run, events, _ = trained
    assert json.loads((run / "metadata.json").read_text())["at_chance"] is False
    assert events[-1]["at_chance"] is False


def test_a_run_failing_inside_keras_logs_its_traceback_to_the_job_and_says_one_line(tiny_cache, tmp_path):
    """A cache whose labels name a class it does not have: Keras fails at the first batch, inside fit."""
    import shutil

    broken = shutil.copytree(tiny_cache, tmp_path / "broken-cache")
    labels = np.load(broken / "labels.npy")
    np.save(broken / "labels.npy", np.full_like(labels, 99))  # to_categorical(99, 4) raises IndexError
    job = jobs.start(broken, ["lrcn"], tmp_path / "models", config=FAST)
    assert job.wait(300) == "failed"
    (run,) = list_runs(tmp_path / "models")
    assert run.status == "failed" and run.reason.startswith("IndexError: ") and "\n" not in run.reason
    (failed,) = [event for event in job.events() if event["event"] == "failed"]
    assert failed["reason"] == run.reason == job.failure()
    log = (job.folder / "process.log").read_text()
    assert f"run {run.id} failed inside Keras" in log and "Traceback (most recent call last)" in log
    assert "IndexError" in log.split("Traceback (most recent call last)", 1)[1]


def test_nan_loss_fails_the_run_with_a_message(tiny_cache, tmp_path):
    from har.training import train_run

    run = train_run(tiny_cache, "lrcn", tmp_path, config=Config(epochs=2, learning_rate=1e12), run_id="nan")
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["status"] == "failed" and "learning rate" in metadata["reason"]


def run_python(code, env=None, timeout=600):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_jax_backend_builds_trains_and_predicts(tiny_cache, tmp_path):
    out = run_python(
        f"""
        import json, keras
        from har.models import build_model, layer_table
        from har.report import REPORT_LAYERS
        from har.training import train_run
        from har.inference import Predictor
        assert keras.backend.backend() == "jax"
        assert all(layer_table(build_model(n)) == REPORT_LAYERS[n] for n in ("convlstm", "lrcn"))
        from har.config import Config
        run = train_run({str(tiny_cache)!r}, "lrcn", {str(tmp_path)!r}, config=Config(epochs=1, batch_size=8), run_id="jax")
        meta = json.loads((run / "metadata.json").read_text())
        print(meta["status"], meta["versions"]["backend"])
        print(sum(Predictor.from_run(run, {str(tmp_path)!r}).predict_frames(__import__("numpy").zeros((8, 32, 32, 3), "uint8"))))
        """,
        env={"KERAS_BACKEND": "jax"},
    )
    status, probability_sum = out.split("\n")[:2]
    assert status == "finished jax" and abs(float(probability_sum) - 1) < 1e-4


def test_mirrored_strategy_trains_on_two_logical_cpu_devices(tiny_cache, tmp_path):
    out = run_python(
        f"""
        import json, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from har.config import Config
        from har.training import train_run
        run = train_run({str(tiny_cache)!r}, "lrcn", {str(tmp_path)!r},
                        config=Config(epochs=1, batch_size=8, distribute="mirrored"), run_id="mirrored")
        meta = json.loads((run / "metadata.json").read_text())
        print(meta["status"], meta["replicas"], meta["config"]["distribute"])
        """
    )
    assert out.split("\n")[0] == "finished 2 mirrored"


def test_multiworker_strategy_trains_two_local_workers_in_step(tiny_cache, tmp_path):
    """Two worker processes on 127.0.0.1 (TF_CONFIG), as two hosts would run them: same weights at the end."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    code = textwrap.dedent(
        f"""
        import json, sys
        from har.config import Config
        from har.training import train_run
        run = train_run({str(tiny_cache)!r}, "lrcn", sys.argv[1],
                        config=Config(epochs=1, batch_size=8, distribute="multiworker"), run_id="worker-" + sys.argv[2])
        meta = json.loads((run / "metadata.json").read_text())
        print(meta["status"], meta["replicas"], meta["config"]["distribute"], meta["worker"])
        """
    )
    workers = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(tmp_path / f"models-{index}"), str(index)],
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
            )
        )
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    assert outputs[0][0].strip().splitlines()[-1] == "finished 2 multiworker {'index': 0, 'chief': True}"
    assert outputs[1][0].strip().splitlines()[-1] == "finished 2 multiworker {'index': 1, 'chief': False}"
    import keras

    first, second = (
        keras.saving.load_model(tmp_path / f"models-{i}" / f"worker-{i}" / "model.keras") for i in range(2)
    )
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mixed_precision_without_a_gpu_is_refused_with_a_message(tiny_cache, tmp_path):
    from har.devices import has_gpu
    from har.training import train_run

    if has_gpu():
        pytest.skip("this machine has a GPU, where float16 training is allowed")
    with pytest.raises(ValueError, match="--mixed-precision: float16 training needs a GPU"):
        train_run(tiny_cache, "lrcn", tmp_path, config=Config(epochs=1, mixed_precision=True), run_id="mixed")
    assert not any(tmp_path.iterdir())  # nothing half-made


def test_har_train_is_the_very_run_that_the_reports_model_fit_gives(tiny_cache, tmp_path):
    """`har train` (the default, plain trainer) and the report's way written out by hand, each in a fresh process
    with TensorFlow's own settings: seed 27 fixes the split, the initial weights, the shuffling and every dropout
    mask, so the two runs end with the same history and the same weights, bit for bit."""
    config = "Config(epochs=2, batch_size=8, patience=1)"
    by_har = f"""
        import json, sys
        from har.config import Config
        from har.training import train_run
        run = train_run({str(tiny_cache)!r}, "convlstm", sys.argv[1], config={config}, run_id="seeded")
        print(json.dumps(json.loads((run / "metadata.json").read_text())["history"]))
        """
    by_hand = f"""
        import json, sys
        from pathlib import Path
        import keras
        from har.config import Config
        from har.datasets import load_cache, make_split
        from har.models import build_model
        from har.batches import FrameBatches
        config, cache = {config}, load_cache({str(tiny_cache)!r})
        keras.utils.set_random_seed(config.seed)
        split = make_split(cache.groups, split=config.split, test_fraction=config.test_fraction,
                           validation_fraction=config.validation_fraction, seed=config.seed)
        model = build_model("convlstm", num_classes=len(cache.class_names), sequence_length=cache.sequence_length,
                            image_size=cache.image_size)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(FrameBatches(cache, split.train, batch_size=config.batch_size, shuffle=True, seed=config.seed),
                            validation_data=FrameBatches(cache, split.validation, batch_size=config.batch_size,
                                                         shuffle=False, seed=config.seed),
                            epochs=config.epochs, shuffle=False, verbose=0,
                            callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                                                     restore_best_weights=True)])
        (Path(sys.argv[1]) / "seeded").mkdir(parents=True)
        model.save(Path(sys.argv[1]) / "seeded" / "model.keras")
        print(json.dumps(history.history))
        """
    histories = []
    for name, code in (("har", by_har), ("hand", by_hand)):
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        histories.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert histories[0] == histories[1]
    import keras

    first, second = (keras.saving.load_model(tmp_path / name / "seeded" / "model.keras") for name in ("har", "hand"))
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
