"""Gradients of one training step on 1 replica and on 2 replicas, for
tests/components/trainer/test_multiworker.py; run in a subprocess, since the two logical
CPUs the 2-replica MirroredStrategy runs on must be set before TensorFlow
starts. Prints one JSON line.

argv: transformed data root (the trainer fixtures' prepare_transformed),
loss weighting, l2. The same BKNet (seeded), the same global batch of 16;
on 2 replicas, replica r gets examples [8r, 8r + 8) and batch norm is
synchronized, as run_fn does. For the new loss and for the old per-replica
mean (tests/components/trainer/multiworker_worker.py), per trainable variable: the
relative distance of the summed 2-replica gradient to the 1-replica one, and
the logged values (loss and per-task losses) on both."""
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)

import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402

from components.trainer.input_pipeline import count_records, make_dataset  # noqa: E402
from components.trainer.run_fn import synchronize_batch_norm  # noqa: E402
from components.trainer.training_model import make_training_model  # noqa: E402
from config import parse  # noqa: E402
from models import get_builder  # noqa: E402
from tests.components.trainer import helpers, multiworker_worker  # noqa: E402  (the repo root is on PYTHONPATH)

BATCH = 16


def step(config, batch, strategy, old_loss: bool):
    keras.utils.set_random_seed(config.train.seed)
    with strategy.scope():
        model = get_builder(config.model.name)(config)
        if strategy.num_replicas_in_sync > 1:
            synchronize_batch_norm(model)
        training = make_training_model(model, config, 10)
    if old_loss:
        training.compute_loss = multiworker_worker.per_replica_mean_loss.__get__(training)
    n = strategy.num_replicas_in_sync

    def part(ctx):
        i = ctx.replica_id_in_sync_group
        return tf.nest.map_structure(lambda x: x[i * BATCH // n:(i + 1) * BATCH // n], batch)

    @tf.function
    def run(data):
        x, y, sw = data
        with tf.GradientTape() as tape:
            loss = training.compute_loss(x, y, training(x, training=True), sw)
        grads = tape.gradient(loss, training.trainable_variables)
        ctx = tf.distribute.get_replica_context()
        return [ctx.all_reduce(tf.distribute.ReduceOp.SUM, g) for g in grads]

    out = strategy.run(run, args=(strategy.experimental_distribute_values_from_function(part),))
    grads = [strategy.experimental_local_results(g)[0].numpy() for g in out]
    logged = {m.name: float(m.result()) for m in training.metrics if m.name.endswith("loss")}
    return [v.name for v in training.trainable_variables], grads, logged


def main(root, weighting, l2):
    d = helpers.config_dict(size=(48, 48), batch_size=BATCH)
    d["model"]["params"] = {"dropout": 0.0, "l2": l2}
    d["train"]["loss_weighting"] = {"type": weighting}
    config = parse(d, base_dir=None)
    tft_output = tft.TFTransformOutput(os.path.join(root, "transform_graph"))
    patterns = {s: os.path.join(root, "transformed", f"Split-train_{s}", "*") for s in ("genki4k", "wiki")}
    counts = {s: count_records(p) for s, p in patterns.items()}
    batch = next(iter(make_dataset(patterns, tft_output.transformed_feature_spec(), config, BATCH, counts)))
    names, single, single_logged = step(config, batch, tf.distribute.get_strategy(), False)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {"tasks_per_replica": [
        {t: float(tf.reduce_sum(batch[2][t][r * 8:(r + 1) * 8])) for t in config.task_names} for r in (0, 1)],
        "single_logged": single_logged}
    for label, old in (("global_mean", False), ("per_replica_mean", True)):
        _, grads, logged = step(config, batch, mirrored, old)
        result[label] = {
            "logged": logged,
            # pre-BN conv biases have a gradient of 0 up to rounding (BN subtracts the mean): not compared
            "relative": {n: float(np.linalg.norm(g - s) / np.linalg.norm(s))
                         for n, g, s in zip(names, grads, single) if np.linalg.norm(s) > 1e-3}}
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
