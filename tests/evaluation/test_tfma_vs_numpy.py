"""TFMA with build_eval_config equals numpy on each task's own examples.

Every expected value is recomputed here from the saved model's own
serving_default outputs, restricted to the rows whose task_index is the
task's (and, for slices, whose source is the slice's).
"""
import numpy as np
import pytest

from components.report import load_confusion_matrices, load_tfma_metrics

from . import fixtures as fx

TOL = 1e-6
OVERALL = ()


@pytest.fixture(scope="module")
def tfma_metrics(run):
    return load_tfma_metrics(run.eval_output)["candidate"]


def _labels_preds(run, task, source=None):
    t = run.config.task(task)
    rows = run.rows(task, source)
    return run.label[rows, :t.width].astype(np.float64), run.predictions[task][rows]


def _exact_auc(y, p):
    """P(score of a positive > score of a negative), ties count 1/2."""
    pos, neg = p[y == 1], p[y == 0]
    return ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))


@pytest.mark.parametrize("task", list(fx.COUNTS))
def test_example_counts_are_the_tasks_own(run, tfma_metrics, task):
    # 72 examples in all; each output counts only its own, e.g. smile 16 = 8 genki4k + 8 extra.
    assert tfma_metrics[(OVERALL, task, "weighted_example_count", None)] == fx.COUNTS[task]
    assert tfma_metrics[(OVERALL, task, "example_count", None)] == fx.COUNTS[task]
    assert len(run.rows(task)) == fx.COUNTS[task]


@pytest.mark.parametrize("task", ["smile", "gender", "age"])
def test_accuracy_and_confusion_matrix_equal_numpy_argmax(run, tfma_metrics, task):
    y, p = _labels_preds(run, task)
    truth, pred = y.argmax(1), p.argmax(1)
    expected = np.mean(truth == pred)  # e.g. age: (#rows with argmax(label) == argmax(pred)) / 20
    assert abs(tfma_metrics[(OVERALL, task, "accuracy", None)] - expected) < TOL
    k = run.config.task(task).width
    cm = np.zeros((k, k))
    np.add.at(cm, (truth, pred), 1)
    got = np.array(load_confusion_matrices(run.eval_output, run.config)[(OVERALL, task)])
    np.testing.assert_allclose(got, cm, atol=TOL)
    assert got.sum() == fx.COUNTS[task]
    # The fixture model is random: predictions must not all be one class, or
    # the matrix check above would be weak.
    assert len(set(pred)) > 1


@pytest.mark.parametrize("task", ["smile", "gender"])
def test_binary_positive_class_metrics(run, tfma_metrics, task):
    y, p = _labels_preds(run, task)
    y1, p1 = y[:, 1], p[:, 1]            # positive class = slot 1
    hit = p1 > 0.5                       # = argmax for a 2-way softmax
    tp = np.sum(hit & (y1 == 1))
    assert abs(tfma_metrics[(OVERALL, task, "precision", 1)] - tp / hit.sum()) < TOL
    assert abs(tfma_metrics[(OVERALL, task, "recall", 1)] - tp / (y1 == 1).sum()) < TOL
    assert abs(tfma_metrics[(OVERALL, task, "calibration", 1)] - p1.sum() / y1.sum()) < TOL
    # AUC is TFMA's 10,000-threshold approximation: exact to ~1e-4, not 1e-6.
    assert abs(tfma_metrics[(OVERALL, task, "auc", 1)] - _exact_auc(y1, p1)) < 1e-3


def test_regression_errors(run, tfma_metrics):
    y, p = _labels_preds(run, "score")
    # Relative: labels are ~30 and MSE ~100, held as float32 inside TFMA.
    mae, mse = np.mean(np.abs(y - p)), np.mean((y - p) ** 2)
    assert abs(tfma_metrics[(OVERALL, "score", "mean_absolute_error", None)] - mae) <= TOL * mae
    assert abs(tfma_metrics[(OVERALL, "score", "mean_squared_error", None)] - mse) <= TOL * mse


def test_multilabel_per_label(run, tfma_metrics):
    y, p = _labels_preds(run, "attrs")
    for c in range(3):
        acc = np.mean((p[:, c] > 0.5) == (y[:, c] == 1))
        assert abs(tfma_metrics[(OVERALL, "attrs", "binary_accuracy", c)] - acc) < TOL
        assert abs(tfma_metrics[(OVERALL, "attrs", "auc", c)] - _exact_auc(y[:, c], p[:, c])) < 1e-3


@pytest.mark.parametrize("source", ["genki4k", "extra"])
def test_source_slice_counts_only_that_sources_examples_of_the_task(run, tfma_metrics, source):
    # smile: 8 examples from each source; source=extra also holds score and
    # attrs examples, which must not count for smile.
    y, p = _labels_preds(run, "smile", source)
    s = (("source", source),)
    assert tfma_metrics[(s, "smile", "weighted_example_count", None)] == 8
    assert abs(tfma_metrics[(s, "smile", "accuracy", None)] - np.mean(y.argmax(1) == p.argmax(1))) < TOL
    # the same slice for the regression output counts only score's 12 extra examples
    assert tfma_metrics[(s, "score", "weighted_example_count", None)] == (12 if source == "extra" else 0)


def test_task_index_slice(run, tfma_metrics):
    s = (("task_index", 2),)
    y, p = _labels_preds(run, "age")
    assert tfma_metrics[(s, "age", "weighted_example_count", None)] == 20
    assert abs(tfma_metrics[(s, "age", "accuracy", None)] - np.mean(y.argmax(1) == p.argmax(1))) < TOL
    assert tfma_metrics[(s, "smile", "weighted_example_count", None)] == 0
