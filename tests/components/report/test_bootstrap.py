"""The numpy Poisson bootstrap of the primary metrics: exact intervals on fixed tiny inputs."""
import numpy as np
import pytest

from components.report import bootstrap as b
from config import TaskConfig

BINARY = TaskConfig("g", "binary", ("n", "y"))
# 10 examples, 8 right (indices 2 and 5 wrong)
LABELS = np.eye(2)[[0, 1, 1, 0, 1, 0, 0, 1, 1, 1]]
PREDS = np.eye(2)[[0, 1, 0, 0, 1, 1, 0, 1, 1, 1]] * 0.8 + 0.1


def test_binary_accuracy_interval_is_the_percentiles_of_the_resamples():
    w = b.poisson_weights(10, 5, 0)  # the draws the interval below comes from
    np.testing.assert_array_equal(w[0], [1, 0, 0, 3, 3, 1, 1, 2, 1, 0])
    correct = np.array([1, 1, 0, 1, 1, 0, 1, 1, 1, 1], float)
    np.testing.assert_allclose((w @ correct) / w.sum(axis=1), [11 / 12, 2 / 3, 2 / 3, 13 / 16, 7 / 9])
    # 2.5th / 97.5th percentile of [2/3, 2/3, 7/9, 13/16, 11/12], linear interpolation
    assert b.task_intervals(BINARY, LABELS, PREDS, resamples=5, seed=0) == {
        "accuracy": [pytest.approx(2 / 3), pytest.approx(13 / 16 + 0.9 * (11 / 12 - 13 / 16))]}  # 0.90625


def test_default_resamples_are_fixed():
    assert b.task_intervals(BINARY, LABELS, PREDS) == {"accuracy": [0.5, 1.0]}  # 1000 resamples, seed fixed
    assert b.task_intervals(BINARY, LABELS, PREDS) == b.task_intervals(BINARY, LABELS, PREDS)


def test_regression_mae_interval():
    # errors 0.5, 0, 2, 0; weights [2,1,1,1] [0,2,1,1] [1,0,1,3] [1,0,2,2] -> MAE 0.6, 0.5, 0.5, 0.9
    np.testing.assert_array_equal(b.poisson_weights(4, 4, 1), [[2, 1, 1, 1], [0, 2, 1, 1], [1, 0, 1, 3], [1, 0, 2, 2]])
    got = b.task_intervals(TaskConfig("r", "regression"), np.array([[1.0], [2.0], [3.0], [4.0]]),
                           np.array([[1.5], [2.0], [5.0], [4.0]]), resamples=4, seed=1)
    assert got == {"mean_absolute_error": [pytest.approx(0.5), pytest.approx(0.6 + 0.925 * 0.3)]}  # 0.8775


def test_weighted_auc_is_the_rank_statistic_with_ties_half():
    s, y = np.array([0.1, 0.4, 0.4, 0.8]), np.array([0, 1, 0, 1])
    assert b.weighted_auc(np.ones((1, 4)), s, y) == [0.875]  # (1 + 0.5 + 2) / 4
    # integer weights = duplicated examples
    w = np.array([[2.0, 1.0, 3.0, 1.0]])
    dup = np.repeat(np.arange(4), w[0].astype(int))
    assert b.weighted_auc(w, s, y)[0] == pytest.approx(b.weighted_auc(np.ones((1, len(dup))), s[dup], y[dup])[0])
    assert np.isnan(b.weighted_auc(np.array([[1.0, 0.0, 1.0, 0.0]]), s, y)[0])  # no positive left


def test_multilabel_auc_per_label_and_no_examples():
    task = TaskConfig("m", "multilabel", ("a", "b"))
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]], float)
    preds = np.array([[.9, .2], [.3, .8], [.6, .4], [.1, .1], [.2, .7], [.7, .3]])
    got = b.task_intervals(task, labels, preds, resamples=200, seed=3)
    assert sorted(got) == ["auc/a", "auc/b"]
    for lo, hi in got.values():
        assert 0.0 <= lo <= hi <= 1.0
    assert b.task_intervals(BINARY, np.zeros((0, 2)), np.zeros((0, 2))) == {}


def test_report_uses_the_bootstrap_when_tfma_intervals_are_off(run):
    """On the fixture run (confidence_intervals off): every task's primary metric gets an interval,
    labelled by method (issue 26): accuracy its exact Clopper-Pearson one (components/report/intervals.py),
    MAE and auc/<label> this bootstrap of the saved model's own predictions on the task's eval examples
    (the same resamples as task_intervals, made to hold the reported value)."""
    from components.report import intervals as iv
    from components.report.component import build_report

    report = build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=None)
    assert report["intervals_method"] == iv.METHOD
    for task in run.config.tasks:
        rows = run.rows(task.name)
        labels = run.label[rows, :task.width].astype(np.float64)
        expected = b.task_intervals(task, labels, run.predictions[task.name][rows])
        t = report["tasks"][task.name]
        assert expected, task.name
        for k, ci in expected.items():
            value, got, method = t["metrics"][k], t["intervals"][k], t["interval_methods"][k]
            assert got[0] <= value <= got[1], (task.name, k)
            if method == iv.CLOPPER_PEARSON:  # accuracy
                assert k == "accuracy" and got == pytest.approx(iv.clopper_pearson(*t["interval_counts"][k]))
            elif method == iv.BOOTSTRAP:
                np.testing.assert_allclose(got, [min(ci[0], value), max(ci[1], value)], atol=1e-6)
            else:  # degenerate: widened beyond the bootstrap's [v, v], or marked
                assert got[0] <= ci[0] and got[1] >= ci[1], (task.name, k, method)
