"""mtl_step_overhead_<method>: a gradient method's training step time over `none` (the plain
weighted sum), same model, batch and machine, measured in one run.

The default config's model (BKNet on 48x48 gray, 3 tasks) on one fixed batch of 32 random
images whose tasks are mixed as the default sources mix them (smile on a third, gender and
age on the rest). Each variant: the step compiled once, `WARMUP` steps, then `REPEATS` pairs
of `STEPS`-step blocks, the variant's and the plain sum's back to back; the figure is the median
of the pairs' ratios, so other jobs on the machine slow both sides of a pair alike. Goals
(issue 14): <= 1.3x with `grad_on: representation` (`mtl_step_overhead_<method>`), <= tasks + 0.5
with `grad_on: params` (`mtl_step_overhead_<method>_params`).

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


def train_step(config, method: str, grad_on: str):
    """A compiled one-step function of `config` with `train.mtl` set, and its input iterator."""
    import tf_keras as keras

    from components.trainer.training_model import make_training_model
    from config import MTL_PARAMS, MtlConfig
    from models import get_builder

    keras.utils.set_random_seed(0)
    params = {name: default for name, (default, _, _) in MTL_PARAMS.get(method, {}).items()}
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, mtl=MtlConfig(method=method, grad_on=grad_on, params=params)))
    training = make_training_model(get_builder(config.model.name)(config), config, total_steps=1000)
    iterator = iter(tf.data.Dataset.from_tensors(_batch(config)).repeat())
    step = training.make_train_function()
    for _ in range(WARMUP):
        step(iterator)
    return step, iterator


def _seconds(step, iterator) -> float:
    start = time.perf_counter()
    for _ in range(STEPS):
        out = step(iterator)
    float(out["loss"])  # waits for the last step
    return (time.perf_counter() - start) / STEPS


def overhead(config, method: str, grad_on: str, base) -> float:
    """Median over REPEATS of (method's block time / the plain sum's block time), the two blocks
    timed back to back, so that other jobs on the machine slow both alike."""
    step = train_step(config, method, grad_on)
    return statistics.median(_seconds(*step) / _seconds(*base) for _ in range(REPEATS))


def run() -> list[Figure]:
    from config import load

    config = load("configs/default.yaml")
    k = len(config.tasks)
    base = train_step(config, "none", "params")
    print(f"  none: {_seconds(*base) * 1000:.1f} ms a step (batch {BATCH}, {config.model.name})", flush=True)
    figures = []
    for method in METHODS:
        rep, par = overhead(config, method, "representation", base), overhead(config, method, "params", base)
        print(f"  {method}: representation {rep:.2f}x, params {par:.2f}x", flush=True)
        figures.append(Figure(f"mtl_step_overhead_{method}", round(rep, 3), 1.3, "x", "lower"))
        figures.append(Figure(f"mtl_step_overhead_{method}_params", round(par, 3), k + 0.5, "x", "lower"))
    return figures
