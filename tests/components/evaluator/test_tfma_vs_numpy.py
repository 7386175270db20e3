"""TFMA with build_eval_config equals numpy on each task's own examples.

Every expected value is recomputed here from the saved model's own
serving_default outputs, restricted to the rows whose task_index is the
task's (and, for slices, whose source or true class is the slice's). Tasks:
smile, gender (binary), age (5-class), score (regression, tolerance 5),
attrs (3-label). Counts, accuracy, precision, recall, F1, confusion matrices,
errors, calibration and within-tolerance agree to 1e-6 (errors: relative,
their values are ~10 and ~200 held as float32 in TFMA). AUC is TFMA's
10,000-bucket approximation: it agrees with the exact rank statistic within
`auc_bound` below (pairs of a positive and a negative closer than one bucket
count 1/2 in TFMA), which is 0 on these data.
"""
import numpy as np
import pytest

from components.report.component import load_calibration_curves, load_confusion_matrices, load_tfma_metrics
from tests.components.evaluator import helpers as fx

TOL = 1e-6
OVERALL = ()
BUCKET = 1e-4  # TFMA's AUC / calibration histogram bucket width (10,000 buckets on [0, 1])


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


def auc_bound(y, p):
    """Largest |TFMA AUC - exact AUC|: TFMA's ROC trapezoid over bucket edges is the
    rank statistic with every positive-negative pair inside one bucket counted 1/2,
    so each such pair moves it by at most 1/2 / (#pos * #neg). Pairs closer than
    two bucket widths over-count those inside one bucket."""
    pos, neg = p[y == 1], p[y == 0]
    close = (np.abs(pos[:, None] - neg[None, :]) < 2 * BUCKET).sum()
    return 0.5 * close / (len(pos) * len(neg))


def _close(got, expected, tol=TOL):
    assert got == pytest.approx(expected, abs=tol), (got, expected)


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
    _close(tfma_metrics[(OVERALL, task, "accuracy", None)], expected)
    k = run.config.task(task).width
    cm = np.zeros((k, k))
    np.add.at(cm, (truth, pred), 1)
    got = np.array(load_confusion_matrices(run.eval_output, run.config)[(OVERALL, task)])
    np.testing.assert_allclose(got, cm, atol=TOL)
    assert got.sum() == fx.COUNTS[task]
    # The fixture model is random: predictions must not all be one class, or
    # the matrix check above would be weak.
    assert len(set(pred)) > 1


def test_multiclass_per_class_precision_recall_f1_are_argmax_based(run, tfma_metrics):
    y, p = _labels_preds(run, "age")
    truth, pred = y.argmax(1), p.argmax(1)
    one_vs_rest_differs = False
    for c in range(5):
        tp = np.sum((pred == c) & (truth == c))
        fp, fn = np.sum((pred == c) & (truth != c)), np.sum((pred != c) & (truth == c))
        for name, expected in (("precision", tp / (tp + fp) if tp + fp else np.nan),
                               ("recall", tp / (tp + fn) if tp + fn else np.nan),
                               ("f1", 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else np.nan)):
            got = tfma_metrics[(OVERALL, "age", name, c)]
            assert (np.isnan(got) and np.isnan(expected)) or abs(got - expected) < TOL, (name, c, got, expected)
        # sklearn-style argmax, not TFMA's score > 0.5: they differ on these data.
        one_vs_rest_differs |= bool(np.any((p[:, c] > 0.5) != (pred == c)))
    assert one_vs_rest_differs


@pytest.mark.parametrize("task", ["smile", "gender"])
def test_binary_positive_class_metrics(run, tfma_metrics, task):
    y, p = _labels_preds(run, task)
    y1, p1 = y[:, 1], p[:, 1]            # positive class = slot 1
    hit = p1 > 0.5                       # = argmax for a 2-way softmax
    tp, fp, fn = np.sum(hit & (y1 == 1)), np.sum(hit & (y1 == 0)), np.sum(~hit & (y1 == 1))
    _close(tfma_metrics[(OVERALL, task, "precision", 1)], tp / (tp + fp))
    _close(tfma_metrics[(OVERALL, task, "recall", 1)], tp / (tp + fn))
    _close(tfma_metrics[(OVERALL, task, "f1", 1)], 2 * tp / (2 * tp + fp + fn))
    _close(tfma_metrics[(OVERALL, task, "calibration", 1)], p1.sum() / y1.sum())
    assert abs(tfma_metrics[(OVERALL, task, "auc", 1)] - _exact_auc(y1, p1)) <= auc_bound(y1, p1) + 1e-12


def _numpy_calibration(y, p):
    """Buckets [k/10, (k+1)/10) of the class score (1.0 on its own, as in TFMA) holding examples."""
    idx = np.floor(p * 10).astype(int)
    out = []
    for k in sorted(set(idx)):
        m = idx == k
        out.append((m.sum(), p[m].mean(), y[m].mean()))
    return out


@pytest.mark.parametrize("task", ["smile", "gender", "age", "attrs"])
def test_calibration_curves(run, task):
    t = run.config.task(task)
    y, p = _labels_preds(run, task)
    curves = load_calibration_curves(run.eval_output)
    for c in ([1] if t.type == "binary" else range(t.width)):
        got = [(b["weight"], b["mean_prediction"], b["mean_label"]) for b in curves[(OVERALL, task, c)]]
        expected = _numpy_calibration(y[:, c], p[:, c])
        assert len(got) == len(expected), (c, got, expected)
        np.testing.assert_allclose(np.array(got), np.array(expected), atol=TOL)


def test_regression_errors(run, tfma_metrics):
    y, p = _labels_preds(run, "score")
    err = (p - y)[:, 0]
    # Relative: labels are ~30 and MSE ~100, held as float32 inside TFMA.
    mae, mse = np.mean(np.abs(err)), np.mean(err ** 2)
    for name, expected in (("mean_absolute_error", mae), ("mean_squared_error", mse),
                           ("root_mean_squared_error", np.sqrt(mse))):
        assert abs(tfma_metrics[(OVERALL, "score", name, None)] - expected) <= TOL * expected
    # within ± 5 (tasks[score].tolerance), in the label's unit
    _close(tfma_metrics[(OVERALL, "score", "within_tolerance", None)], np.mean(np.abs(err) <= 5.0))
    assert 0 < np.mean(np.abs(err) <= 5.0) < 1  # not a trivial 0 or 1
    edges = [k * 2.5 for k in range(-8, 9)]  # tolerance 5: edges every half tolerance, ±4 tolerances
    expected = np.bincount(np.searchsorted(edges, err, side="right"), minlength=len(edges) + 1)
    np.testing.assert_array_equal(tfma_metrics[(OVERALL, "score", "error_histogram", None)], expected)


def test_multilabel_per_label_and_subset_accuracy(run, tfma_metrics):
    y, p = _labels_preds(run, "attrs")
    hit = p > 0.5
    for c in range(3):
        yc = y[:, c] == 1
        tp, fp, fn = np.sum(hit[:, c] & yc), np.sum(hit[:, c] & ~yc), np.sum(~hit[:, c] & yc)
        _close(tfma_metrics[(OVERALL, "attrs", "binary_accuracy", c)], np.mean(hit[:, c] == yc))
        _close(tfma_metrics[(OVERALL, "attrs", "f1", c)], 2 * tp / (2 * tp + fp + fn))
        assert abs(tfma_metrics[(OVERALL, "attrs", "auc", c)] - _exact_auc(y[:, c], p[:, c])) \
            <= auc_bound(y[:, c], p[:, c]) + 1e-12
    subset = np.mean(np.all(hit == (y == 1), axis=1))
    _close(tfma_metrics[(OVERALL, "attrs", "subset_accuracy", None)], subset)
    assert 0 < subset < 1


# Primary metric per task and how numpy computes it from (labels, predictions).
PRIMARY = {
    "smile": ("accuracy", lambda y, p: np.mean(y.argmax(1) == p.argmax(1))),
    "gender": ("accuracy", lambda y, p: np.mean(y.argmax(1) == p.argmax(1))),
    "age": ("accuracy", lambda y, p: np.mean(y.argmax(1) == p.argmax(1))),
    "score": ("within_tolerance", lambda y, p: np.mean(np.abs(p - y) <= 5.0)),
    "attrs": ("subset_accuracy", lambda y, p: np.mean(np.all((p > 0.5) == (y == 1), axis=1))),
}


@pytest.mark.parametrize("task", list(fx.COUNTS))
def test_source_slices_count_only_that_sources_examples_of_the_task(run, tfma_metrics, task):
    # e.g. source=extra holds smile, score and attrs examples: smile counts its 8 only.
    for source in ("genki4k", "wiki", "extra"):
        y, p = _labels_preds(run, task, source)
        s = (("source", source),)
        assert tfma_metrics[(s, task, "weighted_example_count", None)] == len(y)
        if len(y):
            name, fn = PRIMARY[task]
            _close(tfma_metrics[(s, task, name, None)], fn(y, p))
    assert tfma_metrics[((("source", "extra"),), "smile", "weighted_example_count", None)] == 8


@pytest.mark.parametrize("task", ["smile", "gender", "age", "attrs"])
def test_class_slices_hold_the_examples_of_one_true_class(run, tfma_metrics, task):
    t = run.config.task(task)
    y, p = _labels_preds(run, task)
    for c, name in enumerate(t.classes):
        rows = y[:, c] == 1
        s = ((f"{task}_class", name),)
        if not rows.any():
            assert (s, task, "weighted_example_count", None) not in tfma_metrics
            continue
        assert tfma_metrics[(s, task, "weighted_example_count", None)] == rows.sum()
        metric, fn = PRIMARY[task]
        # classification: accuracy within class c = recall of class c
        _close(tfma_metrics[(s, task, metric, None)], fn(y[rows], p[rows]))
        # other tasks' outputs count nothing in this slice
        other = next(o for o in fx.COUNTS if o != task)
        assert tfma_metrics.get((s, other, "weighted_example_count", None), 0) == 0


def test_task_index_slice(run, tfma_metrics):
    s = (("task_index", 2),)
    y, p = _labels_preds(run, "age")
    assert tfma_metrics[(s, "age", "weighted_example_count", None)] == 20
    _close(tfma_metrics[(s, "age", "accuracy", None)], np.mean(y.argmax(1) == p.argmax(1)))
    assert tfma_metrics[(s, "smile", "weighted_example_count", None)] == 0
