"""build_report / write_report / ReportGen on the shared TFMA run, and the
validation-failure reporting on hand-made validation results."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import validation_result_pb2

from components.report.component import Report, ReportGen, build_report, eval_files, validation_summary, write_report
from components.report.outcomes import KEY as OUTCOMES_KEY
from tests.components.evaluator import helpers as fx


@pytest.fixture(scope="module")
def report(run):
    return build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=None,
                        model_run_dir=run.model_run_dir)


def test_report_top_level(run, report):
    assert report["model_dir"] == run.model_dir
    assert report["eval_data"] == run.eval_files and len(report["eval_data"]) == 3
    assert report["warnings"] == []
    # age's accuracy threshold 1.01 cannot be met -> not blessed, failure named.
    assert report["blessed"] is False and report["blessed_from"] == "tfma validation result"
    (f,) = report["validation"]["failures"]
    acc = report["tasks"]["age"]["metrics"]["accuracy"]
    assert (f["task"], f["metric"], f["kind"], f["slice"]) == ("age", "accuracy", "value", "overall")
    assert f["threshold"] == {"lower_bound": 1.01}
    assert f["value"] == acc and abs(f["by"] - (1.01 - acc)) < 1e-12
    assert report["validation"]["rubber_stamp"] is True
    assert report["not_blessed_reason"] == (
        f"TFMA's validation failed: age: accuracy {acc:.4f} is below its threshold 1.0100 (slice overall)")
    assert [t for t, e in report["tasks"].items() if not e["passed"]] == ["age"]
    # smile's threshold and age's were checked; without a baseline nothing applies to the others
    assert [t for t, e in report["tasks"].items() if e["checked"]] == ["smile", "age"]


def test_report_task_entries(run, report):
    for name, t in report["tasks"].items():
        task = run.config.task(name)
        assert t["type"] == task.type and t["classes"] == list(task.classes)
        assert t["eval_examples"] == fx.COUNTS[name] == t["eval_examples_in_data"]
    age = report["tasks"]["age"]
    counts = np.bincount(run.label[run.rows("age"), :5].argmax(1), minlength=5)
    assert age["chance"] == counts.max() / 20          # majority class / 20 age examples
    assert age["chance_uniform"] == 1 / 5 and age["chance_metric"] == "accuracy"
    assert list(age["class_counts"].values()) == counts.tolist()
    assert np.sum(age["confusion_matrix"]) == 20
    assert np.trace(age["confusion_matrix"]) / 20 == pytest.approx(age["metrics"]["accuracy"], abs=1e-6)
    smile = report["tasks"]["smile"]
    assert smile["positive_class"] == "smile" and set(smile["slices"]["source"]) == {"genki4k", "extra"}
    assert smile["slices"]["source"]["extra"]["weighted_example_count"] == 8
    assert set(smile["slices"]["task_index"]) == {"0"}      # empty slices are left out
    score = report["tasks"]["score"]
    y = run.label[run.rows("score"), 0].astype(np.float64)
    assert score["chance"] == pytest.approx(np.mean(np.abs(y - y.mean())), abs=1e-9)
    assert score["chance_metric"] == "mean_absolute_error"
    assert "confusion_matrix" not in score and set(score["metrics"]) >= {"mean_absolute_error", "mean_squared_error"}
    assert set(report["tasks"]["attrs"]["metrics"]) >= {"auc/red", "auc/coat", "auc/long", "binary_accuracy/long"}


def test_report_per_class_and_class_slices(run, report):
    age = report["tasks"]["age"]
    m = np.array(age["confusion_matrix"])
    for c, name in enumerate(age["classes"]):
        row = age["per_class"][name]
        assert row["support"] == m[c].sum()
        assert row["recall"] == pytest.approx(m[c, c] / m[c].sum(), abs=1e-9)
        assert set(row) == {"support", "precision", "recall", "f1"}
        # the class slice holds the same examples: accuracy there = recall
        if m[c].sum():
            sl = age["slices"]["age_class"][name]
            assert sl["weighted_example_count"] == m[c].sum()
            assert sl["accuracy"] == pytest.approx(row["recall"], abs=1e-9)
    assert age["class_slice"] == "age_class"
    smile = report["tasks"]["smile"]
    assert set(smile["per_class"]["smile"]) == {"support", "auc", "precision", "recall", "f1", "calibration"}
    assert set(smile["per_class"]["no_smile"]) == {"support"}
    assert not any(k.startswith("auc") for v in smile["slices"]["smile_class"].values() for k in v)
    attrs = report["tasks"]["attrs"]
    labels = run.label[run.rows("attrs"), :3]
    assert [attrs["per_class"][c]["support"] for c in ("red", "coat", "long")] == labels.sum(0).tolist()
    assert set(attrs["slices"]) == {"source", "task_index", "attrs_class"}


def test_report_figures_data(run, report):
    age = report["tasks"]["age"]
    assert set(age["calibration_curve"]) == set(age["classes"])
    buckets = age["calibration_curve"]["55+"]
    assert sum(b["weight"] for b in buckets) == 20                      # every age example, once
    assert all(0 <= b["lower"] < b["upper"] <= 1 or b["lower"] == b["upper"] == 1 for b in buckets)
    assert set(report["tasks"]["smile"]["calibration_curve"]) == {"smile"}  # positive class only
    score = report["tasks"]["score"]
    hist = score["error_histogram"]
    assert score["tolerance"] == 5.0 and hist["tolerance"] == 5.0
    assert len(hist["counts"]) == len(hist["edges"]) + 1 == 18 and sum(hist["counts"]) == 12
    assert "per_class" not in score and "calibration_curve" not in score
    # training curves from the TensorBoard events: 3 epochs, train and validation
    curves = report["tasks"]["age"]["training_curves"]
    assert set(curves) == {"loss", "accuracy"} and set(curves["loss"]) == {"train", "validation"}
    assert [e for e, _ in curves["loss"]["train"]] == [0, 1, 2]
    assert set(report["tasks"]["score"]["training_curves"]) == {"loss", "mae"}
    assert [e for e, _ in report["training_curves_total"]["loss"]["validation"]] == [0, 1, 2]
    # the learning-rate schedule, as Keras logs it at each epoch's end (train only)
    assert set(report["training_curves_total"]["learning_rate"]) == {"train"}
    assert [e for e, _ in report["training_curves_total"]["learning_rate"]["train"]] == [0, 1, 2]
    assert report["model_run_dir"] == run.model_run_dir and report["max_regression"] == 0.05
    assert report["mtl_fallback_share"] == 0.0  # method none: no solver, nothing logged
    assert report["warm_started_from"] is None and (report["warm_start"] or {}).get("from") is None


def test_training_curves_match_the_events(run):
    """Values read back equal what the TensorBoard callback wrote (tf.summary scalars)."""
    import tensorflow as tf

    from components.report.history import read_scalars, training_curves

    scalars = read_scalars(os.path.join(run.model_run_dir, "validation"))
    curves = training_curves(run.model_run_dir, run.config)
    assert curves["attrs"]["loss"]["validation"] == [[s, scalars["epoch_attrs_loss"][s]] for s in (0, 1, 2)]
    # independent read of one value with TensorBoard's own loader
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.path.join(run.model_run_dir, "train"), size_guidance={"tensors": 0})
    acc.Reload()
    last = acc.Tensors("epoch_smile_loss")[-1]
    assert curves["smile"]["loss"]["train"][-1] == [last.step, pytest.approx(float(tf.make_ndarray(last.tensor_proto)))]
    assert training_curves(None, run.config) == {} and training_curves("/nonexistent", run.config) == {}


def test_tag_split_prefers_the_longest_task_name():
    from components.report.history import _split_tag

    assert _split_tag("epoch_age_group_loss", ["age", "age_group"]) == ("age_group", "loss")
    assert _split_tag("epoch_age_loss", ["age", "age_group"]) == ("age", "loss")
    assert _split_tag("epoch_loss", ["age"]) == ("", "loss")
    assert _split_tag("epoch_learning_rate", ["age"]) == ("", "learning_rate")  # the schedule, per epoch
    assert _split_tag("epoch_accuracy", ["age"]) is None
    assert _split_tag("epoch_loss_weight_age", ["age"]) == ("age", "loss_weight")
    assert _split_tag("epoch_log_variance_age_group", ["age", "age_group"]) == ("age_group", "log_variance")


def test_write_report(tmp_path, report):
    paths = write_report(report, str(tmp_path / "report"))
    assert [os.path.basename(p) for p in paths] == ["report.json", "index.html", "model_card.json",
                                                    "model_card.html", "per_example.json"]
    # the per-example outcomes go to their own file, not into report.json
    assert json.loads(open(paths[0]).read()) == {k: v for k, v in report.items() if k != OUTCOMES_KEY}
    assert json.loads(open(paths[-1]).read()) == report[OUTCOMES_KEY]
    page = open(paths[1]).read()
    assert "NOT BLESSED" in page and "<style>" in page
    assert "http" not in page and "<script" not in page      # self-contained
    assert "url(" not in page                                  # figures are inline SVG
    # the error gallery's thumbnails are embedded: every <img> is a data URI
    assert page.count("<img ") == page.count("<img src='data:image/png;base64,") > 0
    for name in fx.COUNTS:
        assert f"id='task-{name}'" in page
        assert f'aria-label="{name}: training loss"' in page
    assert "task <b>age</b>: accuracy" in page
    # smile, gender, age: matrix, calibration, loss, accuracy; attrs: calibration, loss (its accuracy is
    # 0.25 in every epoch, train and validation: a flat line, named and not drawn);
    # score: error histogram, loss, mae; the total loss and the learning rate
    assert page.count("<svg") == 3 * 4 + 2 + 3 + 2
    assert "not drawn, constant over every epoch: accuracy = 0.2500" in page
    assert 'aria-label="learning rate (end of epoch)"' in page
    assert 'aria-label="score: prediction - label"' in page and "class='per-class'" in page


def test_blessing_artifact_wins_over_validation(run):
    r = build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=True)
    assert r["blessed"] is True and r["blessed_from"] == "model blessing"


def _write_validation(d, failures):
    vr = tfma.ValidationResult(validation_ok=False)
    vr.metric_validations_per_slice.add(failures=failures)
    os.makedirs(d, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(d, "validations.tfrecord")) as w:
        w.write(vr.SerializeToString())


def test_validation_summary_value_and_change_failures(tmp_path):
    config = fx.make_config()
    value_fail = validation_result_pb2.ValidationFailure(
        metric_key=tfma.metrics.MetricKey(name="accuracy", output_name="smile").to_proto(),
        metric_threshold=tfma.MetricThreshold(value_threshold={"lower_bound": {"value": 0.99}}),
        metric_value={"double_value": {"value": 0.75}})
    ml_key = tfma.metrics.MetricKey(name="auc", output_name="attrs", sub_key=tfma.metrics.SubKey(class_id=1),
                                    model_name="candidate", is_diff=True)
    change_fail = validation_result_pb2.ValidationFailure(
        metric_key=ml_key.to_proto(),
        metric_threshold=tfma.MetricThreshold(change_threshold={
            "direction": tfma.MetricDirection.HIGHER_IS_BETTER, "relative": {"value": -0.02}}),
        metric_value={"double_value": {"value": -0.04}})  # candidate 0.76 vs baseline 0.80
    _write_validation(str(tmp_path), [value_fail, change_fail])
    base = {"baseline": {((), "attrs", "auc", 1): 0.80}}
    v = validation_summary(str(tmp_path), config, base)
    assert v["ok"] is False
    a, b = v["failures"]
    assert (a["task"], a["metric"], a["kind"]) == ("smile", "accuracy", "value")
    assert a["by"] == pytest.approx(0.99 - 0.75)              # 0.24 short of the floor
    assert (b["task"], b["metric"], b["kind"]) == ("attrs", "auc/coat", "change")
    assert b["relative_change"] == pytest.approx(-0.04 / 0.80)  # -5 %
    assert b["by"] == pytest.approx(-0.02 - (-0.05))           # 3 points past the -2 % limit
    assert b["threshold"] == {"direction": "higher_is_better", "relative": -0.02}


def test_validation_summary_absolute_change_failure(tmp_path):
    """The pipeline's change thresholds are absolute (components.common.eval_config): `by` in the metric's
    unit, the baseline named, no relative change."""
    config = fx.make_config()
    key = tfma.metrics.MetricKey(name="accuracy", output_name="gender", model_name="candidate", is_diff=True)
    fail = validation_result_pb2.ValidationFailure(
        metric_key=key.to_proto(),
        metric_threshold=tfma.MetricThreshold(change_threshold={
            "direction": tfma.MetricDirection.HIGHER_IS_BETTER, "absolute": {"value": -0.02}}),
        metric_value={"double_value": {"value": -0.05}})  # candidate 0.75 vs baseline 0.80
    _write_validation(str(tmp_path), [fail])
    (f,) = validation_summary(str(tmp_path), config, {"baseline": {((), "gender", "accuracy", None): 0.80}})["failures"]
    assert f["threshold"] == {"direction": "higher_is_better", "absolute": -0.02}
    assert f["baseline"] == 0.80 and "relative_change" not in f
    assert f["by"] == pytest.approx(0.03)
    from components.report.page import render_html
    page = render_html({"blessed": False, "blessed_from": "model blessing", "tasks": {},
                        "validation": {"ok": False, "rubber_stamp": False, "failures": [f]}})
    assert ("task <b>gender</b>: accuracy changed by -0.0500 from the baseline's 0.8000 "
            "(change threshold: direction higher_is_better, absolute -0.0200; missed by 0.0300; slice overall)") in page


def test_no_validation_file_means_unknown(run, tmp_path):
    assert validation_summary(str(tmp_path), fx.make_config()) == {
        "ok": None, "rubber_stamp": None, "missing_thresholds": None, "missing_slices": [], "missing_cross_slices": [],
        "checked": [], "failures": []}
    # an evaluation without a validation result (TFX's Evaluator always leaves one) and no blessing: no decision
    import shutil

    evaluation = str(tmp_path / "evaluation")
    shutil.copytree(run.eval_output, evaluation, ignore=shutil.ignore_patterns("validations*"))
    r = build_report(run.config, evaluation, run.model_dir, run.eval_files, blessed=None)
    assert (r["blessed"], r["blessed_from"]) == (None, "unknown")
    assert r["not_blessed_reason"] == ("no decision: the Evaluator's ModelBlessing has no `blessed` property and the "
                                       "evaluation output holds no TFMA validation result")


def test_report_gen_component_executor(run, tmp_path):
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.types import standard_artifacts

    def art(cls, uri):
        a = cls()
        a.uri = uri
        return a

    model = art(standard_artifacts.Model, str(tmp_path / "model"))
    blessing = art(standard_artifacts.ModelBlessing, str(tmp_path / "blessing"))
    blessing.set_int_custom_property("blessed", 0)
    out = art(Report, str(tmp_path / "report_artifact"))
    user_dir = str(tmp_path / "outputs" / "report")
    executor = ReportGen.EXECUTOR_SPEC.executor_class()
    executor.Do(
        {"evaluation": [art(standard_artifacts.ModelEvaluation, run.eval_output)], "model": [model],
         "examples": [art(standard_artifacts.Examples, os.path.join(run.root, "examples"))],
         "blessing": [blessing]},
        {"report": [out]},
        {"config_json": run.config.to_json(), "report_dir": user_dir})
    for d in (out.uri, user_dir):
        r = json.load(open(os.path.join(d, "report.json")))
        assert r["model_dir"] == os.path.join(model.uri, "Format-Serving")
        assert r["model_run_dir"] is None and r["tasks"]["age"]["training_curves"] == {}
        assert r["eval_data"] == eval_files(os.path.join(run.root, "examples"), run.config)
        assert len(r["eval_data"]) == 3 and r["blessed"] is False and r["blessed_from"] == "model blessing"
        assert os.path.exists(os.path.join(d, "index.html"))
        outcomes = json.load(open(os.path.join(d, "per_example.json")))
        # no saved model under model.uri: the gallery scanned nothing, the file still names every task
        assert {t: len(e["ids"]) for t, e in outcomes["tasks"].items()} == {t: 0 for t in fx.COUNTS}
    assert out.get_int_custom_property("blessed") == 0
    assert ReportGen.SPEC_CLASS.INPUTS["blessing"].optional
    # Without a blessing (optional input) the validation result decides; the
    # optional ModelRun adds the training curves.
    assert ReportGen.SPEC_CLASS.INPUTS["model_run"].optional
    executor.Do(
        {"evaluation": [art(standard_artifacts.ModelEvaluation, run.eval_output)], "model": [model],
         "examples": [art(standard_artifacts.Examples, os.path.join(run.root, "examples"))],
         "model_run": [art(standard_artifacts.ModelRun, run.model_run_dir)]},
        {"report": [out]}, {"config_json": run.config.to_json(), "report_dir": ""})
    r = json.load(open(os.path.join(out.uri, "report.json")))
    assert r["blessed"] is False and r["blessed_from"] == "tfma validation result"
    assert r["model_run_dir"] == run.model_run_dir and set(r["tasks"]["age"]["training_curves"]) == {"loss", "accuracy"}
    # KubeflowV2DagRunner accepts the custom artifact type's name.
    assert "components.Report" in compiler_utils.get_artifact_schema(Report)


def test_notebook_snippet_in_docs_runs(run, report, tmp_path, monkeypatch):
    """The pasteable block of docs/report.md, run against this run's TFMA output."""
    import re

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    doc = open(os.path.join(root, "docs", "report.md")).read()
    section = doc[doc.index("## Looking at a run's evaluation in a notebook"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    write_report(report, str(tmp_path / "outputs" / "report"))
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "docs/report.md", "exec"), scope)
    age = scope["age"]
    slices = {k for k, _ in age.slicing_metrics}
    assert (("source", "wiki"),) in slices and (("age_class", "30-39"),) in slices
    assert (("source", "genki4k"),) not in slices            # holds no age example
    assert all(set(m) == {"age"} for _, m in age.slicing_metrics)
    assert age.get_metrics_for_slice(output_name="age")["weighted_example_count"]["doubleValue"] == 20


def test_banner_explains_a_change_failure_and_a_pass():
    from components.report.page import render_html

    fail = {"task": "attrs", "metric": "auc/coat", "slice": "overall", "kind": "change", "value": -0.04,
            "baseline": 0.8, "relative_change": -0.05, "by": 0.03,
            "threshold": {"direction": "higher_is_better", "relative": -0.02}}
    page = render_html({"blessed": False, "blessed_from": "model blessing", "tasks": {},
                        "validation": {"ok": False, "rubber_stamp": False, "failures": [fail]}})
    assert ("task <b>attrs</b>: auc/coat changed by -0.0400 from the baseline's 0.8000 (relative -5.00 %) "
            "(change threshold: direction higher_is_better, relative -0.0200; missed by 0.0300; slice overall)") in page
    page = render_html({"blessed": True, "blessed_from": "model blessing", "tasks": {}, "max_regression": 0.02,
                        "validation": {"ok": True, "rubber_stamp": False, "failures": []}})
    assert "BLESSED" in page and "no gated metric worse by more than 0.0200 in its own unit" in page


def test_mtl_fallback_share_is_the_last_logged_and_warned_above_5_percent(run, tmp_path):
    """The Trainer logs `mtl_fallback_share` each epoch (Nash-MTL's failed solver steps); the report
    takes the end-of-training value and warns above 5 %."""
    from components.report.history import mtl_fallback_share

    model_run = tmp_path / "model_run"
    writer = tf.summary.create_file_writer(str(model_run / "train"))
    with writer.as_default():
        for step, share in enumerate([0.5, 0.2, 0.08]):
            tf.summary.scalar("epoch_mtl_fallback_share", share, step=step)
    writer.close()
    assert mtl_fallback_share(str(model_run)) == pytest.approx(0.08)
    assert mtl_fallback_share(str(tmp_path / "none")) == 0.0 and mtl_fallback_share(None) == 0.0
    r = build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=None,
                     model_run_dir=str(model_run))
    assert r["mtl_fallback_share"] == pytest.approx(0.08)
    assert [w for w in r["warnings"] if "solver failed on 8% of the training steps (above 5%)" in w]
