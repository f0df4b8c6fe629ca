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
import dataclasses
import logging
import math
import platform
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from har import __version__, chance
from har.backbones import MOBILENET_V2, resolve_weights
from har.batches import FrameBatches
from har.config import BACKBONE_MODELS, Config
from har.datasets import FrameCache, Split, config_split, load_cache
from har.devices import configure_devices, distribution_strategy, has_gpu
from har.features import clip_features
from har.models import build_model, fast_model, split_at_features
from har.runs import save_run
from har.training_state import TrainingState

log = logging.getLogger(__name__)

Emit = Callable[[dict], None]
BATCH_EVENT_SECONDS = 0.5  # at most two batch events a second


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
            self._stop(
                f"the loss became {logs.get('loss')} at epoch {self.epoch}, step {batch + 1}; lower the learning rate"
            )
            return
        if self.should_cancel():
            self.cancelled = True
            self.model.stop_training = True
            return
        now = time.monotonic()
        if now - self.last_batch_event >= BATCH_EVENT_SECONDS or batch + 1 == self.steps:
            self.last_batch_event = now
            self.emit(
                {
                    "event": "batch",
                    "epoch": self.epoch,
                    "step": batch + 1,
                    "steps": self.steps,
                    "loss": float(logs.get("loss", math.nan)),
                    "accuracy": float(logs.get("accuracy", math.nan)),
                }
            )

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        if self.cancelled or self.failure:
            return
        self.emit(
            {
                "event": "epoch",
                "epoch": epoch + 1,
                "epochs": self.epochs,
                "seconds": round(time.monotonic() - self.epoch_started, 3),
                **logs,
            }
        )

    def _stop(self, reason: str):
        self.failure = reason
        self.model.stop_training = True


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


@dataclasses.dataclass
class _Setup:
    """Everything a run trains with, made in the order that fixes its random draws."""

    cache: FrameCache
    config: Config
    device: str
    split: Split
    strategy: object | None
    model: keras.Model  # the report's model: what is saved
    network: keras.Model  # what is fitted: the model itself, or its twin (which trains the model's weights)
    train: FrameBatches
    validation: FrameBatches
    features: object | None = None  # (N, T, D) backbone features the head trains on (mobilenet), else None
    backbone: dict | None = None  # which backbone and weights (mobilenet), for the metadata
    cancelled: bool = False  # cancelled while computing the features: nothing to fit


def _prepare(cache: FrameCache, model_name: str, config: Config, record: Emit, should_cancel) -> _Setup:
    """Seeds, devices, split, the compiled network and its batches: the report's `model.fit` set-up, in its order.

    The mobilenet model's network is its head, fitted on the clips' backbone features (`har.features`), which
    are computed first (once per cache and weights: they depend on neither the seed nor the split).
    """
    twin = config.trainer == "twin"
    weights = resolve_weights(config.backbone_weights) if model_name in BACKBONE_MODELS else None
    features = _backbone_features(cache, model_name, config, weights, record, should_cancel) if weights else None
    keras.utils.set_random_seed(config.seed)
    device = configure_devices(ops_side_by_side=twin)
    if config.mixed_precision:
        if not has_gpu():
            # TensorFlow's CPU kernels lack float16 for some layers (MaxPool3D) and would be slower anyway.
            raise ValueError(
                "--mixed-precision: float16 training needs a GPU and there is none here; "
                "train without --mixed-precision."
            )
        keras.mixed_precision.set_global_policy("mixed_float16")
    split = config_split(cache.groups, config)
    strategy = distribution_strategy(config.distribute)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_model(
            model_name,
            num_classes=len(config.classes),
            sequence_length=config.sequence_length,
            image_size=config.image_size,
            backbone_weights=str(weights.path) if weights else None,
        )
        network = split_at_features(model)[1] if weights else model
        network = fast_model(network) if twin else network
        if config.distribute == "multiworker":
            network = _MultiWorkerModel(network.inputs, network.outputs, name=network.name)
        network.compile(
            optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
    batches = {"batch_size": config.batch_size, "seed": config.seed, "features": features}
    train = FrameBatches(cache, split.train, shuffle=True, **batches)
    validation = FrameBatches(cache, split.validation, shuffle=False, **batches)
    backbone = {**dataclasses.asdict(MOBILENET_V2), "weights": weights.to_dict()} if weights else None
    cancelled = weights is not None and features is None
    return _Setup(
        cache, config, device, split, strategy, model, network, train, validation, features, backbone, cancelled
    )


def _backbone_features(cache: FrameCache, model_name: str, config: Config, weights, record: Emit, should_cancel):
    """The cache's features under the model's frozen backbone (kept beside the cache); None if cancelled."""
    sizes = {"num_classes": len(config.classes), "sequence_length": config.sequence_length}
    model = build_model(model_name, **sizes, image_size=config.image_size, backbone_weights=str(weights.path))
    started, reported = time.monotonic(), [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - reported[0] >= BATCH_EVENT_SECONDS or done == total:
            reported[0] = now
            record({"event": "features", "done": done, "total": total, "seconds": round(now - started, 2)})

    extractor = split_at_features(model)[0]
    return clip_features(cache, extractor, MOBILENET_V2, weights, progress=progress, should_cancel=should_cancel)


def train_run(
    cache_path: str | Path,
    model_name: str,
    models_dir: str | Path,
    *,
    config: Config | None = None,
    run_id: str,
    job_id: str | None = None,
    emit: Emit = lambda event: None,
    should_cancel: Callable[[], bool] = lambda: False,
    backup_dir: str | Path | None = None,
) -> Path:
    """Trains `model_name` on the cache and saves the run; returns the run folder.

    The run's classes, sequence length and image size come from the cache; everything else from `config`
    (its trainer, devices and precision included). A cancelled or failed run is saved too, with its events and
    one-line reason but no model; a failure inside Keras also logs its traceback (`logging`, which a job's
    process writes to its log). With `backup_dir`, an interrupted run resumes from its last finished epoch and
    goes on as if it had never stopped (`TrainingState`). `config.trainer` says how: "plain" fits the report's
    Keras model with `model.fit`; "twin" fits har's weight-sharing twin, the same steps to float rounding,
    faster (benchmarks/training_fidelity.py compares the two).
    """
    cache = load_cache(cache_path)
    config = (config or Config()).replace(
        classes=cache.class_names, sequence_length=cache.sequence_length, image_size=cache.image_size
    )
    events: list[dict] = []

    def record(event: dict) -> None:
        event = {"run": run_id, "model": model_name, "seed": config.seed, "time": time.time(), **event}
        events.append(event)
        emit(event)

    started = time.monotonic()
    setup = _prepare(cache, model_name, config, record, should_cancel)
    progress = ProgressEvents(record, epochs=config.epochs, should_cancel=should_cancel)
    progress.cancelled = setup.cancelled
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    # Early stopping first (the state records what it decided), then the state (an epoch's state is on disk
    # before its event is), then the events.
    state = TrainingState(
        backup_dir,
        early_stopping=early_stopping,
        batches=setup.train,
        interrupted=lambda: progress.cancelled or progress.failure is not None,
    )
    record(_started_event(setup, state))
    try:
        if not progress.cancelled:
            _fit(setup, state, early_stopping, progress)
    except Exception as error:  # noqa: BLE001 - any failure inside Keras ends the run with its reason
        log.error("run %s failed inside Keras:\n%s", run_id, traceback.format_exc())
        progress.failure = _failure_reason(error)
    metadata = _metadata(setup, run_id, job_id, model_name, cache_path, state.history)
    if progress.failure or progress.cancelled:
        status = "failed" if progress.failure else "cancelled"
        reason = {"reason": progress.failure} if progress.failure else {}
        record({"event": status, "epochs_run": metadata["epochs_run"], **reason})
        metadata.update(status=status, reason=progress.failure, training_seconds=round(time.monotonic() - started, 2))
        return save_run(Path(models_dir), run_id, None, metadata, events)
    if early_stopping.stopped_epoch > 0:
        record({"event": "early_stop", "epoch": early_stopping.stopped_epoch + 1, "best_epoch": metadata["best_epoch"]})
    saved = _test_and_save(setup, metadata, record, events, Path(models_dir), started)
    if backup_dir:
        shutil.rmtree(backup_dir, ignore_errors=True)  # the run is safe; its resume state is not needed any more
    return saved


def _started_event(setup: _Setup, state: TrainingState) -> dict:
    return {
        "event": "started",
        "epochs": setup.config.epochs,
        "steps": len(setup.train),
        "device": setup.device,
        "replicas": _replicas(setup.strategy),
        "parameters": setup.model.count_params(),
        "train_clips": len(setup.split.train),
        "resumed_after": state.epoch,
        "validation_clips": len(setup.split.validation),
        "test_clips": len(setup.split.test),
    }


def _fit(setup: _Setup, state: TrainingState, early_stopping, progress: ProgressEvents) -> None:
    """Trains from where `state` stopped (the first epoch when it holds nothing) to the end or an early stop."""
    network = setup.network
    state.restore(network)
    if state.complete:
        # Killed after its last epoch was saved: nothing left to train but the best weights to put back.
        if early_stopping.restore_best_weights and (state.saved[0] / "best.npz").is_file():
            state.on_train_begin()
            network.set_weights(early_stopping.best_weights)
        return
    # shuffle=False: FrameBatches shuffles from the seed itself; Keras would also reorder its batches with
    # Python's global `random`, which a resumed process could not replay.
    network.fit(
        setup.train,
        validation_data=setup.validation,
        epochs=setup.config.epochs,
        initial_epoch=state.epoch,
        callbacks=[early_stopping, state, progress],
        shuffle=False,
        verbose=0,
    )


def _replicas(strategy) -> int:
    return strategy.num_replicas_in_sync if strategy else 1


def _metadata(setup: _Setup, run_id, job_id, model_name, cache_path, history: dict) -> dict:
    """The run's metadata.json before its outcome: `config` is the source of truth; seed, classes and sizes are
    copied to the top for the readers of older runs."""
    config, split, cache = setup.config, setup.split, setup.cache
    return {
        "run_id": run_id,
        "job": job_id,
        "model": model_name,
        "seed": config.seed,
        "config": config.to_dict(),
        "classes": list(config.classes),
        "sequence_length": config.sequence_length,
        "image_size": config.image_size,
        "split": {
            "name": config.split,
            "train": len(split.train),
            "validation": len(split.validation),
            "test": len(split.test),
        },
        "dataset": {"cache": str(Path(cache_path).resolve()), "fingerprint": cache.fingerprint, "clips": len(cache)},
        "parameters": setup.model.count_params(),
        "trainable_parameters": int(sum(np.prod(variable.shape) for variable in setup.model.trainable_variables)),
        "backbone": setup.backbone,
        "network": config.trainer,
        "history": history,
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else None,
        "device": setup.device,
        "replicas": _replicas(setup.strategy),
        "worker": _worker_role(setup.strategy),
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _test_and_save(
    setup: _Setup, metadata: dict, record: Emit, events: list[dict], models_dir: Path, started: float
) -> Path:
    """Scores the trained model on the test split, judges it against chance, and saves the finished run
    (`started`: when the run began, on the monotonic clock)."""
    config, split = setup.config, setup.split
    test = FrameBatches(
        setup.cache,
        split.test,
        batch_size=max(config.batch_size, 16),
        shuffle=False,
        seed=config.seed,
        features=setup.features,
    )
    test_loss, test_accuracy = setup.network.evaluate(test, verbose=0)
    verdict = chance.judge(
        test_accuracy=float(test_accuracy),
        test_clips=len(split.test),
        num_classes=len(config.classes),
        val_losses=metadata["history"].get("val_loss", []),
    )
    metadata.update(
        status="finished",
        test={"loss": float(test_loss), "accuracy": float(test_accuracy)},
        at_chance=verdict is not None,
        at_chance_reason=verdict,
        training_seconds=round(time.monotonic() - started, 2),
    )
    record(
        {
            "event": "finished",
            "test_loss": float(test_loss),
            "test_accuracy": float(test_accuracy),
            "epochs_run": metadata["epochs_run"],
            "best_epoch": metadata["best_epoch"],
            "at_chance": verdict is not None,
            "at_chance_reason": verdict,
            "training_seconds": metadata["training_seconds"],
        }
    )
    # Saved compiled, with the optimizer state it was trained with (the twin's variables are `model`'s).
    setup.model.compile(optimizer=setup.network.optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return save_run(models_dir, metadata["run_id"], setup.model, metadata, events)


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
    versions = {
        "har": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    elif keras.backend.backend() == "jax":
        import jax

        versions["jax"] = jax.__version__
    return versions
