"""`evaluation.slices: [{task: age, by: gender}]` through TFMA and the report.

The fixture's wiki examples of age carry the slice-only feature `slice_gender`
(female on 8, male on 4, none on 8, as a record whose gender is missing); the
gender examples carry `slice_age`. TFMA slices by the raw feature; every
number is checked against numpy on the saved model's own predictions.
"""
import numpy as np
import pytest

from components.common.eval_config import build_eval_config
from components.report.component import build_report, load_tfma_metrics
from tests.components.evaluator import helpers as fx

MIN_SLICE = 5
GENDER_OF_AGE = {j: ("female" if j % 5 < 2 else "male" if j % 5 == 2 else None) for j in range(fx.COUNTS["age"])}


def _config():
    return fx.make_config(evaluation={"slices": [{"task": "age"}, {"task": "age", "by": "gender"}],
                                      "min_slice_size": MIN_SLICE})


def _add_slices(examples):
    for e in examples:
        task, j = e["example_id"].rsplit("-", 1)
        if task == "age" and GENDER_OF_AGE[int(j)]:
            e["slices"] = {"slice_gender": GENDER_OF_AGE[int(j)]}
        elif task == "gender":
            e["slices"] = {"slice_age": "30-39"}


@pytest.fixture(scope="module")
def fair_run(tmp_path_factory):
    return fx.evaluate(tmp_path_factory, _config(), add_slices=_add_slices)


def _rows(run, gender):
    keep = [i for i, e in enumerate(run.examples)
            if e["example_id"].startswith("age-") and e.get("slices", {}).get("slice_gender") == gender]
    return np.array(keep)


def _numpy_rates(run, rows):
    k = run.config.task("age").width
    y = np.argmax(run.label[rows, :k], axis=1)
    p = np.argmax(run.predictions["age"][rows], axis=1)
    fpr, fnr = {}, {}
    for c in range(k):
        neg, pos = (y != c).sum(), (y == c).sum()
        fpr[c] = ((p == c) & (y != c)).sum() / neg if neg else float("nan")
        fnr[c] = ((p != c) & (y == c)).sum() / pos if pos else float("nan")
    return fpr, fnr, float((y == p).mean())


def test_eval_config_slices_by_the_raw_feature_and_adds_the_rates():
    ec = build_eval_config(_config())
    assert [list(s.feature_keys) for s in ec.slicing_specs if s.feature_keys][-1] == ["slice_gender"]
    age_names = {m.class_name for spec in ec.metrics_specs if list(spec.output_names) == ["age"] for m in spec.metrics}
    assert {"ArgmaxFalsePositiveRate", "ArgmaxFalseNegativeRate"} <= age_names
    smile_names = {m.class_name for spec in ec.metrics_specs if list(spec.output_names) == ["smile"]
                   for m in spec.metrics}
    assert "ArgmaxFalsePositiveRate" not in smile_names  # only the tasks of cross-task slices


def test_tfma_slices_hold_only_the_age_examples_that_carry_the_feature(fair_run):
    cand = load_tfma_metrics(fair_run.eval_output)["candidate"]
    for gender, n in (("female", 8), ("male", 4)):
        items = (("slice_gender", gender),)
        assert cand[(items, "age", "weighted_example_count", None)] == n
        for other in ("smile", "gender", "score"):  # no other task's example carries slice_gender
            assert cand.get((items, other, "weighted_example_count", None), 0) == 0
        fpr, fnr, acc = _numpy_rates(fair_run, _rows(fair_run, gender))
        assert cand[(items, "age", "accuracy", None)] == pytest.approx(acc, abs=1e-9)
        for c in range(5):
            for name, expected in (("false_positive_rate", fpr[c]), ("false_negative_rate", fnr[c])):
                got = cand.get((items, "age", name, c), float("nan"))
                assert got == pytest.approx(expected, abs=1e-9, nan_ok=True), (gender, name, c)
    # Examples without the feature fall in no slice of the column (no "" value).
    assert not [k for k in cand if k[0] and k[0][0][0] == "slice_gender" and k[0][0][1] not in ("female", "male")]


def test_report_fairness_section_gaps_and_too_small(fair_run):
    run = fair_run
    report = build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=None)
    age = report["tasks"]["age"]
    fair = age["fairness"]["slice_gender"]
    assert fair["male"] == {"n": 4, "too_small": True}  # 4 < min_slice_size 5
    fpr, fnr, acc = _numpy_rates(run, _rows(run, "female"))
    female = fair["female"]
    assert female["n"] == 8 and female["accuracy"] == pytest.approx(acc)
    assert female["false_positive_rate"] == pytest.approx(np.nanmean(list(fpr.values())))
    assert female["false_negative_rate"] == pytest.approx(np.nanmean(list(fnr.values())))
    ref = age["fairness_overall"]
    assert ref["n"] == fx.COUNTS["age"] and ref["accuracy"] == age["metrics"]["accuracy"]
    all_fpr, all_fnr, _ = _numpy_rates(run, run.rows("age"))
    assert ref["false_positive_rate"] == pytest.approx(np.nanmean(list(all_fpr.values())))
    gap = female["false_negative_rate"] - ref["false_negative_rate"]
    assert female["false_negative_rate_gap"] == pytest.approx(gap)
    assert female["accuracy_gap"] == pytest.approx(acc - age["metrics"]["accuracy"])
    assert "fairness" not in report["tasks"]["gender"]
    from components.report.model_card import build_model_card
    from components.report.page import render_html

    html = render_html(report)
    assert "Fairness: by slice_gender" in html and "too small (n=4 &lt; 5)" in html
    card = build_model_card(report)
    assert [c["name"].split(":")[0] for c in card["considerations"]["ethical_considerations"]] == \
        ["age by slice_gender"]
    slices = {m["slice"] for m in card["quantitative_analysis"]["performance_metrics"]}
    assert "slice_gender=female" in slices and "slice_gender=male" not in slices
