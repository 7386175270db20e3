"""The model the Trainer fits: the family's model plus the loss weighting.

`MultitaskTrainingModel` is built on the family model's own input and output
tensors, so it shares every layer and weight with it; it adds the
`LossWeighting` state (components/loss_weighting.py) and computes the loss
itself (`compute_loss`), which is what lets a loss weight be learned
(uncertainty) or change between epochs (dwa). Only the family's plain
functional model is saved (components/trainer.py), so the saved model never
names this class and loads with plain `tf_keras.models.load_model`.

Logged per epoch, as Keras names them: `loss` (the weighted total plus L2,
what is minimised), `<task>_loss` (task i's unweighted masked loss, averaged
over the epoch's examples of that task) and the compiled per-task metrics.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from components.loss_weighting import LossWeighting  # noqa: E402
from components.optimizer import make_optimizer  # noqa: E402
from models.losses import task_loss  # noqa: E402
from pipeline.config import Config  # noqa: E402


class MultitaskTrainingModel(keras.Model):
    """Functional model (same tensors as the family model) with a weighted multitask loss."""

    def __init__(self, *args, config: Config, **kwargs):
        super().__init__(*args, **kwargs)
        self.task_names = list(config.task_names)
        self.task_losses = [task_loss(t) for t in config.tasks]
        self.weighting = LossWeighting(config)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.task_loss_trackers = [keras.metrics.Mean(name=f"{t}_loss") for t in self.task_names]

    @property
    def metrics(self):
        # Listed here so Keras resets them each epoch and reports them (loss first, as Keras does).
        return [self.loss_tracker, *self.task_loss_trackers, *super().metrics]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        del x
        losses, counts = [], []
        for name, loss_fn in zip(self.task_names, self.task_losses):
            weight = None if sample_weight is None else sample_weight[name]
            if weight is None:
                weight = tf.ones(tf.shape(y_pred[name])[:1], y_pred[name].dtype)
            weight = tf.reshape(tf.cast(weight, y_pred[name].dtype), [-1])
            losses.append(loss_fn(y[name], y_pred[name], weight))
            counts.append(tf.reduce_sum(weight))
        losses, counts = tf.stack(losses), tf.stack(counts)
        total = self.weighting.combine(losses, tf.cast(counts > 0, losses.dtype))
        if self.losses:  # L2 weight decay of the family's layers
            total += tf.add_n(self.losses)
        self.loss_tracker.update_state(total)
        for i, tracker in enumerate(self.task_loss_trackers):
            # weighted by the task's examples: the epoch value is the mean over them
            tracker.update_state(losses[i], sample_weight=counts[i])
        # Gradients are summed over replicas; each replica's share is 1 / replicas.
        replica = tf.distribute.get_replica_context()
        replicas = replica.num_replicas_in_sync if replica is not None else 1
        return total / replicas


def metrics_for(task) -> list[keras.metrics.Metric]:
    """Per-task metrics; compiled as weighted_metrics so they count only the task's examples."""
    if task.is_classification:
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if task.type == "multilabel":
        return [keras.metrics.BinaryAccuracy(name="accuracy")]
    return [keras.metrics.MeanAbsoluteError(name="mae")]


def make_training_model(model: keras.Model, config: Config, total_steps: int | None = None) -> MultitaskTrainingModel:
    """Wraps the family's `model` (shared layers) and compiles it for training with the
    configured optimizer over `total_steps` updates (default train.steps).
    Call under the distribution strategy's scope, as the model was built."""
    outputs = dict(zip(model.output_names, model.outputs))
    training = MultitaskTrainingModel(inputs=model.inputs, outputs=outputs, config=config,
                                      name=f"{model.name}_training")
    training.compile(optimizer=make_optimizer(config.train, total_steps or config.train.steps),
                     weighted_metrics={t.name: metrics_for(t) for t in config.tasks})
    return training
