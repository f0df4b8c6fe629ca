"""A finished run's model as one file for small devices: ONNX (for onnxruntime) or LiteRT (for ai-edge-litert).

Keras 3's `model.export` writes both, but not every layer as the report built it runs in those runtimes: Keras'
recurrent layers trace to a TensorFlow while loop, which LiteRT keeps as TensorFlow ops ("Flex" ops) that the
Python LiteRT runtime cannot run, and LiteRT has no built-in 3D pooling. So what is exported is a twin
(`export_twin`) that shares the model's weights and gives its outputs: recurrent layers unrolled over the
clip's fixed number of frames, per-frame layers (TimeDistributed, a 3D pooling that pools no frames together)
run over all frames at once as 2D layers. The twin is built by walking the model's layers and their configs,
so any model of Keras' built-in layers goes through it, not only the three in `har.models`.

An export is converted with LiteRT's built-in ops only and then run in its runtime on seeded clips before it
is kept: it must give the Keras model's probabilities to `PARITY_TOLERANCE`, or the export is refused in one
line that says why and which format to use instead. A kept export is cached in the run's folder as
`exports/model.onnx` or `exports/model.tflite` beside a JSON record (format, sha256, the model file it came
from, the versions that made it), so each run is converted at most once per format.

The converters and runtimes are the optional `export` extra (`pip install 'har-studio[export]'`); they are
imported only here, and only when an export is asked for.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path

import numpy as np

from har.runs import Run, find_run

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "litert": ".tflite"}  # format -> file suffix
FORMAT_LABELS = {"onnx": "ONNX", "litert": "LiteRT"}
RUNTIMES = {"onnx": "onnxruntime", "litert": "ai-edge-litert"}
# What each format needs beyond the core dependencies: the converter (LiteRT's is TensorFlow's own) and the runtime.
NEEDED_MODULES = {"onnx": ("tf2onnx", "onnx", "onnxruntime"), "litert": ("ai_edge_litert",)}
VERSIONED_PACKAGES = ("keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")
EXTRA_HINT = "pip install 'har-studio[export]'"
EXPORTS_FOLDER = "exports"
PARITY_TOLERANCE = 1e-4  # the largest difference in any class probability that an export may show
CHECK_CLIPS = 2  # seeded random clips each export is checked on (two, so a batch of several runs too)
CHECK_SEED = 27


@dataclass(frozen=True)
class DeviceExport:
    """An exported file and what its record says about it."""

    path: Path  # the file: the run's cached export, or the copy written where it was asked for
    format: str  # "onnx" or "litert"
    run_id: str
    sha256: str
    bytes: int
    max_difference: float  # largest |probability difference| from the Keras model on the check clips
    reused: bool  # True when the run's cached export served and nothing was converted

    @property
    def file_name(self) -> str:
        """The name a download of it gets: `<run id>.onnx` or `<run id>.tflite`."""
        return exported_name(self.run_id, self.format)


def exported_name(run_id: str, fmt: str) -> str:
    return f"{run_id}{FORMATS[check_format(fmt)]}"


def check_format(fmt: str) -> str:
    """The format, if it is one that `export_for_device` writes; else a one-line ValueError."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(FORMATS)} (or zip, for `har export`).")
    return fmt


def require_extra(fmt: str, doing: str = "export") -> None:
    """Imports what `fmt` needs (`NEEDED_MODULES`); when one is missing, a one-line ValueError naming the extra."""
    for module in NEEDED_MODULES[check_format(fmt)]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ValueError(f"{FORMAT_LABELS[fmt]} {doing} needs the export extra: {EXTRA_HINT}") from None


def export_for_device(
    run: str | os.PathLike | Run, fmt: str, out: str | os.PathLike | None, models_dir: str | os.PathLike
) -> DeviceExport:
    """Exports a finished run as an ONNX or LiteRT file, checked in its runtime; reuses the run's cached one.

    Args:
        run: a run id, a run folder inside `models_dir`, or a `Run`.
        fmt: "onnx" or "litert".
        out: where to write a copy: a file (its suffix must be the format's), a folder (the copy is named
            `<run id>.onnx` / `.tflite` there), or None to keep only the cached file in the run's folder.
        models_dir: the models dir the run lies in.

    Returns:
        The `DeviceExport` of the file at `out` (or of the cached file when `out` is None).

    Raises:
        ValueError: in one line, when the run is not finished, the format is unknown, the extra is not
            installed, or the model cannot run in the format's runtime (then it names the format that can).
    """
    fmt = check_format(fmt)
    found = find_run(models_dir, run.path if isinstance(run, Run) else run)
    if found.status != "finished":
        reason = f" ({found.reason})" if found.reason else ""
        raise ValueError(f"run {found.id} is {found.status}{reason}: only finished runs can be exported.")
    require_extra(fmt)
    exported = cached_export(found, fmt) or _export(found, fmt)
    if out is None:
        return exported
    target = Path(out)
    if target.is_dir():
        target = target / exported.file_name
    elif target.suffix.lower() != FORMATS[fmt]:
        raise ValueError(f"{target}: a {FORMAT_LABELS[fmt]} file's name ends in {FORMATS[fmt]}.")
    if target.resolve() != exported.path.resolve():
        _copy_atomically(exported.path, target)
    return DeviceExport(
        target, fmt, found.id, exported.sha256, exported.bytes, exported.max_difference, exported.reused
    )


def cached_export(run: Run, fmt: str) -> DeviceExport | None:
    """The run's cached export in `fmt`, when its record matches both the file and the run's model.keras now."""
    path = _cached_path(run, fmt)
    try:
        record = json.loads(_record_path(path).read_text())
        if record["format"] != fmt or record["source_sha256"] != sha256_of(run.path / "model.keras"):
            return None
        if sha256_of(path) != record["sha256"]:
            return None
        return DeviceExport(path, fmt, run.id, record["sha256"], record["bytes"], record["max_difference"], True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cached_path(run: Run, fmt: str) -> Path:
    return run.path / EXPORTS_FOLDER / f"model{FORMATS[fmt]}"


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _export(run: Run, fmt: str) -> DeviceExport:
    """Converts the run's model, checks the file in its runtime, then moves it and its record into place."""
    import keras

    label = FORMAT_LABELS[fmt]
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"{label} export needs Keras' TensorFlow backend (KERAS_BACKEND=tensorflow); this one runs "
            f"{keras.backend.backend()}."
        )
    model = keras.saving.load_model(run.path / "model.keras", compile=False, safe_mode=True)
    final = _cached_path(run, fmt)
    final.parent.mkdir(exist_ok=True)
    # The temporary name keeps the format's suffix: the LiteRT exporter refuses any other.
    partial = final.with_name(f".{final.stem}.{os.getpid()}.{threading.get_ident()}.partial{final.suffix}")
    try:
        started = time.monotonic()
        _convert(model, partial, fmt, run.id)
        seconds = time.monotonic() - started
        difference = _parity(model, partial, fmt, run.id)
        digest = sha256_of(partial)
        record = {
            "format": fmt,
            "file": final.name,
            "run_id": run.id,
            "sha256": digest,
            "bytes": partial.stat().st_size,
            "source_sha256": sha256_of(run.path / "model.keras"),
            "max_difference": difference,
            "checked_on": f"{CHECK_CLIPS} seeded random clips (seed {CHECK_SEED}) in {RUNTIMES[fmt]}",
            "export_seconds": round(seconds, 1),
            "versions": versions(),
            "exported_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
    record_partial = _record_path(partial)
    record_partial.write_text(json.dumps(record, indent=1))
    record_partial.replace(_record_path(final))
    log.info(
        "run %s: %s export in %.1f s, %d bytes, max difference %.1e",
        run.id,
        label,
        seconds,
        record["bytes"],
        difference,
    )
    return DeviceExport(final, fmt, run.id, digest, record["bytes"], difference, False)


def _convert(model, path: Path, fmt: str, run_id: str) -> None:
    """The export twin's `model.export` to `path`; a failure becomes one line naming why and the other format."""
    from har.export_twin import export_twin

    label, other = FORMAT_LABELS[fmt], FORMAT_LABELS[_other(fmt)]
    options = {}
    if fmt == "litert":
        import tensorflow as tf

        # Built-in ops only: a file with TensorFlow ("Flex") ops converts, but the Python runtime cannot run it.
        options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    quiet = logging.getLogger("tf2onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # tf2onnx logs each graph rewrite it makes, some as warnings
    try:
        with warnings.catch_warnings():
            # Keras' patch of tf2onnx for NumPy 2 probes `np.object`, which NumPy answers with a FutureWarning.
            warnings.filterwarnings("ignore", category=FutureWarning, module="keras.src.export.tf2onnx_lib")
            twin = export_twin(model)
            twin(np.zeros((1, *model.input_shape[1:]), np.float32))  # the ONNX exporter takes only called models
            twin.export(str(path), format=fmt, verbose=False, **options)
    except Exception as error:  # noqa: BLE001 - any converter failure is one line, with the whole story in -v's log
        log.info("run %s: %s conversion failed", run_id, label, exc_info=True)
        flex = re.search(r"TF Select ops: ([^\n]+)", str(error))
        if flex:
            raise ValueError(
                f"run {run_id}: LiteRT has no built-in op for {flex.group(1).strip()} and the Python LiteRT runtime "
                f"runs built-in ops only; export it as {other} instead."
            ) from None
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise ValueError(
            f"run {run_id}: the {label} export failed ({type(error).__name__}: {first_line}); try {other} instead."
        ) from None
    finally:
        quiet.setLevel(level)


def _parity(model, path: Path, fmt: str, run_id: str) -> float:
    """The largest probability difference between the file in its runtime and the Keras model on seeded clips;
    a file that does not load, does not run or differs by more than `PARITY_TOLERANCE` is refused."""
    label, other = FORMAT_LABELS[fmt], FORMAT_LABELS[_other(fmt)]
    clips = np.random.default_rng(CHECK_SEED).integers(0, 256, (CHECK_CLIPS, *model.input_shape[1:]), dtype=np.uint8)
    expected = np.asarray(model(scaled(clips), training=False), dtype=np.float32)
    try:
        exported = load_exported(path)(clips)
    except Exception as error:  # noqa: BLE001 - a runtime's failure to load or run the file is a refusal
        log.info("run %s: the %s file does not run", run_id, label, exc_info=True)
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise ValueError(
            f"run {run_id}: the {label} file does not run in {RUNTIMES[fmt]} ({first_line}); try {other} instead."
        ) from None
    difference = float(np.abs(exported - expected).max())
    if not difference <= PARITY_TOLERANCE:
        raise ValueError(
            f"run {run_id}: the {label} file's probabilities differ from the Keras model's by {difference:.1e} "
            f"(more than {PARITY_TOLERANCE:.0e}); try {other} instead."
        )
    return difference


def _other(fmt: str) -> str:
    return "onnx" if fmt == "litert" else "litert"


def scaled(frames: np.ndarray) -> np.ndarray:
    """uint8 frames as the models take them: float32 in [0, 1], scaled exactly as `har.inference.Predictor` does."""
    return np.asarray(frames).astype(np.float32) * np.float32(1 / 255)


class ExportedModel:
    """An exported file loaded in its runtime: `model(frames)` gives class probabilities, as
    `Predictor.predict_frames` does, for (T, H, W, 3) or (N, T, H, W, 3) uint8 frames: (C,) or (N, C) float32.
    Safe to share between threads."""

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None):
        self.path = Path(path)
        self.format = next((fmt for fmt, suffix in FORMATS.items() if self.path.suffix.lower() == suffix), None)
        if self.format is None:
            raise ValueError(f"{self.path}: an exported model ends in .onnx or .tflite.")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such exported model.")
        require_extra(self.format, doing="runtime")
        self._lock = threading.Lock()
        self._batch = None
        if self.format == "onnx":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            if threads:
                options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            self._session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self._input_name = self._session.get_inputs()[0].name
        else:
            from ai_edge_litert.interpreter import Interpreter

            self._interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
            self._input = self._interpreter.get_input_details()[0]["index"]
            self._output = self._interpreter.get_output_details()[0]["index"]

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        single = frames.ndim == 4
        batch = scaled(frames[None] if single else frames)
        probabilities = self._run_onnx(batch) if self.format == "onnx" else self._run_litert(batch)
        probabilities = np.asarray(probabilities, dtype=np.float32)
        return probabilities[0] if single else probabilities

    def _run_onnx(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input_name: batch})[0]

    def _run_litert(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:  # one interpreter holds one set of tensors
            if batch.shape != self._batch:
                self._interpreter.resize_tensor_input(self._input, batch.shape)
                self._interpreter.allocate_tensors()
                self._batch = batch.shape
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()


def load_exported(path: str | os.PathLike, *, threads: int | None = None) -> ExportedModel:
    """An .onnx file in onnxruntime or a .tflite file in ai-edge-litert, as a frames -> probabilities callable.

    Args:
        threads: threads the runtime computes with; None leaves its default (all cores).
    """
    return ExportedModel(path, threads=threads)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str | None]:
    """The installed versions of what makes and runs exports (None for one not installed)."""
    found = {}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            found[package] = None
    return found


def _copy_atomically(source: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(source, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
