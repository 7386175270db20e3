"""The Evaluator's `tfma.EvalConfig`, generated from the run config.

Nothing here is written by hand per run: every task in `config.tasks` gets
its own metrics on its own output, every threshold comes from
`task.thresholds`, the baseline comparison from `evaluation.max_regression`
and the class slices from `evaluation.slices`. The mapping is documented in
docs/report.md.

Why it is built this way (measured on TFMA 0.47.1; the facts are listed in
docs/report.md, "TFMA 0.47.1 with one output per task"):
- Per-output `label_keys {task: label_<task>}` and
  `example_weight_keys {task: weight_<task>}`: `weight_<task>` is 1.0 only on
  that task's examples, so every metric of output `task` counts only that
  task's examples, in every slice. Both features come from the model's
  `transform_features` signature (`preprocessing_function_names`), so the
  eval data needs no extra stored features.
- `include_default_metrics: false`: metrics from `model.compile` ignore the
  per-task masks.
- Only native TFMA metrics (TFMA's own and components/evaluator/metrics.py): no
  Keras metric, so TFMA runs no TF graph per metric; no `top_k` metrics: they
  crash in slices where an output's weights are all zero.
- Value thresholds apply to the overall slice only: a slice that holds none
  of a task's examples reports NaN or 0.0 and would always fail.
"""
from __future__ import annotations

import dataclasses
import json

import tensorflow_model_analysis as tfma
from google.protobuf import wrappers_pb2

from config import PRIMARY_METRIC, Config, TaskConfig, label_key, slice_key, weight_key

# `evaluation.max_regression` (config/types.py, default 0.02): how much
# worse than the baseline (last blessed model) a gated metric may be, in the
# metric's own unit. Absolute, not relative: TFMA 0.47.1 computes a relative
# change as (candidate - baseline) / baseline while its docs say candidate /
# baseline (tensorflow/model-analysis issue 520), and a ratio breaks down near
# a baseline of 0. 0.02 lets accuracy 0.80 -> 0.78 pass and 0.7799 fail;
# MAE 2.00 -> 2.02 pass, 2.0201 fail.

# Confidence intervals: TFMA's Poisson bootstrap, set explicitly: without a
# method TFMA 0.47.1 picks the jackknife (utils/config_util.py). 20 replicates
# (TFMA's fixed number), 95 % t-interval from their standard deviation, the
# metric itself still the value on all examples. Both methods recompute every
# metric of every slice ~20 times; the cost measured is in docs/report.md,
# "Confidence intervals". `evaluation.confidence_intervals: false` skips them.
CI_METHOD = tfma.ConfidenceIntervalOptions.POISSON_BOOTSTRAP

SERVING_SIGNATURE = "serving_default"
TRANSFORM_SIGNATURE = "transform_features"
SLICE_FEATURES = ("source", "task_index")
CUSTOM_METRICS_MODULE = "components.evaluator.metrics"
CALIBRATION_BUCKETS = 10
# Error histogram bins, in units of the task's tolerance: edges at
# -4, -3.5, ..., +4 tolerances plus one open bin at each end.
HISTOGRAM_EDGES_IN_TOLERANCES = tuple(k / 2 for k in range(-8, 9))

HIGHER = tfma.MetricDirection.HIGHER_IS_BETTER
LOWER = tfma.MetricDirection.LOWER_IS_BETTER


@dataclasses.dataclass(frozen=True)
class MetricDef:
    """One TFMA metric a task type gets.

    name: the metric name TFMA writes (and the name `task.thresholds` uses).
    class_name/module/config: the MetricConfig. per_class: computed on
    one-vs-rest columns (`binarize`), reported per class. direction: None for
    metrics that cannot be gated (counts, calibration, plots). plot: written
    to TFMA's plots, not its metrics. array: an array-valued metric.
    """
    name: str
    class_name: str
    config: dict | None = None
    direction: int | None = None
    per_class: bool = False
    plot: bool = False
    array: bool = False
    module: str = ""


def _custom(name, class_name, direction=None, **kw) -> MetricDef:
    return MetricDef(name, class_name, direction=direction, module=CUSTOM_METRICS_MODULE, **kw)


_COUNTS = (MetricDef("example_count", "ExampleCount"),
           MetricDef("weighted_example_count", "WeightedExampleCount"))
# Argmax accuracy from TFMA's multi-class confusion matrix, the same one the
# confusion-matrix plot reads: weighted mean of argmax(label) == argmax(pred).
_ACCURACY = _custom("accuracy", "ArgmaxAccuracy", HIGHER)
_CONFUSION = MetricDef("multi_class_confusion_matrix_plot", "MultiClassConfusionMatrixPlot", plot=True)
# One-vs-rest reliability curve: per bucket of the class's score, mean score vs
# share of examples of that class. Shares TFMA's 10,000-bucket histogram with AUC.
_CALIBRATION_PLOT = MetricDef("calibration_plot", "CalibrationPlot", {"num_buckets": CALIBRATION_BUCKETS},
                              per_class=True, plot=True)
_F1_AT_HALF = MetricDef("f1", "F1Score", {"name": "f1"}, HIGHER, per_class=True)

METRICS: dict[str, tuple[MetricDef, ...]] = {
    # Per class from the argmax confusion matrix (what a classification report
    # shows), not TFMA's one-vs-rest score > 0.5.
    "multiclass": _COUNTS + (_ACCURACY, _CONFUSION) + (
        _custom("precision", "ArgmaxPrecision", HIGHER, per_class=True),
        _custom("recall", "ArgmaxRecall", HIGHER, per_class=True),
        _custom("f1", "ArgmaxF1", HIGHER, per_class=True),
        _CALIBRATION_PLOT,
    ),
    # Positive class = classes[1] (slot 1 of the 2-slot one-hot). precision,
    # recall and f1 of the argmax (for a 2-way softmax: p(positive) > 0.5) read
    # off the confusion matrix accuracy already needs, and calibration off the
    # histogram AUC already needs: no extra pass over the examples.
    "binary": _COUNTS + (_ACCURACY, _CONFUSION) + (
        MetricDef("auc", "AUC", direction=HIGHER, per_class=True),
        _custom("precision", "ArgmaxPrecision", HIGHER, per_class=True),
        _custom("recall", "ArgmaxRecall", HIGHER, per_class=True),
        _custom("f1", "ArgmaxF1", HIGHER, per_class=True),
        _custom("calibration", "HistogramCalibration", per_class=True),
        _CALIBRATION_PLOT,
    ),
    # within_tolerance and error_histogram only when the task sets `tolerance`.
    "regression": _COUNTS + (
        MetricDef("mean_absolute_error", "MeanAbsoluteError", direction=LOWER),
        MetricDef("mean_squared_error", "MeanSquaredError", direction=LOWER),
        _custom("root_mean_squared_error", "RootMeanSquaredError", LOWER),
        _custom("within_tolerance", "WithinTolerance", HIGHER),
        _custom("error_histogram", "ErrorHistogram", array=True),
    ),
    # One sigmoid per label, each read at 0.5.
    "multilabel": _COUNTS + (
        _custom("subset_accuracy", "SubsetAccuracy", HIGHER),
        MetricDef("auc", "AUC", direction=HIGHER, per_class=True),
        MetricDef("binary_accuracy", "BinaryAccuracy", direction=HIGHER, per_class=True),
        _F1_AT_HALF,
        _CALIBRATION_PLOT,
    ),
}

_NEEDS_TOLERANCE = ("within_tolerance", "error_histogram")

# Fairness Indicators' rates, one class against the rest at the argmax (binary: the positive
# class; multiclass: every class), for the tasks of cross-task slices only (fairness_tasks):
# derived from the confusion matrix accuracy already builds, so no extra pass.
FAIRNESS_METRICS = (_custom("false_positive_rate", "ArgmaxFalsePositiveRate", per_class=True),
                    _custom("false_negative_rate", "ArgmaxFalseNegativeRate", per_class=True))

# The metric a baseline comparison always gates, even without a threshold: config.PRIMARY_METRIC.


def metric_defs(task: TaskConfig, fairness: bool = False) -> dict[str, MetricDef]:
    """The metrics a task gets, by TFMA metric name; with `fairness` (a task of a cross-task
    slice) a binary / multiclass task also gets FAIRNESS_METRICS."""
    extra = FAIRNESS_METRICS if fairness and task.is_classification else ()
    return {m.name: _with_params(m, task) for m in METRICS[task.type] + extra
            if task.tolerance is not None or m.name not in _NEEDS_TOLERANCE}


def fairness_slices(config: Config) -> list:
    """The cross-task entries of `evaluation.slices` ({task, by: <other task>})."""
    return [s for s in config.evaluation.slices or () if s.by != "class"]


def fairness_tasks(config: Config) -> set[str]:
    return {s.task for s in fairness_slices(config)}


def fairness_slice_column(by: str) -> str:
    """TFMA slice column of `{task, by}`: the slice-only raw feature `slice_<by>`."""
    return slice_key(by)


def _with_params(m: MetricDef, task: TaskConfig) -> MetricDef:
    if m.name == "within_tolerance":
        return dataclasses.replace(m, config={"tolerance": task.tolerance})
    if m.name == "error_histogram":
        return dataclasses.replace(m, config={"edges": histogram_edges(task)})
    return m


def histogram_edges(task: TaskConfig) -> list[float]:
    """Bin edges of the regression error histogram, in the label's unit."""
    return [e * task.tolerance for e in HISTOGRAM_EDGES_IN_TOLERANCES]


def positive_class_ids(task: TaskConfig) -> list[int]:
    """Class ids the per-class metrics are computed for (binarize)."""
    if task.type == "binary":
        return [1]
    return list(range(task.width))


def class_slice_column(task: TaskConfig) -> str:
    """Slice column of `evaluation.slices` {task, by: class}: `<task>_class`."""
    return f"{task.name}_class"


def class_slice_tasks(config: Config) -> list[TaskConfig]:
    """Tasks sliced by class: `evaluation.slices`, or by default every binary/multiclass task."""
    if config.evaluation.slices is None:
        return [t for t in config.tasks if t.is_classification]
    names = [s.task for s in config.evaluation.slices if s.by == "class"]
    return [t for t in config.tasks if t.name in names]


def _sql_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def class_slice_sql(task: TaskConfig) -> str:
    """TFMA SQL slice: one slice per class of the task's own label, named by class.

    `label_<task>` is the transformed one-hot (multi-hot) label, zero on other
    tasks' examples, so only the task's examples fall in a slice; a multilabel
    example falls in the slice of each of its labels. A slice by another task's
    class uses the raw slice-only feature instead (fairness_slice_column).
    """
    names = ", ".join(_sql_string(c) for c in task.classes)
    return (f"SELECT STRUCT([{names}][OFFSET(o)] AS {class_slice_column(task)}) "
            f"FROM example.{label_key(task.name)} AS v WITH OFFSET AS o WHERE v > 0.5")


def _gated_metrics(task: TaskConfig) -> dict[str, MetricDef]:
    defs = metric_defs(task)
    for name in task.thresholds:
        if name not in defs or defs[name].direction is None:
            valid = sorted(n for n, d in defs.items() if d.direction is not None)
            hint = ("; within_tolerance needs tasks[].tolerance" if name == "within_tolerance"
                    and task.type == "regression" else "")
            raise ValueError(
                f"config key 'tasks[{task.name}].thresholds.{name}': no such gateable metric for a "
                f"{task.type} task; valid: {', '.join(valid)}{hint}")
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
    # diff = candidate - baseline, in the metric's unit. HIGHER: diff >= -r.
    # LOWER: diff <= +r. Ignored by TFX when there is no baseline (first run).
    t.change_threshold.direction = m.direction
    t.change_threshold.absolute.value = -max_regression if m.direction == HIGHER else max_regression
    return t


def _metric_config(m: MetricDef, task: TaskConfig, max_regression: float) -> tfma.MetricConfig:
    mc = tfma.MetricConfig(class_name=m.class_name, module=m.module)
    if m.config:
        mc.config = json.dumps(m.config)
    gated = _gated_metrics(task)
    if m.name in gated:
        mc.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
            slicing_specs=[tfma.SlicingSpec()],  # the overall slice only
            threshold=_threshold(m, task.thresholds.get(m.name), max_regression)))
    return mc


def build_eval_config(config: Config, max_regression: float | None = None) -> tfma.EvalConfig:
    """EvalConfig for one candidate model (TFX adds the baseline ModelSpec).

    max_regression: None = `config.evaluation.max_regression`. Raises
    ValueError naming `tasks[<task>].thresholds.<metric>` when a threshold
    names a metric the task's type does not compute.
    """
    if max_regression is None:
        max_regression = config.evaluation.max_regression
    if not 0 <= max_regression < 1:
        raise ValueError(f"max_regression must be in [0, 1), received {max_regression!r}")
    metrics_specs = []
    # TFMA hands a one-output model's predictions over as a bare array (no dict),
    # so a one-task model's metrics must not name an output.
    single = len(config.tasks) == 1
    for task in config.tasks:
        defs = list(metric_defs(task, task.name in fairness_tasks(config)).values())
        whole = [_metric_config(m, task, max_regression) for m in defs if not m.per_class]
        metrics_specs.append(tfma.MetricsSpec(output_names=[] if single else [task.name], metrics=whole))
        per_class = [_metric_config(m, task, max_regression) for m in defs if m.per_class]
        if per_class:
            metrics_specs.append(tfma.MetricsSpec(
                output_names=[] if single else [task.name], metrics=per_class,
                binarize=tfma.BinarizationOptions(class_ids={"values": positive_class_ids(task)})))
    slicing_specs = [tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f]) for f in SLICE_FEATURES]
    slicing_specs += [tfma.SlicingSpec(slice_keys_sql=class_slice_sql(t)) for t in class_slice_tasks(config)]
    # Cross-task slices: the raw slice-only feature, absent on examples that do not carry it
    # (those fall in no slice of the column); every task's metrics are computed there, the
    # report reads the sliced task's.
    by = sorted({fairness_slice_column(s.by) for s in fairness_slices(config)})
    slicing_specs += [tfma.SlicingSpec(feature_keys=[column]) for column in by]
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            # What TFMA would find for every model the Trainer saves (Keras `model.save`), said
            # here so it does not load the whole model once just to find out (~3 s a run).
            model_type=tfma.TF_KERAS,
            signature_name=SERVING_SIGNATURE,
            preprocessing_function_names=[TRANSFORM_SIGNATURE],
            **({"label_key": label_key(config.tasks[0].name), "example_weight_key": weight_key(config.tasks[0].name)}
               if single else
               {"label_keys": {t.name: label_key(t.name) for t in config.tasks},
                "example_weight_keys": {t.name: weight_key(t.name) for t in config.tasks}}),
        )],
        slicing_specs=slicing_specs,
        metrics_specs=metrics_specs,
        options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False),
                             **({"compute_confidence_intervals": wrappers_pb2.BoolValue(value=True),
                                 "confidence_intervals": tfma.ConfidenceIntervalOptions(method=CI_METHOD)}
                                if config.evaluation.confidence_intervals else {})),
    )
