"""95 % intervals for every numeric per-task metric of report.json (issue 26).

With `evaluation.confidence_intervals: false` all of them come from here; with it on, the
proportions still do (the gate checks the same Clopper-Pearson interval, so the page and the
blessing agree) and the rest are TFMA's. The proportion part (k, n and Clopper-Pearson) lives in
components/common/proportions.py, where the Evaluator's gate reads it too.

Two methods, chosen by what the metric is (docs/report.md, "Intervals for every metric"):

- **Proportions** (k successes out of n trials): an exact **Clopper-Pearson** interval from k and
  n, [Beta(0.025; k, n-k+1), Beta(0.975; k+1, n-k)], the lower end 0 at k = 0 and the upper end 1
  at k = n. It never collapses: 110 of 110 gives [0.025^(1/110), 1] = [0.967021, 1]. k and n are
  TFMA's own weighted counts (0/1 weights, so whole numbers): for binary and multiclass tasks read
  off the argmax confusion matrix the metric itself comes from

    accuracy               trace / total
    precision[/c]          M[c,c] / column c           (examples predicted c)
    recall[/c]             M[c,c] / row c              (examples of class c)
    false_positive_rate    (column c - M[c,c]) / (total - row c)
    false_negative_rate    (row c - M[c,c]) / row c

  and for within_tolerance, subset_accuracy and binary_accuracy/<label> (shares of the task's
  examples) k = value * weighted_example_count.
- **Everything else** (auc, f1, calibration, mean_absolute_error, mean_squared_error,
  root_mean_squared_error): the report's numpy Poisson bootstrap (bootstrap.py: 1,000 resamples,
  fixed seed, 2.5th-97.5th percentile) over the error gallery's per-example predictions.
  A bootstrap is **degenerate** when every resample gives the same value (every example right:
  f1 1.0, a perfectly separating auc 1.0; one example). It then claims a certainty the data cannot
  give, so it is widened to the Clopper-Pearson interval of the proportion underneath:

    f1     = 2J / (1 + J) with J = tp / (tp + fp + fn), a proportion: Clopper-Pearson on J, mapped
             through 2J / (1 + J) (monotone, so the ends map to the ends)
    auc    = P(score of a positive > score of a negative): min(#pos, #neg) disjoint
             positive-negative pairs are independent trials of it, so Clopper-Pearson on
             round(auc * m) of m = min(#pos, #neg) (a valid, conservative interval)

  and where there is no such proportion (calibration, the regression errors) it stays [v, v] and
  is marked: `interval_methods[metric]` = "bootstrap_degenerate".

Every interval is made to contain the reported value (TFMA's: its AUC is bucketed, and a
percentile interval need not contain the point): [min(low, value), max(high, value)].
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from components.common.proportions import (  # noqa: F401  (LEVEL, is_count: the report's names for them)
    CLOPPER_PEARSON,
    LEVEL,
    clopper_pearson,
    contain,
    counts,
    is_count,
    proportion_interval,
)
from components.report.bootstrap import RESAMPLES, SEED, percentiles, poisson_weights, weighted_auc, weighted_mean
from config import TaskConfig

BOOTSTRAP = "bootstrap"
TFMA = "tfma"  # TFMA's own interval (evaluation.confidence_intervals: true), non-proportions only
# degenerate bootstrap widened to the Clopper-Pearson interval of the proportion underneath
DEGENERATE_CP = "bootstrap_degenerate_clopper_pearson"
DEGENERATE = "bootstrap_degenerate"  # degenerate, no proportion underneath: [value, value], marked

METHOD = (f"proportions (accuracy, precision, recall, false positive / negative rates, within_tolerance, "
          f"subset and binary accuracy): exact Clopper-Pearson from TFMA's counts k of n; other metrics (auc, "
          f"f1, calibration, MAE, MSE, RMSE): numpy Poisson bootstrap over the error gallery's per-example "
          f"predictions, {RESAMPLES} resamples (seed {SEED}), 2.5th-97.5th percentile, a degenerate one widened "
          f"to Clopper-Pearson or marked (tasks[].interval_methods)")


def _class_of(task: TaskConfig, metric: str) -> tuple[str, int | None]:
    """(base name, class id) of a report metric name: binary bare = the positive class."""
    if "/" in metric:
        base, c = metric.split("/", 1)
        return base, (task.classes.index(c) if c in task.classes else None)
    return metric, (1 if task.type == "binary" else None)


def proportion_counts(task: TaskConfig, metrics: Mapping[str, Any],
                      matrix: Any = None) -> dict[str, tuple[int, int]]:
    """{metric: (k, n)} of the task's proportion metrics (report names) in one slice, from its
    argmax confusion matrix (rows true, columns predicted) and weighted_example_count: the
    counts the gate (components/common/interval_bounds.py) reads off TFMA's keys."""
    if task.type not in ("binary", "multiclass"):
        matrix = None
    out = {}
    for metric, value in metrics.items():
        base, c = _class_of(task, metric)
        kn = counts(base, c, value, matrix, metrics.get("weighted_example_count"))
        if kn is not None:
            out[metric] = kn
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _f1_parts(true: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    return {"tp": (true & pred).astype(np.float64), "fp": (~true & pred).astype(np.float64),
            "fn": (true & ~pred).astype(np.float64)}


def bootstrap_inputs(task: TaskConfig, labels: np.ndarray, preds: np.ndarray) -> dict[str, dict[str, Any]]:
    """{metric: what its bootstrap needs} for the task's non-proportion metrics (report names):
    kind (mean, ratio, f1, auc, rmse) and the per-example arrays."""
    out: dict[str, dict[str, Any]] = {}
    if task.type in ("binary", "multiclass"):
        t, p = labels.argmax(axis=1), preds.argmax(axis=1)
        for c in ([1] if task.type == "binary" else range(task.width)):
            name = "f1" if task.type == "binary" else f"f1/{task.classes[c]}"
            out[name] = {"kind": "f1", **_f1_parts(t == c, p == c)}
        if task.type == "binary":
            out["auc"] = {"kind": "auc", "scores": preds[:, 1], "positive": labels[:, 1] > 0.5}
            out["calibration"] = {"kind": "ratio", "num": preds[:, 1], "den": labels[:, 1]}
    elif task.type == "regression":
        e = preds[:, 0] - labels[:, 0]
        out["mean_absolute_error"] = {"kind": "mean", "x": np.abs(e)}
        out["mean_squared_error"] = {"kind": "mean", "x": e * e}
        out["root_mean_squared_error"] = {"kind": "rmse", "x": e * e}
    else:  # multilabel: one sigmoid per label, read at 0.5 (TFMA: positive when prediction > threshold)
        for c, name in enumerate(task.classes):
            pos = labels[:, c] > 0.5
            out[f"auc/{name}"] = {"kind": "auc", "scores": preds[:, c], "positive": pos}
            out[f"f1/{name}"] = {"kind": "f1", **_f1_parts(pos, preds[:, c] > 0.5)}
    return out


def resample(spec: Mapping[str, Any], w: np.ndarray) -> np.ndarray:
    """[R] values of one metric under example weights w [R, n]; nan where undefined."""
    kind = spec["kind"]
    if kind == "mean":
        return weighted_mean(w, spec["x"])
    if kind == "rmse":
        return np.sqrt(weighted_mean(w, spec["x"]))
    if kind == "ratio":
        return _ratio(w @ spec["num"], w @ spec["den"])
    if kind == "f1":
        tp, fp, fn = w @ spec["tp"], w @ spec["fp"], w @ spec["fn"]
        return _ratio(2 * tp, 2 * tp + fp + fn)
    return weighted_auc(w, np.asarray(spec["scores"], np.float64), np.asarray(spec["positive"]))


def _degenerate_cp(spec: Mapping[str, Any], value: float) -> list[float] | None:
    """The Clopper-Pearson interval of the proportion under a degenerate f1 or auc; None for others."""
    if spec["kind"] == "f1":
        tp, fp, fn = spec["tp"].sum(), spec["fp"].sum(), spec["fn"].sum()
        if tp + fp + fn == 0:
            return None
        lo, hi = clopper_pearson(tp, tp + fp + fn)
        return [2 * lo / (1 + lo), 2 * hi / (1 + hi)]
    if spec["kind"] == "auc":
        pos = np.asarray(spec["positive"], bool)
        m = int(min(pos.sum(), (~pos).sum()))
        return clopper_pearson(round(value * m), m) if m else None
    return None


def task_intervals(task: TaskConfig, metrics: Mapping[str, Any], matrix: Any, labels: np.ndarray,
                   preds: np.ndarray, resamples: int = RESAMPLES,
                   seed: int = SEED) -> tuple[dict[str, list[float]], dict[str, str], dict[str, list[int]]]:
    """(intervals, interval_methods, interval_counts) of every numeric metric in `metrics` (one
    task's overall-slice metrics, report names) but the counts. `matrix`: its argmax confusion
    matrix (binary, multiclass; else None); `labels`, `preds`: [n, width] per-example arrays."""
    ints: dict[str, list[float]] = {}
    methods: dict[str, str] = {}
    counts = proportion_counts(task, metrics, matrix)
    for metric, (k, n) in counts.items():
        ints[metric], methods[metric] = proportion_interval(k, n, metrics[metric]), CLOPPER_PEARSON
    labels, preds = np.asarray(labels, np.float64), np.asarray(preds, np.float64)
    specs = bootstrap_inputs(task, labels, preds) if len(labels) else {}
    w = poisson_weights(len(labels), resamples, seed) if specs else None
    for metric, spec in specs.items():
        value = metrics.get(metric)
        if metric in ints or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        values = resample(spec, w)
        finite = values[np.isfinite(values)]
        ci = percentiles(values)
        method = BOOTSTRAP
        if ci is None or np.ptp(finite) <= 1e-12 * max(1.0, abs(value)):
            wide = _degenerate_cp(spec, value)
            if wide is not None:
                ci, method = wide, DEGENERATE_CP
            elif ci is None:
                continue  # undefined on every resample (e.g. auc without a positive): no interval
            else:
                method = DEGENERATE
        ints[metric], methods[metric] = contain(ci, value), method
    return ints, methods, {m: [k, n] for m, (k, n) in counts.items()}


def slice_intervals(task: TaskConfig, metrics: Mapping[str, Any], matrix: Any = None) -> dict[str, list[float]]:
    """Clopper-Pearson intervals of one slice's proportion metrics (no per-example bootstrap per slice)."""
    return {m: proportion_interval(k, n, metrics[m])
            for m, (k, n) in proportion_counts(task, metrics, matrix).items()}



def tfma_task_intervals(task: TaskConfig, metrics: Mapping[str, Any], matrix: Any,
                        tfma_ints: Mapping[str, list[float]]
                        ) -> tuple[dict[str, list[float]], dict[str, str], dict[str, list[int]]]:
    """(intervals, interval_methods, interval_counts) with `evaluation.confidence_intervals` on:
    TFMA's interval for every metric but the proportions, which keep their Clopper-Pearson one,
    because that is the one `gate_on: lower_bound` checks (components/common/interval_bounds.py)
    and the page must show the numbers the blessing was decided on."""
    ints, methods = dict(tfma_ints), {k: TFMA for k in tfma_ints}
    counts = proportion_counts(task, metrics, matrix)
    for metric, (k, n) in counts.items():
        ints[metric], methods[metric] = proportion_interval(k, n, metrics[metric]), CLOPPER_PEARSON
    return ints, methods, {m: [k, n] for m, (k, n) in counts.items()}
