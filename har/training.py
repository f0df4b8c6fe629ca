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
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from har import __version__, chance
from har.config import Config
from har.datasets import FrameCache, load_cache, make_split
from har.models import build_model, fast_model

log = logging.getLogger(__name__)

Emit = Callable[[dict], None]
BATCH_EVENT_SECONDS = 0.5  # at most two batch events a second
SMALL_CPU_CORES = 4  # up to this many cores (a free Hugging Face Space has 2), training prefers op parallelism


class FrameBatches(keras.utils.PyDataset):
    """(frames, one-hot labels) batches from a frame cache: float32 in [0, 1], (B, T, H, W, 3).

    Shuffled anew each epoch from `seed` when `shuffle` is set, so a run is reproducible; `shuffles` counts the
    orders drawn, which is all a resumed run needs to continue the same sequence (`replay_shuffles`).
    """

    def __init__(self, cache: FrameCache, indices: np.ndarray, *, batch_size: int, shuffle: bool, seed: int):
        super().__init__()
        self.cache, self.indices, self.batch_size, self.shuffle = cache, np.asarray(indices), batch_size, shuffle
        self.seed = seed
        self.replay_shuffles(1)
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
            self.shuffles += 1

    def replay_shuffles(self, count: int) -> None:
        """Puts the shuffling where it was after `count` orders had been drawn (the first at creation)."""
        self.rng = np.random.default_rng(self.seed)
        self.order, self.shuffles = self.indices, 0
        if self.shuffle:
            for _ in range(count):
                self.order = self.rng.permutation(self.indices)
                self.shuffles += 1


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


class TrainingState(keras.callbacks.Callback):
    """The run's whole story across interruptions: its history, and what resuming it needs.

    It keeps the history of every finished epoch (a resumed run's history starts at epoch 1, not where the
    resume began). With a `folder`, after each finished epoch it also saves everything the rest of the run
    depends on: weights with the optimizer's state, the dropout seed generators, early stopping's best value,
    waiting count and best weights, and how many shuffles the training batches have drawn. A run resumed from
    it continues exactly as the uninterrupted run would have, and stops where that one would.

    Each epoch's state is written to `<folder>/epoch-NNNN.partial/`, flushed and renamed to `epoch-NNNN/`, so
    a kill at any moment leaves the previous complete state; the two newest are kept. Put this callback after
    EarlyStopping, whose state it records and restores.
    """

    def __init__(
        self,
        folder: str | Path | None,
        *,
        early_stopping: keras.callbacks.EarlyStopping,
        batches: FrameBatches,
        interrupted: Callable[[], bool] = lambda: False,
    ):
        super().__init__()
        self.folder = Path(folder) if folder else None
        self.early_stopping, self.batches, self.interrupted = early_stopping, batches, interrupted
        self.history: dict[str, list[float]] = {}
        self.saved = self._newest_saved()
        self.epoch = self.saved[1]["epoch"] if self.saved else 0

    @property
    def complete(self) -> bool:
        """The saved state is that of a run that already ended (early stopping, or the last epoch)."""
        return bool(self.saved and self.saved[1]["complete"])

    def restore(self, network: keras.Model) -> None:
        """Loads the saved weights, optimizer and seed states into `network` (call before `fit`)."""
        if not self.saved:
            return
        path, state = self.saved
        if network.optimizer is not None and not network.optimizer.built:
            network.optimizer.build(network.trainable_variables)
        network.load_weights(path / "weights.weights.h5")
        seeds = np.load(path / "seeds.npz")
        for index, variable in enumerate(_seed_states(network)):
            variable.assign(seeds[f"seed_{index}"])
        self.history = state["history"]
        self.batches.replay_shuffles(state["shuffles"] - 1)  # fit() draws the next order as it starts

    def on_train_begin(self, logs=None):
        if not self.saved:
            return
        path, state = self.saved
        stopping = self.early_stopping
        stopping.wait, stopping.best, stopping.best_epoch = state["wait"], state["best"], state["best_epoch"]
        stopping.stopped_epoch = state["stopped_epoch"]
        if (path / "best.npz").is_file():
            best = np.load(path / "best.npz")
            stopping.best_weights = [best[f"w_{index}"] for index in range(len(best.files))]

    def on_epoch_end(self, epoch, logs=None):
        if self.interrupted():
            return  # a cancelled or failed epoch is not part of the story
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.epoch = epoch + 1
        if self.folder is not None:
            complete = bool(self.model.stop_training) or self.epoch >= self.params["epochs"]
            self._save(complete)

    def _save(self, complete: bool) -> None:
        stopping = self.early_stopping
        final = self.folder / f"epoch-{self.epoch:04d}"
        partial = self.folder / f"epoch-{self.epoch:04d}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        self.model.save_weights(partial / "weights.weights.h5")
        np.savez(partial / "seeds.npz", **{f"seed_{i}": np.asarray(v) for i, v in enumerate(_seed_states(self.model))})
        if stopping.best_weights is not None:
            np.savez(partial / "best.npz", **{f"w_{i}": w for i, w in enumerate(stopping.best_weights)})
        state = {
            "epoch": self.epoch,
            "complete": complete,
            "history": self.history,
            "wait": stopping.wait,
            "best": None if stopping.best is None else float(stopping.best),
            "best_epoch": stopping.best_epoch,
            "stopped_epoch": stopping.stopped_epoch,
            "shuffles": self.batches.shuffles,
        }
        (partial / "state.json").write_text(json.dumps(state))
        _fsync_tree(partial)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for older in sorted(self.folder.glob("epoch-*"))[:-2]:
            shutil.rmtree(older, ignore_errors=True)

    def _newest_saved(self) -> tuple[Path, dict] | None:
        """The newest complete saved state, skipping any that cannot be read."""
        if self.folder is None or not self.folder.is_dir():
            return None
        for path in sorted((p for p in self.folder.glob("epoch-*") if not p.name.endswith(".partial")), reverse=True):
            try:
                state = json.loads((path / "state.json").read_text())
                if (path / "weights.weights.h5").is_file() and (path / "seeds.npz").is_file():
                    return path, state
            except (OSError, ValueError):
                pass
            log.warning("skipping the unreadable training state %s", path)
        return None


def _seed_states(network: keras.Model) -> list:
    """The state variables of every seed generator (dropout masks) in the network, in a fixed order."""
    return [variable for variable in network.variables if "seed_generator_state" in variable.path]


def configure_devices(*, ops_side_by_side: bool = False) -> str:
    """Lets GPUs grow their memory (so the app and a job can share one) and names the device used.

    `ops_side_by_side` (the twin only): on a few CPU cores, one thread per op and independent ops side by side.
    The plain trainer keeps TensorFlow's threading, because splitting an op's sums across other threads rounds
    them differently and `har train` must be the very run that `model.fit` gives (tests/test_training.py).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        cores = os.cpu_count() or 1
        if ops_side_by_side and not gpus and cores <= SMALL_CPU_CORES:
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
    job_id: str | None = None,
    emit: Emit = lambda event: None,
    should_cancel: Callable[[], bool] = lambda: False,
    backup_dir: str | Path | None = None,
    distribute: str | None = None,
    mixed_precision: bool = False,
) -> Path:
    """Trains `model_name` on the cache and saves the run; returns the run folder.

    The run's classes, sequence length and image size come from the cache; everything else from `config`.
    A cancelled or failed run is saved too, with its events and reason but no model. With `backup_dir`, an
    interrupted run resumes from its last finished epoch and goes on as if it had never stopped
    (`TrainingState`). `config.trainer` says how: "plain" fits the report's Keras model with `model.fit`;
    "twin" fits har's weight-sharing twin, the same steps to float rounding, faster
    (benchmarks/training_fidelity.py compares the two).
    """
    cache = load_cache(cache_path)
    config = (config or Config()).replace(
        classes=cache.class_names, sequence_length=cache.sequence_length, image_size=cache.image_size
    )
    twin = config.trainer == "twin"
    models_dir = Path(models_dir)
    events: list[dict] = []

    def record(event: dict) -> None:
        event = {"run": run_id, "model": model_name, "seed": config.seed, "time": time.time(), **event}
        events.append(event)
        emit(event)

    started = time.monotonic()
    keras.utils.set_random_seed(config.seed)
    device = configure_devices(ops_side_by_side=twin)
    if mixed_precision:
        if not has_gpu():
            # TensorFlow's CPU kernels lack float16 for some layers (MaxPool3D) and would be slower anyway.
            raise ValueError(
                "--mixed-precision: float16 training needs a GPU and there is none here; "
                "train without --mixed-precision."
            )
        keras.mixed_precision.set_global_policy("mixed_float16")
    split = make_split(
        cache.groups,
        split=config.split,
        test_fraction=config.test_fraction,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
    )
    strategy = distribution_strategy(distribute)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_model(
            model_name,
            num_classes=len(config.classes),
            sequence_length=config.sequence_length,
            image_size=config.image_size,
        )
        network = fast_model(model) if twin else model  # the twin trains `model`'s weights; `model` is saved
        if distribute == "multiworker":
            network = _MultiWorkerModel(network.inputs, network.outputs, name=network.name)
        network.compile(
            optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
    train = FrameBatches(cache, split.train, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    validation = FrameBatches(cache, split.validation, batch_size=config.batch_size, shuffle=False, seed=config.seed)
    progress = ProgressEvents(record, epochs=config.epochs, should_cancel=should_cancel)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    # Early stopping first (the state records what it decided), then the state (an epoch's state is on disk
    # before its event is), then the events.
    state = TrainingState(
        backup_dir,
        early_stopping=early_stopping,
        batches=train,
        interrupted=lambda: progress.cancelled or progress.failure is not None,
    )
    replicas = strategy.num_replicas_in_sync if strategy else 1
    record(
        {
            "event": "started",
            "epochs": config.epochs,
            "steps": len(train),
            "device": device,
            "replicas": replicas,
            "parameters": model.count_params(),
            "train_clips": len(split.train),
            "resumed_after": state.epoch,
            "validation_clips": len(split.validation),
            "test_clips": len(split.test),
        }
    )
    try:
        state.restore(network)
        if state.complete:
            # Killed after its last epoch was saved: nothing left to train but the best weights to put back.
            if early_stopping.restore_best_weights and (state.saved[0] / "best.npz").is_file():
                state.on_train_begin()
                network.set_weights(early_stopping.best_weights)
        else:
            # shuffle=False: FrameBatches shuffles from the seed itself; Keras would also reorder its batches with
            # Python's global `random`, which a resumed process could not replay.
            network.fit(
                train,
                validation_data=validation,
                epochs=config.epochs,
                initial_epoch=state.epoch,
                callbacks=[early_stopping, state, progress],
                shuffle=False,
                verbose=0,
            )
    except Exception as error:  # noqa: BLE001 - any failure inside Keras ends the run with its reason
        progress.failure = _failure_reason(error)
    history = state.history
    epochs_run = len(history.get("loss", []))
    best_epoch = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else None
    metadata = {
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
        "parameters": model.count_params(),
        "network": "twin" if twin else "plain",
        "history": history,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
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
        record(
            {"event": status, "epochs_run": epochs_run, **({"reason": progress.failure} if progress.failure else {})}
        )
        metadata.update(status=status, reason=progress.failure, training_seconds=round(time.monotonic() - started, 2))
        return _save_run(models_dir, run_id, None, metadata, events)
    if early_stopping.stopped_epoch > 0:
        record({"event": "early_stop", "epoch": early_stopping.stopped_epoch + 1, "best_epoch": best_epoch})
    test = FrameBatches(cache, split.test, batch_size=max(config.batch_size, 16), shuffle=False, seed=config.seed)
    test_loss, test_accuracy = network.evaluate(test, verbose=0)
    verdict = chance.judge(
        test_accuracy=float(test_accuracy),
        test_clips=len(split.test),
        num_classes=len(config.classes),
        val_losses=history.get("val_loss", []),
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
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "at_chance": verdict is not None,
            "at_chance_reason": verdict,
            "training_seconds": metadata["training_seconds"],
        }
    )
    # Saved compiled, with the optimizer state it was trained with (the twin's variables are `model`'s).
    model.compile(optimizer=network.optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    saved = _save_run(models_dir, run_id, model, metadata, events)
    if backup_dir:
        shutil.rmtree(backup_dir, ignore_errors=True)  # the run is safe; its resume state is not needed any more
    return saved


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


def _save_run(models_dir: Path, run_id: str, model, metadata: dict, events: list[dict]) -> Path:
    """Writes the run under a temporary name, then swaps it into place: the folder is always whole."""
    final = models_dir / run_id
    staging = models_dir / f".{run_id}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if model is not None:
        model.save(staging / "model.keras")
    (staging / "metadata.json").write_text(json.dumps(metadata, indent=1))
    (staging / "events.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
    _fsync_tree(staging)
    if final.exists():
        # An earlier attempt's folder (a cancelled run now finished): moved aside, not deleted, until the new
        # one is in place, so a kill between the two renames leaves one of them whole.
        previous = models_dir / f".{run_id}.previous-{os.getpid()}"
        final.rename(previous)
        staging.rename(final)
        shutil.rmtree(previous, ignore_errors=True)
    else:
        staging.rename(final)
    return final


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
