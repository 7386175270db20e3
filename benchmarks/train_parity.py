"""Training parity: does the Trainer produce as good a model as a plain loop?

On each dataset, for each seed, two models of the same family and config are
trained for the same steps and batch size on the same transformed examples:

  pipeline   the real Trainer path: components.trainer.run_fn.run_fn on Transform's
             outputs (GZIP TFRecords, read through make_dataset), the saved
             model loaded back as the Evaluator loads it;
  reference  a plain tf.GradientTape loop written here: the transformed train
             examples held in memory, each batch drawn uniformly at random with
             replacement, each task's loss the mean over its own examples,
             the family's regularisation losses added, the same optimizer and
             learning-rate schedule (components.trainer.optimizer.make_optimizer).

Both are scored by the same code on the same eval examples: per task, accuracy
over its own examples (multilabel: mean per-label accuracy; regression: MAE).

Datasets: the default config on its generated sample data, and two sets of
real images shipped in Debian packages (benchmarks/real_data.py), each a
10-class source (3,600 / 3,000 images) and a disjoint 2-class source (1,000 /
400), one task each, half of each held out for evaluation, 32x32 grayscale,
600 steps of 32, every other key at its default.

Figure `train_parity`: the smallest, over datasets and tasks, of pipeline
mean - reference mean in accuracy points (regression: (reference MAE -
pipeline MAE) / reference MAE). Goal >= -0.01. Printed beside it: every
(dataset, task, side) mean ± sd and range over the seeds, and the 95%
interval of the mean per-seed gap (a seed's two sides start from the same
weights, so its gap is a paired difference): an interval that holds 0 says
the seeds cannot tell the two sides apart.

  BENCH_PARITY_SEEDS     seeds per side (default 8: a seed's paired gap spreads by ~0.01
                         on the real datasets, so the mean of 3 has a standard error of
                         ~0.007, the size of the goal's margin; 8 bring it to ~0.004), or
                         a range FIRST-LAST of seeds (4-8)
  BENCH_PARITY_DATASETS  comma-separated subset of sample,fashion_mnist,opencv_digits
  BENCH_DATA_DIR         where the packages and their images are kept
                         (default <repo>/.bench-data)
  BENCH_PARITY_PRECISION train.precision of both sides (default auto, the config's; any of
                         config.PRECISIONS): the pipeline gets it as train.precision, the
                         reference loop builds and trains its model under the same Keras
                         dtype policy (components.trainer.precision), its task outputs and
                         losses in float32 as the Trainer's. The figure is `train_parity`
                         under the default and `train_parity_<precision>` otherwise, so a
                         run under another precision does not overwrite the default's
                         figure in the JSON. The detail names the precision either way
                         (detail["precision"]: setting, policy, reason).
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time

import numpy as np

from benchmarks.figures import Figure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "default.yaml")
DATASETS = ("sample", "fashion_mnist", "opencv_digits")
DEFAULT_SEEDS = 8
DEFAULT_PRECISION = "auto"  # the config's default: what a user trains under


def dataset_config(name: str, data_dir: str):
    """The run config of one benchmark dataset (its sources written first when real)."""
    from config import load, parse

    if name == "sample":
        return load(DEFAULT_CONFIG)
    from benchmarks import real_data

    dataset = real_data.DATASETS[name]
    paths = real_data.write_sources(dataset, os.path.join(data_dir, name), os.path.join(data_dir, "packages"))
    return parse(real_data.config_dict(dataset, paths), None)


def with_seed(config, seed: int):
    return dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))


def with_precision(config, precision: str):
    """`config` with train.precision set (both sides read it from there)."""
    from config import PRECISIONS

    if precision not in PRECISIONS:
        raise ValueError(f"BENCH_PARITY_PRECISION: unknown {precision!r}; valid: {', '.join(PRECISIONS)}")
    return dataclasses.replace(config, train=dataclasses.replace(config.train, precision=precision))


def arrays(prepared, split: str):
    """A split's transformed examples in memory: (images, {task: labels}, {task: weights})."""
    from benchmarks.training import in_memory_arrays

    features, labels, weights = in_memory_arrays(prepared, split)
    return features["image"], labels, {t: w.reshape(-1) for t, w in weights.items()}


def scores(config, predict, eval_data) -> dict[str, float]:
    """Per task: accuracy (multilabel: mean per-label accuracy) or MAE over the task's own examples."""
    images, labels, weights = eval_data
    outputs = predict(images)
    out = {}
    for task in config.tasks:
        mask = weights[task.name] > 0
        y, p = labels[task.name][mask], np.asarray(outputs[task.name])[mask]
        if task.is_classification:
            out[task.name] = float(np.mean(np.argmax(p, -1) == np.argmax(y, -1)))
        elif task.type == "multilabel":
            out[task.name] = float(np.mean((p >= 0.5) == (y >= 0.5)))
        else:
            out[task.name] = float(np.mean(np.abs(p.reshape(-1) - y.reshape(-1))))
    return out


def _predictor(model):
    def predict(images):
        return model.predict(images, batch_size=256, verbose=0)
    return predict


def train_pipeline(prepared, config, out_dir: str):
    """run_fn on the prepared Transform outputs; the saved model, loaded back."""
    import tf_keras as keras
    from tfx.components.trainer.fn_args_utils import FnArgs

    from components.trainer.run_fn import run_fn

    fn_args = FnArgs(
        train_files=list(prepared.transformed_patterns["train"].values()),
        eval_files=list(prepared.transformed_patterns["eval"].values()),
        train_steps=config.train.steps, eval_steps=config.train.eval_steps,
        transform_output=prepared.transform_dir,
        serving_model_dir=os.path.join(out_dir, "serving_model"), model_run_dir=os.path.join(out_dir, "model_run"),
        custom_config={"config": config.to_json()})
    run_fn(fn_args)
    return keras.models.load_model(fn_args.serving_model_dir)


def _masked_loss(task, y, p, w):
    # Written here on purpose rather than taken from models.losses: the reference is what
    # the Trainer is checked against, so a fault in the Trainer's masked loss must not be
    # shared by it.
    import tensorflow as tf
    import tf_keras as keras

    y = tf.cast(y, p.dtype)
    if task.is_classification:
        per = keras.losses.categorical_crossentropy(y, p)
    elif task.type == "multilabel":
        per = keras.losses.binary_crossentropy(y, p)
    elif task.loss == "mae":
        per = tf.reduce_mean(tf.abs(y - p), -1)
    else:
        per = tf.reduce_mean(tf.square(y - p), -1)
    return tf.reduce_sum(w * per) / tf.maximum(tf.reduce_sum(w), 1.0)


def train_reference(config, train_data):
    """The plain loop: uniform draws with replacement from the examples in memory, under the
    dtype policy train.precision resolves to on this machine, as run_fn trains under it: the
    model is built inside components.trainer.precision.policy_scope (its task outputs compute
    in float32 whatever the policy, models/heads.py), the losses are float32, and under
    mixed_float16 the optimizer is wrapped in a LossScaleOptimizer, as Keras' compile does
    for the Trainer. The policy is put back on return."""
    from components.trainer.precision import detect, policy_scope

    with policy_scope(detect(config.train.precision).policy):
        return _train_reference(config, train_data)


def _train_reference(config, train_data):
    import tensorflow as tf
    import tf_keras as keras

    from components.trainer.optimizer import make_optimizer
    from components.trainer.run_fn import init_regression_biases
    from models import get_builder

    images, labels, weights = train_data
    keras.utils.set_random_seed(config.train.seed)
    model = get_builder(config.model.name)(config)
    # As the Trainer does (same function): a regression output starts at the mean label.
    init_regression_biases(model, config, tf.data.Dataset.from_tensor_slices(
        (images, labels, weights)).batch(config.train.batch_size))
    optimizer = make_optimizer(config.train, config.train.steps)
    scaled = keras.mixed_precision.global_policy().name == "mixed_float16"
    if scaled:  # what Keras' compile does under this policy
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    tasks = list(config.tasks)

    @tf.function
    def step(x, ys, ws):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            # float32 whatever the policy: the heads are (models/heads.py); cast to be sure
            loss = tf.add_n([t.loss_weight * _masked_loss(t, ys[t.name], tf.cast(out[t.name], tf.float32),
                                                           ws[t.name]) for t in tasks])
            if model.losses:
                loss += tf.add_n([tf.cast(r, tf.float32) for r in model.losses])
            if scaled:
                loss_to_differentiate = optimizer.get_scaled_loss(loss)
            else:
                loss_to_differentiate = loss
        grads = tape.gradient(loss_to_differentiate, model.trainable_variables)
        if scaled:
            grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    rng = np.random.default_rng(config.train.seed)
    n = len(images)
    for _ in range(config.train.steps):
        idx = rng.integers(0, n, config.train.batch_size)
        step(tf.constant(images[idx]), {t: tf.constant(v[idx]) for t, v in labels.items()},
             {t: tf.constant(v[idx], tf.float32) for t, v in weights.items()})
    return model


def mean_sd(values: list[float]) -> str:
    """'mean ± sample standard deviation' (± 0 for one value), to 3 decimals."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def _summary(values: list[float]) -> str:
    return f"{mean_sd(values)} [{min(values):.3f}, {max(values):.3f}]"


def gap(task, pipeline: list[float], reference: list[float]) -> float:
    """Pipeline mean - reference mean in accuracy points; regression: the relative MAE saving."""
    p, r = statistics.mean(pipeline), statistics.mean(reference)
    if task.type == "regression":
        return (r - p) / r if r > 0 else 0.0
    return p - r


# two-sided 95% Student t quantiles by degrees of freedom (scipy is not a dependency)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def paired_interval(task, pipeline: list[float], reference: list[float]) -> tuple[float, float]:
    """95% interval of the mean per-seed gap (pipeline - reference, or the relative MAE saving
    for regression): both sides of a seed start from the same initial weights, so the
    per-seed differences are paired. (nan, nan) below 2 seeds."""
    if task.type == "regression":
        diffs = [(r - p) / r if r > 0 else 0.0 for p, r in zip(pipeline, reference)]
    else:
        diffs = [p - r for p, r in zip(pipeline, reference)]
    if len(diffs) < 2:
        return float("nan"), float("nan")
    half = _T95.get(len(diffs) - 1, 1.96) * statistics.stdev(diffs) / len(diffs) ** 0.5
    return statistics.mean(diffs) - half, statistics.mean(diffs) + half


def compare_dataset(name: str, data_dir: str, seeds: tuple[int, ...], precision: str = DEFAULT_PRECISION) -> dict:
    """Trains both sides once per seed under train.precision `precision`;
    {task: {pipeline: [...], reference: [...], gap}}."""
    from benchmarks.training_data import prepare

    config = with_precision(dataset_config(name, data_dir), precision)
    results = {t.name: {"type": t.type, "pipeline": [], "reference": []} for t in config.tasks}
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(config, os.path.join(tmp, "data"))
        train_data, eval_data = arrays(prepared, "train"), arrays(prepared, "eval")
        counts = {t: int(np.sum(w > 0)) for t, w in eval_data[2].items()}
        print(f"  {name}: {len(train_data[0])} train / {len(eval_data[0])} eval examples "
              f"(eval per task {counts}), {config.train.steps} steps of {config.train.batch_size}", flush=True)
        for seed in seeds:
            seeded = with_seed(config, seed)
            start = time.perf_counter()
            pipe = scores(seeded, _predictor(train_pipeline(prepared, seeded, os.path.join(tmp, f"run{seed}"))),
                          eval_data)
            middle = time.perf_counter()
            ref = scores(seeded, _predictor(train_reference(seeded, train_data)), eval_data)
            for t in config.tasks:
                results[t.name]["pipeline"].append(pipe[t.name])
                results[t.name]["reference"].append(ref[t.name])
            print(f"    seed {seed}: pipeline {_fmt(pipe)} ({middle - start:.0f} s), "
                  f"reference {_fmt(ref)} ({time.perf_counter() - middle:.0f} s)", flush=True)
    for t in config.tasks:
        r = results[t.name]
        r["gap"] = gap(t, r["pipeline"], r["reference"])
        r["gap_ci95"] = list(paired_interval(t, r["pipeline"], r["reference"]))
        unit = "MAE" if t.type == "regression" else "acc"
        print(f"    {t.name:18s} {unit}: pipeline {_summary(r['pipeline'])}  reference {_summary(r['reference'])}"
              f"  gap {r['gap']:+.3f} (paired 95% interval {r['gap_ci95'][0]:+.3f} .. {r['gap_ci95'][1]:+.3f})",
              flush=True)
    return results


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in values.items())


def parse_seeds(text: str) -> tuple[int, ...]:
    """BENCH_PARITY_SEEDS: a count N (seeds 1..N) or a range FIRST-LAST (e.g. 4-8, to add seeds
    to an earlier run's: each (dataset, seed) is deterministic)."""
    first, sep, last = text.strip().partition("-")
    try:
        lo, hi = (int(first), int(last)) if sep else (1, int(first))
    except ValueError:
        lo = hi = 0
    if lo < 1 or hi < lo:
        raise ValueError(f"BENCH_PARITY_SEEDS must be a count >= 1 or a range FIRST-LAST with "
                         f"1 <= FIRST <= LAST, received {text!r}")
    return tuple(range(lo, hi + 1))


def figure_name(precision: str) -> str:
    """`train_parity` under the default (auto); `train_parity_<precision>` otherwise."""
    return "train_parity" if precision == DEFAULT_PRECISION else f"train_parity_{precision}"


def run() -> list[Figure]:
    from components.trainer.precision import detect
    from config import PRECISIONS

    precision = os.environ.get("BENCH_PARITY_PRECISION", DEFAULT_PRECISION)
    if precision not in PRECISIONS:
        raise ValueError(f"BENCH_PARITY_PRECISION: unknown {precision!r}; valid: {', '.join(PRECISIONS)}")
    seeds = parse_seeds(os.environ.get("BENCH_PARITY_SEEDS", str(DEFAULT_SEEDS)))
    names = [n for n in os.environ.get("BENCH_PARITY_DATASETS", ",".join(DATASETS)).split(",") if n]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise ValueError(f"BENCH_PARITY_DATASETS: unknown {unknown}; valid: {', '.join(DATASETS)}")
    data_dir = os.environ.get("BENCH_DATA_DIR", os.path.join(ROOT, ".bench-data"))
    resolved = detect(precision)
    print(f"  train.precision {precision!r} on both sides: dtype policy {resolved.policy} ({resolved.reason})",
          flush=True)
    detail = {name: compare_dataset(name, data_dir, seeds, precision) for name in names}
    gaps = {f"{d}/{t}": r["gap"] for d, by_task in detail.items() for t, r in by_task.items()}
    worst = min(gaps, key=gaps.get)
    print(f"  worst gap: {worst} {gaps[worst]:+.3f} over {len(seeds)} seeds, precision {precision} "
          f"({resolved.policy})", flush=True)
    detail = {"precision": resolved.as_json(), "seeds": list(seeds), **detail}
    return [Figure(figure_name(precision), gaps[worst], -0.01, "acc points", "higher", detail=detail)]
