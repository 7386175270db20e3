"""TFMA metrics the stock set lacks, referenced from the EvalConfig by
`MetricConfig(class_name=..., module="components.evaluator.metrics")`.

All are native TFMA metrics (Beam combiners or metrics derived from one), not
Keras metrics: they honour the per-output example weights exactly like
TFMA's own, and need no TensorFlow graph at evaluation time.

- `ArgmaxAccuracy`, `ArgmaxPrecision`, `ArgmaxRecall`, `ArgmaxF1`: read off
  TFMA's multi-class confusion matrix (rows: argmax of the label, columns:
  argmax of the prediction), the same computation the
  `multi_class_confusion_matrix_plot` uses, so one pass serves all of them.
  TFMA's own Precision/Recall with `binarize` threshold each class's score at
  0.5 (one-vs-rest); for a softmax over K >= 3 classes that is not the
  predicted class, and `top_k` variants crash in slices without the output's
  examples (docs/report.md, "TFMA 0.47.1 with one output per task"), hence these. Per class via `binarize.class_ids`.
- `ArgmaxFalsePositiveRate`, `ArgmaxFalseNegativeRate`: Fairness Indicators'
  rates of one class against the rest, read off the same argmax matrix (only
  for tasks named by a cross-task `evaluation.slices` entry).
- `HistogramCalibration`: weighted sum of predictions / weighted sum of
  labels (TFMA's `calibration`), read off the calibration histogram that
  AUC and the calibration plot already build, instead of TFMA's `Calibration`
  and its own pass over every example.
- `RootMeanSquaredError`: sqrt of TFMA's `mean_squared_error` computation.
- `WithinTolerance`: weighted share of examples with |label - prediction| <=
  tolerance (regression, in the label's unit).
- `SubsetAccuracy`: weighted share of multilabel examples whose every label
  is right at score > 0.5.
- `ErrorHistogram`: weighted counts of prediction - label in fixed bins
  (regression error plot), as an array metric.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, Optional, Sequence

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import calibration_histogram, mean_regression_error, metric_types, metric_util
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mcm
from tensorflow_model_analysis.proto import config_pb2

ACCURACY_NAME = "accuracy"
PRECISION_NAME = "precision"
RECALL_NAME = "recall"
F1_NAME = "f1"
FPR_NAME = "false_positive_rate"
FNR_NAME = "false_negative_rate"
CALIBRATION_NAME = "calibration"
RMSE_NAME = "root_mean_squared_error"
WITHIN_TOLERANCE_NAME = "within_tolerance"
SUBSET_ACCURACY_NAME = "subset_accuracy"
ERROR_HISTOGRAM_NAME = "error_histogram"

# The multi-class confusion matrix at threshold 0.0 is the plain argmax
# matrix (softmax scores are > 0); the same threshold as
# MultiClassConfusionMatrixPlot's default, so the computation is shared.
_ARGMAX_THRESHOLD = 0.0


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def _counts(matrices: mcm.Matrices, class_id: int) -> tuple[float, float, float, float]:
    """(tp, fp, fn, total) of one class in the argmax confusion matrix."""
    tp = fp = fn = total = 0.0
    for k, w in matrices.get(_ARGMAX_THRESHOLD, {}).items():
        total += w
        actual, predicted = k.actual_class_id, k.predicted_class_id
        if actual == class_id and predicted == class_id:
            tp += w
        elif predicted == class_id:
            fp += w
        elif actual == class_id:
            fn += w
    return tp, fp, fn, total


def _derive(key: metric_types.MetricKey, comps: metric_types.MetricComputations, value_fn: Callable[[Any], float],
            source: str) -> metric_types.MetricComputations:
    """`comps` plus one derived metric: key -> value_fn(the value of comps' last key)."""
    source_key = comps[-1].keys[-1]

    def result(metrics: Dict[metric_types.MetricKey, Any]) -> Dict[metric_types.MetricKey, float]:
        return {key: value_fn(metrics[source_key])}

    # DerivedMetricComputations are de-duplicated by result name + keys.
    result.__name__ = f"_{key.name}_from_{source}"
    comps.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return comps


def _from_confusion_matrix(value_fn: Callable[[mcm.Matrices, Optional[int]], float]):
    """A computations function deriving one value (per class_id sub key) from the matrix."""

    def computations(name: str, eval_config: Optional[config_pb2.EvalConfig] = None, model_name: str = "",
                     output_name: str = "", sub_key: Optional[metric_types.SubKey] = None,
                     example_weighted: bool = False) -> metric_types.MetricComputations:
        key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                     sub_key=sub_key, example_weighted=example_weighted)
        comps = mcm.multi_class_confusion_matrices(
            thresholds=[_ARGMAX_THRESHOLD], eval_config=eval_config, model_name=model_name,
            output_name=output_name, example_weighted=example_weighted)
        class_id = sub_key.class_id if sub_key is not None else None
        return _derive(key, comps, lambda matrices: value_fn(matrices, class_id), "confusion_matrix")

    return computations


def _accuracy(m: mcm.Matrices, class_id: Optional[int]) -> float:
    correct = total = 0.0
    for k, w in m.get(_ARGMAX_THRESHOLD, {}).items():
        total += w
        correct += w if k.actual_class_id == k.predicted_class_id else 0.0
    return _ratio(correct, total)


def _precision(m: mcm.Matrices, class_id: Optional[int]) -> float:
    tp, fp, _, _ = _counts(m, _need_class(class_id, PRECISION_NAME))
    return _ratio(tp, tp + fp)


def _recall(m: mcm.Matrices, class_id: Optional[int]) -> float:
    tp, _, fn, _ = _counts(m, _need_class(class_id, RECALL_NAME))
    return _ratio(tp, tp + fn)


def _f1(m: mcm.Matrices, class_id: Optional[int]) -> float:
    tp, fp, fn, _ = _counts(m, _need_class(class_id, F1_NAME))
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _need_class(class_id: Optional[int], name: str) -> int:
    if class_id is None:
        raise ValueError(f"argmax {name} is per class: put it in a MetricsSpec with binarize.class_ids")
    return class_id


class ArgmaxAccuracy(metric_types.Metric):
    """Weighted share of examples whose argmax prediction is the argmax label."""

    def __init__(self, name: str = ACCURACY_NAME):
        super().__init__(metric_util.merge_per_key_computations(_from_confusion_matrix(_accuracy)), name=name)


class ArgmaxPrecision(metric_types.Metric):
    """Per class c: weight(label c and predicted c) / weight(predicted c), prediction = argmax."""

    def __init__(self, name: str = PRECISION_NAME):
        super().__init__(metric_util.merge_per_key_computations(_from_confusion_matrix(_precision)), name=name)


class ArgmaxRecall(metric_types.Metric):
    """Per class c: weight(label c and predicted c) / weight(label c), prediction = argmax."""

    def __init__(self, name: str = RECALL_NAME):
        super().__init__(metric_util.merge_per_key_computations(_from_confusion_matrix(_recall)), name=name)


class ArgmaxF1(metric_types.Metric):
    """Per class c: 2 tp / (2 tp + fp + fn), prediction = argmax."""

    def __init__(self, name: str = F1_NAME):
        super().__init__(metric_util.merge_per_key_computations(_from_confusion_matrix(_f1)), name=name)


def _false_positive_rate(m: mcm.Matrices, class_id: Optional[int]) -> float:
    tp, fp, fn, total = _counts(m, _need_class(class_id, FPR_NAME))
    return _ratio(fp, total - tp - fn)


def _false_negative_rate(m: mcm.Matrices, class_id: Optional[int]) -> float:
    tp, _, fn, _ = _counts(m, _need_class(class_id, FNR_NAME))
    return _ratio(fn, tp + fn)


class ArgmaxFalsePositiveRate(metric_types.Metric):
    """Per class c (one vs rest): weight(predicted c, label not c) / weight(label not c), prediction
    = argmax; Fairness Indicators' false_positive_rate at the argmax instead of a score threshold."""

    def __init__(self, name: str = FPR_NAME):
        super().__init__(metric_util.merge_per_key_computations(_from_confusion_matrix(_false_positive_rate)),
                         name=name)


class ArgmaxFalseNegativeRate(metric_types.Metric):
    """Per class c (one vs rest): weight(label c, predicted not c) / weight(label c) = 1 - recall."""

    def __init__(self, name: str = FNR_NAME):
        super().__init__(metric_util.merge_per_key_computations(_from_confusion_matrix(_false_negative_rate)),
                         name=name)


def _calibration_computations(name: str = CALIBRATION_NAME, eval_config: Optional[config_pb2.EvalConfig] = None,
                              model_name: str = "", output_name: str = "",
                              sub_key: Optional[metric_types.SubKey] = None, aggregation_type=None,
                              class_weights=None, example_weighted: bool = False) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)
    # The arguments CalibrationPlot passes (default bucket count, scores in [0, 1]): TFMA de-duplicates
    # computations by their arguments, so this adds no pass over the examples.
    comps = calibration_histogram.calibration_histogram(
        eval_config=eval_config, model_name=model_name, output_name=output_name, sub_key=sub_key,
        left=0.0, right=1.0, aggregation_type=aggregation_type, class_weights=class_weights,
        example_weighted=example_weighted)
    return _derive(key, comps, _histogram_calibration, "histogram")


def _histogram_calibration(buckets) -> float:
    return _ratio(sum(b.weighted_predictions for b in buckets), sum(b.weighted_labels for b in buckets))


class HistogramCalibration(metric_types.Metric):
    """Weighted sum of predictions / weighted sum of labels (1.0 = calibrated on average)."""

    def __init__(self, name: str = CALIBRATION_NAME):
        super().__init__(metric_util.merge_per_key_computations(_calibration_computations), name=name)


def _rmse_computations(name: str = RMSE_NAME, eval_config: Optional[config_pb2.EvalConfig] = None,
                       model_name: str = "", output_name: str = "", sub_key: Optional[metric_types.SubKey] = None,
                       aggregation_type=None, class_weights=None,
                       example_weighted: bool = False) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)
    comps = mean_regression_error.MeanSquaredError().computations(
        eval_config=eval_config, model_names=[model_name], output_names=[output_name],
        sub_keys=[sub_key], aggregation_type=aggregation_type, class_weights=class_weights,
        example_weighted=example_weighted)
    return _derive(key, comps, lambda mse: math.sqrt(mse) if mse >= 0 else float("nan"), "mse")


class RootMeanSquaredError(metric_types.Metric):
    """sqrt(weighted mean of (label - prediction)^2)."""

    def __init__(self, name: str = RMSE_NAME):
        super().__init__(metric_util.merge_per_key_computations(_rmse_computations), name=name)


class _WeightedMeanCombiner(beam.CombineFn):
    """Weighted mean of a per-example score(label, prediction) over one output."""

    def __init__(self, key: metric_types.MetricKey, eval_config: Optional[config_pb2.EvalConfig],
                 example_weighted: bool, score: Callable[[np.ndarray, np.ndarray], float]):
        self._key = key
        self._eval_config = eval_config
        self._example_weighted = example_weighted
        self._score = score

    def create_accumulator(self) -> list[float]:
        return [0.0, 0.0]  # weighted score sum, weight sum

    def add_input(self, acc: list[float], element: metric_types.StandardMetricInputs) -> list[float]:
        # flatten=False: one (label, prediction) pair per example, all of an
        # output's slots together (SubsetAccuracy needs every label at once).
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, example_weighted=self._example_weighted,
                flatten=False, require_single_example_weight=True):
            w = float(metric_util.safe_to_scalar(weight))
            if w:
                acc[0] += w * self._score(np.asarray(label, np.float64), np.asarray(prediction, np.float64))
                acc[1] += w
        return acc

    def merge_accumulators(self, accs: Iterable[list[float]]) -> list[float]:
        out = [0.0, 0.0]
        for a in accs:
            out[0] += a[0]
            out[1] += a[1]
        return out

    def extract_output(self, acc: list[float]) -> Dict[metric_types.MetricKey, float]:
        return {self._key: _ratio(acc[0], acc[1])}


class _WithinTolerance:
    """Picklable score: 1.0 when |label - prediction| <= tolerance (every slot)."""

    def __init__(self, tolerance: float):
        self.tolerance = tolerance

    def __call__(self, label: np.ndarray, prediction: np.ndarray) -> float:
        return float(np.all(np.abs(label - prediction) <= self.tolerance))


def _subset_match(label: np.ndarray, prediction: np.ndarray) -> float:
    return float(np.all((prediction > 0.5) == (label > 0.5)))


def _mean_score_computations(score: Callable[[np.ndarray, np.ndarray], float], name: str,
                             eval_config: Optional[config_pb2.EvalConfig], model_name: str, output_name: str,
                             example_weighted: bool) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    return [metric_types.MetricComputation(
        keys=[key], preprocessors=None,
        combiner=_WeightedMeanCombiner(key, eval_config, example_weighted, score))]


class WithinTolerance(metric_types.Metric):
    """Weighted share of examples with |label - prediction| <= tolerance."""

    def __init__(self, tolerance: float, name: str = WITHIN_TOLERANCE_NAME):
        if not tolerance > 0:
            raise ValueError(f"WithinTolerance: tolerance must be > 0, received {tolerance!r}")

        def computations(name: str = name, eval_config=None, model_name: str = "", output_name: str = "",
                         example_weighted: bool = False, tolerance: float = tolerance):
            return _mean_score_computations(_WithinTolerance(tolerance), name, eval_config, model_name,
                                            output_name, example_weighted)

        super().__init__(metric_util.merge_per_key_computations(computations), tolerance=tolerance, name=name)


class SubsetAccuracy(metric_types.Metric):
    """Weighted share of examples whose labels are all right (score > 0.5 <=> label 1)."""

    def __init__(self, name: str = SUBSET_ACCURACY_NAME):
        def computations(name: str = name, eval_config=None, model_name: str = "", output_name: str = "",
                         example_weighted: bool = False):
            return _mean_score_computations(_subset_match, name, eval_config, model_name, output_name,
                                            example_weighted)

        super().__init__(metric_util.merge_per_key_computations(computations), name=name)


class _HistogramCombiner(beam.CombineFn):
    """Weighted counts of prediction - label in bins [-inf, e0), [e0, e1), ..., [e_n-1, inf)."""

    def __init__(self, key: metric_types.MetricKey, eval_config, example_weighted: bool, edges: Sequence[float]):
        self._key = key
        self._eval_config = eval_config
        self._example_weighted = example_weighted
        self._edges = np.asarray(edges, np.float64)

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(len(self._edges) + 1)

    def add_input(self, acc: np.ndarray, element: metric_types.StandardMetricInputs) -> np.ndarray:
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, example_weighted=self._example_weighted):
            w = float(metric_util.safe_to_scalar(weight))
            if w:
                err = float(metric_util.safe_to_scalar(prediction)) - float(metric_util.safe_to_scalar(label))
                acc[int(np.searchsorted(self._edges, err, side="right"))] += w
        return acc

    def merge_accumulators(self, accs: Iterable[np.ndarray]) -> np.ndarray:
        return np.sum(list(accs), axis=0)

    def extract_output(self, acc: np.ndarray) -> Dict[metric_types.MetricKey, np.ndarray]:
        return {self._key: acc}


class ErrorHistogram(metric_types.Metric):
    """Weighted counts of prediction - label between `edges` (len(edges) + 1 bins)."""

    def __init__(self, edges: Sequence[float], name: str = ERROR_HISTOGRAM_NAME):
        edges = [float(e) for e in edges]
        if not edges or sorted(edges) != edges:
            raise ValueError(f"ErrorHistogram: edges must be a non-empty increasing list, received {edges!r}")

        def computations(name: str = name, eval_config=None, model_name: str = "", output_name: str = "",
                         example_weighted: bool = False, edges: Sequence[float] = tuple(edges)):
            key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                         example_weighted=example_weighted)
            return [metric_types.MetricComputation(
                keys=[key], preprocessors=None,
                combiner=_HistogramCombiner(key, eval_config, example_weighted, edges))]

        super().__init__(metric_util.merge_per_key_computations(computations), edges=edges, name=name)
