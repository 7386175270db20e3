"""Intervals for every metric (issue 26): exact Clopper-Pearson for proportions, the bootstrap for the
rest, degenerate bootstraps widened or marked; and on the fixture run, every numeric metric of every
task has an interval holding its value, shown on the page."""
import math

import numpy as np
import pytest
from scipy.stats import beta

from components.report import bootstrap as b
from components.report import intervals as iv
from config import TaskConfig

BINARY = TaskConfig("g", "binary", ("n", "y"))
MULTI = TaskConfig("a", "multiclass", ("x", "y", "z"))


# --- Clopper-Pearson: the boundary cases, against the beta quantiles written out by hand ---------

def test_all_right_n_of_n_does_not_collapse():
    # Beta(n, 1) has CDF x^n, so the 2.5th percentile is 0.025^(1/n)
    assert iv.clopper_pearson(110, 110) == [pytest.approx(0.025 ** (1 / 110), abs=1e-12), 1.0]
    assert iv.clopper_pearson(110, 110)[0] == pytest.approx(0.9670208059677803, abs=1e-12)
    assert iv.clopper_pearson(110, 110)[0] < 1.0


def test_none_right_0_of_n():
    # Beta(1, n) has CDF 1 - (1 - x)^n, so the 97.5th percentile is 1 - 0.025^(1/n)
    assert iv.clopper_pearson(0, 20) == [0.0, pytest.approx(1 - 0.025 ** (1 / 20), abs=1e-12)]
    assert iv.clopper_pearson(0, 20)[1] == pytest.approx(0.16843347098308536, abs=1e-12)


def test_one_of_one_and_zero_of_one():
    assert iv.clopper_pearson(1, 1) == [pytest.approx(0.025, abs=1e-12), 1.0]
    assert iv.clopper_pearson(0, 1) == [0.0, pytest.approx(0.975, abs=1e-12)]


def test_k_of_n_is_the_beta_quantiles():
    lo, hi = iv.clopper_pearson(7, 20)
    assert (lo, hi) == (pytest.approx(beta.ppf(0.025, 7, 20 - 7 + 1), rel=1e-12),
                        pytest.approx(beta.ppf(0.975, 7 + 1, 20 - 7), rel=1e-12))
    assert (lo, hi) == (pytest.approx(0.1539092047845412, abs=1e-12), pytest.approx(0.5921885345328282, abs=1e-12))
    assert lo < 7 / 20 < hi
    lo, hi = iv.clopper_pearson(103, 110)
    assert (lo, hi) == (pytest.approx(beta.ppf(0.025, 103, 8), rel=1e-12),
                        pytest.approx(beta.ppf(0.975, 104, 7), rel=1e-12))


def test_empty_sample_says_nothing_and_impossible_counts_fail():
    assert iv.clopper_pearson(0, 0) == [0.0, 1.0]
    with pytest.raises(ValueError):
        iv.clopper_pearson(3, 2)


# --- k and n of each proportion, from the argmax confusion matrix -----------------------------------

# rows = true x, y, z; columns = predicted
M = [[5, 1, 0],
     [2, 3, 1],
     [0, 0, 4]]


def test_proportion_counts_from_the_confusion_matrix():
    metrics = {"accuracy": 12 / 16, "precision/x": 5 / 7, "recall/y": 3 / 6, "false_positive_rate/x": 2 / 10,
               "false_negative_rate/y": 3 / 6, "precision/z": 4 / 5, "f1/x": 0.71, "weighted_example_count": 16.0}
    got = iv.proportion_counts(MULTI, metrics, M)
    assert got == {"accuracy": (12, 16), "precision/x": (5, 7), "recall/y": (3, 6),
                   "false_positive_rate/x": (2, 10), "false_negative_rate/y": (3, 6), "precision/z": (4, 5)}
    # binary: the bare names are the positive class's (classes[1])
    got = iv.proportion_counts(BINARY, {"accuracy": 0.8, "precision": 0.5, "recall": 1 / 3,
                                        "false_positive_rate": 1 / 8, "false_negative_rate": 2 / 3},
                               [[7, 1], [2, 1]])
    assert got == {"accuracy": (8, 11), "precision": (1, 2), "recall": (1, 3), "false_positive_rate": (1, 8),
                   "false_negative_rate": (2, 3)}
    # shares of the task's examples, without a matrix: k = value * weighted_example_count
    reg = TaskConfig("r", "regression", tolerance=5.0)
    assert iv.proportion_counts(reg, {"within_tolerance": 0.75, "weighted_example_count": 12.0,
                                      "mean_absolute_error": 3.0}) == {"within_tolerance": (9, 12)}
    # undefined (NaN: nothing predicted z) is not a number: no count
    assert iv.proportion_counts(MULTI, {"precision/z": float("nan")}, M) == {}


# --- the bootstrap metrics, and the degenerate ones ------------------------------------------------

def test_binary_task_every_metric_and_method():
    labels = np.eye(2)[[0, 1, 1, 0, 1, 0, 0, 1, 1, 1]]
    p1 = np.array([.2, .9, .4, .1, .8, .6, .3, .7, .95, .85])
    preds = np.stack([1 - p1, p1], axis=1)
    t, p = labels.argmax(1), preds.argmax(1)
    m = np.zeros((2, 2))
    np.add.at(m, (t, p), 1)
    assert m.tolist() == [[3, 1], [1, 5]]
    tp, fp, fn = 5, 1, 1
    metrics = {"accuracy": 0.8, "precision": 5 / 6, "recall": 5 / 6, "f1": 2 * tp / (2 * tp + fp + fn),
               "auc": float(b.weighted_auc(np.ones((1, 10)), p1, t == 1)[0]), "calibration": p1.sum() / 6,
               "example_count": 10.0, "weighted_example_count": 10.0}
    ints, methods, counts = iv.task_intervals(BINARY, metrics, m, labels, preds, resamples=200, seed=5)
    assert set(ints) == set(metrics) - {"example_count", "weighted_example_count"}
    assert counts == {"accuracy": [8, 10], "precision": [5, 6], "recall": [5, 6]}
    assert ints["accuracy"] == iv.clopper_pearson(8, 10) and methods["accuracy"] == iv.CLOPPER_PEARSON
    w = b.poisson_weights(10, 200, 5)
    assert methods["calibration"] == methods["auc"] == methods["f1"] == iv.BOOTSTRAP
    # calibration: the percentiles of sum(w p1) / sum(w y1) over the same resamples
    assert ints["calibration"] == pytest.approx(b.percentiles((w @ p1) / (w @ labels[:, 1])))
    assert ints["auc"] == pytest.approx(b.percentiles(b.weighted_auc(w, p1, t == 1)))
    for k, (lo, hi) in ints.items():
        assert lo <= metrics[k] <= hi, k


def test_degenerate_f1_and_auc_are_widened_to_clopper_pearson():
    # every example right, scores perfectly separating: every resample gives f1 = auc = 1
    labels = np.eye(2)[[0, 1, 1, 0, 1, 0, 0, 1, 1, 0]]
    p1 = np.array([.2, .9, .6, .1, .8, .4, .3, .7, .95, .05])
    preds = np.stack([1 - p1, p1], axis=1)
    m = [[5, 0], [0, 5]]
    metrics = {"accuracy": 1.0, "f1": 1.0, "auc": 1.0}
    ints, methods, _ = iv.task_intervals(BINARY, metrics, m, labels, preds)
    assert ints["accuracy"] == [pytest.approx(0.025 ** (1 / 10)), 1.0]
    # f1 = 2J / (1 + J), J = tp / (tp + fp + fn) = 5 / 5: Clopper-Pearson on J, mapped
    j = 0.025 ** (1 / 5)
    assert methods["f1"] == iv.DEGENERATE_CP and ints["f1"] == [pytest.approx(2 * j / (1 + j)), 1.0]
    # auc: min(5 positives, 5 negatives) = 5 disjoint pairs, all ordered right
    assert methods["auc"] == iv.DEGENERATE_CP and ints["auc"] == [pytest.approx(0.025 ** (1 / 5)), 1.0]


def test_degenerate_regression_error_is_marked_not_widened():
    reg = TaskConfig("r", "regression")
    metrics = {"mean_absolute_error": 2.0, "mean_squared_error": 4.0, "root_mean_squared_error": 2.0}
    ints, methods, counts = iv.task_intervals(reg, metrics, None, np.array([[30.0]]), np.array([[32.0]]))
    assert counts == {} and ints == {"mean_absolute_error": [2.0, 2.0], "mean_squared_error": [4.0, 4.0],
                                     "root_mean_squared_error": [2.0, 2.0]}
    assert set(methods.values()) == {iv.DEGENERATE}


def test_multiclass_f1_per_class_and_no_examples():
    labels = np.eye(3)[[0, 0, 1, 1, 2, 2, 0, 1]]
    preds = np.eye(3)[[0, 1, 1, 0, 2, 2, 0, 1]] * 0.7 + 0.1
    metrics = {"accuracy": 6 / 8, "f1/x": 4 / 6, "f1/y": 4 / 6, "f1/z": 1.0, "recall/z": 1.0}
    m = [[2, 1, 0], [1, 2, 0], [0, 0, 2]]
    ints, methods, counts = iv.task_intervals(MULTI, metrics, m, labels, preds)
    assert methods == {"accuracy": iv.CLOPPER_PEARSON, "recall/z": iv.CLOPPER_PEARSON, "f1/x": iv.BOOTSTRAP,
                       "f1/y": iv.BOOTSTRAP, "f1/z": iv.DEGENERATE_CP}
    assert counts["recall/z"] == [2, 2] and ints["recall/z"] == [pytest.approx(0.025 ** 0.5), 1.0]
    # no per-example predictions (the gallery failed): proportions still get theirs, the rest none
    ints, methods, _ = iv.task_intervals(MULTI, metrics, m, np.zeros((0, 3)), np.zeros((0, 3)))
    assert set(ints) == {"accuracy", "recall/z"}


def test_slice_intervals_are_clopper_pearson_of_the_slice_counts():
    assert iv.slice_intervals(BINARY, {"accuracy": 1.0, "weighted_example_count": 8.0, "auc": 1.0},
                              [[4, 0], [0, 4]]) == {"accuracy": [pytest.approx(0.025 ** (1 / 8)), 1.0]}
    assert iv.slice_intervals(BINARY, {"weighted_example_count": 0.0}) == {}


# --- on the fixture run: every numeric metric of every task ----------------------------------------

@pytest.fixture(scope="module")
def report(run):
    from components.report.component import build_report

    return build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=None,
                        model_run_dir=run.model_run_dir)


def test_every_numeric_metric_has_an_interval_holding_its_value(report):
    assert report["intervals_method"] == iv.METHOD
    allowed = {iv.CLOPPER_PEARSON, iv.BOOTSTRAP, iv.DEGENERATE_CP, iv.DEGENERATE}
    for name, t in report["tasks"].items():
        numeric = {k: v for k, v in t["metrics"].items()
                   if isinstance(v, (int, float)) and math.isfinite(v) and not iv.is_count(k)}
        assert numeric, name
        assert set(t["intervals"]) == set(numeric) == set(t["interval_methods"]), name
        for k, v in numeric.items():
            lo, hi = t["intervals"][k]
            assert lo <= v <= hi, (name, k, lo, v, hi)
            assert t["interval_methods"][k] in allowed
            if t["interval_methods"][k] == iv.CLOPPER_PEARSON:
                kk, n = t["interval_counts"][k]
                assert kk / n == pytest.approx(v, abs=1e-6), (name, k)
                assert [lo, hi] == pytest.approx(iv.clopper_pearson(kk, n)), (name, k)
    # which metric gets which method
    methods = {n: t["interval_methods"] for n, t in report["tasks"].items()}
    assert methods["smile"]["accuracy"] == methods["smile"]["precision"] == iv.CLOPPER_PEARSON
    assert methods["age"]["accuracy"] == methods["age"]["recall/20-29"] == iv.CLOPPER_PEARSON
    assert methods["attrs"]["subset_accuracy"] == methods["attrs"]["binary_accuracy/red"] == iv.CLOPPER_PEARSON
    assert methods["score"]["within_tolerance"] == iv.CLOPPER_PEARSON
    assert methods["smile"]["calibration"] == methods["score"]["mean_absolute_error"] == iv.BOOTSTRAP
    assert methods["smile"]["auc"] in (iv.BOOTSTRAP, iv.DEGENERATE_CP)
    # the age accuracy's k of n is TFMA's confusion matrix
    age = report["tasks"]["age"]
    assert age["interval_counts"]["accuracy"] == [int(np.trace(age["confusion_matrix"])), 20]
    # proportions in the slices get theirs too
    extra = report["tasks"]["smile"]["slices"]["source"]["extra"]
    lo, hi = report["tasks"]["smile"]["slice_intervals"]["source"]["extra"]["accuracy"]
    assert lo <= extra["accuracy"] <= hi and hi - lo > 0


def test_page_shows_the_interval_beside_each_metric(report):
    from components.report.page import _ci, render_html

    page = render_html(report)
    for name, t in report["tasks"].items():
        section = page[page.index(f"id='task-{name}'"):]
        section = section[:section.index("<h2", 1)] if "<h2" in section[1:] else section
        table = section[:section.index("</table>")]  # the task's metric table
        for k in t["metrics"]:
            if "/" not in k and not iv.is_count(k):
                assert _ci(t["metrics"][k], t["intervals"][k]) in table, (name, k)
        per_class = section[section.index("class='per-class'"):] if "class='per-class'" in section else ""
        for k in t["metrics"]:
            if "/" in k and k.split("/")[0] in ("precision", "recall", "f1", "auc"):
                assert _ci(t["metrics"][k], t["intervals"][k]) in per_class, (name, k)
    assert iv.METHOD in page.replace("&#x27;", "'")
