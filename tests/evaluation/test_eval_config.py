"""build_eval_config: the EvalConfig follows the task config (no TFMA run)."""
import pytest
import tensorflow_model_analysis as tfma

from components.eval_config import DEFAULT_MAX_REGRESSION, build_eval_config
from pipeline.config import load

from . import fixtures as fx


def _metrics(ec, task):
    """{class_name: (MetricConfig, binarized class ids)} for one output."""
    out = {}
    for spec in ec.metrics_specs:
        if list(spec.output_names) == [task]:
            for m in spec.metrics:
                out[m.class_name] = (m, list(spec.binarize.class_ids.values))
    return out


def test_model_spec_uses_per_output_label_and_weight_maps():
    ec = build_eval_config(fx.make_config())
    (spec,) = ec.model_specs
    assert spec.signature_name == "serving_default"
    assert list(spec.preprocessing_function_names) == ["transform_features"]
    assert dict(spec.label_keys) == {t: f"label_{t}" for t in fx.COUNTS}
    assert dict(spec.example_weight_keys) == {t: f"weight_{t}" for t in fx.COUNTS}
    assert not spec.label_key and not spec.example_weight_key
    assert ec.options.include_default_metrics.value is False
    assert [list(s.feature_keys) for s in ec.slicing_specs] == [[], ["source"], ["task_index"]]


def test_metrics_per_task_type():
    ec = build_eval_config(fx.make_config())
    counts = {"ExampleCount", "WeightedExampleCount"}
    assert set(_metrics(ec, "age")) == counts | {"CategoricalAccuracy", "MultiClassConfusionMatrixPlot"}
    smile = _metrics(ec, "smile")
    assert set(smile) == counts | {"CategoricalAccuracy", "MultiClassConfusionMatrixPlot",
                                   "AUC", "Precision", "Recall", "Calibration"}
    assert smile["AUC"][1] == [1]  # positive class = classes[1]
    assert smile["CategoricalAccuracy"][0].config == '{"name": "accuracy"}'
    assert set(_metrics(ec, "score")) == counts | {"MeanAbsoluteError", "MeanSquaredError"}
    attrs = _metrics(ec, "attrs")
    assert set(attrs) == counts | {"AUC", "BinaryAccuracy"}
    assert attrs["AUC"][1] == [0, 1, 2]


def test_thresholds_on_overall_slice_with_baseline_change():
    ec = build_eval_config(fx.make_config(), max_regression=0.05)
    acc = _metrics(ec, "age")["CategoricalAccuracy"][0]
    (pst,) = acc.per_slice_thresholds
    assert list(pst.slicing_specs) == [tfma.SlicingSpec()]  # overall slice only
    assert pst.threshold.value_threshold.lower_bound.value == 1.01
    assert pst.threshold.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert pst.threshold.change_threshold.relative.value == -0.05
    # gender has no threshold: its accuracy still may not regress vs the baseline.
    g = _metrics(ec, "gender")["CategoricalAccuracy"][0].per_slice_thresholds[0].threshold
    assert not g.HasField("value_threshold") and g.change_threshold.relative.value == -0.05
    # regression: MAE is gated lower-is-better; MSE and counts are not gated.
    score = _metrics(ec, "score")
    mae = score["MeanAbsoluteError"][0].per_slice_thresholds[0].threshold.change_threshold
    assert mae.direction == tfma.MetricDirection.LOWER_IS_BETTER and mae.relative.value == 0.05
    assert not score["MeanSquaredError"][0].per_slice_thresholds
    assert not score["ExampleCount"][0].per_slice_thresholds
    assert not ec.metrics_specs[0].thresholds and not ec.metrics_specs[0].per_slice_thresholds


def test_regression_threshold_is_a_ceiling():
    raw = dict(fx.RAW_CONFIG)
    raw["tasks"] = [dict(t) for t in raw["tasks"]]
    raw["tasks"][3]["thresholds"] = {"mean_absolute_error": 12.5}
    ec = build_eval_config(fx.make_config(tasks=raw["tasks"]))
    vt = _metrics(ec, "score")["MeanAbsoluteError"][0].per_slice_thresholds[0].threshold.value_threshold
    assert vt.upper_bound.value == 12.5 and not vt.HasField("lower_bound")


def test_unknown_threshold_metric_names_key_and_valid_names():
    tasks = [dict(t) for t in fx.RAW_CONFIG["tasks"]]
    tasks[2]["thresholds"] = {"auc": 0.7}  # multiclass has no auc
    with pytest.raises(ValueError, match=r"tasks\[age\]\.thresholds\.auc.*valid: accuracy"):
        build_eval_config(fx.make_config(tasks=tasks))


def test_default_config_builds():
    ec = build_eval_config(load("configs/default.yaml"))
    assert [list(s.output_names) for s in ec.metrics_specs] == [["smile"], ["smile"], ["gender"], ["gender"], ["age"]]
    assert DEFAULT_MAX_REGRESSION == 0.02
