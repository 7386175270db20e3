"""The model the Trainer fits: the family's model plus the loss weighting.

`MultitaskTrainingModel` is built on the family model's own input and output
tensors, so it shares every layer and weight with it; it adds the
`LossWeighting` state (components/trainer/loss_weighting.py) and computes the loss
itself (`compute_loss`), which is what lets a loss weight be learned
(uncertainty) or change between epochs (dwa). Only the family's plain
functional model is saved (components/trainer/run_fn.py), so the saved model never
names this class and loads with plain `tf_keras.models.load_model`.

Logged per epoch, as Keras names them: `loss` (the weighted total plus L2,
what is minimised), `<task>_loss` (task i's unweighted masked loss, averaged
over the epoch's examples of that task) and the compiled per-task metrics.
Under a distribution strategy every one of them is the global batch's value,
the one a single worker would log (docs/distributed.md).
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.trainer.loss_weighting import LossWeighting
from components.trainer.mtl_step import MtlState, MtlStep
from components.trainer.optimizer import make_optimizer
from config import Config
from models.losses import task_loss, task_sums_and_counts


class MultitaskTrainingModel(keras.Model):
    """Functional model (same tensors as the family model) with a weighted multitask loss."""

    def __init__(self, *args, config: Config, **kwargs):
        super().__init__(*args, **kwargs)
        self.task_names = list(config.task_names)
        self.task_losses = [task_loss(t) for t in config.tasks]
        self.weighting = LossWeighting(config)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.task_loss_trackers = [keras.metrics.Mean(name=f"{t}_loss") for t in self.task_names]
        # A gradient method (train.mtl.method) trains with its own step (components/trainer/mtl_step.py).
        self.mtl_state = self.mtl_step = None
        if config.train.mtl.method != "none":
            self.mtl_state = MtlState(len(self.task_names))
            self.mtl_step = MtlStep(self, config)
            self.mtl_step.state = self.mtl_state

    def train_step(self, data):
        if self.mtl_step is None:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return self.mtl_step.train_step(self, x, y, sample_weight)

    def weights_in_use(self) -> tf.Tensor:
        """The task weights of the last step: the gradient method's, else the loss weighting's."""
        if self.mtl_state is not None:
            return tf.identity(self.mtl_state.last_weights)
        return self.weighting.weights_in_use()

    @property
    def metrics(self):
        # Listed here so Keras resets them each epoch and reports them (loss first, as Keras does).
        return [self.loss_tracker, *self.task_loss_trackers, *super().metrics]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        del x
        sums, counts = task_sums_and_counts(self.task_names, self.task_losses, y, y_pred, sample_weight)
        sums, counts = tf.stack(sums), tf.stack(counts)
        replica = tf.distribute.get_replica_context()
        replicas = replica.num_replicas_in_sync if replica is not None else 1
        if replicas == 1:
            losses = sums / tf.maximum(counts, 1.0)
            total = self.weighting.combine(losses, tf.cast(counts > 0, losses.dtype))
            if self.losses:  # L2 weight decay of the family's layers
                total += tf.add_n(self.losses)
            self._track(total, losses, counts)
            return total
        # Several replicas (docs/distributed.md): each holds part of the global batch, and
        # the optimizer sums their gradients. The global masked mean of task i is
        # sum_r sums_r[i] / sum_r counts_r[i]; this replica's share of it is its own sum
        # over the global count, so the shares add up to the global mean (a per-replica
        # mean, averaged, would not: it weighs a replica's few examples of a task as
        # much as another's many). One all-reduce carries the sums (for the logs only,
        # no gradient) and the counts.
        reduced = replica.all_reduce(tf.distribute.ReduceOp.SUM,
                                     tf.concat([tf.stop_gradient(sums), counts], axis=0))
        k = len(self.task_names)
        global_sums, global_counts = reduced[:k], reduced[k:]
        denominators = tf.maximum(global_counts, 1.0)
        present = tf.cast(global_counts > 0, sums.dtype)
        share = self.weighting.combine(sums / denominators, present, replicas)
        global_losses = global_sums / denominators
        global_total = self.weighting.combine(global_losses, present)
        if self.losses:  # L2 weight decay: the same on every replica, so 1 / replicas each
            l2 = tf.add_n(self.losses)
            share += l2 / replicas
            global_total += l2
        self._track(tf.stop_gradient(global_total), global_losses, global_counts)
        return share

    def _track(self, total, losses, counts):
        """Logs the batch's loss values (global ones under a strategy: every replica adds the
        same values, so the metrics' cross-replica sums give the one-worker means)."""
        self.loss_tracker.update_state(total)
        for i, tracker in enumerate(self.task_loss_trackers):
            # weighted by the task's examples: the epoch value is the mean over them
            tracker.update_state(losses[i], sample_weight=counts[i])


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
