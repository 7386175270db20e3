"""The training step of a gradient method (`train.mtl.method`, components/trainer/gradient_methods.py).

`MtlStep` replaces Keras's train_step when a gradient method is chosen:

1. One forward pass; each task's masked loss L_i (models/losses.py), times its
   `tasks[i].loss_weight`; a task absent from the batch has L_i = 0, no
   gradient and takes no part (`present`).
2. The task gradients, as rows of G:
   - `grad_on: params`: each task's gradient on the shared parameters (the
     trainable variables two or more tasks' losses reach; found from the graph
     when the step is traced). K backward passes.
   - `grad_on: representation` (LibMTL's rep-grad): each task's gradient on
     the shared representation z (the deepest layer every task output depends
     on, e.g. BKNet's `flatten`), per example. K backward passes through the
     heads only, then one through the trunk with the combined gradient.
3. The method combines G into one direction d (and task weights); the
   shared part gets d, each task's own layers get their task's gradient
   times the method's weight for it; L2 weight decay is added unchanged.

Under a distribution strategy with several replicas (`grad_on: params`
only), G is the global batch's: each replica's gradients of its loss sums are
added over the replicas and divided by the global example counts, so every
replica computes the same d and applies 1 / replicas of it (the optimizer adds
the replicas' gradients).

State (checkpointed with the model, so a resumed Trainer continues it):
gradnorm's weights and first losses, famo's logits and Adam moments, the
weights the last step used (logged per epoch as `mtl_weight/<task>`) and the
count of steps where nash_mtl fell back to equal weights (`mtl_fallbacks`).
FAMO's logit step uses the losses of consecutive batches (delta = log
L_i(t-1) - log L_i(t)) instead of a second forward pass on the same batch,
which the paper's code spends.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tf_keras as keras
from absl import logging

from components.trainer import gradient_methods as gm
from config import MTL_METHODS, Config
from models.losses import task_sums_and_counts


def representation_layer(model: keras.Model) -> str:
    """The shared representation of `model`: the deepest layer that every path from the input to
    any task output passes through (BKNet's `flatten`; with mixture-of-experts sharing, the input
    of the experts, since no single expert carries every task)."""
    parents: dict[int, list] = {}
    by_id = {}
    for layer in model.layers:
        by_id[id(layer)] = layer
        parents[id(layer)] = [t._keras_history[0] for node in layer._inbound_nodes for t in node.keras_inputs
                              if t._keras_history[0] in model.layers]
    children: dict[int, list] = {i: [] for i in parents}
    for child, ps in parents.items():
        for p in ps:
            children[id(p)].append(child)
    inputs = [id(t._keras_history[0]) for t in model.inputs]
    outputs = {id(t._keras_history[0]) for t in model.outputs}

    def reaches_an_output(avoid: int) -> bool:
        seen, stack = set(), [i for i in inputs if i != avoid]
        while stack:
            i = stack.pop()
            if i in outputs:
                return True
            if i in seen:
                continue
            seen.add(i)
            stack.extend(c for c in children[i] if c != avoid)
        return False

    for layer in reversed(model.layers):  # graph order: the deepest candidate first
        if id(layer) in outputs or isinstance(layer, keras.layers.InputLayer):
            continue
        if not reaches_an_output(id(layer)):
            return layer.name
    raise ValueError(f"model {model.name!r} has no layer shared by every task: train.mtl.grad_on "
                     "'representation' needs one (use 'params')")


class MtlState(keras.layers.Layer):
    """The gradient methods' state, held by the training model so it is checkpointed."""

    def __init__(self, k: int, **kwargs):
        super().__init__(name="mtl_state", **kwargs)
        zeros = lambda name: self.add_weight(name=name, shape=(k,), initializer="zeros",  # noqa: E731
                                             trainable=False, dtype=tf.float32)
        self.last_weights = self.add_weight(name="last_weights", shape=(k,), initializer="ones", trainable=False)
        self.gradnorm_weights = self.add_weight(name="gradnorm_weights", shape=(k,), initializer="ones",
                                                trainable=False)
        self.initial_losses = zeros("initial_losses")
        self.famo_logits, self.famo_m, self.famo_v = zeros("famo_logits"), zeros("famo_m"), zeros("famo_v")
        self.previous_losses = zeros("previous_losses")
        self.steps = self.add_weight(name="steps", shape=(), initializer="zeros", trainable=False)
        self.fallbacks = self.add_weight(name="fallbacks", shape=(), initializer="zeros", trainable=False)


class MtlStep:
    """Builds and runs the gradient-method training step for one training model."""

    def __init__(self, training_model: keras.Model, config: Config):
        mtl = config.train.mtl
        self.method, self.grad_on = mtl.method, mtl.grad_on
        self.params = dict(mtl.params)
        self.task_names = list(config.task_names)
        self.loss_weights = tf.constant([t.loss_weight for t in config.tasks], tf.float32)
        self.seed = config.train.seed
        self.trunk = self.heads = None
        if self.grad_on == "representation":
            name = representation_layer(training_model)
            z = training_model.get_layer(name).output
            self.trunk = keras.Model(training_model.inputs, z, name="mtl_trunk")
            outputs = dict(zip(training_model.output_names, training_model.outputs))
            self.heads = keras.Model(z, outputs, name="mtl_heads")
            logging.info("train.mtl: %s on the representation %r", self.method, name)

    # -------------------------------------------------------------- the step
    def train_step(self, model, x, y, sample_weight):
        replica = tf.distribute.get_replica_context()
        replicas = replica.num_replicas_in_sync if replica is not None else 1
        if replicas > 1 and self.grad_on == "representation":
            raise ValueError("train.mtl.grad_on 'representation' runs on one replica; use 'params' "
                             "with a distribution strategy")
        variables = [v for v in model.trainable_variables if "loss_weighting" not in v.name]
        with tf.GradientTape(persistent=True) as tape:
            if self.trunk is not None:
                z = self.trunk(x, training=True)
                y_pred = self.heads(z, training=True)
            else:
                y_pred = model(x, training=True)
            task_sums, counts = task_sums_and_counts(self.task_names, model.task_losses, y, y_pred, sample_weight)
            sums, counts = tf.stack(task_sums), tf.stack(counts)
            l2 = tf.add_n(model.losses) if model.losses else None
            if replicas > 1:
                reduced = replica.all_reduce(tf.distribute.ReduceOp.SUM,
                                             tf.stop_gradient(tf.concat([sums, counts], 0)))
                global_sums, counts = reduced[:len(self.task_names)], reduced[len(self.task_names):]
            else:
                global_sums = tf.stop_gradient(sums)
            denominators = tf.maximum(counts, 1.0)
            # task i's objective on this replica: its share of the global mean, times its loss weight;
            # from the per-task tensors, not the stacked `sums` (see task_sums_and_counts)
            objectives = [s / denominators[i] * self.loss_weights[i] for i, s in enumerate(task_sums)]
        present = tf.cast(counts > 0, tf.float32)
        losses = global_sums / denominators  # the global batch's masked means, as logged

        if self.trunk is not None:
            shared_vars = self.trunk.trainable_variables
            z_grads = [tape.gradient(o, z, unconnected_gradients=tf.UnconnectedGradients.ZERO) for o in objectives]
            G = tf.stack([tf.reshape(g, [-1]) for g in z_grads])
            d, weights = self._combine(G, present, losses * self.loss_weights)
            shared_grads = tape.gradient(z, shared_vars, output_gradients=tf.reshape(d, tf.shape(z)))
            grads = dict(zip((id(v) for v in shared_vars), shared_grads))
            head_vars = [v for v in variables if id(v) not in grads]
            weighted = tf.add_n([tf.stop_gradient(weights[i]) * o for i, o in enumerate(objectives)])
            grads.update(zip((id(v) for v in head_vars), tape.gradient(weighted, head_vars)))
        else:
            per_task = [tape.gradient(o, variables) for o in objectives]
            if replicas > 1:  # the global batch's task gradients: every replica combines the same G
                per_task = [[None if g is None else replica.all_reduce(tf.distribute.ReduceOp.SUM, g) for g in gs]
                            for gs in per_task]
            shared = [j for j in range(len(variables)) if sum(gs[j] is not None for gs in per_task) >= 2]
            if shared:
                G = tf.stack([tf.concat([tf.reshape(gs[j], [-1]) for j in shared], 0) for gs in per_task])
                d, weights = self._combine(G, present, losses * self.loss_weights)
            else:  # a tower per task (multibranch): nothing to arbitrate, every task its own gradient
                logging.warning("train.mtl %s: the tasks share no parameter; each trains on its own gradient",
                                self.method)
                d, weights = tf.zeros([0]), present
            grads, offset = {}, 0
            for j in shared:
                size = tf.size(variables[j])
                grads[id(variables[j])] = tf.reshape(d[offset:offset + size], variables[j].shape) / replicas
                offset += size
            for j, v in enumerate(variables):
                if id(v) not in grads:
                    parts = [weights[i] * gs[j] for i, gs in enumerate(per_task) if gs[j] is not None]
                    grads[id(v)] = tf.add_n(parts) / replicas if parts else None
        if l2 is not None:
            for v, g in zip(variables, tape.gradient(l2, variables)):
                if g is not None:
                    grads[id(v)] = g if grads.get(id(v)) is None else grads[id(v)] + g
        del tape
        model.optimizer.apply_gradients((grads[id(v)], v) for v in variables if grads.get(id(v)) is not None)
        total = tf.reduce_sum(tf.stop_gradient(weights) * losses * self.loss_weights)
        if l2 is not None:
            total += l2
        model._track(total, losses, counts)
        return model.compute_metrics(x, y, y_pred, sample_weight)

    def _combine(self, G: tf.Tensor, present: tf.Tensor, losses: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        state: MtlState = self.state
        step = tf.cast(state.steps, tf.int32)
        seed = tf.stack([tf.constant(self.seed, tf.int32), step])
        if self.method == "pcgrad":
            d, weights = gm.pcgrad(G, present, seed)
        elif self.method == "cagrad":
            d, weights = gm.cagrad(G, present, c=self.params.get("c", 0.4))
        elif self.method == "imtl":
            d, weights = gm.imtl(G, present)
        elif self.method == "nash_mtl":
            d, weights, fallback = gm.nash_mtl(G, present)
            state.fallbacks.assign_add(fallback)
        elif self.method == "rlw":
            d, weights = gm.rlw(G, present, seed)
        elif self.method == "gradnorm":
            weights = tf.identity(state.gradnorm_weights)
            d = tf.linalg.matvec(G, weights * present, transpose_a=True)
            state.initial_losses.assign(tf.where((state.initial_losses == 0) & (present > 0), losses,
                                                 state.initial_losses))
            state.gradnorm_weights.assign(gm.gradnorm_update(
                weights, tf.norm(G, axis=1), losses, state.initial_losses, present,
                alpha=self.params.get("alpha", 1.5), lr=self.params.get("lr", 0.025)))
        elif self.method == "famo":
            weights = gm.famo_weights(state.famo_logits, losses, present)
            d = tf.linalg.matvec(G, weights, transpose_a=True)
            both = present * tf.cast(state.previous_losses > 0, tf.float32)
            t = state.steps + 1.0
            logits, m, v = gm.famo_update(state.famo_logits, state.famo_m, state.famo_v, t,
                                          state.previous_losses, losses, both, lr=self.params.get("lr", 0.025),
                                          decay=self.params.get("decay", 1e-3))
            state.famo_logits.assign(logits)
            state.famo_m.assign(m)
            state.famo_v.assign(v)
            state.previous_losses.assign(tf.where(present > 0, losses, state.previous_losses))
        else:
            raise ValueError(f"unknown train.mtl.method {self.method!r}; valid: {', '.join(MTL_METHODS[1:])}")
        state.steps.assign_add(1.0)
        state.last_weights.assign(weights)
        return d, weights


class LogMtl(keras.callbacks.Callback):
    """Adds `mtl_weight/<task>` (the weights of the epoch's last step) and `mtl_fallbacks` to the
    epoch logs (TensorBoard writes them), and warns when nash_mtl fell back that epoch."""

    def __init__(self, state: MtlState, task_names: Sequence[str], method: str):
        super().__init__()
        self.state, self.task_names, self.method = state, list(task_names), method
        self._fallbacks = 0.0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        for name, w in zip(self.task_names, self.state.last_weights.numpy()):
            logs[f"mtl_weight/{name}"] = float(w)
        total = float(self.state.fallbacks.numpy())
        logs["mtl_fallbacks"] = total
        if total > self._fallbacks:
            logging.warning("train.mtl %s: the solver failed on %d step(s) this epoch; those steps used equal "
                            "weights", self.method, int(total - self._fallbacks))
        self._fallbacks = total
