"""Fairness rates and gaps on hand-made confusion matrices whose FPR / FNR per slice are known."""
import dataclasses
import os

import pytest
from tensorflow_model_analysis.metrics.multi_class_confusion_matrix_metrics import Matrices, MatrixEntryKey

from components.evaluator import metrics as m
from components.report.fairness import fairness_html, task_fairness
from config import load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _matrices(cells: dict) -> Matrices:
    return Matrices({0.0: {MatrixEntryKey(a, p): float(w) for (a, p), w in cells.items()}})


def _report_metrics(task, cells: dict) -> dict:
    """One slice's metrics as report.json names them, from the metric functions TFMA runs."""
    mx = _matrices(cells)
    out = {"weighted_example_count": float(sum(cells.values())), "accuracy": m._accuracy(mx, None)}
    ids = [1] if task.type == "binary" else range(task.width)
    for cid in ids:
        suffix = "" if task.type == "binary" else f"/{task.classes[cid]}"
        out["false_positive_rate" + suffix] = m._false_positive_rate(mx, cid)
        out["false_negative_rate" + suffix] = m._false_negative_rate(mx, cid)
    return out


@pytest.fixture(scope="module")
def config():
    return load(os.path.join(ROOT, "configs", "default.yaml"))  # slices age by gender, gender by age


def test_binary_rates_of_the_positive_class(config):
    gender = config.task("gender")  # positive class: male (1)
    overall = _report_metrics(gender, {(0, 0): 50, (0, 1): 10, (1, 0): 5, (1, 1): 35})
    assert overall["false_positive_rate"] == 10 / 60 and overall["false_negative_rate"] == 5 / 40
    slices = {"slice_age": {"20-29": _report_metrics(gender, {(0, 0): 18, (0, 1): 2, (1, 0): 4, (1, 1): 16}),
                            "55+": _report_metrics(gender, {(0, 0): 6, (1, 1): 6})}}
    out = task_fairness(config, gender, overall, slices)
    assert out["fairness_overall"] == {"accuracy": 0.85, "false_positive_rate": 10 / 60,
                                       "false_negative_rate": 0.125, "n": 100.0}
    assert out["fairness"]["slice_age"]["55+"] == {"n": 12, "too_small": True}  # < min_slice_size 30
    assert out["fairness"]["slice_age"]["20-29"] == pytest.approx({
        "n": 40, "accuracy": 0.85, "false_positive_rate": 0.1, "false_negative_rate": 0.2,
        "accuracy_gap": 0.0, "false_positive_rate_gap": 0.1 - 10 / 60, "false_negative_rate_gap": 0.075})
    assert out["min_slice_size"] == 30 and "positive class 'male'" in out["fairness_rule"]


def test_multiclass_macro_over_the_classes_defined_in_the_slice(config):
    age = config.task("age")  # 5 classes
    # true 0-19: 15 right, 5 called 20-29; true 20-29: 10 right, 10 called 30-39
    female = _report_metrics(age, {(0, 0): 15, (0, 1): 5, (1, 1): 10, (1, 2): 10})
    assert [female[f"false_negative_rate/{c}"] for c in age.classes[:2]] == [0.25, 0.5]
    assert [female[f"false_positive_rate/{c}"] for c in age.classes] == [0.0, 0.25, 0.25, 0.0, 0.0]
    overall = _report_metrics(age, {(k, k): 10 for k in range(5)} | {(0, 1): 10})  # n 60
    out = task_fairness(config, age, overall, {"slice_gender": {"female": female}})
    e = out["fairness"]["slice_gender"]["female"]
    # FNR is undefined for the three classes no female example has: mean over the two defined
    assert e["false_negative_rate"] == pytest.approx(0.375)
    assert e["false_positive_rate"] == pytest.approx(0.1)
    assert out["fairness_overall"]["false_negative_rate"] == pytest.approx(0.5 / 5)  # 10/20 for 0-19, 0 else
    assert out["fairness_overall"]["false_positive_rate"] == pytest.approx((10 / 50) / 5)  # 20-29: 10 of 50
    assert e["false_negative_rate_gap"] == pytest.approx(0.375 - 0.1)
    assert e["accuracy_gap"] == pytest.approx(25 / 40 - 50 / 60)
    assert e["false_positive_rate/20-29"] == 0.25


def test_tasks_without_cross_task_slices_get_nothing(config):
    assert task_fairness(config, config.task("smile"), {}, {}) == {}
    none = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, slices=None))
    assert task_fairness(none, config.task("age"), {}, {}) == {}


def test_page_table_marks_small_slices(config):
    gender = config.task("gender")
    overall = _report_metrics(gender, {(0, 0): 50, (0, 1): 10, (1, 0): 5, (1, 1): 35})
    slices = {"slice_age": {"20-29": _report_metrics(gender, {(0, 0): 18, (0, 1): 2, (1, 0): 4, (1, 1): 16}),
                            "55+": _report_metrics(gender, {(0, 0): 6, (1, 1): 6})}}
    t = {"type": "binary", "primary_metric": "accuracy", **task_fairness(config, gender, overall, slices)}
    html = fairness_html(t, lambda x: "–" if x is None else f"{x:.4f}")
    assert "<h3>Fairness: by slice_age</h3>" in html
    assert "<td>40</td><td>0.8500</td><td>0.1000</td><td>0.2000</td><td>+0.000</td><td>-0.067</td><td>+0.075</td>" \
        in html
    assert "too small (n=12 &lt; 30)" in html
