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
     on, e.g. BKNet's `flatten`), per example, then SUMMED over the batch: G is
     [K, size of z]. (Per-example rows flattened over the batch would never
     overlap, since each example carries its own tasks, and every cross-task dot
     product would be 0.) K backward passes through the heads only; the method's
     coefficients then weight the per-example gradients, and one backward pass
     takes their sum through the trunk.
3. The method gives the coefficients of d = G^T c for the shared part (its
   weights, or PCGrad's and CAGrad's combinations) and each task's weight on
   its own layers (`gradient_methods.Combination`); L2 weight decay is added
   unchanged.

Under a distribution strategy with several replicas, G is the global batch's:
each replica's gradients of its task loss sums (over the global example
counts) are added over the replicas, so every replica computes the same
coefficients. With `params` each replica applies 1 / replicas of d and of the
heads' gradients; with `representation` each applies the coefficients to its
own examples' representation gradients; the optimizer adds the replicas'
gradients. L2's gradient, the same on every replica, is divided by the
replicas, as in the plain step (training_model.py).

State (checkpointed with the model, so a resumed Trainer continues it):
gradnorm's weights, first losses and Adam moments, famo's logits and Adam
moments, nash_mtl's last solution, the coefficients the last step used
(logged per epoch as `mtl_weight/<task>`), and the count of steps where the
solver failed (`mtl_fallbacks`; `MtlState.fallback_share()` is its share of
the steps). FAMO's logit step compares the task losses before the step with
those after it on the same batch (one more forward pass), as the paper's code
does.
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

        def weight(name, shape=(k,), initializer="zeros"):
            # ONLY_FIRST_REPLICA: every replica computes the same value, so any one may write it
            return self.add_weight(name=name, shape=shape, initializer=initializer, trainable=False,
                                   dtype=tf.float32, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

        self.last_weights = weight("last_weights", initializer="ones")
        self.gradnorm_weights = weight("gradnorm_weights", initializer="ones")
        self.gradnorm_m, self.gradnorm_v = weight("gradnorm_m"), weight("gradnorm_v")
        self.initial_losses = weight("initial_losses")
        self.famo_logits, self.famo_m, self.famo_v = weight("famo_logits"), weight("famo_m"), weight("famo_v")
        self.nash_beta = weight("nash_beta", initializer="ones")  # nash_mtl's last solution, scale-free
        self.steps = weight("steps", shape=())
        self.fallbacks = weight("fallbacks", shape=())

    def fallback_share(self) -> float:
        """The share of the steps so far where the method's solver failed and kept its
        previous solution (nash_mtl; 0 for the methods without a solver)."""
        steps = float(self.steps.numpy())
        return float(self.fallbacks.numpy()) / steps if steps else 0.0


class MtlStep:
    """Builds and runs the gradient-method training step for one training model."""

    def __init__(self, training_model: keras.Model, config: Config):
        mtl = config.train.mtl
        self.method, self.grad_on = mtl.method, mtl.grad_on
        if self.method not in MTL_METHODS[1:]:
            raise ValueError(f"unknown train.mtl.method {self.method!r}; valid: {', '.join(MTL_METHODS[1:])}")
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
    def _losses(self, model, y, y_pred, sample_weight, replica, replicas):
        """Per task: its objective on this replica (its share of the global masked mean, times its
        loss weight), and the global batch's loss sums and example counts (no gradient)."""
        task_sums, counts = task_sums_and_counts(self.task_names, model.task_losses, y, y_pred, sample_weight)
        sums, counts = tf.stack(task_sums), tf.stack(counts)
        if replicas > 1:
            reduced = replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(tf.concat([sums, counts], 0)))
            global_sums, counts = reduced[:len(self.task_names)], reduced[len(self.task_names):]
        else:
            global_sums = tf.stop_gradient(sums)
        denominators = tf.maximum(counts, 1.0)
        # from the per-task tensors, not the stacked `sums` (see task_sums_and_counts)
        objectives = [s / denominators[i] * self.loss_weights[i] for i, s in enumerate(task_sums)]
        return objectives, global_sums / denominators, counts

    def train_step(self, model, x, y, sample_weight):
        replica = tf.distribute.get_replica_context()
        replicas = replica.num_replicas_in_sync if replica is not None else 1

        def sum_over_replicas(t):
            return replica.all_reduce(tf.distribute.ReduceOp.SUM, t) if replicas > 1 else t

        # train.precision mixed_float16: compile wrapped the optimizer in a LossScaleOptimizer. The
        # task gradients are then taken of the scaled objectives (float16 gradients underflow
        # without) and unscaled before the method reads them; a step whose gradients overflow is
        # skipped by the optimizer, and the method's state is put back as it was before it.
        scaler = model.optimizer if isinstance(model.optimizer, keras.mixed_precision.LossScaleOptimizer) else None
        state_before = [tf.identity(v) for v in self.state.weights] if scaler is not None else []

        def float32(grads):
            """Unscaled, in float32: the Gram matrices and solvers never see bfloat16 or float16."""
            grads = [None if g is None else tf.cast(g, tf.float32) for g in grads]
            return scaler.get_unscaled_gradients(grads) if scaler is not None else grads

        variables = [v for v in model.trainable_variables if "loss_weighting" not in v.name]
        with tf.GradientTape(persistent=True) as tape:
            if self.trunk is not None:
                z = self.trunk(x, training=True)
                y_pred = self.heads(z, training=True)
            else:
                y_pred = model(x, training=True)
            objectives, losses, counts = self._losses(model, y, y_pred, sample_weight, replica, replicas)
            targets = [scaler.get_scaled_loss(o) for o in objectives] if scaler is not None else objectives
            l2 = tf.add_n(model.losses) if model.losses else None
        present = tf.cast(counts > 0, tf.float32)  # losses: the global batch's masked means, as logged
        weighted_losses = losses * self.loss_weights

        if self.trunk is not None:
            shared_vars = self.trunk.trainable_variables
            # z is in the policy's compute dtype: its gradients too, still scaled under mixed_float16
            z_scaled = [tf.cast(tape.gradient(t, z, unconnected_gradients=tf.UnconnectedGradients.ZERO), tf.float32)
                        for t in targets]
            z_grads = float32(z_scaled)
            # LibMTL's rep-grad: each task's gradient on z summed over the (global) batch
            G = sum_over_replicas(tf.stack([tf.reshape(tf.reduce_sum(g, 0), [-1]) for g in z_grads]))
            combination = self._combine(G, present, weighted_losses)
            c = tf.stop_gradient(combination.coefficients)
            # from the scaled gradients: the trunk's backward pass runs in the compute dtype
            per_example = tf.cast(tf.add_n([c[i] * g for i, g in enumerate(z_scaled)]), z.dtype)
            grads = dict(zip((id(v) for v in shared_vars),
                             float32(tape.gradient(z, shared_vars, output_gradients=per_example))))
            head_vars = [v for v in variables if id(v) not in grads]
            # sum_i heads_i dL_i/dv in one backward pass (a sum formed here, after the tape closed,
            # would have no gradient: the heads once trained on nothing but L2 this way)
            # weights solved from the representation's gradient (nash_mtl's 1 / |g|) say nothing about the
            # heads, whose gradients do not cancel over the batch as the summed rows do: there the heads
            # take their own gradients, as LibMTL's rep-grad gives them (pcgrad, cagrad, imtl: 1 anyway)
            heads = present if self.method in gm.SOLVED_FROM_G else tf.stop_gradient(combination.heads)
            head_grads = float32(tape.gradient(targets, head_vars,
                                               output_gradients=[heads[i] for i in range(len(targets))]))
            grads.update(zip((id(v) for v in head_vars), head_grads))
        else:
            per_task = [float32(tape.gradient(t, variables)) for t in targets]
            if replicas > 1:  # the global batch's task gradients: every replica combines the same G
                per_task = [[None if g is None else sum_over_replicas(g) for g in gs] for gs in per_task]
            shared = [j for j in range(len(variables)) if sum(gs[j] is not None for gs in per_task) >= 2]
            if shared:
                G = tf.stack([tf.concat([tf.reshape(gs[j], [-1]) for j in shared], 0) for gs in per_task])
                combination = self._combine(G, present, weighted_losses)
                d = gm.direction(G, combination)
            else:  # a tower per task (multibranch): nothing to arbitrate, every task its own gradient
                logging.warning("train.mtl %s: the tasks share no parameter; each trains on its own gradient",
                                self.method)
                combination = gm.Combination(present, present, tf.zeros([]))
            grads, offset = {}, 0
            for j in shared:
                size = tf.size(variables[j])
                grads[id(variables[j])] = tf.reshape(d[offset:offset + size], variables[j].shape) / replicas
                offset += size
            for j, v in enumerate(variables):
                if id(v) not in grads:
                    parts = [combination.heads[i] * gs[j] for i, gs in enumerate(per_task) if gs[j] is not None]
                    grads[id(v)] = tf.add_n(parts) / replicas if parts else None
        if l2 is not None:  # the same on every replica, and the optimizer adds the replicas' gradients
            for v, g in zip(variables, tape.gradient(l2, variables)):
                if g is not None:
                    g = g / replicas
                    grads[id(v)] = g if grads.get(id(v)) is None else grads[id(v)] + g
        del tape
        model.optimizer.apply_gradients((grads[id(v)], v) for v in variables if grads.get(id(v)) is not None)
        if self.method == "famo":
            self._famo_update(model, x, y, sample_weight, replica, replicas, losses, present)
        heads = tf.stop_gradient(combination.heads)
        if scaler is not None:
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads.values() if g is not None])
            for v, before in zip(self.state.weights, state_before):  # the optimizer skipped this step
                v.assign(tf.where(finite, v, before))
            heads = tf.where(finite, heads, present)  # the logged loss stays the plain weighted sum then
        total = tf.reduce_sum(heads * weighted_losses)
        if l2 is not None:
            total += l2
        model._track(total, losses, counts)
        return model.compute_metrics(x, y, y_pred, sample_weight)

    def _famo_update(self, model, x, y, sample_weight, replica, replicas, before, present):
        """FAMO's logit step from the task losses on this batch before and after the step (the
        paper's code: a second forward pass in training mode, without a gradient). Batch norm's
        moving statistics are put back after it, so the extra pass leaves the model as it was."""
        state: MtlState = self.state
        own = {id(v) for v in state.weights} | {id(v) for v in model.weighting.weights}
        moving = [v for v in model.non_trainable_variables if id(v) not in own]
        saved = [tf.identity(v) for v in moving]
        with tf.control_dependencies(saved):
            y_after = model(x, training=True)
        _, after, _ = self._losses(model, y, y_after, sample_weight, replica, replicas)
        after = tf.stop_gradient(after)
        with tf.control_dependencies([after]):
            for v, value in zip(moving, saved):
                v.assign(value)
        weights = self.loss_weights
        logits, m, v = gm.famo_update(state.famo_logits, state.famo_m, state.famo_v, state.steps,
                                      before * weights, after * weights, present,
                                      lr=self.params.get("lr", 0.025), decay=self.params.get("decay", 1e-3))
        state.famo_logits.assign(logits)
        state.famo_m.assign(m)
        state.famo_v.assign(v)

    def _combine(self, G: tf.Tensor, present: tf.Tensor, losses: tf.Tensor) -> gm.Combination:
        state: MtlState = self.state
        step = tf.cast(state.steps, tf.int32)
        seed = tf.stack([tf.constant(self.seed, tf.int32), step])
        t = state.steps + 1.0  # Adam's step number
        if self.method == "pcgrad":
            combination = gm.pcgrad(G, present, seed)
        elif self.method == "cagrad":
            combination = gm.cagrad(G, present, c=self.params.get("c", 0.4))
        elif self.method == "imtl":
            combination = gm.imtl(G, present)
        elif self.method == "nash_mtl":
            combination, beta = gm.nash_mtl(G, present, tf.identity(state.nash_beta))
            state.nash_beta.assign(beta)
        elif self.method == "rlw":
            combination = gm.rlw(G, present, seed)
        elif self.method == "gradnorm":
            weights = tf.identity(state.gradnorm_weights) * present
            combination = gm.Combination(weights, weights, tf.zeros([]))
            state.initial_losses.assign(tf.where((state.initial_losses == 0) & (present > 0), losses,
                                                 state.initial_losses))
            new, m, v = gm.gradnorm_update(
                tf.identity(state.gradnorm_weights), tf.identity(state.gradnorm_m), tf.identity(state.gradnorm_v), t,
                tf.norm(G, axis=1), losses, tf.identity(state.initial_losses), present,
                alpha=self.params.get("alpha", 1.5), lr=self.params.get("lr", 0.025))
            state.gradnorm_weights.assign(new)
            state.gradnorm_m.assign(m)
            state.gradnorm_v.assign(v)
        else:  # famo: the logits move after the step (_famo_update)
            combination = gm.famo_weights(state.famo_logits, losses, present)
        state.fallbacks.assign_add(combination.fallback)
        state.steps.assign_add(1.0)
        state.last_weights.assign(combination.coefficients)
        return combination


class LogMtl(keras.callbacks.Callback):
    """Adds `mtl_weight/<task>` (each task's coefficient in the shared direction at the epoch's
    last step), `mtl_fallbacks` (a running count) and `mtl_fallback_share` (its share of the
    steps) to the epoch logs (TensorBoard writes them), and warns when the solver failed that
    epoch."""

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
        logs["mtl_fallback_share"] = self.state.fallback_share()
        if total > self._fallbacks:
            logging.warning("train.mtl %s: the solver failed on %d step(s) this epoch; those steps kept the "
                            "previous solution", self.method, int(total - self._fallbacks))
        self._fallbacks = total
