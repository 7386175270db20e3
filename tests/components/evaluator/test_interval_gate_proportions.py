"""`evaluation.gate_on: lower_bound` gates a proportion on its Clopper-Pearson interval (issue 26):
a model that gets every example right, through the pipeline's Evaluator executor with TFMA's
intervals on. TFMA's Poisson-bootstrap t-interval of its accuracy collapses to [1, 1], which would
pass any floor; the exact interval's lower end is 0.025^(1/n), so a floor between it and 1 fails,
and report.json shows the very interval the gate checked."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.common.eval_config import build_eval_config
from components.common.interval_bounds import bound_failures
from components.common.proportions import clopper_pearson
from components.evaluator.interval_gate import apply_gate
from components.report.component import build_report, eval_files
from tests.components.evaluator import helpers as fx

N = 16
CP_LOW = clopper_pearson(N, N)[0]  # 0.025^(1/16) = 0.794
FLOOR = 0.9  # between CP_LOW and 1: the point (1.0) passes, the exact lower bound does not


def _config(thresholds: dict):
    return fx.make_config(
        tasks=[{"name": "smile", "type": "binary", "classes": ["no_smile", "smile"], "thresholds": thresholds}],
        sources=[{"name": "genki4k", "format": "genki4k", "path": "/nonexistent", "tasks": ["smile"]}],
        evaluation={"confidence_intervals": True, "gate_on": "lower_bound", "slices": []})


@pytest.fixture(scope="module")
def all_right(tmp_path_factory):
    """The Evaluator's run of a model whose argmax is right on all N examples (labels = its argmax)."""
    root = tmp_path_factory.mktemp("all_right")
    config = _config({"accuracy": FLOOR})
    examples = [dict(e, source="genki4k") for e in fx.make_examples(config)]
    assert len(examples) == N
    fx.save_model(config, str(root / "probe"), seed=0)  # the same weights run_evaluator saves (seed 0)
    serve = tf.saved_model.load(str(root / "probe")).signatures["serving_default"]
    scores = serve(examples=tf.constant([fx.serialize(e) for e in examples]))["smile"].numpy()
    for e, s in zip(examples, scores):
        e["label"] = np.eye(config.label_width, dtype=np.float32)[int(np.argmax(s))]
    assert 0 < sum(int(np.argmax(s)) for s in scores) < N  # both classes present: auc is defined
    return fx.run_evaluator(str(root / "run"), config, examples=examples, seed=0)


def _tfma_interval(eval_output: str, name: str, class_id=None) -> list[float]:
    for ps in tfma.load_metrics(eval_output):
        if ps.slice_key.single_slice_keys:
            continue
        for kv in ps.metric_keys_and_values:
            cid = kv.key.sub_key.class_id.value if kv.key.sub_key.HasField("class_id") else None
            if kv.key.name == name and cid == class_id and not kv.key.is_diff:
                ci = kv.confidence_interval
                return [ci.lower_bound.double_value.value, ci.upper_bound.double_value.value]
    raise KeyError(name)


def test_all_right_fails_a_floor_that_tfmas_collapsed_interval_passes(all_right):
    uri = all_right.evaluation.uri
    tfma_lo = _tfma_interval(uri, "accuracy")[0]
    assert tfma_lo >= FLOOR  # what the gate checked before: it would have blessed
    (f,) = bound_failures(build_eval_config(all_right.config), uri)
    assert (f["metric"], f["bound"], f["value"]) == ("accuracy", "lower_bound", 1.0)
    assert (f["interval_method"], f["counts"]) == ("clopper_pearson", [N, N])
    assert f["interval"] == [CP_LOW, 1.0] and f["by"] == FLOOR - CP_LOW
    # TFMA validated the point (1.0 >= 0.9) and blessed; the gate takes it back
    assert os.listdir(all_right.blessing.uri) == ["BLESSED"]
    (g,) = apply_gate(all_right.blessing, build_eval_config(all_right.config), uri)
    assert g == f and os.listdir(all_right.blessing.uri) == ["NOT_BLESSED"]


def test_a_floor_under_the_exact_bound_passes_and_other_metrics_gate_on_tfmas(all_right):
    uri = all_right.evaluation.uri
    assert bound_failures(build_eval_config(_config({"accuracy": CP_LOW - 1e-3})), uri) == []
    # auc is no proportion: checked against TFMA's own interval, as the report shows it
    (f,) = bound_failures(build_eval_config(_config({"accuracy": CP_LOW - 1e-3, "auc": 1.01})), uri)
    assert (f["metric"], f["interval_method"], f["interval"]) == ("auc", "tfma", _tfma_interval(uri, "auc", 1))
    assert "counts" not in f


def test_report_shows_the_interval_the_gate_checked(all_right):
    config, uri = all_right.config, all_right.evaluation.uri
    r = build_report(config, uri, os.path.join(all_right.model.uri, "Format-Serving"),
                     eval_files(all_right.examples.uri, config), blessed=False)
    t = r["tasks"]["smile"]
    (f,) = r["bound_failures"]
    assert (f["task"], f["metric"], f["interval_method"], f["interval_counts"]) == (
        "smile", "accuracy", "clopper_pearson", [N, N])
    assert t["intervals"]["accuracy"] == f["interval"] == [CP_LOW, 1.0]
    assert (t["interval_methods"]["accuracy"], t["interval_counts"]["accuracy"]) == ("clopper_pearson", [N, N])
    # precision and recall are proportions too; auc keeps TFMA's interval
    assert t["interval_methods"]["precision"] == t["interval_methods"]["recall"] == "clopper_pearson"
    assert (t["interval_methods"]["auc"], t["intervals"]["auc"]) == ("tfma", _tfma_interval(uri, "auc", 1))
    assert not t["passed"]
