"""`train.keep`: which weights the Trainer saves, the last step's or the best epoch's.

`best` is the epoch with the lowest validation loss, taken as the sum of the
tasks' unweighted masked validation losses (`val_<task>_loss`): the
regularisation term and learned loss weights are left out, since they change
with the weights and the weighting, not with how well the tasks are done.
The best weights are kept as a checkpoint under the ModelRun folder together
with their loss and epoch (`best/state.json`), so a Trainer restarted after a
kill (BackupAndRestore) still compares against the best epoch before the kill.
"""
from __future__ import annotations

import json
import math
import os

import tensorflow as tf
import tf_keras as keras
from absl import logging


def validation_loss(logs: dict, task_names) -> float | None:
    """Sum of the tasks' validation losses in Keras' epoch logs; None when one is missing."""
    values = [logs.get(f"val_{t}_loss") for t in task_names]
    if any(v is None for v in values):
        return None
    return float(sum(float(v) for v in values))


class KeepBest(keras.callbacks.Callback):
    """Checkpoints `model`'s weights at every epoch whose validation loss beats the best so far;
    `restore()` loads the best back. `model` is the family's model (the weights saved)."""

    def __init__(self, model: keras.Model, task_names, directory: str):
        super().__init__()
        self._family = model
        self._tasks = list(task_names)
        self._dir = directory
        self._state_path = os.path.join(directory, "state.json")
        self.best: float = math.inf
        self.best_epoch: int | None = None

    def on_train_begin(self, logs=None):
        if tf.io.gfile.exists(self._state_path):  # a restarted Trainer: keep comparing with the old best
            with tf.io.gfile.GFile(self._state_path) as f:
                state = json.load(f)
            self.best, self.best_epoch = float(state["val_loss"]), int(state["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        loss = validation_loss(logs or {}, self._tasks)
        if loss is None or not math.isfinite(loss) or loss >= self.best:
            return
        self.best, self.best_epoch = loss, epoch
        tf.io.gfile.makedirs(self._dir)
        self._family.save_weights(os.path.join(self._dir, "weights"))
        # Written after the weights: a kill between the two leaves the older state, which
        # is at worst a higher bar than the weights on disk, never a state without weights.
        tmp = self._state_path + ".tmp"
        with tf.io.gfile.GFile(tmp, "w") as f:
            json.dump({"val_loss": loss, "epoch": epoch}, f)
        tf.io.gfile.rename(tmp, self._state_path, overwrite=True)

    def restore(self) -> int | None:
        """Loads the best epoch's weights into the model; returns that epoch (0-based), None if none."""
        if self.best_epoch is None:
            logging.warning("train.keep best: no epoch had a finite validation loss; keeping the last weights")
            return None
        self._family.load_weights(os.path.join(self._dir, "weights"))
        logging.info("train.keep best: epoch %d of the run, validation loss %.4f", self.best_epoch + 1, self.best)
        return self.best_epoch
