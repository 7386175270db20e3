"""The Evaluator's `tfma.EvalConfig`, generated from the run config.

Nothing here is written by hand per run: every task in `config.tasks` gets
its own metrics on its own output, and every threshold comes from
`task.thresholds`. The mapping is documented in docs/report.md.

Why it is built this way (measured, see ENVIRONMENT.md "TFMA 0.47.1"):
- Per-output `label_keys {task: label_<task>}` and
  `example_weight_keys {task: weight_<task>}`: `weight_<task>` is 1.0 only on
  that task's examples, so every metric of output `task` counts only that
  task's examples, in every slice. Both features come from the model's
  `transform_features` signature (`preprocessing_function_names`), so the
  eval data needs no extra stored features.
- `include_default_metrics: false`: metrics from `model.compile` ignore the
  per-task masks.
- No `top_k` metrics: they crash in slices where an output's weights are all
  zero (e.g. `smile` in `source: wiki`).
- Value thresholds apply to the overall slice only: a slice that holds none
  of a task's examples reports 0.0 for accuracy/AUC and would always fail.
"""
from __future__ import annotations

import dataclasses
import json

import tensorflow_model_analysis as tfma
from google.protobuf import wrappers_pb2

from pipeline.config import Config, TaskConfig, label_key, weight_key

# How much worse than the baseline (last blessed model) a candidate's gated
# metric may be, as a fraction of the baseline's value: 0.02 lets accuracy
# 0.80 -> 0.784 pass and 0.783 fail; MAE 2.00 -> 2.04 pass, 2.041 fail.
# Relative, so one number fits accuracies and regression errors in any unit.
# Proposed config key: `evaluation.max_regression` (not yet in pipeline/config.py).
DEFAULT_MAX_REGRESSION = 0.02

SERVING_SIGNATURE = "serving_default"
TRANSFORM_SIGNATURE = "transform_features"
SLICE_FEATURES = ("source", "task_index")

HIGHER = tfma.MetricDirection.HIGHER_IS_BETTER
LOWER = tfma.MetricDirection.LOWER_IS_BETTER


@dataclasses.dataclass(frozen=True)
class MetricDef:
    """One TFMA metric a task type gets.

    name: the metric name TFMA writes (and the name `task.thresholds` uses).
    class_name/config: the MetricConfig. positive_class: the metric is
    computed on one-vs-rest columns (`binarize`), reported per class.
    direction: None for metrics that cannot be gated (counts, calibration).
    """
    name: str
    class_name: str
    config: dict | None = None
    direction: int | None = None
    per_class: bool = False
    plot: bool = False


# Keras CategoricalAccuracy = mean(argmax(label) == argmax(prediction)) weighted
# by weight_<task>: exactly numpy's argmax accuracy on the task's examples.
_COUNTS = (MetricDef("example_count", "ExampleCount"),
           MetricDef("weighted_example_count", "WeightedExampleCount"))
_ACCURACY = MetricDef("accuracy", "CategoricalAccuracy", {"name": "accuracy"}, HIGHER)
_CONFUSION = MetricDef("multi_class_confusion_matrix_plot", "MultiClassConfusionMatrixPlot", plot=True)

METRICS: dict[str, tuple[MetricDef, ...]] = {
    "multiclass": _COUNTS + (_ACCURACY, _CONFUSION),
    # Positive class = classes[1] (slot 1 of the 2-slot one-hot). precision and
    # recall use p(positive) > 0.5, which for a 2-way softmax is the argmax.
    "binary": _COUNTS + (_ACCURACY, _CONFUSION) + (
        MetricDef("auc", "AUC", direction=HIGHER, per_class=True),
        MetricDef("precision", "Precision", direction=HIGHER, per_class=True),
        MetricDef("recall", "Recall", direction=HIGHER, per_class=True),
        MetricDef("calibration", "Calibration", per_class=True),
    ),
    "regression": _COUNTS + (
        MetricDef("mean_absolute_error", "MeanAbsoluteError", direction=LOWER),
        MetricDef("mean_squared_error", "MeanSquaredError", direction=LOWER),
    ),
    # One sigmoid per label: AUC and accuracy at 0.5 for every label.
    "multilabel": _COUNTS + (
        MetricDef("auc", "AUC", direction=HIGHER, per_class=True),
        MetricDef("binary_accuracy", "BinaryAccuracy", direction=HIGHER, per_class=True),
    ),
}

# The metric a baseline comparison always gates, even without a threshold.
PRIMARY_METRIC = {"multiclass": "accuracy", "binary": "accuracy",
                  "regression": "mean_absolute_error", "multilabel": "auc"}


def metric_defs(task: TaskConfig) -> dict[str, MetricDef]:
    """The metrics a task gets, by TFMA metric name."""
    return {m.name: m for m in METRICS[task.type]}


def positive_class_ids(task: TaskConfig) -> list[int]:
    """Class ids the per-class metrics are computed for (binarize)."""
    if task.type == "binary":
        return [1]
    return list(range(task.width))


def _gated_metrics(task: TaskConfig) -> dict[str, MetricDef]:
    defs = metric_defs(task)
    for name in task.thresholds:
        if name not in defs or defs[name].direction is None:
            valid = sorted(n for n, d in defs.items() if d.direction is not None)
            raise ValueError(
                f"config key 'tasks[{task.name}].thresholds.{name}': no such gateable metric for a "
                f"{task.type} task; valid: {', '.join(valid)}")
    gated = {n: defs[n] for n in task.thresholds}
    gated.setdefault(PRIMARY_METRIC[task.type], defs[PRIMARY_METRIC[task.type]])
    return gated


def _threshold(m: MetricDef, bound: float | None, max_regression: float) -> tfma.MetricThreshold:
    t = tfma.MetricThreshold()
    if bound is not None:
        # A threshold is a floor for higher-is-better metrics and a ceiling for
        # error metrics (lower is better).
        side = t.value_threshold.lower_bound if m.direction == HIGHER else t.value_threshold.upper_bound
        side.value = bound
    # diff = candidate - baseline; ratio = diff / baseline. HIGHER: ratio >= -r.
    # LOWER: ratio <= +r. Ignored by TFX when there is no baseline (first run).
    t.change_threshold.direction = m.direction
    t.change_threshold.relative.value = -max_regression if m.direction == HIGHER else max_regression
    return t


def _metric_config(m: MetricDef, task: TaskConfig, max_regression: float) -> tfma.MetricConfig:
    mc = tfma.MetricConfig(class_name=m.class_name)
    if m.config:
        mc.config = json.dumps(m.config)
    gated = _gated_metrics(task)
    if m.name in gated:
        mc.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
            slicing_specs=[tfma.SlicingSpec()],  # the overall slice only
            threshold=_threshold(m, task.thresholds.get(m.name), max_regression)))
    return mc


def build_eval_config(config: Config, max_regression: float = DEFAULT_MAX_REGRESSION) -> tfma.EvalConfig:
    """EvalConfig for one candidate model (TFX adds the baseline ModelSpec).

    Raises ValueError naming `tasks[<task>].thresholds.<metric>` when a
    threshold names a metric the task's type does not compute.
    """
    if not 0 <= max_regression < 1:
        raise ValueError(f"max_regression must be in [0, 1), received {max_regression!r}")
    metrics_specs = []
    for task in config.tasks:
        defs = METRICS[task.type]
        whole = [_metric_config(m, task, max_regression) for m in defs if not m.per_class]
        metrics_specs.append(tfma.MetricsSpec(output_names=[task.name], metrics=whole))
        per_class = [_metric_config(m, task, max_regression) for m in defs if m.per_class]
        if per_class:
            metrics_specs.append(tfma.MetricsSpec(
                output_names=[task.name], metrics=per_class,
                binarize=tfma.BinarizationOptions(class_ids={"values": positive_class_ids(task)})))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name=SERVING_SIGNATURE,
            preprocessing_function_names=[TRANSFORM_SIGNATURE],
            label_keys={t.name: label_key(t.name) for t in config.tasks},
            example_weight_keys={t.name: weight_key(t.name) for t in config.tasks},
        )],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f]) for f in SLICE_FEATURES],
        metrics_specs=metrics_specs,
        options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False)),
    )
