"""runners.compare_interval: delta_m's paired bootstrap over per-example outcomes, on hand-made
inputs whose interval is known exactly."""
import json

import numpy as np
import pytest

from runners import compare_interval as ci


def acc(ids, scores):
    return {"metric": "accuracy", "ids": list(ids), "scores": [float(s) for s in scores]}


def mae(ids, errors):
    return {"metric": "mean_absolute_error", "ids": list(ids), "scores": [float(e) for e in errors]}


def auc(ids, labels, predictions):
    return {"metric": "auc", "ids": list(ids), "labels": labels, "predictions": predictions}


def test_identical_models_give_zero():
    mt = {"smile": acc("abcd", [1, 0, 1, 1]), "age": mae("xyz", [1.0, 2.5, 0.5])}
    r = ci.delta_m_interval(mt, dict(mt))
    assert r == {"ci95": [0.0, 0.0], "tasks": {"smile": {"matched": 4, "paired": True},
                                               "age": {"matched": 3, "paired": True}}, "warnings": []}


def test_examples_are_matched_by_id_not_by_position():
    # the same outcome per id, listed in another order: paired, so every resample's gain is 0
    r = ci.delta_m_interval({"t": acc("abc", [1, 0, 1])}, {"t": acc("cab", [1, 1, 0])})
    assert r["ci95"] == [0.0, 0.0] and r["tasks"]["t"] == {"matched": 3, "paired": True}
    assert ci.match_ids(["a", "b", "c"], ["c", "a", "b"]) == ([1, 2, 0], 3)


def test_single_task_right_on_every_example():
    # single-task accuracy 1 in every resample; the multitask one right on 1 of 2 examples: a resample
    # has 0, 1 or 2 of the right one -> gain -1, -0.5 or 0 (1/4, 1/2, 1/4): the percentiles are the ends
    r = ci.delta_m_interval({"t": acc("ab", [1, 0])}, {"t": acc("ab", [1, 1])})
    assert r["ci95"] == [-1.0, 0.0]


def test_constant_errors_give_a_point_interval_with_the_mae_sign_flipped():
    # age: MAE 1 multitask, 2 single-task on every resample -> gain +0.5; smile identical -> 0
    mt = {"smile": acc("ab", [1, 0]), "age": mae("xyz", [1, 1, 1])}
    st = {"smile": acc("ab", [1, 0]), "age": mae("zyx", [2, 2, 2])}
    assert ci.delta_m_interval(mt, st)["ci95"] == [0.25, 0.25]


def test_multilabel_auc_per_label_mean():
    # multitask ranks every positive above every negative (AUC 1), single-task ties all (AUC 0.5):
    # gain (1 - 0.5) / 0.5 = 1 in every resample with both classes of both labels drawn
    labels = [[1, 0], [0, 1], [1, 1], [0, 0]]
    mt = auc("abcd", labels, [[0.9, 0.2], [0.1, 0.8], [0.8, 0.7], [0.2, 0.1]])
    st = auc("abcd", labels, [[0.5, 0.5]] * 4)
    assert ci.delta_m_interval({"attrs": mt}, {"attrs": st})["ci95"] == [1.0, 1.0]


def test_unmatched_ids_fall_back_to_an_unpaired_bootstrap_with_a_warning():
    mt, st = acc("abcd", [1, 0, 1, 0]), acc("abxy", [1, 0, 1, 0])
    r = ci.delta_m_interval({"t": mt}, {"t": st})
    assert r["tasks"]["t"] == {"matched": 2, "paired": False}
    assert r["warnings"] == ["task t: 2 of 4 multitask and 4 single-task eval examples match by id; "
                             "its examples are resampled unpaired (each model's independently)"]
    lo, hi = r["ci95"]
    assert lo < 0 < hi  # same outcomes, but drawn independently: the interval is not [0, 0]
    # paired, the same outcomes give exactly 0
    assert ci.delta_m_interval({"t": mt}, {"t": acc("abcd", [1, 0, 1, 0])})["ci95"] == [0.0, 0.0]
    # unpaired but both always right: still exactly 0
    assert ci.delta_m_interval({"t": acc("ab", [1, 1])}, {"t": acc("abc", [1, 1, 1])})["ci95"] == [0.0, 0.0]


def test_repeated_or_empty_ids_do_not_pair():
    assert ci.match_ids(["a", "a"], ["a", "a"]) == (None, 1)
    assert ci.match_ids(["", "b"], ["", "b"]) == (None, 2)
    assert ci.match_ids(["a", "b"], ["a", "b", "c"]) == (None, 2)


def test_undefined_cases_give_none_with_the_reason():
    r = ci.delta_m_interval({"t": acc("ab", [1, 1])}, {"t": acc("ab", [0, 0])})
    assert r["ci95"] is None and r["warnings"] == ["delta_m is undefined in every resample "
                                                   "(a single-task figure of 0)"]
    r = ci.delta_m_interval({"t": acc("", [])}, {"t": acc("ab", [1, 1])})
    assert r["ci95"] is None
    assert r["warnings"] == ["task t: no per-example outcomes (0 multitask, 2 single-task examples)"]
    r = ci.comparison_interval({"tasks": {"t": acc("ab", [1, 1])}}, {"t": None})
    assert r["ci95"] is None and "no report/per_example.json in the run(s) of t" in r["warnings"][0]


def test_fixed_seed_reproduces_and_the_interval_holds_the_point_value():
    rng = np.random.default_rng(0)
    ids = [f"e{k}" for k in range(50)]
    mt, st = acc(ids, rng.integers(0, 2, 50)), acc(ids, rng.integers(0, 2, 50))
    a, b = ci.delta_m_interval({"t": mt}, {"t": st}), ci.delta_m_interval({"t": mt}, {"t": st})
    assert a == b
    point = np.mean(mt["scores"]) / np.mean(st["scores"]) - 1
    assert a["ci95"][0] < point < a["ci95"][1]


def test_load_outcomes(tmp_path):
    assert ci.load_outcomes(str(tmp_path)) is None
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "per_example.json").write_text(json.dumps({"tasks": {"t": acc("a", [1])}}))
    assert ci.load_outcomes(str(tmp_path)) == {"tasks": {"t": acc("a", [1])}}
    assert ci.METHOD == "paired bootstrap over eval examples, B=1000" and ci.RESAMPLES == 1000


@pytest.mark.parametrize("metric", ["accuracy", "mean_absolute_error"])
def test_resampled_metric_is_the_weighted_mean(metric):
    w = np.array([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    out = ci.resampled_metric(metric, {"scores": np.array([1.0, 0.0, 4.0])}, w)
    np.testing.assert_allclose(out, [6.0 / 3, 5.0 / 3])
