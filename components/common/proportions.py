"""Exact (Clopper-Pearson) intervals of the proportion metrics, from TFMA's own counts.

Shared by the Evaluator's gate (components/common/interval_bounds.py, `evaluation.gate_on:
lower_bound`) and the report (components/report/intervals.py), so that the interval a threshold
is checked against and the one report.json and the page show are one computation on one k and n
(docs/report.md, "Intervals for every metric").

A proportion is k successes out of n trials; k and n are TFMA's weighted counts (0/1 weights, so
whole numbers). For binary and multiclass tasks they are read off the argmax confusion matrix the
metric itself comes from (rows true, columns predicted):

    accuracy               trace / total
    precision (class c)    M[c,c] / column c           (examples predicted c)
    recall (class c)       M[c,c] / row c              (examples of class c)
    false_positive_rate    (column c - M[c,c]) / (total - row c)
    false_negative_rate    (row c - M[c,c]) / row c

and for within_tolerance, subset_accuracy and binary_accuracy (shares of the task's examples),
and accuracy without a matrix, k = value * weighted_example_count.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import beta

LEVEL = 0.95
CLOPPER_PEARSON = "clopper_pearson"

RATE_NAMES = ("precision", "recall", "false_positive_rate", "false_negative_rate")
SHARE_NAMES = ("within_tolerance", "subset_accuracy", "binary_accuracy")  # k / weighted_example_count
COUNT_NAMES = ("example_count", "weighted_example_count")
PROPORTION_NAMES = ("accuracy",) + RATE_NAMES + SHARE_NAMES


def clopper_pearson(k: float, n: float, level: float = LEVEL) -> list[float]:
    """Exact (Clopper-Pearson) `level` interval of a proportion k / n: [0, 1] when n = 0.

    [Beta(a; k, n-k+1), Beta(1-a; k+1, n-k)] with a = (1 - level) / 2; the lower end is 0 at k = 0
    and the upper end 1 at k = n, so it never collapses: 110 of 110 gives [0.025^(1/110), 1]."""
    k, n = int(round(k)), int(round(n))
    if not 0 <= k <= n:
        raise ValueError(f"k = {k} successes out of n = {n}")
    a = (1.0 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1.0 - a, k + 1, n - k))
    return [lo, hi]


def contain(ci: list[float], value: float) -> list[float]:
    """The interval widened to hold the reported value (TFMA's value may differ from k / n in the
    last bits; a percentile interval need not contain its point)."""
    return [min(ci[0], value), max(ci[1], value)]


def proportion_interval(k: int, n: int, value: float) -> list[float]:
    """The interval the report shows and the gate checks for a proportion metric of value k / n."""
    return contain(clopper_pearson(k, n), value)


def counts(name: str, class_id: int | None, value: Any, matrix: Any = None,
           weighted_example_count: float | None = None) -> tuple[int, int] | None:
    """(k, n) of one proportion metric (TFMA's name and class id), or None when it is not one or
    its counts are not there. `matrix`: the output's argmax confusion matrix in the same slice
    (binary, multiclass; else None)."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    m = None if matrix is None else np.asarray(matrix, np.float64)
    if m is not None and class_id is not None and class_id >= len(m):
        # a class neither present nor predicted may be missing from a sparse matrix: its counts are 0
        m = np.pad(m, (0, class_id + 1 - len(m)))
    if m is not None and name == "accuracy":
        out = (np.trace(m), m.sum())
    elif m is not None and name in RATE_NAMES and class_id is not None:
        tp, row, col, total = m[class_id, class_id], m[class_id].sum(), m[:, class_id].sum(), m.sum()
        out = {"precision": (tp, col), "recall": (tp, row),
               "false_positive_rate": (col - tp, total - row),
               "false_negative_rate": (row - tp, row)}[name]
    elif name in SHARE_NAMES + ("accuracy",) and weighted_example_count:
        out = (value * weighted_example_count, weighted_example_count)
    else:
        return None
    return int(round(out[0])), int(round(out[1]))


def is_count(metric: str) -> bool:
    return metric in COUNT_NAMES
