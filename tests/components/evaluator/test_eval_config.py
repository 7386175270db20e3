"""build_eval_config: the EvalConfig follows the task config (no TFMA run);
the `evaluation` config section and `tasks[].tolerance`."""
import json

import pytest
import tensorflow_model_analysis as tfma

from components.common.eval_config import build_eval_config
from config import ConfigError, config_from_json, load
from tests.components.evaluator import helpers as fx


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
    assert [list(s.feature_keys) for s in ec.slicing_specs[:3]] == [[], ["source"], ["task_index"]]
    # evaluation.slices of the fixture: smile, gender, age and attrs by class
    sql = [s.slice_keys_sql for s in ec.slicing_specs[3:]]
    assert len(sql) == 4 and all("AS v WITH OFFSET AS o WHERE v > 0.5" in q for q in sql)
    assert sql[2] == ("SELECT STRUCT(['0-19', '20-29', '30-39', '40-54', '55+'][OFFSET(o)] AS age_class) "
                      "FROM example.label_age AS v WITH OFFSET AS o WHERE v > 0.5")


def test_metrics_per_task_type():
    ec = build_eval_config(fx.make_config())
    counts = {"ExampleCount", "WeightedExampleCount"}
    age = _metrics(ec, "age")
    assert set(age) == counts | {"ArgmaxAccuracy", "MultiClassConfusionMatrixPlot", "ArgmaxPrecision",
                                 "ArgmaxRecall", "ArgmaxF1", "CalibrationPlot"}
    assert age["ArgmaxF1"][1] == [0, 1, 2, 3, 4] and age["ArgmaxF1"][0].module == "components.evaluator.metrics"
    smile = _metrics(ec, "smile")
    assert set(smile) == counts | {"ArgmaxAccuracy", "MultiClassConfusionMatrixPlot", "AUC", "ArgmaxPrecision",
                                   "ArgmaxRecall", "ArgmaxF1", "HistogramCalibration", "CalibrationPlot"}
    assert smile["AUC"][1] == [1] and smile["ArgmaxF1"][1] == [1]  # positive class = classes[1]
    assert smile["HistogramCalibration"][0].module == "components.evaluator.metrics"
    assert smile["CalibrationPlot"][0].config == '{"num_buckets": 10}'
    score = _metrics(ec, "score")
    assert set(score) == counts | {"MeanAbsoluteError", "MeanSquaredError", "RootMeanSquaredError",
                                   "WithinTolerance", "ErrorHistogram"}
    assert score["WithinTolerance"][0].config == '{"tolerance": 5.0}'
    assert json.loads(score["ErrorHistogram"][0].config)["edges"] == [k * 2.5 for k in range(-8, 9)]
    attrs = _metrics(ec, "attrs")
    assert set(attrs) == counts | {"SubsetAccuracy", "AUC", "BinaryAccuracy", "F1Score", "CalibrationPlot"}
    assert attrs["AUC"][1] == [0, 1, 2]


def test_regression_without_tolerance_has_no_within_tolerance():
    tasks = [dict(t) for t in fx.RAW_CONFIG["tasks"]]
    del tasks[3]["tolerance"]
    ec = build_eval_config(fx.make_config(tasks=tasks))
    assert set(_metrics(ec, "score")) == {"ExampleCount", "WeightedExampleCount", "MeanAbsoluteError",
                                          "MeanSquaredError", "RootMeanSquaredError"}
    tasks[3]["thresholds"] = {"within_tolerance": 0.5}
    with pytest.raises(ValueError, match=r"tasks\[3\]\.thresholds\.within_tolerance': within_tolerance needs "
                                         r"tasks\[3\]\.tolerance"):  # on load
        build_eval_config(fx.make_config(tasks=tasks))


def test_metric_configs_instantiate_in_tfma():
    """Every MetricConfig (custom module ones included) builds a TFMA metric."""
    from tensorflow_model_analysis.metrics import metric_specs

    ec = build_eval_config(fx.make_config())
    names = {metric_specs.metric_instance(m).name for spec in ec.metrics_specs for m in spec.metrics}
    assert {"accuracy", "precision", "recall", "f1", "root_mean_squared_error", "within_tolerance",
            "subset_accuracy", "error_histogram", "calibration_plot"} <= names


def test_thresholds_on_overall_slice_with_baseline_change():
    ec = build_eval_config(fx.make_config(), max_regression=0.05)
    acc = _metrics(ec, "age")["ArgmaxAccuracy"][0]
    (pst,) = acc.per_slice_thresholds
    assert list(pst.slicing_specs) == [tfma.SlicingSpec()]  # overall slice only
    assert pst.threshold.value_threshold.lower_bound.value == 1.01
    assert pst.threshold.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert pst.threshold.change_threshold.absolute.value == -0.05
    # gender has no threshold: its accuracy still may not regress vs the baseline.
    g = _metrics(ec, "gender")["ArgmaxAccuracy"][0].per_slice_thresholds[0].threshold
    assert not g.HasField("value_threshold") and g.change_threshold.absolute.value == -0.05
    # regression: MAE is gated lower-is-better; MSE and counts are not gated.
    score = _metrics(ec, "score")
    mae = score["MeanAbsoluteError"][0].per_slice_thresholds[0].threshold.change_threshold
    assert mae.direction == tfma.MetricDirection.LOWER_IS_BETTER and mae.absolute.value == 0.05
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
    with pytest.raises(ValueError, match=r"tasks\[2\]\.thresholds\.auc': no such gateable metric for a multiclass "
                                         r"task; valid: accuracy"):  # on load
        build_eval_config(fx.make_config(tasks=tasks))


def test_default_config_builds():
    config = load("configs/default.yaml")
    ec = build_eval_config(config)
    assert [list(s.output_names) for s in ec.metrics_specs] == [["smile"], ["smile"], ["gender"], ["gender"],
                                                                ["age"], ["age"]]
    # max_regression 0.02 (default), every classification task sliced by class, and the
    # cross-task slices age by gender and gender by age (the slice-only raw features).
    assert config.evaluation.max_regression == 0.02
    acc = _metrics(ec, "age")["ArgmaxAccuracy"][0].per_slice_thresholds[0].threshold
    assert acc.change_threshold.absolute.value == -0.02
    assert [s.slice_keys_sql.split(" AS ")[1].split(")")[0] for s in ec.slicing_specs[3:6]] == [
        "smile_class", "gender_class", "age_class"]
    assert [list(s.feature_keys) for s in ec.slicing_specs[6:]] == [["slice_age"], ["slice_gender"]]
    assert "ArgmaxFalseNegativeRate" in _metrics(ec, "age") and "ArgmaxFalseNegativeRate" not in _metrics(ec, "smile")


def test_max_regression_comes_from_the_config():
    ec = build_eval_config(fx.make_config(evaluation={"max_regression": 0.1}))
    g = _metrics(ec, "gender")["ArgmaxAccuracy"][0].per_slice_thresholds[0].threshold
    assert g.change_threshold.absolute.value == -0.1
    # an explicit argument still wins (callers of the old signature)
    assert _metrics(build_eval_config(fx.make_config(), max_regression=0.0), "gender")["ArgmaxAccuracy"][0] \
        .per_slice_thresholds[0].threshold.change_threshold.absolute.value == 0.0


def test_empty_slices_list_turns_class_slices_off():
    ec = build_eval_config(fx.make_config(evaluation={"slices": []}))
    assert len(ec.slicing_specs) == 3


def test_class_names_are_quoted_in_sql():
    tasks = [dict(t) for t in fx.RAW_CONFIG["tasks"]]
    tasks[1]["classes"] = ["it's", "back\\slash"]
    ec = build_eval_config(fx.make_config(tasks=tasks, evaluation={"slices": [{"task": "gender"}]}))
    assert "['it\\'s', 'back\\\\slash']" in ec.slicing_specs[3].slice_keys_sql


@pytest.mark.parametrize("evaluation, message", [
    ({"max_regression": 1.5}, r"'evaluation.max_regression': must be <= 0.99, received 1.5"),
    ({"max_regression": "2%"}, r"'evaluation.max_regression': expected a number, received '2%'"),
    ({"baseline": 1}, r"'evaluation.baseline': unknown key; valid keys here: "
                      r"confidence_intervals, gate_on, max_regression, min_slice_size, slices"),
    ({"confidence_intervals": "yes"}, r"'evaluation.confidence_intervals': expected true or false, received 'yes'"),
    ({"confidence_intervals": False, "gate_on": "lower_bound"},
     r"'evaluation.gate_on': lower_bound gates on the confidence interval; evaluation.confidence_intervals is false"),
    ({"gate_on": "upper"}, r"'evaluation.gate_on': received 'upper'; valid: value, lower_bound"),
    ({"gate_on": True}, r"'evaluation.gate_on': received True; valid: value, lower_bound"),
    ({"slices": {"task": "age"}}, r"'evaluation.slices': expected a list of \{task, by\}"),
    ({"slices": [{"task": "height"}]}, r"'evaluation.slices\[0\].task': received 'height'; valid: smile, gender"),
    ({"slices": [{"task": "score"}]}, r"'evaluation.slices\[0\].task': 'score' is a regression task"),
    ({"slices": [{"task": "smile", "by": "age"}]},
     r"'evaluation.slices\[0\].by': received task 'age': no source labels both 'smile' and 'age'"),
    ({"slices": [{"task": "gender", "by": "source"}]},
     r"'evaluation.slices\[0\].by': received 'source'; valid: class, age"),
])
def test_evaluation_section_errors_name_the_key(evaluation, message):
    with pytest.raises(ConfigError, match=message):
        fx.make_config(evaluation=evaluation)


@pytest.mark.parametrize("index, tolerance, message", [
    (3, 0, r"'tasks\[3\].tolerance': must be > 0, received 0"),
    (3, "5y", r"'tasks\[3\].tolerance': expected a number, received '5y'"),
    (2, 5, r"'tasks\[2\].tolerance': only regression tasks have a tolerance; this task is multiclass"),
])
def test_tolerance_errors_name_the_key(index, tolerance, message):
    tasks = [dict(t) for t in fx.RAW_CONFIG["tasks"]]
    tasks[index]["tolerance"] = tolerance
    with pytest.raises(ConfigError, match=message):
        fx.make_config(tasks=tasks)


def test_evaluation_settings_survive_json_and_leave_the_data_view():
    from config import EvaluationConfig, data_view

    config = fx.make_config()
    assert config_from_json(config.to_json()) == config
    assert config.task("score").tolerance == 5.0 and config.evaluation.max_regression == 0.05
    view = data_view(config)
    assert view.evaluation == EvaluationConfig() and view.task("score").tolerance is None


def test_per_class_and_tolerance_thresholds():
    tasks = [dict(t) for t in fx.RAW_CONFIG["tasks"]]
    tasks[2]["thresholds"] = {"f1": 0.1}                    # every age class's argmax F1 >= 0.1
    tasks[3]["thresholds"] = {"within_tolerance": 0.4}      # >= 40 % of scores within ± 5
    ec = build_eval_config(fx.make_config(tasks=tasks))
    f1, class_ids = _metrics(ec, "age")["ArgmaxF1"]
    assert class_ids == [0, 1, 2, 3, 4]
    assert f1.per_slice_thresholds[0].threshold.value_threshold.lower_bound.value == 0.1
    wt = _metrics(ec, "score")["WithinTolerance"][0].per_slice_thresholds[0].threshold
    assert wt.value_threshold.lower_bound.value == 0.4
    assert wt.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER


def test_train_view_drops_only_what_the_trainer_does_not_use():
    from config import EvaluationConfig, train_view

    config = fx.make_config()
    view = train_view(config)
    assert view.evaluation == EvaluationConfig() and view.task("score").tolerance is None
    assert all(t.thresholds == {} for t in view.tasks)
    # Training settings and loss weights stay: changing them must retrain.
    assert view.train == config.train and view.model == config.model
    assert [t.loss_weight for t in view.tasks] == [t.loss_weight for t in config.tasks]


def test_change_thresholds_are_absolute_not_relative():
    """TFMA computes a relative change as (candidate - baseline) / baseline, its docs say
    candidate / baseline (model-analysis issue 520): the change thresholds are absolute."""
    ec = build_eval_config(fx.make_config())
    for spec in ec.metrics_specs:
        for m in spec.metrics:
            for pst in m.per_slice_thresholds:
                ct = pst.threshold.change_threshold
                assert not ct.HasField("relative") and ct.HasField("absolute")
                higher = ct.direction == tfma.MetricDirection.HIGHER_IS_BETTER
                assert ct.absolute.value == (-0.05 if higher else 0.05)


def test_max_regression_is_a_difference_in_the_metric_unit():
    """max_regression 0.05 through TFMA's own validator: accuracy 0.80 -> 0.751 passes, 0.749 fails;
    MAE 2.00 -> 2.049 passes, 2.051 fails (a relative 0.05 would have allowed 2.10)."""
    from tensorflow_model_analysis.evaluators import metrics_validator

    ec = build_eval_config(fx.make_config())
    # as TFX's Evaluator does with a baseline model
    ec.model_specs[0].name = "candidate"
    ec.model_specs.add().CopyFrom(ec.model_specs[0])
    ec.model_specs[1].name, ec.model_specs[1].is_baseline = "baseline", True
    ec = tfma.utils.update_eval_config_with_defaults(ec, has_baseline=True)

    def ok(output, name, cand, base):
        key = dict(name=name, output_name=output, example_weighted=True)
        cand_key = tfma.metrics.MetricKey(model_name="candidate", **key)
        base_key = tfma.metrics.MetricKey(model_name="baseline", **key)
        diff_key = tfma.metrics.MetricKey(model_name="candidate", is_diff=True, **key)
        result = metrics_validator.validate_metrics(
            ((), {cand_key: cand, base_key: base, diff_key: cand - base}), ec)
        mine = [f for s in result.metric_validations_per_slice for f in s.failures
                if (f.metric_key.name, f.metric_key.output_name) == (name, output)]
        assert all(f.metric_key.is_diff and f.metric_threshold.HasField("change_threshold") for f in mine)
        return not mine

    assert ok("gender", "accuracy", 0.751, 0.80) and not ok("gender", "accuracy", 0.749, 0.80)
    assert ok("gender", "accuracy", 0.95, 0.80)
    # baseline 0.50: absolute allows 0.46 (a relative -0.05 would stop at 0.475)
    assert ok("gender", "accuracy", 0.46, 0.50) and not ok("gender", "accuracy", 0.449, 0.50)
    assert ok("score", "mean_absolute_error", 2.049, 2.00) and not ok("score", "mean_absolute_error", 2.051, 2.00)
    assert not ok("score", "mean_absolute_error", 2.09, 2.00)   # relative 0.05 would pass it


def test_confidence_intervals_when_asked_use_the_poisson_bootstrap():
    ec = build_eval_config(fx.make_config(evaluation={**fx.RAW_CONFIG["evaluation"], "confidence_intervals": True}))
    assert ec.options.compute_confidence_intervals.value is True
    assert ec.options.confidence_intervals.method == tfma.ConfidenceIntervalOptions.POISSON_BOOTSTRAP
    # TFX hands TFMA the config after update_eval_config_with_defaults: the method must survive it
    # (left unset, TFMA would pick the jackknife).
    updated = tfma.utils.update_eval_config_with_defaults(ec, has_baseline=False, rubber_stamp=True)
    assert updated.options.confidence_intervals.method == tfma.ConfidenceIntervalOptions.POISSON_BOOTSTRAP
    off = build_eval_config(fx.make_config())  # the default: off
    assert not off.options.HasField("compute_confidence_intervals")
    assert not off.options.HasField("confidence_intervals")
    assert off.options.include_default_metrics.value is False


def test_gate_on_defaults_to_value_and_survives_json():

    assert fx.make_config().evaluation.gate_on == "value"
    config = fx.make_config(evaluation={"gate_on": "lower_bound", "confidence_intervals": True, "slices": []})
    assert config.evaluation.gate_on == "lower_bound"
    assert config_from_json(config.to_json()) == config
    assert fx.make_config(evaluation={"gate_on": "lower_bound", "confidence_intervals": True}
                          ).evaluation.gate_on == "lower_bound"
