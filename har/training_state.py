"""A training run's state across interruptions: what a run killed mid-way needs to resume as if it had not stopped.

Used by `har.training.train_run` with a job's `backup/<run>/` folder.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from har.runs import fsync_tree

log = logging.getLogger(__name__)


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
        batches: keras.utils.PyDataset,  # har.batches.FrameBatches: its shuffles are replayed
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
        fsync_tree(partial)
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
