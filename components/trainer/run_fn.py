"""The Trainer's run_fn (TFX 1.16 generic executor), referenced by name as
`components.trainer.run_fn.run_fn`.

fn_args.train_files / eval_files hold one file pattern per split, in the
order of TrainArgs / EvalArgs splits: `train_<source>` / `eval_<source>` in
config.sources order. fn_args.custom_config['config'] is the Config JSON.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging

from components.common.warm_start_file import write_warm_start
from components.trainer.gradient_probe import GradientConflictProbe, probe_batch
from components.trainer.input_pipeline import count_records, make_dataset
from components.trainer.keep import KeepBest
from components.trainer.loss_weighting import LogLossWeights
from components.trainer.mtl_step import LogMtl
from components.trainer.precision import Precision, detect, policy_scope
from components.trainer.samplers import sampling_weights
from components.trainer.signatures import make_signatures
from components.trainer.training_model import make_training_model, metrics_for
from components.trainer.warm_start import apply as warm_start
from config import STRATEGIES, Config, config_from_custom_config
from models import get_builder
from models.tf_compat import skip_autograph_for_tf_keras
from serving import write_metadata

skip_autograph_for_tf_keras()  # tf_keras traces 20x faster (see models/tf_compat.py)

MAX_EPOCHS = 10        # validation / TensorBoard / backup points per run
MIN_STEPS_PER_EPOCH = 10


def patterns_by_source(files: list[str], config: Config, split: str) -> dict[str, str]:
    """Pairs the per-split file patterns with the config's sources (same order)."""
    sources = [s.name for s in config.sources]
    if len(files) != len(sources):
        raise ValueError(f"{split} files: expected one pattern per source {sources} "
                         f"(splits {[f'{split}_{s}' for s in sources]}), received {len(files)}: {files}")
    return dict(zip(sources, files))


def epochs_for(steps: int) -> int:
    """Splits `steps` into equal epochs (so exactly `steps` are run): the largest
    divisor <= MAX_EPOCHS leaving >= MIN_STEPS_PER_EPOCH steps each, else 1."""
    return max(d for d in range(1, MAX_EPOCHS + 1)
               if steps % d == 0 and (d == 1 or steps // d >= MIN_STEPS_PER_EPOCH))


def make_strategy(name: str) -> tf.distribute.Strategy:
    """`train.strategy`: `default` (one device: the CPU, or the GPU when there is
    one), `mirrored` (every local GPU, or the CPU as 1 replica), or
    `multi_worker_mirrored` (the workers TF_CONFIG lists; docs/models.md)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown train.strategy {name!r}; valid: {', '.join(STRATEGIES)}")


def synchronize_batch_norm(model: keras.Model) -> int:
    """Makes every BatchNormalization layer of `model` normalise a training batch by the
    global batch's statistics (summed over the replicas), as one worker does, instead of
    each replica's part of it. Only for several replicas: the synchronized path computes
    the moments differently (E[x^2] - E[x]^2, unfused), so one replica keeps the fused
    layer and its exact numbers. Returns the layers changed."""
    changed = 0
    for layer in model.submodules:
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized, layer.fused = True, False  # read at call time (fit traces later)
            changed += 1
    return changed


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this worker writes the model and logs (every worker must still run
    the save: it is a collective op; the others write to a temporary folder)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


# Built-in equivalents of the masked losses, for the saved model's compile config
# (see compile_for_export).
EXPORT_LOSSES = {("binary", "crossentropy"): "categorical_crossentropy",
                 ("multiclass", "crossentropy"): "categorical_crossentropy",
                 ("multilabel", "crossentropy"): "binary_crossentropy",
                 ("regression", "mse"): "mean_squared_error",
                 ("regression", "mae"): "mean_absolute_error"}


def compile_for_export(model: keras.Model, config: Config) -> keras.Model:
    """Compiles the family's model with built-in losses before saving, so the saved
    model loads with plain `tf_keras.models.load_model` (TFMA's Evaluator does
    exactly that, in a process that never imports models.losses; a custom loss
    there makes the load fail and TFMA silently falls back to a non-Keras model).
    Weighted by `weight_<task>` as TFMA's example weights, a built-in loss's
    weighted mean sum(w * l) / sum(w) is the masked loss the model was trained
    with. The static `loss_weight`s stand in for whatever weighting trained it:
    they only weigh TFMA's summed `loss`, never a per-task metric."""
    model.compile(
        optimizer=keras.optimizers.Adam(config.train.learning_rate),
        loss={t.name: EXPORT_LOSSES[(t.type, t.loss)] for t in config.tasks},
        loss_weights={t.name: t.loss_weight for t in config.tasks},
        weighted_metrics={t.name: metrics_for(t) for t in config.tasks},
    )
    return model


BIAS_INIT_BATCHES = 20


def init_regression_biases(model: keras.Model, config: Config, train_ds: tf.data.Dataset,
                           batches: int = BIAS_INIT_BATCHES) -> dict[str, float]:
    """Starts each regression output at its task's mean training label.

    A linear output starts near 0; with labels such as ages 1-116 and Adam's
    step of ~learning_rate per update, the bias alone would need tens of
    thousands of steps to reach the labels' level (seen: age MAE stuck above
    20 after 300 steps). Returns the biases set, by task."""
    tasks = [t.name for t in config.tasks if t.type == "regression"]
    if not tasks:
        return {}
    sums = {t: 0.0 for t in tasks}
    weights = {t: 0.0 for t in tasks}
    for _, labels, sample_weights in train_ds.take(batches):
        for t in tasks:
            w = np.reshape(sample_weights[t].numpy(), (-1,))
            y = np.reshape(labels[t].numpy(), (len(w), -1))[:, 0]
            sums[t] += float(np.sum(w * y))
            weights[t] += float(np.sum(w))
    biases = {}
    for t in tasks:
        if weights[t] > 0:
            layer = model.get_layer(t)
            bias = np.full(layer.bias.shape, sums[t] / weights[t], np.float32)
            layer.bias.assign(bias)
            biases[t] = float(bias[0])
    logging.info("regression outputs start at the mean training label: %s", biases)
    return biases


def run_fn(fn_args) -> None:
    """Trains the configured model on the transformed examples and saves it with
    the serving_default / transform_features / serving_image signatures, and
    the task names for serving (serving/__init__.py)."""
    start = time.monotonic()
    config = config_from_custom_config(fn_args.custom_config)
    # First, before any op runs: multi-worker collectives are set up at creation.
    strategy = make_strategy(config.train.strategy)
    keras.utils.set_random_seed(config.train.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    feature_spec = tf_transform_output.transformed_feature_spec()

    train_patterns = patterns_by_source(list(fn_args.train_files), config, "train")
    eval_patterns = patterns_by_source(list(fn_args.eval_files), config, "eval")
    train_counts = {s: count_records(p, s) for s, p in train_patterns.items()}
    eval_counts = {s: count_records(p, s) for s, p in eval_patterns.items()}
    logging.info("records per source: train %s, eval %s", train_counts, eval_counts)
    logging.info("sampling %r shares: %s", config.train.sampling.type, sampling_weights(config, train_counts))

    # batch_size is the global batch: a strategy splits each batch over its replicas.
    batch_size = config.train.batch_size
    train_ds = make_dataset(train_patterns, feature_spec, config, batch_size, train_counts, training=True)
    eval_ds = make_dataset(eval_patterns, feature_spec, config, batch_size, eval_counts, training=False)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # The mixed stream has no per-file split to shard by: each worker keeps every N-th batch.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds, eval_ds = train_ds.with_options(options), eval_ds.with_options(options)

    logging.info("strategy %r: %d replica(s); loss weighting %r", config.train.strategy,
                 strategy.num_replicas_in_sync, config.train.loss_weighting.type)
    precision = detect(config.train.precision)
    logging.info("train.precision %r: dtype policy %s (%s)", precision.setting, precision.policy, precision.reason)
    # Layers take the global policy when they are built; it is put back after the save, so
    # whatever runs next in this process (the tests, a runner's next component) is unaffected.
    with policy_scope(precision.policy):
        _train(fn_args, config, strategy, precision, tf_transform_output, train_ds, eval_ds, eval_counts, start)


def _train(fn_args, config: Config, strategy: tf.distribute.Strategy, precision: Precision, tf_transform_output,
           train_ds, eval_ds, eval_counts: dict[str, int], start: float) -> None:
    steps = int(fn_args.train_steps)
    with strategy.scope():
        model = get_builder(config.model.name)(config)
        if strategy.num_replicas_in_sync > 1:
            logging.info("batch norm synchronized over %d replicas: %d layers",
                         strategy.num_replicas_in_sync, synchronize_batch_norm(model))
        init_regression_biases(model, config, train_ds)
        # After the initialisers, so the served weights win; before anything is written.
        warm_from = warm_start(model, config, fn_args.custom_config)
        training_model = make_training_model(model, config, steps)
    chief = is_chief(strategy)
    if chief:
        write_warm_start(fn_args.model_run_dir, *warm_from)
    # Non-chief workers run every collective the chief runs (TensorBoard, KeepBest and
    # the save), writing to folders of their own that are removed at the end, also
    # when training fails: nothing of theirs is left behind.
    scratch: list[str] = []
    try:
        _fit_and_save(fn_args, config, strategy, chief, scratch, model, training_model,
                      tf_transform_output, train_ds, eval_ds, eval_counts, steps, start, precision)
    finally:
        for path in scratch:
            if tf.io.gfile.exists(path):
                tf.io.gfile.rmtree(path)


def _fit_and_save(fn_args, config: Config, strategy: tf.distribute.Strategy, chief: bool, scratch: list[str],
                  model: keras.Model, training_model: keras.Model, tf_transform_output, train_ds, eval_ds,
                  eval_counts: dict[str, int], steps: int, start: float, precision: Precision) -> None:
    def own_dir(path: str, prefix: str) -> str:
        if chief:
            return path
        scratch.append(tempfile.mkdtemp(prefix=prefix))
        return scratch[-1]

    batch_size = config.train.batch_size
    epochs = epochs_for(steps)
    log_dir = own_dir(fn_args.model_run_dir, "tb_worker_")
    callbacks = [
        # First: adds the loss weights to the logs TensorBoard writes, and sets dwa's
        # next weights before the backup is taken.
        LogLossWeights(training_model.weighting),
        keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"),
        # A restarted Trainer resumes from the last finished epoch.
        keras.callbacks.BackupAndRestore(backup_dir=os.path.join(fn_args.model_run_dir, "backup")),
    ]
    if len(config.tasks) > 1:  # which tasks fight each other (components/trainer/gradient_probe.py)
        batch = probe_batch(eval_ds, config.task_names)
        if batch is None:
            logging.warning("gradient probe: the eval split has no example of some task; no probe")
        else:  # first: it records the loss weights the epoch used, before dwa sets the next ones
            callbacks.insert(0, GradientConflictProbe(model, training_model, batch, config.task_names, log_dir,
                                                      fn_args.model_run_dir if chief else None))
    if training_model.mtl_state is not None:  # the gradient method's weights and solver fallbacks, per epoch
        callbacks.insert(1, LogMtl(training_model.mtl_state, config.task_names, config.train.mtl.method))
    keep_best = None
    if config.train.keep == "best":
        best_dir = own_dir(os.path.join(fn_args.model_run_dir, "best"), "best_worker_")
        keep_best = KeepBest(model, config.task_names, best_dir)
        callbacks.append(keep_best)
    # The eval stream is read once per validation; asking for more batches than it
    # holds only makes Keras warn, so cap at what the eval splits hold.
    eval_batches = -(-sum(eval_counts.values()) // batch_size)
    eval_steps = min(int(fn_args.eval_steps), eval_batches) if fn_args.eval_steps else eval_batches
    fit_start = time.monotonic()
    training_model.fit(train_ds, epochs=epochs, steps_per_epoch=steps // epochs, validation_data=eval_ds,
                       validation_steps=eval_steps, callbacks=callbacks, verbose=2)

    if keep_best is not None:
        keep_best.restore()
    save_start = time.monotonic()
    # Only the family's functional model is saved: no training-only class or state in it.
    signatures = make_signatures(model, tf_transform_output, config)
    with strategy.scope():
        compile_for_export(model, config)
    # Every worker saves (the save runs collectives); only the chief's copy is kept.
    model_dir = own_dir(fn_args.serving_model_dir, "model_worker_")
    model.save(model_dir, save_format="tf", signatures=signatures)
    if chief:
        write_metadata(model_dir, config, precision.as_json())
    logging.info("run_fn: setup %.1fs, fit %d steps %.1fs, save %.1fs; model in %s",
                 fit_start - start, steps, save_start - fit_start, time.monotonic() - save_start,
                 fn_args.serving_model_dir)
