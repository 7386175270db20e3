"""Cross-stitch units (Misra et al. 2016, "Cross-stitch Networks for Multi-task Learning").

One column (tower) per task; after a stage, a cross-stitch unit replaces each task's
activations by a learned linear mix of every task's activations at that stage:

    out_t[..., c] = sum_s alpha[t, s, c] * x_s[..., c]

alpha is learned per channel (a conv stage's filters, a dense stage's units), shared
over the spatial positions: one T x T matrix per channel, T the number of tasks. It
starts as the paper's near-identity: `self_weight` (0.9) on the diagonal, the rest
(0.1) split equally over the other tasks, so each column starts mostly its own task's.
With `self_weight: 1.0` the columns are independent (no gradient crosses them).

`lr_scale` (model.params.stitch_lr_scale) trains alpha `lr_scale` times faster than the
rest of the model, as the paper raises the units' learning rate: the variable holds
alpha / lr_scale and the layer multiplies it back, so the Trainer's Adam, whose step is
about the learning rate whatever the gradient's size, moves alpha `lr_scale` times as far
per step (scaling the gradient instead would change nothing under Adam; under plain SGD
this reparametrisation would give lr_scale squared).

`CrossStitch` is a plain Keras layer registered for serialization, so a model with it
saves and loads as Keras config (no Lambda layers).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tf_keras as keras

SELF_WEIGHT = 0.9  # the paper's initialisation: 0.9 self, 0.1 / (T - 1) each other task


@keras.saving.register_keras_serializable(package="multitask")
class CrossStitch(keras.layers.Layer):
    """Inputs: a list of T tensors of one shape [..., C]; outputs: T tensors of that shape."""

    def __init__(self, self_weight: float = SELF_WEIGHT, lr_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.self_weight = float(self_weight)
        self.lr_scale = float(lr_scale)

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len({s[1:] for s in shapes}) != 1:
            raise ValueError(f"{self.name}: every column must have one shape; received {shapes}")
        tasks, channels = len(shapes), int(shapes[0][-1])
        other = (1.0 - self.self_weight) / (tasks - 1) if tasks > 1 else 0.0
        start = np.full((tasks, tasks), other, np.float32)
        np.fill_diagonal(start, self.self_weight if tasks > 1 else 1.0)
        init = np.repeat(start[:, :, None], channels, axis=2)
        self.scaled_alpha = self.add_weight(name="alpha", shape=(tasks, tasks, channels), trainable=True,
                                            initializer=keras.initializers.Constant(init / self.lr_scale))
        super().build(input_shape)

    @property
    def alpha(self):
        """The mixing weights [to task, from task, channel]."""
        return self.scaled_alpha * self.lr_scale

    def call(self, inputs):
        xs = list(inputs)
        alpha = self.alpha
        return [sum(x * alpha[t, s] for s, x in enumerate(xs)) for t in range(len(xs))]

    def compute_output_shape(self, input_shape):
        return list(input_shape)

    def get_config(self):
        return {**super().get_config(), "self_weight": self.self_weight, "lr_scale": self.lr_scale}


def stitch_layers(model: keras.Model) -> list[CrossStitch]:
    """The model's cross-stitch units, in graph order ([] for any other sharing)."""
    return [layer for layer in model.layers if isinstance(layer, CrossStitch)]


def mixing(layer: CrossStitch, task_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """{to task: {from task: alpha averaged over the channels}}: how much of each task's
    column feeds each task's column after this unit."""
    alpha = np.asarray(layer.alpha.numpy()).mean(axis=-1)
    return {t: {s: float(alpha[i, j]) for j, s in enumerate(task_names)} for i, t in enumerate(task_names)}
