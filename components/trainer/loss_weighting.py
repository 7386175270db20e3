"""How the per-task losses are combined into the one loss training minimises
(`train.loss_weighting`), and the callback that logs the weights used.

  static       sum_i lw_i * L_i                        lw_i = tasks[i].loss_weight
  uncertainty  sum_i lw_i * c_i * exp(-s_i) * L_i + s_i / 2
               Kendall, Gal & Cipolla 2018, "Multi-Task Learning Using
               Uncertainty to Weigh Losses": s_i = log(sigma_i^2) is learned
               per task (initial 0). Eq. 7 / 10 of the paper with log sigma = s / 2:
               a regression task's Gaussian likelihood gives c_i = 1/2
               (1 / (2 sigma^2)), a classification task's (binary, multiclass,
               multilabel: a softmax / sigmoid likelihood) gives c_i = 1.
  dwa          sum_i lw_i * w_i(t) * L_i, per epoch t (Liu, Johns & Davison
               2019, "End-to-End Multi-Task Learning with Attention", eq. 7):
               w_i(t) = K exp(r_i(t-1) / T) / sum_j exp(r_j(t-1) / T),
               r_i(t-1) = L_i(t-1) / L_i(t-2), w_i = 1 for t = 1, 2;
               L_i(t) is task i's mean training loss over epoch t.

L_i is task i's masked loss on the batch (models/losses.py); under a
distribution strategy, on the global batch (every replica sees the same
global L_i; components/trainer/training_model.py). A batch holding
none of task i's examples has L_i = 0; its uncertainty term is dropped too
(else s_i / 2 alone would drive s_i down on batches that say nothing about
the task). With `tasks[i].loss_weight` left at 1.0 each method is the
paper's; another value scales the task's loss on top of the method.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from config import LOSS_WEIGHTINGS, Config


def dwa_weights(last: Sequence[float], before_last: Sequence[float], temperature: float) -> np.ndarray:
    """w_i = K softmax(r / T)_i with r_i = last_i / before_last_i; a task with no
    loss before (0) gets r_i = 1 (no evidence of a trend)."""
    last, before_last = np.asarray(last, np.float64), np.asarray(before_last, np.float64)
    ratio = np.divide(last, before_last, out=np.ones_like(last), where=before_last > 0)
    z = np.exp((ratio - ratio.max()) / temperature)  # shifted: same softmax, no overflow
    return len(last) * z / z.sum()


def uncertainty_factors(task_types: Sequence[str]) -> np.ndarray:
    """c_i: 1/2 for regression (Gaussian likelihood), 1 for classification."""
    return np.array([0.5 if t == "regression" else 1.0 for t in task_types], np.float32)


class LossWeighting(keras.layers.Layer):
    """The weighting state: learned log-variances (uncertainty) or per-epoch
    weights and loss history (dwa). Held by the training model so that it is
    trained (s_i) and checkpointed with it (a resumed run keeps its weights)."""

    def __init__(self, config: Config, **kwargs):
        super().__init__(name="loss_weighting", **kwargs)
        self.method = config.train.loss_weighting.type
        if self.method not in LOSS_WEIGHTINGS:
            raise ValueError(f"unknown loss weighting {self.method!r}; valid: {', '.join(LOSS_WEIGHTINGS)}")
        self.temperature = config.train.loss_weighting.temperature
        self.task_names = list(config.task_names)
        k = len(self.task_names)
        self.static = tf.constant([t.loss_weight for t in config.tasks], tf.float32)
        self.factors = tf.constant(uncertainty_factors([t.type for t in config.tasks]))
        if self.method == "uncertainty":
            self.log_variance = self._state("log_variance", (k,), "zeros", trainable=True)
        if self.method == "dwa":
            self.dwa = self._state("dwa_weights", (k,), "ones")
            # epoch mean losses L(t-1), L(t-2), and the epochs seen
            self.history = self._state("dwa_history", (2, k), "zeros")
            self.epochs = self._state("dwa_epochs", (), "zeros", dtype=tf.int64)

    def _state(self, name, shape, initializer, trainable=False, dtype=tf.float32):
        return self.add_weight(name=f"loss_weighting_{name}", shape=shape, initializer=initializer,
                               trainable=trainable, dtype=dtype)

    def weights_in_use(self) -> tf.Tensor:
        """[K]: the factor each task's loss L_i is multiplied by now."""
        if self.method == "uncertainty":
            return self.static * self.factors * tf.exp(-self.log_variance)
        if self.method == "dwa":
            return self.static * self.dwa
        return self.static

    def combine(self, losses: tf.Tensor, present: tf.Tensor, replicas: int = 1) -> tf.Tensor:
        """The weighted total of the per-task losses [K]; `present` [K] is 1.0
        for the tasks with examples in the (global) batch.

        With `replicas` > 1, `losses` are this replica's shares of the global
        masked means (its sum over the global count), which add up over the
        replicas to the global L_i; the terms that are not per-example
        (uncertainty's s_i / 2) are then divided by `replicas`, so the replicas'
        totals add up to the one-worker total (their gradients are summed)."""
        total = tf.reduce_sum(self.weights_in_use() * losses)
        if self.method == "uncertainty":
            regulariser = tf.reduce_sum(present * self.log_variance / 2)
            total += regulariser / replicas if replicas > 1 else regulariser
        return total

    def end_epoch(self, epoch_losses: Sequence[float]) -> None:
        """dwa: records this epoch's mean task losses and sets next epoch's weights."""
        history = self.history.numpy()
        history = np.stack([np.asarray(epoch_losses, np.float32), history[0]])
        self.history.assign(history)
        self.epochs.assign_add(1)
        # Weights for epoch t + 1 need L(t) and L(t - 1): from the third epoch on.
        if int(self.epochs.numpy()) >= 2:
            self.dwa.assign(dwa_weights(history[0], history[1], self.temperature).astype(np.float32))


class LogLossWeights(keras.callbacks.Callback):
    """Logs the loss weights used in each epoch (absl) and adds them to the
    epoch's logs as `loss_weight_<task>` (and `log_variance_<task>` for
    uncertainty), which Keras' TensorBoard callback, listed after this one,
    writes as `epoch_loss_weight_<task>` scalars; then lets dwa set the next
    epoch's weights. List it before BackupAndRestore so a backup holds them."""

    def __init__(self, weighting: LossWeighting):
        super().__init__()
        self.weighting = weighting

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        w = self.weighting
        used = dict(zip(w.task_names, w.weights_in_use().numpy().tolist()))
        logging.info("epoch %d loss weights (%s): %s", epoch + 1, w.method,
                     ", ".join(f"{t}={v:.4f}" for t, v in used.items()))
        if logs is not None:
            logs.update({f"loss_weight_{t}": v for t, v in used.items()})
            if w.method == "uncertainty":
                logs.update({f"log_variance_{t}": v for t, v in zip(w.task_names, w.log_variance.numpy().tolist())})
        if w.method == "dwa":
            w.end_epoch([_task_loss(logs, t) for t in w.task_names])


def _task_loss(logs: Mapping[str, float] | None, task: str) -> float:
    if not logs or f"{task}_loss" not in logs:
        raise ValueError(f"dwa needs each task's epoch loss; logs lack {task}_loss: {sorted(logs or {})}")
    return float(logs[f"{task}_loss"])
