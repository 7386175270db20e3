"""The error gallery (components/report/gallery.py) against the shared run's own predictions."""
import base64

import numpy as np
import pytest

from components.report.gallery import error_gallery
from components.report.outcomes import example_outcomes
from components.report.page import _gallery
from tests.components.evaluator import helpers as fx


@pytest.fixture(scope="module")
def gallery(run):
    return error_gallery(run.config, run.model_dir, run.eval_files, size=5)


def expected_scores(run, task):
    """Every wrong example's rank score of `task`, computed here with numpy, highest first."""
    t = run.config.task(task)
    rows = run.rows(task)
    label, pred = run.label[rows, :t.width], run.predictions[task][rows]
    if t.type in ("binary", "multiclass"):
        wrong = label.argmax(1) != pred.argmax(1)
        scores = pred.max(1)[wrong]
    elif t.type == "multilabel":
        wrong = ((pred > 0.5) != (label > 0.5)).any(1)
        scores = np.abs(pred - label).max(1)[wrong]
    else:
        scores = np.abs(pred[:, 0] - label[:, 0])
    return sorted(scores, reverse=True)


@pytest.mark.parametrize("task", ["smile", "gender", "age", "score", "attrs"])
def test_the_most_wrong_examples_of_each_task(run, gallery, task):
    entries = gallery["tasks"][task]
    expected = expected_scores(run, task)[:5]
    key = "confidence" if run.config.task(task).type in ("binary", "multiclass") else "error"
    np.testing.assert_allclose([e[key] for e in entries], expected, rtol=1e-5)
    for e in entries:
        if run.config.task(task).type in ("binary", "multiclass"):
            assert e["true"] != e["predicted"] and e["true"] in run.config.task(task).classes
        assert e["image"].startswith("data:image/png;base64,")
        assert base64.b64decode(e["image"].split(",", 1)[1])[:4] == b"\x89PNG"
        assert e["example_id"] and e["source"]


def test_the_scan_is_bounded(run):
    small = error_gallery(run.config, run.model_dir, run.eval_files, size=3, limit=10)
    assert small["scanned"] == 10 and all(len(v) <= 3 for v in small["tasks"].values())
    assert error_gallery(run.config, run.model_dir, [], size=3)["tasks"] == {t: [] for t in run.config.task_names}


def test_the_page_shows_thumbnails_with_true_and_predicted(gallery):
    html = _gallery({"error_gallery": gallery["tasks"]["age"], "type": "multiclass"})
    assert html.count("<img ") == len(gallery["tasks"]["age"]) > 0
    first = gallery["tasks"]["age"][0]
    assert f"true {first['true']}" in html and f"predicted {first['predicted']}" in html
    assert _gallery({"error_gallery": []}) == ""


def test_per_example_outcomes_name_every_scanned_example_with_its_score(run, gallery):
    outcomes = example_outcomes(run.config, gallery["per_example"], gallery["example_ids"], gallery["scanned"],
                                gallery["limit"])
    assert outcomes["scanned"] == sum(fx.COUNTS.values()) and outcomes["limit"] == gallery["limit"]
    for name, e in outcomes["tasks"].items():
        t, rows = run.config.task(name), run.rows(name)
        label, pred = run.label[rows, :t.width], run.predictions[name][rows]
        ids = [run.examples[r]["example_id"] for r in rows]
        assert sorted(e["ids"]) == sorted(ids) and len(set(e["ids"])) == fx.COUNTS[name]
        assert e["metric"] == {"binary": "accuracy", "multiclass": "accuracy", "regression": "mean_absolute_error",
                               "multilabel": "auc"}[t.type]
        order = [e["ids"].index(i) for i in ids]  # the file's order -> the run's row order
        if t.type in ("binary", "multiclass"):
            expected = (label.argmax(1) == pred.argmax(1)).astype(float)
            np.testing.assert_array_equal(np.asarray(e["scores"])[order], expected)
        elif t.type == "regression":
            np.testing.assert_allclose(np.asarray(e["scores"])[order], np.abs(pred[:, 0] - label[:, 0]), rtol=1e-5)
        else:
            assert e["classes"] == list(t.classes)
            np.testing.assert_array_equal(np.asarray(e["labels"])[order], label)
            np.testing.assert_allclose(np.asarray(e["predictions"])[order], pred, rtol=1e-5)
