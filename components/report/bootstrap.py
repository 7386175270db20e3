"""The report's resampler: 95 % bootstrap intervals without TFMA's bootstrap.

components/report/intervals.py uses its draws (`poisson_weights`, `percentiles`,
`weighted_mean`, `weighted_auc`) for every metric that is not a proportion
(auc, f1, calibration, the regression errors; proportions get an exact
Clopper-Pearson interval there), and runners/compare_interval.py for delta_m.
`task_intervals` below is the primary metric's bootstrap alone.

TFMA's confidence intervals cost ~28x the Evaluator (docs/report.md), so they
are off by default. This is the cheap stand-in the report uses then: a
Poisson bootstrap in numpy over the per-example predictions the error
gallery already computes (components/report/gallery.py: the saved model's
`serving_default` on the raw eval split). Each of `RESAMPLES` resamples
weights every example of the task by a Poisson(1) draw (fixed `SEED`, so a
report is reproducible); the interval is the 2.5th and 97.5th percentile of
the resampled metric (numpy's default linear interpolation). Metrics, each on
the task's own examples:

  binary, multiclass   accuracy: weighted share of argmax(prediction) == argmax(label)
  regression           mean_absolute_error: weighted mean |prediction - label|
  multilabel           auc/<label>: weighted ROC AUC (rank statistic, ties 1/2) per label

A resample whose weights sum to 0 (possible on a handful of examples), or an
AUC resample without a positive or a negative, is left out of the percentiles.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from config import Config, TaskConfig

RESAMPLES = 1000
SEED = 20261130
METHOD = (f"numpy Poisson bootstrap over the error gallery's per-example predictions: {RESAMPLES} resamples "
          f"(seed {SEED}), 2.5th-97.5th percentile")


def poisson_weights(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """[resamples, n] Poisson(1) example weights (one draw per example and resample)."""
    return np.random.default_rng(seed).poisson(1.0, size=(resamples, n)).astype(np.float64)


def percentiles(values: np.ndarray) -> list[float] | None:
    """[2.5th, 97.5th] percentile of the finite values; None when there is none."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def weighted_mean(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[R] means of x under example weights w [R, n]; nan where a resample weighs nothing."""
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w @ x) / np.where(total > 0, total, 1.0), np.nan)


def weighted_auc(w: np.ndarray, scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """ROC AUC per row of weights `w` [R, n]: P(score of a positive > score of a negative),
    pairs weighted by the product of their weights, ties counted 1/2. O(R n) after one sort."""
    order = np.argsort(scores, kind="stable")
    s, pos = scores[order], positive[order].astype(bool)
    w = w[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of equal score
    wp = np.add.reduceat(w * pos, starts, axis=1)
    wn = np.add.reduceat(w * ~pos, starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn  # negative weight strictly below each group
    num = (wp * (below + 0.5 * wn)).sum(axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def task_intervals(task: TaskConfig, labels: np.ndarray, preds: np.ndarray,
                   resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, list[float]]:
    """{primary metric name (as report.json names it): [low, high]} for one task's examples
    (`labels`, `preds`: [n, width]); {} without examples."""
    n = len(labels)
    if n == 0:
        return {}
    w = poisson_weights(n, resamples, seed)
    if task.type in ("binary", "multiclass"):
        correct = (np.argmax(preds, axis=1) == np.argmax(labels, axis=1)).astype(np.float64)
        ci = percentiles(weighted_mean(w, correct))
        return {"accuracy": ci} if ci else {}
    if task.type == "regression":
        ci = percentiles(weighted_mean(w, np.abs(preds[:, 0] - labels[:, 0]).astype(np.float64)))
        return {"mean_absolute_error": ci} if ci else {}
    out = {}
    for c, name in enumerate(task.classes):
        ci = percentiles(weighted_auc(w, preds[:, c].astype(np.float64), labels[:, c] > 0.5))
        if ci:
            out[f"auc/{name}"] = ci
    return out


def bootstrap_intervals(config: Config, per_example: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """{task: {metric: [low, high]}} of every task's primary metric (PRIMARY_METRIC) from the
    gallery's `per_example` {task: (labels, predictions)}."""
    out = {}
    for task in config.tasks:
        labels, preds = per_example.get(task.name, (np.zeros((0, task.width)), np.zeros((0, task.width))))
        ints = task_intervals(task, np.asarray(labels), np.asarray(preds))
        out[task.name] = ints
    return out
