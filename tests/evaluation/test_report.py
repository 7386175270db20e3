"""build_report / write_report / ReportGen on the shared TFMA run, and the
validation-failure reporting on hand-made validation results."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import validation_result_pb2

from components.report import Report, ReportGen, build_report, eval_files, validation_summary, write_report

from . import fixtures as fx


@pytest.fixture(scope="module")
def report(run):
    return build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=None)


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
    assert [t for t, e in report["tasks"].items() if not e["passed"]] == ["age"]


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


def test_write_report(tmp_path, report):
    paths = write_report(report, str(tmp_path / "report"))
    assert [os.path.basename(p) for p in paths] == ["report.json", "index.html"]
    assert json.loads(open(paths[0]).read()) == report
    page = open(paths[1]).read()
    assert "NOT BLESSED" in page and "<style>" in page
    assert "http" not in page and "<script" not in page      # self-contained
    for name in fx.COUNTS:
        assert f"id='task-{name}'" in page
    assert "task <b>age</b>: accuracy" in page


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


def test_no_validation_file_means_unknown(tmp_path):
    assert validation_summary(str(tmp_path), fx.make_config()) == {"ok": None, "rubber_stamp": None, "failures": []}


def test_report_gen_component_executor(run, tmp_path):
    from tfx.types import standard_artifacts
    from tfx.orchestration.kubeflow.v2 import compiler_utils

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
        assert r["eval_data"] == eval_files(os.path.join(run.root, "examples"), run.config)
        assert len(r["eval_data"]) == 3 and r["blessed"] is False and r["blessed_from"] == "model blessing"
        assert os.path.exists(os.path.join(d, "index.html"))
    assert out.get_int_custom_property("blessed") == 0
    # Without a blessing (optional input) the validation result decides.
    assert ReportGen.SPEC_CLASS.INPUTS["blessing"].optional
    executor.Do(
        {"evaluation": [art(standard_artifacts.ModelEvaluation, run.eval_output)], "model": [model],
         "examples": [art(standard_artifacts.Examples, os.path.join(run.root, "examples"))]},
        {"report": [out]}, {"config_json": run.config.to_json(), "report_dir": ""})
    r = json.load(open(os.path.join(out.uri, "report.json")))
    assert r["blessed"] is False and r["blessed_from"] == "tfma validation result"
    # KubeflowV2DagRunner accepts the custom artifact type's name.
    assert "components.Report" in compiler_utils.get_artifact_schema(Report)
