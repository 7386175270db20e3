"""One gradient-method update on 1 replica and on 2, for tests/components/trainer/test_mtl_replicas.py;
run in a subprocess, since the two logical CPUs the 2-replica MirroredStrategy runs on must be set
before TensorFlow starts. Prints one JSON line.

argv: the methods, comma-separated. For each method and each `grad_on`: the same small model (a
shared 4-unit trunk with L2, two heads with L2), the same 2 global batches of 8 with partial
labels (task b is missing from the first replica's half of the first batch), plain SGD; the
relative distance of the 2-replica update (weights after 2 steps minus before) to the
1-replica one, per trainable variable, and the largest absolute difference of the method's
state (weights used, gradnorm's weights, famo's logits, nash_mtl's solution, fallback count)."""
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)

import tf_keras as keras  # noqa: E402

from components.trainer.training_model import make_training_model  # noqa: E402
from config import parse  # noqa: E402

BATCH, STEPS, L2 = 8, 2, 0.05


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * STEPS, 3)).astype("float32")
    y = {"a": x.sum(1, keepdims=True), "b": 2 * x[:, :1] - x[:, 1:2]}
    a = np.array([1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1], "float32")
    b = np.array([0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1], "float32")
    return x, y, {"a": a, "b": b}


def build(method: str, grad_on: str, initial=None):
    config = parse({
        "name": "t", "tasks": [{"name": "a", "type": "regression"}, {"name": "b", "type": "regression"}],
        "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": ["a", "b"]}],
        "train": {"mtl": {"method": method, "grad_on": grad_on}},
    }, base_dir=None)
    keras.utils.set_random_seed(0)
    l2 = keras.regularizers.l2(L2)
    x = keras.Input((3,), name="image")
    h = keras.layers.Dense(4, activation="tanh", kernel_regularizer=l2, name="trunk")(x)
    model = keras.Model(x, {t: keras.layers.Dense(1, kernel_regularizer=l2, name=t)(h) for t in ("a", "b")})
    training = make_training_model(model, config, total_steps=10)
    training.compile(optimizer=keras.optimizers.SGD(0.05), weighted_metrics={"a": [], "b": []})
    if initial is not None:
        model.set_weights(initial)
    return model, training


def run(method: str, grad_on: str, strategy, initial=None):
    with strategy.scope():
        model, training = build(method, grad_on, initial)
    before = [w.copy() for w in model.get_weights()]
    x, y, sw = data()
    training.fit(x, y, sample_weight=sw, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    state = training.mtl_state
    names = ("last_weights", "gradnorm_weights", "famo_logits", "nash_beta", "fallbacks")
    return before, model.get_weights(), {n: getattr(state, n).numpy().tolist() for n in names}


def main(methods):
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {}
    for method in methods:
        for grad_on in ("params", "representation"):
            before, single, single_state = run(method, grad_on, tf.distribute.get_strategy())
            _, double, double_state = run(method, grad_on, mirrored, before)
            out[f"{method}/{grad_on}"] = {
                "relative": [float(np.linalg.norm(d - s) / max(np.linalg.norm(s - b), 1e-12))
                             for b, s, d in zip(before, single, double)],
                "moved": [float(np.linalg.norm(s - b)) for b, s in zip(before, single)],
                "state": {n: float(np.max(np.abs(np.array(double_state[n]) - np.array(v))))
                          for n, v in single_state.items()},
                "single_state": single_state,
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1].split(","))
