"""`har export RUN --format onnx|litert`: real exports of tiny real models, run in onnxruntime and ai-edge-litert on
clips decoded from real video files, against `har.inference.Predictor`."""

import json
import shutil
import sys

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from har.cli import main
from har.datasets import load_cache
from har.edge import EXTRA_HINT, PARITY_TOLERANCE, cached_export, export_for_device, load_exported, sha256_of
from har.inference import Predictor
from har.models import build_model
from har.runs import find_run, save_run

MODELS = ("convlstm", "lrcn")
FORMATS = ("onnx", "litert")
CLASSES = ["HorseRace", "Swing", "TaiChi", "WalkingWithDog"]


def save_seeded_run(models_dir, run_id: str, model, status: str = "finished") -> None:
    """`model` saved as a run at the tiny cache's size (8 frames of 32x32), as `har.training` saves one."""
    metadata = {
        "run_id": run_id,
        "model": run_id.split("-")[0],
        "status": status,
        "classes": CLASSES,
        "sequence_length": 8,
        "image_size": 32,
    }
    save_run(models_dir, run_id, model if status == "finished" else None, metadata, [])


def seeded(name: str) -> keras.Model:
    """A seeded model whose softmax layer's weights are drawn large (sd 30): untrained, its probabilities would
    all be about 0.25 and agree to 1e-4 whatever an export did; these differ by tenths from clip to clip."""
    keras.utils.set_random_seed(7)
    model = build_model(name, num_classes=len(CLASSES), sequence_length=8, image_size=32)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([np.random.default_rng(7).normal(0, 30.0, kernel.shape).astype("float32"), bias])
    return model


def time_pooling_model() -> keras.Model:
    """A model with a MaxPooling3D that pools frames together: LiteRT has no built-in op for it, ONNX does."""
    keras.utils.set_random_seed(7)
    return keras.Sequential(
        [
            keras.Input((8, 32, 32, 3)),
            keras.layers.MaxPooling3D((2, 4, 4)),
            keras.layers.Flatten(),
            keras.layers.Dense(len(CLASSES), activation="softmax"),
        ],
        name="pooled",
    )


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """convlstm and lrcn runs, a run with time pooling (`pooled`) and a cancelled run (no model)."""
    folder = tmp_path_factory.mktemp("edge-models")
    for name in MODELS:
        save_seeded_run(folder, name, seeded(name))
    save_seeded_run(folder, "pooled", time_pooling_model())
    save_seeded_run(folder, "lrcn-cancelled", None, status="cancelled")
    return folder


@pytest.fixture(scope="module")
def clips(tiny_cache) -> np.ndarray:
    """Six clips of the demo's videos as the tiny cache decoded them: (6, 8, 32, 32, 3) uint8, two per class."""
    cache = load_cache(tiny_cache)
    chosen = [int(i) for label in range(3) for i in np.flatnonzero(cache.labels == label)[:2]]
    return np.asarray(cache.frames[chosen])


@pytest.fixture(scope="module")
def exported(models_dir):
    """Each model exported once in each format (the tests below reuse these files)."""
    return {(name, fmt): export_for_device(name, fmt, None, models_dir) for name in MODELS for fmt in FORMATS}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", MODELS)
def test_exported_model_gives_the_keras_probabilities_on_real_clips(models_dir, clips, exported, name, fmt):
    expected = Predictor.from_run(name, models_dir).predict_frames(clips)
    assert np.ptp(expected, axis=0).max() > 0.05  # clips are told apart: agreeing to 1e-4 means something
    export = exported[name, fmt]
    assert export.path == models_dir / name / "exports" / f"model.{'onnx' if fmt == 'onnx' else 'tflite'}"
    model = load_exported(export.path, threads=2)
    probabilities = model(clips)
    assert probabilities.shape == (6, 4) and probabilities.dtype == np.float32
    assert np.abs(probabilities - expected).max() <= PARITY_TOLERANCE
    assert np.abs(model(clips[0]) - expected[0]).max() <= PARITY_TOLERANCE  # one clip, no batch axis
    assert export.max_difference <= PARITY_TOLERANCE and not export.reused


def test_the_record_beside_an_export_names_its_format_hash_source_and_versions(models_dir, exported):
    export = exported["convlstm", "onnx"]
    record = json.loads((export.path.parent / "model.onnx.json").read_text())
    assert (
        record["format"] == "onnx" and record["run_id"] == "convlstm" and record["bytes"] == export.path.stat().st_size
    )
    assert record["sha256"] == sha256_of(export.path) == export.sha256
    assert record["source_sha256"] == sha256_of(models_dir / "convlstm" / "model.keras")
    assert record["versions"]["tf2onnx"] and record["versions"]["onnxruntime"] and record["versions"]["keras"]
    assert not list(export.path.parent.glob(".*"))  # no temporary file left behind


def test_a_second_export_reuses_the_cached_file_and_a_damaged_one_is_made_again(models_dir, exported, tmp_path):
    first = exported["lrcn", "litert"]
    written = first.path.stat().st_mtime_ns
    again = export_for_device("lrcn", "litert", tmp_path, models_dir)
    assert again.reused and again.sha256 == first.sha256 and first.path.stat().st_mtime_ns == written
    assert again.path == tmp_path / "lrcn.tflite" and sha256_of(again.path) == first.sha256
    first.path.write_bytes(first.path.read_bytes()[:-10])  # a cut-off file no longer matches its record
    assert cached_export(find_run(models_dir, "lrcn"), "litert") is None
    remade = export_for_device("lrcn", "litert", None, models_dir)
    assert not remade.reused and sha256_of(remade.path) == remade.sha256


def test_a_model_without_builtin_litert_ops_is_refused_in_one_line_and_onnx_works_instead(models_dir, clips):
    with pytest.raises(ValueError) as refusal:
        export_for_device("pooled", "litert", None, models_dir)
    message = str(refusal.value)
    assert "\n" not in message and "MaxPool3D" in message and "export it as ONNX instead" in message
    assert not (models_dir / "pooled" / "exports" / "model.tflite").exists()
    onnx = export_for_device("pooled", "onnx", None, models_dir)
    expected = Predictor.from_run("pooled", models_dir).predict_frames(clips)
    assert np.abs(load_exported(onnx.path)(clips) - expected).max() <= PARITY_TOLERANCE


def test_unfinished_runs_and_unknown_formats_are_refused(models_dir):
    with pytest.raises(ValueError, match=r"run lrcn-cancelled is cancelled: only finished runs can be exported\."):
        export_for_device("lrcn-cancelled", "onnx", None, models_dir)
    with pytest.raises(ValueError, match=r"format 'tflite': choose one of onnx, litert"):
        export_for_device("lrcn", "tflite", None, models_dir)
    with pytest.raises(ValueError, match=r"x\.onnx: a LiteRT file's name ends in \.tflite"):
        export_for_device("lrcn", "litert", models_dir / "x.onnx", models_dir)


@pytest.mark.parametrize(
    ("fmt", "module", "label"), [("onnx", "onnxruntime", "ONNX"), ("litert", "ai_edge_litert", "LiteRT")]
)
def test_without_the_export_extra_the_message_says_how_to_install_it(models_dir, monkeypatch, fmt, module, label):
    monkeypatch.setitem(sys.modules, module, None)  # how Python marks a module as not importable
    with pytest.raises(ValueError) as refusal:
        export_for_device("lrcn", fmt, None, models_dir)
    assert str(refusal.value) == f"{label} export needs the export extra: {EXTRA_HINT}"
    assert EXTRA_HINT == "pip install 'har-studio[export]'"


def test_cli_writes_the_file_and_says_so_in_one_line(models_dir, exported, tmp_path, capsys):
    out = tmp_path / "phone.onnx"
    assert main(["--models-dir", str(models_dir), "export", "convlstm", "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and str(out) in printed and "KB" in printed and "as ONNX" in printed
    assert out.read_bytes() == exported["convlstm", "onnx"].path.read_bytes()


def test_cli_refusals_are_one_line_and_exit_2(models_dir, capsys):
    base = ["--models-dir", str(models_dir), "export"]
    assert main([*base, "lrcn-cancelled", "--format", "litert"]) == 2
    error = capsys.readouterr().err
    assert error == "har: error: run lrcn-cancelled is cancelled: only finished runs can be exported.\n"
    assert main([*base, "lrcn"]) == 2  # the zip needs --out
    assert capsys.readouterr().err.startswith("har: error: --out FILE.zip")
    with pytest.raises(SystemExit) as exit_:
        main([*base, "lrcn", "--format", "tflite"])
    assert exit_.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err


def downloads_page(models_dir: str, run_id: str) -> None:
    from pathlib import Path

    from app.downloads import run_downloads
    from har.runs import find_run

    run_downloads(find_run(models_dir, run_id), Path(models_dir))


def test_app_prepares_an_export_on_click_then_offers_it_and_says_why_it_cannot(models_dir, tmp_path, monkeypatch):
    fresh = tmp_path / "models"
    shutil.copytree(models_dir / "lrcn", fresh / "lrcn", ignore=shutil.ignore_patterns("exports"))
    app = AppTest.from_function(downloads_page, args=(str(fresh), "lrcn"), default_timeout=120).run()
    assert [button.label for button in app.button] == ["Prepare ONNX", "Prepare LiteRT"] and not app.exception
    app.button(key="edge-onnx-lrcn-prepare").click().run()
    assert not app.exception and [button.label for button in app.get("download_button")] == ["ONNX (0.3 MB)"]
    assert (fresh / "lrcn" / "exports" / "model.onnx").is_file()
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    app.button(key="edge-litert-lrcn-prepare").click().run()
    assert not app.exception and [info.value for info in app.info] == [
        f"LiteRT export needs the export extra: {EXTRA_HINT}"
    ]
    assert len(app.get("download_button")) == 1
    assert [info.value for info in app.run().info] == [f"LiteRT export needs the export extra: {EXTRA_HINT}"]  # kept
