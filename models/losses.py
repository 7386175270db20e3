"""Per-task masked losses: each task's loss sees only that task's examples.

A batch mixes examples of every task; `weight_<task>` (1.0 on the task's
examples, 0.0 elsewhere) arrives as the output's sample weight. The loss is
the mean over the task's own examples, sum(w * l) / max(sum(w), 1), so a
task's loss does not shrink when its examples are a small part of the batch
(the seed's reduce_mean over the whole batch does), and a batch with none of
its examples gives exactly 0 instead of 0 / 0. With several replicas
(multi-worker or multi-GPU training) the mean is over the global batch: sums
and counts are added over the replicas first (`sum_and_count`; docs/distributed.md).

Per-example losses by task type (and `tasks[i].loss`): categorical
cross-entropy (binary, multiclass), binary cross-entropy averaged over the
labels (multilabel), squared (`mse`, the default) or absolute (`mae`) error
(regression).
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from config import TASK_LOSSES, TASK_TYPES, TaskConfig


def _check(task_type: str, loss: str | None) -> str:
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; valid: {', '.join(TASK_TYPES)}")
    loss = loss or TASK_LOSSES[task_type][0]
    if loss not in TASK_LOSSES[task_type]:
        raise ValueError(f"unknown loss {loss!r} for a {task_type} task; valid: {', '.join(TASK_LOSSES[task_type])}")
    return loss


def per_example_loss(task_type: str, y_true: tf.Tensor, y_pred: tf.Tensor, loss: str | None = None) -> tf.Tensor:
    """Unreduced loss, [batch], for one task type and loss name (None: the
    type's default); y_pred are the model's outputs."""
    loss = _check(task_type, loss)
    y_true = tf.cast(y_true, y_pred.dtype)
    if task_type in ("binary", "multiclass"):
        # Outputs are softmax probabilities; keras clips them to [1e-7, 1 - 1e-7]
        # (the seed clips to [1e-10, 1]) so log() stays finite.
        return keras.losses.categorical_crossentropy(y_true, y_pred)
    if task_type == "multilabel":
        return keras.losses.binary_crossentropy(y_true, y_pred)  # mean over labels
    if loss == "mae":
        return tf.reduce_mean(tf.abs(y_true - y_pred), axis=-1)
    return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="multitask")
class MaskedTaskLoss(keras.losses.Loss):
    """sum(w * l) / max(sum(w), 1) over the batch, l the task type's per-example loss."""

    def __init__(self, task_type: str, loss: str | None = None, name: str | None = None, **kwargs):
        self.loss = _check(task_type, loss)
        super().__init__(name=name or f"masked_{task_type}", **kwargs)
        self.task_type = task_type

    def call(self, y_true, y_pred):
        return per_example_loss(self.task_type, y_true, y_pred, self.loss)

    def sum_and_count(self, y_true, y_pred, sample_weight=None) -> tuple[tf.Tensor, tf.Tensor]:
        """(sum(w * l), sum(w)) over the batch: the two parts of the masked mean. Under a
        distribution strategy each replica holds only its part of the global batch; the
        global masked mean is the sum over replicas of the first divided by the sum of
        the second (components/trainer/training_model.py)."""
        # float32 even from a model whose outputs are not (the heads are: models/heads.py), so
        # a loss is never summed in bfloat16 or float16 under a mixed train.precision
        y_pred = tf.cast(tf.convert_to_tensor(y_pred), tf.float32)
        losses = tf.reshape(self.call(y_true, y_pred), [-1])
        if sample_weight is None:
            weights = tf.ones_like(losses)
        else:
            weights = tf.reshape(tf.cast(sample_weight, losses.dtype), [-1])
        return tf.reduce_sum(weights * losses), tf.reduce_sum(weights)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.backend.name_scope(self._name_scope):
            total, count = self.sum_and_count(y_true, y_pred, sample_weight)
            return total / tf.maximum(count, 1.0)

    def get_config(self):
        return {**super().get_config(), "task_type": self.task_type, "loss": self.loss}


def task_loss(task: TaskConfig) -> MaskedTaskLoss:
    return MaskedTaskLoss(task.type, task.loss, name=f"{task.name}_loss")


def task_sums_and_counts(task_names, task_losses, y, y_pred, sample_weight=None) -> tuple[list, list]:
    """Per task, the sum of its masked loss over the batch and its example count
    (`MaskedTaskLoss.sum_and_count`), `sample_weight` being {task: weight} (None: every example).
    Lists, not stacked tensors: a gradient of one task's sum then reaches only that task's
    head (slicing a stack would link every task to every head with zero gradients)."""
    sums, counts = [], []
    for name, loss_fn in zip(task_names, task_losses):
        weight = None if sample_weight is None else sample_weight[name]
        if weight is None:
            weight = tf.ones(tf.shape(y_pred[name])[:1], tf.float32)
        task_sum, task_count = loss_fn.sum_and_count(y[name], y_pred[name],
                                                     tf.reshape(tf.cast(weight, tf.float32), [-1]))
        sums.append(task_sum)
        counts.append(task_count)
    return sums, counts
