"""Which tasks fight each other: the gradient-conflict probe (docs/mtl.md).

At the end of every epoch, on one fixed probe batch that holds examples of
every task (drawn once from the eval stream, so every probe sees the same
images), each task's masked mean loss is differentiated on the *shared*
parameters: the trainable variables that two or more tasks' losses reach (the
trunk; a task's own head is not shared). From the task gradients g_i:

  cosine(a, b)   g_a . g_b / (|g_a| |g_b|): < 0 means a step that lowers a's
                 loss raises b's (to first order): the tasks conflict
  norm(a)        |g_a|; the ratio of two norms says which task dominates the
                 shared update when their losses are summed

The layers run in inference mode (dropout off, batch norm on its moving
statistics), so two probes differ only by the weights training changed. The
weights the loss weighting used that epoch are recorded beside them.

Written as TensorBoard scalars (`gradient/cosine/<a>/<b>`, `gradient/norm/<task>`)
and, by the chief, as `gradient_conflict.json` in the Trainer's model_run
folder (components/common/probe_file.py), which the report reads (report.json `gradient_conflict`). With
mixture-of-experts sharing (`model.sharing` mmoe / cgc / ple) each probe also
records every task's mean gate over the experts on its own probe examples
(`gate_use`, TensorBoard `gates/<task>/expert<k>`), so an expert no task uses,
or a task that uses one expert only, shows. With cross-stitch units (multibranch,
`model.sharing: cross_stitch`) each probe records every unit's mixing weights, averaged
over channels (`cross_stitch`: {unit: {to task: {from task: alpha}}}, TensorBoard
`cross_stitch/<unit>/<to>/<from>`), so columns that stay apart or merge show. A probe
costs one forward and `tasks` backward passes on the probe batch; a
one-task run has nothing to compare and writes no probe.
"""
from __future__ import annotations

import functools
import itertools
import os
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from components.common.probe_file import read_probe, write_probe
from models.cross_stitch import mixing, stitch_layers
from models.losses import task_sums_and_counts
from models.sharing import gate_layers

PROBE_PER_TASK = 32  # examples of each task in the probe batch (fewer where the eval split has fewer)
PROBE_CHUNK = 32  # examples differentiated at once: the activation memory of a training step
_MAX_BATCHES = 64  # eval batches read to fill the probe batch before giving up on a rare task


def probe_batch(dataset: tf.data.Dataset, task_names: Sequence[str], per_task: int = PROBE_PER_TASK):
    """(features, labels, weights) concatenated from the first batches of `dataset` until
    every task has `per_task` examples (or the batches run out); None when a task has none."""
    parts, have = [], np.zeros(len(task_names))
    for features, labels, weights in dataset.take(_MAX_BATCHES):
        parts.append((features, labels, weights))
        have += [float(tf.reduce_sum(tf.cast(weights[t] > 0, tf.float32))) for t in task_names]
        if (have >= per_task).all():
            break
    if not parts or (have == 0).any():
        return None
    concat = lambda key, i: tf.concat([p[i][key] for p in parts], axis=0)  # noqa: E731
    features, labels, weights = ({k: concat(k, 0) for k in parts[0][0]}, {t: concat(t, 1) for t in task_names},
                                 {t: concat(t, 2) for t in task_names})
    # only the first `per_task` examples of each task: the probe's cost is bounded by tasks x per_task
    keep = sorted({int(i) for t in task_names for i in np.flatnonzero(weights[t].numpy() > 0)[:per_task]})
    pick = lambda d: {k: tf.gather(v, keep) for k, v in d.items()}  # noqa: E731
    return pick(features), pick(labels), pick(weights)


def chunk_gradients(model: keras.Model, task_losses: Sequence, task_names: Sequence[str],
                    variables: Sequence[tf.Variable], features, labels, weights):
    """One chunk's per-task gradients of its masked loss *sums* w.r.t. `variables` (None where
    a task's loss does not reach a variable) and per-task example counts, layers in inference
    mode. Graph-safe: GradientConflictProbe runs it as one tf.function."""
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(features, training=False)
        sums, counts = task_sums_and_counts(task_names, task_losses, labels, outputs, weights)
    grads = [tape.gradient(s, variables, unconnected_gradients=tf.UnconnectedGradients.NONE) for s in sums]
    del tape
    return grads, [tf.cast(c, tf.float32) for c in counts]


def task_gradients(model: keras.Model, task_losses: Sequence, task_names: Sequence[str], batch,
                   variables: Sequence[tf.Variable] | None = None, chunk: int = PROBE_CHUNK,
                   chunk_fn=None) -> list[list[tf.Tensor | None]]:
    """Per task, the gradient of its masked mean loss on `batch` w.r.t. `variables`
    (default: all trainable ones), layers in inference mode. The batch goes through in
    chunks of `chunk` examples, each task's loss sums' gradients added up and divided by its
    example count at the end: the same gradient, with a training step's activation memory
    instead of the whole probe batch's. `chunk_fn(features, labels, weights)` is
    `chunk_gradients` bound to the same model, losses, tasks and variables (default: that,
    run eagerly)."""
    features, labels, weights = batch
    variables = list(model.trainable_variables if variables is None else variables)
    if chunk_fn is None:
        chunk_fn = functools.partial(chunk_gradients, model, task_losses, task_names, variables)
    n = int(tf.shape(next(iter(features.values())))[0])
    total: list[list[tf.Tensor | None]] = [[None] * len(variables) for _ in task_names]
    counts = [0.0] * len(task_names)
    for start in range(0, n, chunk):
        cut = slice(start, start + chunk)
        grads, chunk_counts = chunk_fn({k: v[cut] for k, v in features.items()},
                                       {t: labels[t][cut] for t in task_names},
                                       {t: weights[t][cut] for t in task_names})
        counts = [c + float(k) for c, k in zip(counts, chunk_counts)]
        for i, task_grads in enumerate(grads):
            total[i] = [g if t is None else (t if g is None else t + g) for t, g in zip(total[i], task_grads)]
    return [[None if g is None else g / max(c, 1.0) for g in gs] for gs, c in zip(total, counts)]


def shared_variables(variables: Sequence[tf.Variable], grads: Sequence[Sequence[tf.Tensor | None]]) -> list[int]:
    """Indices of the variables that at least two tasks' gradients reach (not None)."""
    return [i for i in range(len(variables)) if sum(g[i] is not None for g in grads) >= 2]


def conflict_stats(flat: np.ndarray, task_names: Sequence[str]) -> dict:
    """From one probe's task gradients (rows of `flat`, over the shared parameters):
    pairwise cosines and each task's gradient norm."""
    norms = np.linalg.norm(flat, axis=1)
    cosine = {}
    for a, b in itertools.combinations(range(len(task_names)), 2):
        denominator = norms[a] * norms[b]
        cosine[f"{task_names[a]}/{task_names[b]}"] = (
            float(flat[a] @ flat[b] / denominator) if denominator > 0 else 0.0)
    return {"cosine": cosine, "norm": {t: float(n) for t, n in zip(task_names, norms)}}


def summarize(probes: Sequence[Mapping]) -> dict:
    """report.json's `gradient_conflict`: per pair, the mean cosine over the probes and the
    share of probes where it was negative; plus the last probe's norm ratios."""
    pairs = list(probes[0]["cosine"]) if probes else []
    out = {}
    for pair in pairs:
        values = np.array([p["cosine"][pair] for p in probes])
        a, b = pair.split("/")
        last = probes[-1]["norm"]
        out[pair] = {"cosine_mean": float(values.mean()), "negative_share": float((values < 0).mean()),
                     "cosine_last": float(values[-1]),
                     "norm_ratio_last": float(last[a] / last[b]) if last[b] > 0 else None}
    return out


class GradientConflictProbe(keras.callbacks.Callback):
    """Probes the task gradients at the end of every epoch (see the module docstring)."""

    def __init__(self, model: keras.Model, training_model, batch, task_names: Sequence[str],
                 log_dir: str | None, out_dir: str | None):
        super().__init__()
        self.family_model, self.training_model, self.batch = model, training_model, batch
        self.task_names = list(task_names)
        self.out_dir = out_dir
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "gradients")) if log_dir else None
        self.probes: list[dict] = []
        self._shared: list[int] | None = None
        self._chunk_fn = None  # chunk_gradients as a tf.function, made on the first probe
        # model.sharing mmoe / cgc / ple: each task's gate over the experts (models/sharing.py)
        gates = gate_layers(model, self.task_names)
        self.gates = keras.Model(model.inputs, {t: g.output for t, g in gates.items()}) if gates else None
        self.stitches = stitch_layers(model)  # model.sharing cross_stitch (models/cross_stitch.py)

    def _in_replica(self, fn):
        """fn() in a replica context when the model was built under a distribution strategy (its
        variables can be read only there): the first replica's result; else fn() itself."""
        strategy = self.family_model.distribute_strategy
        if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
            return fn()
        return tf.nest.map_structure(lambda t: strategy.experimental_local_results(t)[0], strategy.run(fn))

    def _shared_gradients(self) -> np.ndarray:
        """The task gradients on the shared variables, one row per task (found on the first call)."""
        variables = self.family_model.trainable_variables

        if self._chunk_fn is None:
            # One graph for every probe: eagerly, each probe cost BKNet ~2x as long (1.15 s against
            # 0.55 s on 2 cores), every epoch. No randomness runs in it (inference mode), so
            # training is the same with or without it. The batch dimension is left open, so the
            # last, shorter chunk runs the same graph.
            bound = functools.partial(chunk_gradients, self.family_model, self.training_model.task_losses,
                                      self.task_names, variables)
            spec = lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype)  # noqa: E731
            self._chunk_fn = tf.function(bound, autograph=False,
                                         input_signature=tf.nest.map_structure(spec, list(self.batch)))

        def compute():
            grads = task_gradients(self.family_model, self.training_model.task_losses, self.task_names,
                                   self.batch, variables, chunk_fn=self._chunk_fn)
            if self._shared is None:
                self._shared = shared_variables(variables, grads)
                size = sum(int(np.prod(variables[i].shape)) for i in self._shared)
                logging.info("gradient probe: %d shared variables (%d parameters) of %d", len(self._shared),
                             size, len(variables))
            if not self._shared:
                return tf.zeros([len(grads), 1])
            return tf.stack([tf.concat([tf.reshape(g[i], [-1]) for i in self._shared], 0) for g in grads])

        return self._in_replica(compute).numpy()

    def probe(self, step: int) -> dict:
        stats = conflict_stats(self._shared_gradients(), self.task_names)
        stats["step"] = int(step)
        weights = self.training_model.weights_in_use().numpy()
        stats["loss_weights"] = {t: float(w) for t, w in zip(self.task_names, weights)}
        if self.gates is not None:  # each task's mean gate over its own probe examples
            gates = self._in_replica(lambda: self.gates(self.batch[0], training=False))
            stats["gate_use"] = {}
            for t, g in gates.items():
                own = self.batch[2][t].numpy() > 0
                stats["gate_use"][t] = [float(v) for v in g.numpy()[own].mean(axis=0)]
        if self.stitches:  # each unit's T x T mixing weights, averaged over channels
            stats["cross_stitch"] = {layer.name: mixing(layer, self.task_names) for layer in self.stitches}
        return stats

    def on_train_begin(self, logs: dict | None = None) -> None:
        # A Trainer resumed by BackupAndRestore keeps the probes of the epochs it already ran.
        previous = read_probe(self.out_dir) if self.out_dir else None
        if previous and previous.get("tasks") == self.task_names:
            step = int(self.training_model.optimizer.iterations.numpy())
            self.probes = [p for p in previous.get("probes", []) if p["step"] <= step]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        step = int(self.training_model.optimizer.iterations.numpy())
        stats = self.probe(step)
        self.probes.append(stats)
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for pair, value in stats["cosine"].items():
                    tf.summary.scalar(f"gradient/cosine/{pair}", value)
                for task, value in stats["norm"].items():
                    tf.summary.scalar(f"gradient/norm/{task}", value)
                for task, shares in stats.get("gate_use", {}).items():
                    for k, share in enumerate(shares):
                        tf.summary.scalar(f"gates/{task}/expert{k}", share)
                for unit, rows in stats.get("cross_stitch", {}).items():
                    for to, row in rows.items():
                        for source, alpha in row.items():
                            tf.summary.scalar(f"cross_stitch/{unit}/{to}/{source}", alpha)
            self.writer.flush()
        self.write()

    def write(self) -> None:
        """gradient_conflict.json (every epoch, so a killed run keeps what it probed)."""
        if not self.out_dir:
            return
        write_probe(self.out_dir, {"tasks": self.task_names,
                                   "probe_examples": int(tf.shape(self.batch[0]["image"])[0]),
                                   "summary": summarize(self.probes), "probes": self.probes})
