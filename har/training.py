"""Training one of the report's models on a frame cache, with progress events, into a saved run.

The recipe is the report's: Adam, categorical cross-entropy, accuracy, batch size 4, up to 30 epochs,
early stopping on validation loss with patience 5 (restoring the best weights), seed 27; every value comes
from the `Config`. Batches are read from the uint8 cache and scaled to [0, 1] one batch at a time, so no
float32 copy of the dataset is ever made.

A run is written to `<models_dir>/.<run_id>.staging/` and renamed to `<models_dir>/<run_id>/` once complete:
a run folder either holds everything or does not exist.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from har import __version__
from har.config import Config
from har.datasets import FrameCache, load_cache, make_split
from har.models import build_model, fast_model

log = logging.getLogger(__name__)

Emit = Callable[[dict], None]
BATCH_EVENT_SECONDS = 0.5  # at most two batch events a second
SMALL_CPU_CORES = 4  # up to this many cores (a free Hugging Face Space has 2), training prefers op parallelism


class FrameBatches(keras.utils.PyDataset):
    """(frames, one-hot labels) batches from a frame cache: float32 in [0, 1], (B, T, H, W, 3).

    Shuffled anew each epoch from `seed` when `shuffle` is set, so a run is reproducible.
    """

    def __init__(self, cache: FrameCache, indices: np.ndarray, *, batch_size: int, shuffle: bool, seed: int):
        super().__init__()
        self.cache, self.indices, self.batch_size, self.shuffle = cache, np.asarray(indices), batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(self.indices) if shuffle else self.indices
        self.num_classes = len(cache.class_names)

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __getitem__(self, batch: int):
        chosen = np.sort(self.order[batch * self.batch_size : (batch + 1) * self.batch_size])
        frames = self.cache.frames[chosen].astype(np.float32) * np.float32(1 / 255)
        labels = keras.utils.to_categorical(self.cache.labels[chosen], self.num_classes)
        return frames, labels

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(self.indices)


class ProgressEvents(keras.callbacks.Callback):
    """Turns Keras' training loop into JSON-serialisable events, and stops training on request or on NaN."""

    def __init__(self, emit: Emit, *, epochs: int, should_cancel: Callable[[], bool] = lambda: False):
        super().__init__()
        self.emit, self.epochs, self.should_cancel = emit, epochs, should_cancel
        self.cancelled, self.failure = False, None
        self.epoch_started = self.last_batch_event = 0.0
        self.epoch = 0

    def on_train_begin(self, logs=None):
        self.steps = self.params.get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_started = epoch + 1, time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        if not math.isfinite(float(logs.get("loss", 0.0))):
            self._stop(f"the loss became {logs.get('loss')} at epoch {self.epoch}, step {batch + 1}; "
                       "lower the learning rate")  # fmt: skip
            return
        if self.should_cancel():
            self.cancelled = True
            self.model.stop_training = True
            return
        now = time.monotonic()
        if now - self.last_batch_event >= BATCH_EVENT_SECONDS or batch + 1 == self.steps:
            self.last_batch_event = now
            self.emit({"event": "batch", "epoch": self.epoch, "step": batch + 1, "steps": self.steps,
                       "loss": float(logs.get("loss", math.nan)), "accuracy": float(logs.get("accuracy", math.nan))})  # fmt: skip

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        if self.cancelled or self.failure:
            return
        self.emit({"event": "epoch", "epoch": epoch + 1, "epochs": self.epochs,
                   "seconds": round(time.monotonic() - self.epoch_started, 3), **logs})  # fmt: skip

    def _stop(self, reason: str):
        self.failure = reason
        self.model.stop_training = True


def configure_devices() -> str:
    """Lets GPUs grow their memory (so the app and a job can share one) and names the device used."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        cores = os.cpu_count() or 1
        if not gpus and cores <= SMALL_CPU_CORES:
            try:
                # On a few cores, running independent small ops side by side beats splitting each op across
                # the cores: ConvLSTM training ~15% faster, LRCN ~5% slower on 2 cores (benchmarks/).
                tf.config.threading.set_intra_op_parallelism_threads(1)
                tf.config.threading.set_inter_op_parallelism_threads(cores)
            except RuntimeError:
                pass  # TensorFlow already started in this process: keep its settings
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass  # already initialised
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"{len(gpus)} x {details.get('device_name', 'GPU')}"
        return f"CPU ({os.cpu_count()} cores)"
    if backend == "jax":
        import jax

        devices = jax.devices()
        return f"{len(devices)} x {devices[0].device_kind}"
    return backend


def has_gpu() -> bool:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.devices()[0].platform == "gpu"
    return False


def distribution_strategy(name: str | None):
    """None, or a tf.distribute strategy: "mirrored" (all local GPUs) or "multiworker" (TF_CONFIG hosts)."""
    if not name:
        return None
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"--distribute {name}: tf.distribute needs KERAS_BACKEND=tensorflow.")
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--distribute {name!r}: choose mirrored or multiworker.")


class _MultiWorkerModel(keras.Model):
    """Works around two places where Keras 3.15's `fit` fails under MultiWorkerMirroredStrategy.

    1. Before training, Keras builds the model from the first batch averaged with `strategy.reduce`, which this
       strategy cannot do for an (x, y) pair ("Attempt to convert a value (PerReplica...)"). The build only
       needs shapes, so it gets this worker's local part of the batch instead.
    2. After each step, Keras averages the logs across workers with `strategy.reduce("MEAN", value, axis=0)`,
       which fails for the scalar loss and accuracy ("Invalid reduction dimension 0"). Steps return them with
       shape (1,), which that reduction turns back into scalars.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                distributed_batch = next(batches)
                break
            local = self.distribute_strategy.experimental_local_results
            data_batch = keras.tree.map_structure(lambda value: local(value)[0], distributed_batch)
        return super()._maybe_symbolic_build(data_batch=data_batch)

    def train_step(self, data):
        return _with_a_batch_axis(super().train_step(data))

    def test_step(self, data):
        return _with_a_batch_axis(super().test_step(data))


def _with_a_batch_axis(logs: dict) -> dict:
    return {name: keras.ops.reshape(value, (1,)) if len(value.shape) == 0 else value for name, value in logs.items()}


def train_run(
    cache_path: str | Path,
    model_name: str,
    models_dir: str | Path,
    *,
    config: Config | None = None,
    run_id: str,
    emit: Emit = lambda event: None,
    should_cancel: Callable[[], bool] = lambda: False,
    backup_dir: str | Path | None = None,
    distribute: str | None = None,
    mixed_precision: bool = False,
) -> Path:
    """Trains `model_name` on the cache and saves the run; returns the run folder.

    The run's classes, sequence length and image size come from the cache; everything else from `config`.
    A cancelled or failed run is saved too, with its events and reason but no model. With `backup_dir`, an
    interrupted run resumes from its last finished epoch (Keras' BackupAndRestore).
    """
    cache = load_cache(cache_path)
    config = (config or Config()).replace(
        classes=cache.class_names, sequence_length=cache.sequence_length, image_size=cache.image_size
    )
    models_dir = Path(models_dir)
    events: list[dict] = []

    def record(event: dict) -> None:
        event = {"run": run_id, "model": model_name, "time": time.time(), **event}
        events.append(event)
        emit(event)

    started = time.monotonic()
    keras.utils.set_random_seed(config.seed)
    device = configure_devices()
    if mixed_precision:
        if not has_gpu():
            # TensorFlow's CPU kernels lack float16 for some layers (MaxPool3D) and would be slower anyway.
            raise ValueError("--mixed-precision: float16 training needs a GPU and there is none here; "
                             "train without --mixed-precision.")  # fmt: skip
        keras.mixed_precision.set_global_policy("mixed_float16")
    split = make_split(cache.groups, split=config.split, test_fraction=config.test_fraction,
                       validation_fraction=config.validation_fraction, seed=config.seed)  # fmt: skip
    strategy = distribution_strategy(distribute)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_model(model_name, num_classes=len(config.classes), sequence_length=config.sequence_length,
                            image_size=config.image_size)  # fmt: skip
        network = fast_model(model)  # trains `model`'s weights; `model` is what gets saved
        if distribute == "multiworker":
            network = _MultiWorkerModel(network.inputs, network.outputs, name=network.name)
        network.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                        loss="categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    train = FrameBatches(cache, split.train, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    validation = FrameBatches(cache, split.validation, batch_size=config.batch_size, shuffle=False, seed=config.seed)
    progress = ProgressEvents(record, epochs=config.epochs, should_cancel=should_cancel)
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                                   restore_best_weights=True)  # fmt: skip
    callbacks = [early_stopping, progress]
    if backup_dir:
        # First in the list, so an epoch's backup is on disk before its event is; the double checkpoint keeps
        # the previous one for when a kill lands in the middle of writing.
        backup = keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=True, double_checkpoint=True)
        callbacks.insert(0, backup)
    replicas = strategy.num_replicas_in_sync if strategy else 1
    record({"event": "started", "epochs": config.epochs, "steps": len(train), "device": device, "replicas": replicas,
            "parameters": model.count_params(), "train_clips": len(split.train),
            "validation_clips": len(split.validation), "test_clips": len(split.test)})  # fmt: skip
    history = {}
    try:
        try:
            fit = network.fit(train, validation_data=validation, epochs=config.epochs, callbacks=callbacks, verbose=0)
        except (OSError, ValueError, KeyError) as error:
            if not (backup_dir and progress.epoch == 0 and Path(backup_dir).exists()):
                raise
            # The backup could not be restored (cut short by a kill): start this model afresh.
            log.warning("discarding the unreadable backup in %s (%s)", backup_dir, error)
            shutil.rmtree(backup_dir)
            record({"event": "backup_discarded", "reason": _failure_reason(error)})
            fit = network.fit(train, validation_data=validation, epochs=config.epochs, callbacks=callbacks, verbose=0)
        history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    except Exception as error:  # noqa: BLE001 - any failure inside Keras ends the run with its reason
        progress.failure = _failure_reason(error)
    metadata = {
        "run_id": run_id,
        "model": model_name,
        "config": config.to_dict(),
        "classes": list(config.classes),
        "sequence_length": config.sequence_length,
        "image_size": config.image_size,
        "split": {"name": config.split, "train": len(split.train), "validation": len(split.validation),
                  "test": len(split.test)},  # fmt: skip
        "dataset": {"cache": str(Path(cache_path).resolve()), "fingerprint": cache.fingerprint, "clips": len(cache)},
        "parameters": model.count_params(),
        "history": history,
        "epochs_run": len(history.get("loss", [])),
        "device": device,
        "distribute": distribute,
        "replicas": replicas,
        "worker": _worker_role(strategy),
        "mixed_precision": mixed_precision,
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if progress.failure or progress.cancelled:
        status = "failed" if progress.failure else "cancelled"
        record({"event": status, **({"reason": progress.failure} if progress.failure else {})})
        metadata.update(status=status, reason=progress.failure, training_seconds=round(time.monotonic() - started, 2))
        return _save_run(models_dir, run_id, None, metadata, events)
    if early_stopping.stopped_epoch > 0:
        record({"event": "early_stop", "epoch": early_stopping.stopped_epoch + 1,
                "best_epoch": int(np.argmin(history["val_loss"])) + 1})  # fmt: skip
    test = FrameBatches(cache, split.test, batch_size=max(config.batch_size, 16), shuffle=False, seed=config.seed)
    test_loss, test_accuracy = network.evaluate(test, verbose=0)
    metadata.update(
        status="finished",
        test={"loss": float(test_loss), "accuracy": float(test_accuracy)},
        best_epoch=int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else None,
        training_seconds=round(time.monotonic() - started, 2),
    )
    record({"event": "finished", "test_loss": float(test_loss), "test_accuracy": float(test_accuracy),
            "training_seconds": metadata["training_seconds"]})  # fmt: skip
    # Saved compiled, with the optimizer state it was trained with (the twin's variables are `model`'s).
    model.compile(optimizer=network.optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return _save_run(models_dir, run_id, model, metadata, events)


def _worker_role(strategy) -> dict | None:
    """Which worker of a multi-worker run this is; every worker saves its own copy of the (identical) model."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return None
    return {"index": int(resolver.task_id), "chief": bool(strategy.extended.should_checkpoint)}


def _failure_reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "OOM" in text or "out of memory" in text.lower() or isinstance(error, MemoryError):
        return f"out of memory ({text[:200]}); lower the batch size or the number of classes"
    return f"{type(error).__name__}: {text[:300]}"


def _versions() -> dict:
    versions = {"har": __version__, "keras": keras.__version__, "backend": keras.backend.backend(),
                "numpy": np.__version__, "python": platform.python_version()}  # fmt: skip
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    elif keras.backend.backend() == "jax":
        import jax

        versions["jax"] = jax.__version__
    return versions


def _save_run(models_dir: Path, run_id: str, model, metadata: dict, events: list[dict]) -> Path:
    """Writes the run under a temporary name, then renames it into place."""
    final = models_dir / run_id
    staging = models_dir / f".{run_id}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if model is not None:
        model.save(staging / "model.keras")
    (staging / "metadata.json").write_text(json.dumps(metadata, indent=1))
    (staging / "events.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
    _fsync_tree(staging)
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    return final


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
