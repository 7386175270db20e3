"""The default thresholds catch a broken Trainer (issue 26).

configs/default.yaml as it is at test time (its tasks, thresholds, image size,
BKNet, batch size, evaluation slices) trains through the real `run_fn` on a
small set drawn by its sources' own sample generators (fewer images, same
seeds), converted and transformed by the project's code. The one bug is put
into the training step: each batch's labels, with their task masks, are
shuffled against its images, as a refactor of the step could do while the
loss still falls and nothing crashes. TFMA then evaluates the exported model
with the EvalConfig the Evaluator gets (build_eval_config), as on a first run
(no baseline: value thresholds only); TFX's Evaluator blesses exactly when
TFMA's validation is ok.

- test_broken_step_is_not_blessed (every run; 90-110 s on 2 busy cores, nearly all of
  it fixed cost: conversion, the Trainer's setup and save, TFMA): 10 broken steps.
  It pins the gate: not blessed, the failures exactly the default thresholds the
  accuracies are under, every task whose threshold stands clear of chance among
  them. At 10 steps an unbroken step would fail as well: this one shows the wiring.
- test_broken_step_is_what_fails (slow, ~8 min on 2 busy cores): 200 steps, where
  the unbroken step learns every task on these data (measured 0.88 / 0.76 / 0.71
  against the broken step's 0.39 / 0.53 / 0.25 and chance 0.61 / 0.53 / 0.32),
  broken and unbroken. The broken model is still not blessed for the same
  reasons; the unbroken one is clearly above it and chance on every task.

No count or accuracy is written down: the figures belong to the sample
generators and change with them. What is exact is derived: TFMA's example
counts are the eval files' own, each failure's bound is the config's
threshold and its value TFMA's accuracy.
"""
from __future__ import annotations

import dataclasses
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from config import Config, load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "default.yaml")

SAMPLE_COUNT = 400        # images per source (the default config asks 600 and 800)
FAST_STEPS = 10           # one epoch (run_fn.epochs_for)
CONTROL_STEPS = 200       # halfway through 200, the unbroken step had not yet learned gender
NEAR_CHANCE = 0.10        # ~1.5 binomial sd at ~60 eval examples a task: room for a model that learned nothing
CLEARLY = 0.15            # ~2.3 sd: a gap that takes having learned the images' cues


def small_default_config(root: str) -> Config:
    """The default config with its sources generated under `root`, SAMPLE_COUNT images each."""
    config = load(DEFAULT_CONFIG)
    sources = tuple(dataclasses.replace(s, path=os.path.join(root, s.name),
                                        sample={**(s.sample or {}), "count": SAMPLE_COUNT})
                    for s in config.sources)
    return dataclasses.replace(config, sources=sources)


def labels_shuffled_against_images(train_step, traced: list):
    """The training step with the bug: the batch's labels and task masks in another order than its images."""
    def step(self, data):
        traced.append(True)  # (at trace time) proof that fit ran this step
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        n = tf.shape(x["image"])[0]
        seed = tf.stack([tf.cast(self.optimizer.iterations, tf.int64), tf.constant(0, tf.int64)])
        order = tf.argsort(tf.random.stateless_uniform([n], seed=seed))
        y = {k: tf.gather(v, order) for k, v in y.items()}
        sample_weight = {k: tf.gather(v, order) for k, v in sample_weight.items()}
        return train_step(self, (x, y, sample_weight))
    return step


@dataclasses.dataclass(frozen=True)
class Evaluated:
    blessed: bool
    accuracy: dict        # task -> TFMA accuracy on the overall slice
    counts: dict          # task -> TFMA weighted_example_count on the overall slice
    failures: dict        # (task, metric) -> (threshold proto, value, slice key)
    broken_step_traced: bool


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The small default-config data, converted and transformed; plus each task's eval
    example count and majority-class rate, read from the raw eval examples."""
    from benchmarks.training_data import prepare

    root = str(tmp_path_factory.mktemp("broken_trainer"))
    config = small_default_config(os.path.join(root, "sources"))
    prepared = prepare(config, os.path.join(root, "work"))
    eval_pattern = os.path.join(root, "work", "examples", "Split-eval_*", "*")
    files = sorted(glob.glob(eval_pattern))
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    parsed = tf.io.parse_example(tf.constant(serialized), {
        "task_index": tf.io.FixedLenFeature([], tf.int64),
        "label": tf.io.FixedLenFeature([config.label_width], tf.float32)})
    task_index, label = parsed["task_index"].numpy(), parsed["label"].numpy()
    counts, chance = {}, {}
    for i, task in enumerate(config.tasks):
        classes = label[task_index == i, :task.width].argmax(axis=1)
        counts[task.name] = len(classes)
        chance[task.name] = np.bincount(classes, minlength=task.width).max() / len(classes)
    return {"root": root, "config": config, "prepared": prepared, "eval_pattern": eval_pattern,
            "counts": counts, "chance": chance}


@pytest.fixture(scope="module")
def train_and_evaluate(data):
    """(broken, steps) -> Evaluated: run_fn for `steps`, then TFMA; each pair once per module."""
    done = {}

    def run(broken: bool, steps: int) -> Evaluated:
        if (broken, steps) not in done:
            done[broken, steps] = _train_and_evaluate(data, broken, steps)
        return done[broken, steps]
    return run


def _train_and_evaluate(data, broken: bool, steps: int) -> Evaluated:
    import tensorflow_model_analysis as tfma
    from tfx.components.trainer.fn_args_utils import FnArgs

    from components.common.eval_config import build_eval_config
    from components.trainer.run_fn import run_fn
    from components.trainer.training_model import MultitaskTrainingModel

    config, prepared = data["config"], data["prepared"]
    out = os.path.join(data["root"], f"{'broken' if broken else 'unbroken'}_{steps}")
    sources = [s.name for s in config.sources]
    fn_args = FnArgs(
        train_files=[prepared.transformed_patterns["train"][s] for s in sources],
        eval_files=[prepared.transformed_patterns["eval"][s] for s in sources],
        train_steps=steps, eval_steps=None, transform_output=prepared.transform_dir,
        serving_model_dir=os.path.join(out, "serving_model"), model_run_dir=os.path.join(out, "model_run"),
        custom_config={"config": config.to_json()})
    traced = []
    with pytest.MonkeyPatch.context() as mp:
        step = labels_shuffled_against_images(MultitaskTrainingModel.train_step, traced)
        if broken:
            mp.setattr(MultitaskTrainingModel, "train_step", step)
        run_fn(fn_args)

    eval_config = build_eval_config(config)
    shared = tfma.default_eval_shared_model(fn_args.serving_model_dir, eval_config=eval_config, rubber_stamp=True)
    eval_output = os.path.join(out, "evaluation")
    tfma.run_model_analysis(shared, eval_config, data_location=data["eval_pattern"], file_format="tfrecords",
                            output_path=eval_output)

    overall = dict(tfma.load_eval_result(eval_output).slicing_metrics)[()]
    value = lambda task, name: overall[task][""][name]["doubleValue"]  # noqa: E731
    validation = tfma.load_validation_result(eval_output)
    failures = {}
    for per_slice in validation.metric_validations_per_slice:
        for f in per_slice.failures:
            key = (f.metric_key.output_name, f.metric_key.name)
            assert key not in failures, f"two failures of {key}"
            failures[key] = (f.metric_threshold, f.metric_value.double_value.value, per_slice.slice_key)
    return Evaluated(blessed=bool(validation.validation_ok),
                     accuracy={t: value(t, "accuracy") for t in config.task_names},
                     counts={t: value(t, "weighted_example_count") for t in config.task_names},
                     failures=failures, broken_step_traced=bool(traced))


def assert_caught_by_the_default_thresholds(result: Evaluated, data) -> None:
    config, chance = data["config"], data["chance"]
    assert result.broken_step_traced
    # the per-task masks reach TFMA: each task is judged on its own eval examples, all of them
    assert result.counts == {t: float(n) for t, n in data["counts"].items()}
    # the bug leaves nothing to learn but the class shares (it may even sit below chance:
    # the training majority need not be the eval one)
    for task in config.task_names:
        assert result.accuracy[task] <= chance[task] + NEAR_CHANCE, (task, result.accuracy, chance)
    thresholds = {(t.name, m): bound for t in config.tasks for m, bound in t.thresholds.items()}
    assert thresholds, "configs/default.yaml sets no threshold: nothing can catch a broken trainer"
    assert set(m for _, m in thresholds) == {"accuracy"}, f"only accuracy thresholds are read here: {thresholds}"
    # The gate fails exactly the default thresholds the accuracies are under, on the
    # overall slice, each with the config's bound and TFMA's value.
    under = {key for key, bound in thresholds.items() if result.accuracy[key[0]] < bound}
    assert set(result.failures) == under, (result.failures, result.accuracy, thresholds)
    for (task, metric), (threshold, value, slice_key) in result.failures.items():
        assert not slice_key.single_slice_keys  # the overall slice
        assert threshold.value_threshold.lower_bound.value == thresholds[task, metric]
        assert not threshold.value_threshold.HasField("upper_bound")
        assert value == result.accuracy[task]
    # The claim itself, implied by the two above: no task whose threshold stands clear of
    # chance lets a broken model through (at 0.75-0.85 against chance 0.61 / 0.53 / 0.32: all three).
    clear = {(t.name, "accuracy") for t in config.tasks
             if t.thresholds.get("accuracy", 0.0) > chance[t.name] + NEAR_CHANCE}
    assert clear <= set(result.failures), (clear, result.failures)
    assert result.failures and not result.blessed


def test_broken_step_is_not_blessed(train_and_evaluate, data):
    assert_caught_by_the_default_thresholds(train_and_evaluate(broken=True, steps=FAST_STEPS), data)


@pytest.mark.slow
def test_broken_step_is_what_fails(train_and_evaluate, data):
    broken = train_and_evaluate(broken=True, steps=CONTROL_STEPS)
    assert_caught_by_the_default_thresholds(broken, data)
    unbroken = train_and_evaluate(broken=False, steps=CONTROL_STEPS)
    assert unbroken.counts == broken.counts
    for task in data["config"].task_names:
        assert unbroken.accuracy[task] >= broken.accuracy[task] + CLEARLY, (task, unbroken.accuracy, broken.accuracy)
        assert unbroken.accuracy[task] >= data["chance"][task] + CLEARLY, (task, unbroken.accuracy, data["chance"])
