"""The output layer every model family ends each task with.

One Dense layer named exactly the task (the Keras output name, which the
losses, metrics, TFMA's output names and the serving signatures all key on):
softmax over the classes (binary as 2 slots, multiclass), a sigmoid per label
(multilabel) or one linear unit (regression).

It computes in float32 whatever the Keras dtype policy (train.precision,
components/trainer/precision.py): a softmax or sigmoid in bfloat16 keeps 8 bits of
mantissa, too few for cross-entropy near 0 or 1, and the outputs TFMA and serving
read stay float32.
"""
from __future__ import annotations

import tf_keras as keras

from config import TaskConfig

ACTIVATIONS = {"binary": "softmax", "multiclass": "softmax", "multilabel": "sigmoid", "regression": "linear"}


def output_layer(task: TaskConfig, regularizer=None) -> keras.layers.Dense:
    """The task's output layer, named exactly the task."""
    return keras.layers.Dense(task.width, activation=ACTIVATIONS[task.type], kernel_regularizer=regularizer,
                              name=task.name, dtype="float32")
