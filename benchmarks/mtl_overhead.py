"""mtl_step_overhead_<method>: a gradient method's training step time over `none` (the plain
weighted sum), same model, batch and machine, measured in one run.

The default config's model (BKNet on 48x48 gray, 3 tasks) on one fixed batch of 32 random
images whose tasks are mixed as the default sources mix them (smile on a third, gender and
age on the rest). Each variant: the step compiled once, `WARMUP` steps, then the median of
`REPEATS` timings of `STEPS` steps. Goals (issue 14): <= 1.3x with `grad_on: representation`
(`mtl_step_overhead_<method>`), <= tasks + 0.5 with `grad_on: params`
(`mtl_step_overhead_<method>_params`).

    python -m benchmarks --only mtl_overhead
"""
from __future__ import annotations

import dataclasses
import statistics
import time

import numpy as np
import tensorflow as tf

from benchmarks.figures import Figure

METHODS = ("pcgrad", "cagrad", "imtl", "nash_mtl", "rlw", "gradnorm", "famo")
BATCH, STEPS, WARMUP, REPEATS = 32, 5, 2, 5


def _batch(config):
    rng = np.random.default_rng(0)
    h, w = config.image.size
    x = {"image": rng.normal(size=(BATCH, h, w, config.image.channels)).astype("float32")}
    on_first = np.arange(BATCH) % 3 == 0  # the first source's task on a third of the batch
    y, sw = {}, {}
    for i, task in enumerate(config.tasks):
        labels = np.zeros((BATCH, task.width), "float32")
        labels[np.arange(BATCH), rng.integers(0, task.width, BATCH)] = 1.0
        y[task.name] = labels
        sw[task.name] = (on_first if i == 0 else ~on_first).astype("float32")
    return x, y, sw


def step_seconds(config, method: str, grad_on: str) -> float:
    import tf_keras as keras

    from components.trainer.training_model import make_training_model
    from config import MtlConfig
    from models import get_builder

    keras.utils.set_random_seed(0)
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, mtl=MtlConfig(method=method, grad_on=grad_on, params=dict(config.train.mtl.params))))
    model = get_builder(config.model.name)(config)
    training = make_training_model(model, config, total_steps=1000)
    x, y, sw = _batch(config)
    step = training.make_train_function()
    data = tf.data.Dataset.from_tensors((x, y, sw)).repeat()
    iterator = iter(data)
    for _ in range(WARMUP):
        step(iterator)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(STEPS):
            out = step(iterator)
        float(out["loss"])  # wait for the last step
        times.append((time.perf_counter() - start) / STEPS)
    return statistics.median(times)


def run() -> list[Figure]:
    from config import MTL_PARAMS, load

    config = load("configs/default.yaml")
    k = len(config.tasks)
    base = step_seconds(config, "none", "params")
    print(f"  none: {base * 1000:.1f} ms a step (batch {BATCH}, {config.model.name})", flush=True)
    figures = []
    for method in METHODS:
        params = {name: default for name, (default, _, _) in MTL_PARAMS.get(method, {}).items()}
        cfg = dataclasses.replace(config, train=dataclasses.replace(
            config.train, mtl=dataclasses.replace(config.train.mtl, params=params)))
        rep = step_seconds(cfg, method, "representation") / base
        par = step_seconds(cfg, method, "params") / base
        print(f"  {method}: representation {rep:.2f}x, params {par:.2f}x", flush=True)
        figures.append(Figure(f"mtl_step_overhead_{method}", round(rep, 3), 1.3, "x", "lower"))
        figures.append(Figure(f"mtl_step_overhead_{method}_params", round(par, 3), k + 0.5, "x", "lower"))
    return figures
