"""The optimizer the Trainer (and the training-parity benchmark's reference loop) uses.

Adam at `train.learning_rate`, reached by a linear warm-up over the first
`train.warmup` share of the steps and then held (`lr_decay: constant`) or
cosine-decayed to 0 at the last step (`lr_decay: cosine`). Warm-up keeps
Adam's first updates small while its moment estimates are still noise and
batch-norm statistics are still moving; the decay lets the last steps settle
instead of ending on a full-size step. The schedule is a Keras
LearningRateSchedule, so Keras' TensorBoard callback logs it per epoch as
`learning_rate` (the report's training curves draw it).
"""
from __future__ import annotations

import math

import tensorflow as tf
import tf_keras as keras

from config import LR_DECAYS, TrainConfig


@keras.saving.register_keras_serializable(package="multitask")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The rate of update k (1-based): peak * k / W for k <= W (W = warmup_steps); then peak
    (`decay: constant`), or peak * (1 + cos(pi * (k - W - 1) / (T - W))) / 2 (`cosine`, T = total_steps)."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, decay: str = "constant"):
        if decay not in LR_DECAYS:
            raise ValueError(f"unknown lr_decay {decay!r}; valid: {', '.join(LR_DECAYS)}")
        if total_steps < 1 or not 0 <= warmup_steps < max(total_steps, 1):
            raise ValueError(f"need 0 <= warmup_steps < total_steps, received {warmup_steps} and {total_steps}")
        self.peak, self.decay = float(peak), decay
        self.total_steps, self.warmup_steps = int(total_steps), int(warmup_steps)

    def __call__(self, step):
        # Keras hands the count of updates already applied: the first update uses step 0.
        step = tf.cast(step, tf.float32) + 1.0
        peak = tf.constant(self.peak, tf.float32)
        warm = float(max(self.warmup_steps, 1))
        rate = peak * tf.minimum(step / warm, 1.0) if self.warmup_steps else peak
        if self.decay == "cosine":
            span = float(max(self.total_steps - self.warmup_steps, 1))
            # the first update after warm-up runs at the peak; the last one just above 0
            done = tf.clip_by_value((step - self.warmup_steps - 1.0) / span, 0.0, 1.0)
            rate = tf.where(step <= self.warmup_steps, rate, peak * 0.5 * (1.0 + tf.cos(math.pi * done)))
        return rate

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "decay": self.decay}


def learning_rate(train: TrainConfig, total_steps: int) -> WarmupDecay:
    return WarmupDecay(train.learning_rate, total_steps, int(train.warmup * total_steps), train.lr_decay)


def make_optimizer(train: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """Adam with the configured learning-rate schedule over `total_steps` updates."""
    return keras.optimizers.Adam(learning_rate(train, total_steps))
