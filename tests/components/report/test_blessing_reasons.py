"""Blessed or not, and exactly why, on TFMA's real output: the pipeline's own Evaluator executor
(TFX's, with build_eval_config; tests/components/evaluator/helpers.run_evaluator) over the
evaluator's tiny data and saved model, then ReportGen on what it wrote. The reasons are pinned
word for word on report.json, the page, the model card and run_local's last lines."""
import html
import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.report.component import Report, ReportGen, validation_summary
from components.report.model_card import MODEL_CARD_JSON
from run_local import blessing_lines
from tests.components.evaluator import helpers as fx

NO_THRESHOLDS = [{k: v for k, v in t.items() if k != "thresholds"} for t in fx.RAW_CONFIG["tasks"]]

FIRST_RUN_REASON = (
    "no task sets thresholds (smile, gender, age, score, attrs), and with no blessed baseline yet the change "
    "thresholds of evaluation.max_regression are dropped, so TFMA had nothing to validate (its validation result "
    "says missing_thresholds: true) and TFX's Evaluator blessed nothing; nothing is pushed, so later runs get no "
    "baseline either. To have models blessed and pushed, set thresholds past each task's chance level, e.g. "
    "tasks[0].thresholds: {accuracy: ...} (smile), tasks[1].thresholds: {accuracy: ...} (gender), "
    "tasks[2].thresholds: {accuracy: ...} (age), tasks[3].thresholds: {mean_absolute_error: ...} (score), "
    "tasks[4].thresholds: {auc: ...} (attrs)")


def _report(run, tmp_path):
    """ReportGen's executor on the Evaluator's artifacts, as the pipeline wires it: (report.json,
    index.html, model_card.json)."""
    out = Report()
    out.uri = str(tmp_path / "report")
    ReportGen.EXECUTOR_SPEC.executor_class().Do(
        {"evaluation": [run.evaluation], "model": [run.model], "examples": [run.examples],
         "blessing": [run.blessing]},
        {"report": [out]}, {"config_json": run.config.to_json(), "report_dir": ""})
    with open(os.path.join(out.uri, "report.json")) as f:
        report = json.load(f)
    with open(os.path.join(out.uri, "index.html")) as f:
        page = f.read()
    with open(os.path.join(out.uri, MODEL_CARD_JSON)) as f:
        card = json.load(f)
    return report, page, card


def _says_everywhere(report, page, card, reason):
    assert report["not_blessed_reason"] == reason
    assert f'<p class="reason"><b>Why:</b> {html.escape(reason)}</p>' in page
    assert card["considerations"]["use_cases"] == [{"description": f"Decision: NOT BLESSED: {reason}"}]
    assert blessing_lines(report, 42.0) == [f"blessed: False ({report['blessed_from']})   pipeline time: 42 s",
                                            f"not blessed: {reason}"]


def test_no_thresholds_first_run_says_missing_thresholds(tmp_path):
    """A config whose tasks set no thresholds, first run (nothing pushed): TFX keeps only the change
    thresholds, drops them without a baseline, and TFMA writes missing_thresholds."""
    run = fx.run_evaluator(str(tmp_path / "run"), fx.make_config(tasks=NO_THRESHOLDS))
    vr = tfma.load_validation_result(run.evaluation.uri)
    assert (vr.validation_ok, vr.missing_thresholds, vr.rubber_stamp) == (False, True, False)
    assert not vr.metric_validations_per_slice and not vr.missing_slices and not vr.validation_details.slicing_details
    assert not run.blessing.has_custom_property("blessed")  # TFX validated nothing: no decision

    report, page, card = _report(run, tmp_path)
    assert (report["blessed"], report["blessed_from"]) == (False, "no thresholds")
    assert report["validation"] == {"ok": False, "rubber_stamp": False, "missing_thresholds": True,
                                    "missing_slices": [], "missing_cross_slices": [], "checked": [], "failures": []}
    _says_everywhere(report, page, card, FIRST_RUN_REASON)
    # nothing was checked, so no task reads "pass"
    assert [(t["passed"], t["checked"]) for t in report["tasks"].values()] == [(True, False)] * 5
    assert page.count(">not checked</span>") == 5 and '<span class="pass">' not in page


def test_no_thresholds_with_a_baseline_fails_on_each_regression(tmp_path):
    """The same config once a model is served: the change thresholds apply, and each primary metric
    (multilabel: auc per label) that got worse than the baseline by more than max_regression is a
    failure, named with TFMA's own change and the baseline's value from its metrics."""
    config = fx.make_config(tasks=NO_THRESHOLDS, evaluation={**fx.RAW_CONFIG["evaluation"], "max_regression": 0.01})
    run = fx.run_evaluator(str(tmp_path / "run"), config, baseline_seed=1)
    vr = tfma.load_validation_result(run.evaluation.uri)
    assert not vr.validation_ok and not vr.missing_thresholds and not vr.missing_slices
    assert run.blessing.get_int_custom_property("blessed") == 0

    report, page, card = _report(run, tmp_path)
    assert report["blessed_from"] == "model blessing"
    expected = {}
    for name, t in report["tasks"].items():
        lower = t["type"] == "regression"
        for metric, base in t["baseline_metrics"].items():
            if metric != t["primary_metric"] and not metric.startswith(t["primary_metric"] + "/"):
                continue
            diff = t["metrics"][metric] - base
            if (diff > 0.01) if lower else (diff < -0.01):
                expected[(name, metric)] = (f"{name}: {metric} changed by {diff:+.4f} from the baseline's {base:.4f}, "
                                            "worse than evaluation.max_regression 0.01 allows (slice overall)")
    # the seeds give regressions on some tasks and not on others
    assert 2 <= len(expected) and {n for n, _ in expected} < set(report["tasks"])
    prefix = "TFMA's validation failed: "
    reason = report["not_blessed_reason"]
    assert reason.startswith(prefix)
    assert sorted(reason[len(prefix):].split("; ")) == sorted(expected.values())
    _says_everywhere(report, page, card, reason)
    assert {n for n, t in report["tasks"].items() if not t["passed"]} == {n for n, _ in expected}
    assert all(t["checked"] for t in report["tasks"].values())


def test_an_empty_eval_split_says_missing_slices(tmp_path):
    """Thresholds set but no eval example: no slice matches the overall spec of the thresholds, so
    TFMA validates nothing and says missing_slices."""
    run = fx.run_evaluator(str(tmp_path / "run"), fx.make_config(), examples=[], sources=("genki4k",))
    vr = tfma.load_validation_result(run.evaluation.uri)
    assert list(vr.missing_slices) == [tfma.SlicingSpec()] and not vr.validation_ok
    assert not vr.missing_thresholds and not vr.metric_validations_per_slice
    assert run.blessing.get_int_custom_property("blessed") == 0

    report, page, card = _report(run, tmp_path)
    assert report["validation"]["missing_slices"] == ["overall"] and report["validation"]["failures"] == []
    _says_everywhere(report, page, card,
                     "TFMA found no slice of the eval data where its thresholds apply (missing_slices: overall), "
                     "so those thresholds were not checked; the eval data hold 0 examples of the config's tasks")
    assert not any(t["checked"] for t in report["tasks"].values())


def test_metric_not_found_from_tfmas_validator(tmp_path):
    """TFMA's own validator (the function its Evaluator runs per slice) on a slice whose gender
    accuracy has no candidate - baseline diff (the baseline gave no value): 'Metric not found.'
    becomes its own reason, not a 0.0 that missed the threshold."""
    from tensorflow_model_analysis.evaluators import metrics_validator

    from components.common.eval_config import build_eval_config

    config = fx.make_config(tasks=NO_THRESHOLDS)
    eval_config = tfma.utils.update_eval_config_with_defaults(build_eval_config(config), has_baseline=True)
    keys = tfma.metrics.metric_thresholds_from_metrics_specs(eval_config.metrics_specs, eval_config=eval_config)
    (missing,) = [k for k in keys if (k.name, k.output_name, k.model_name, k.is_diff)
                  == ("accuracy", "gender", "candidate", True)]
    metrics = {k: 0.0 for k in keys if k != missing}  # every other change 0: within max_regression
    vr = metrics_validator.validate_metrics(((), metrics), eval_config)
    assert not vr.validation_ok
    with tf.io.TFRecordWriter(os.path.join(tmp_path, "validations.tfrecord")) as w:
        w.write(vr.SerializeToString())  # as TFMA's writer stores it: one serialized ValidationResult

    v = validation_summary(str(tmp_path), config, {"baseline": {}})
    (f,) = v["failures"]
    assert (f["task"], f["metric"], f["kind"], f["cause"], f["value"], f["by"]) == (
        "gender", "accuracy", "change", "metric_not_found", None, None)
    from components.report.blessing import decide

    assert decide(config, None, v, [], 72) == (False, "tfma validation result", (
        "TFMA's validation failed: gender: accuracy: its change from the baseline was not computed (TFMA: Metric "
        "not found.), as the candidate or the baseline model gave no value for it, so its change threshold could "
        "not be checked (slice overall)"))
