"""runners.compare: single-task variants, relative gains, delta_m, the report section.

The orchestration is run with a fake `run` that writes reports, so no DAG
runs here (tests/e2e/test_compare_e2e.py runs a tiny real one).
"""
import dataclasses
import json
import os

import pytest
import yaml

from config import ConfigError, SliceConfig, config_from_json, data_view, load, parse
from runners import compare, compare_base, compare_interval

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, "configs", "default.yaml")
MARKERS = (compare.HTML_START, compare.HTML_END)


@pytest.fixture(scope="module")
def cfg():
    return load(DEFAULT)


def test_single_task_variants_of_the_default_config(cfg):
    smile = compare_base.single_task_config(cfg, "smile")
    assert smile.name == "bknet_smile_gender_age_single_smile"
    assert smile.task_names == ("smile",)
    assert [(s.name, s.tasks) for s in smile.sources] == [("genki4k", ("smile",))]  # wiki labels no smile

    age = compare_base.single_task_config(cfg, "age")
    assert age.task_names == ("age",) and age.task_index("age") == 0
    (wiki,) = age.sources
    assert wiki.tasks == ("age",) and wiki.path == cfg.sources[1].path
    # gender_task named a dropped task: gone, so the source emits only age examples
    assert "gender_task" not in wiki.options
    assert wiki.options["age_task"] == "age" and wiki.options["age_bins"] == [20, 30, 40, 55]

    gender = compare_base.single_task_config(cfg, "gender")
    (wiki,) = gender.sources
    assert wiki.options["gender_task"] == "gender" and "age_task" not in wiki.options

    for v in (smile, gender, age):  # everything but tasks/sources/name is the same
        assert (v.image, v.splits, v.model, v.beam) == (cfg.image, cfg.splits, cfg.model, cfg.beam)
        # the task's own class slice stays; cross-task slices go (the other task is gone)
        assert v.evaluation == dataclasses.replace(cfg.evaluation, slices=(SliceConfig(v.task_names[0]),))
        assert v.train == cfg.train and v.train.steps == 600 and v.train.seed == 42
        assert v.tasks[0] == cfg.task(v.task_names[0])  # thresholds and loss weight kept


def test_variants_pass_the_format_checks_and_change_the_data_exec_properties(cfg):
    from data_prep.convert import validate_sources

    for task in cfg.task_names:
        v = compare_base.single_task_config(cfg, task)
        validate_sources(v)  # raises ConfigError on an option naming a missing task
        # ExampleGen/Transform get data_view as exec property: a different one, so
        # no cache could hand a variant the multitask conversion.
        assert data_view(v).to_json() != data_view(cfg).to_json()


def test_options_mapping_dropped_tasks_are_removed_for_every_format(tmp_path):
    """utkface (`<x>_task` + `age_bins`), fashionai (attr -> task), csv (task -> column):
    each variant passes its format's own checks, which reject options naming missing tasks."""
    from data_prep.convert import validate_sources

    raw = {"name": "formats", "tasks": [
        {"name": "age", "type": "multiclass", "classes": ["young", "old"]},
        {"name": "gender", "type": "binary", "classes": ["female", "male"]},
        {"name": "race", "type": "multiclass", "classes": ["White", "Black", "Asian", "Indian", "Others"]},
        {"name": "collar", "type": "multiclass", "classes": list("abcde")},
        {"name": "lapel", "type": "multiclass", "classes": list("abcde")}],
        "sources": [
            {"name": "utk", "format": "utkface", "path": "utk", "tasks": ["age", "gender", "race"],
             "options": {"age_task": "age", "age_bins": [40], "gender_task": "gender", "race_task": "race"}},
            {"name": "fashion", "format": "fashionai", "path": "fa", "tasks": ["collar", "lapel"],
             "options": {"attributes": {"collar_design_labels": "collar", "lapel_design_labels": "lapel"}}},
            {"name": "sheet", "format": "csv", "path": "csv", "tasks": ["age", "gender"],
             "options": {"columns": {"age": "age_group", "gender": "sex"}}}]}
    cfg = parse(raw, base_dir=str(tmp_path))
    validate_sources(cfg)
    options = {t: {s.name: dict(s.options) for s in compare_base.single_task_config(cfg, t).sources}
               for t in cfg.task_names}
    assert options["gender"] == {"utk": {"gender_task": "gender"}, "sheet": {"columns": {"gender": "sex"}}}
    assert options["age"] == {"utk": {"age_task": "age", "age_bins": [40]}, "sheet": {"columns": {"age": "age_group"}}}
    assert options["race"] == {"utk": {"race_task": "race"}}
    assert options["lapel"] == {"fashion": {"attributes": {"lapel_design_labels": "lapel"}}}
    for t in cfg.task_names:
        validate_sources(compare_base.single_task_config(cfg, t))


def test_sampling_weights_of_dropped_sources_are_dropped(cfg):
    train = dataclasses.replace(cfg.train, sampling=dataclasses.replace(
        cfg.train.sampling, type="weights", weights={"genki4k": 1.0, "wiki": 3.0}))
    v = compare_base.single_task_config(dataclasses.replace(cfg, train=train), "age")
    assert v.train.sampling.type == "weights" and dict(v.train.sampling.weights) == {"wiki": 3.0}


def test_evaluation_slices_of_dropped_tasks_are_dropped(cfg):
    ev = dataclasses.replace(cfg.evaluation, slices=(SliceConfig("smile"), SliceConfig("age"),
                                                     SliceConfig("age", "gender")))
    v = compare_base.single_task_config(dataclasses.replace(cfg, evaluation=ev), "age")
    assert v.evaluation.slices == (SliceConfig("age"),)
    assert compare_base.single_task_config(dataclasses.replace(cfg, evaluation=ev), "gender").evaluation.slices == ()
    default = dataclasses.replace(cfg, evaluation=dataclasses.replace(cfg.evaluation, slices=None))
    assert compare_base.single_task_config(default, "age").evaluation.slices is None  # default (None) kept


def test_model_params_keyed_by_dropped_tasks_are_dropped():
    raw = yaml.safe_load(open(DEFAULT))
    raw["model"] = {"name": "multibranch", "params": {"dense": [64], "towers": {
        "age": {"filters": [32, 64]}, "gender": {"dense": [32]}}}}
    cfg = parse(raw, base_dir=os.path.dirname(DEFAULT))
    age = compare_base.single_task_config(cfg, "age")
    assert dict(age.model.params) == {"dense": [64], "towers": {"age": {"filters": [32, 64]}}}
    assert config_from_json(age.to_json()) == age  # validates: gender's tower would be an unknown task
    assert dict(compare_base.single_task_config(cfg, "smile").model.params) == {"dense": [64], "towers": {}}


def test_variant_config_file_loads_back_unchanged(cfg, tmp_path):
    v = compare_base.single_task_config(cfg, "age")
    path = compare_base.write_config(v, str(tmp_path / "age" / "config.yaml"))
    assert load(path) == v


def test_too_long_pipeline_name_fails_naming_the_key(cfg):
    with pytest.raises(ConfigError, match=r"config key 'name'.*is 68 characters; TFX allows 63"):
        compare_base.single_task_config(dataclasses.replace(cfg, name="n" * 57), "age")


def test_metric_directions_agree_with_the_eval_config():
    from components.common import eval_config

    assert compare_base.PRIMARY_METRIC == eval_config.PRIMARY_METRIC
    for task_type, metric in compare_base.PRIMARY_METRIC.items():
        (m,) = [d for d in eval_config.METRICS[task_type] if d.name == metric]
        assert compare_base.LOWER_IS_BETTER[metric] == (m.direction == eval_config.LOWER)
        assert compare_base.task_metric(task_type) == (metric, m.direction == eval_config.LOWER)


def test_relative_gain_and_delta_m_exact():
    assert compare_base.relative_gain(0.8, 0.75, False) == pytest.approx(0.05 / 0.75)  # +6.67 %
    assert compare_base.relative_gain(0.6, 0.75, False) == pytest.approx(-0.2)
    assert compare_base.relative_gain(4.0, 5.0, True) == pytest.approx(0.2)  # lower MAE: a gain
    assert compare_base.relative_gain(6.0, 5.0, True) == pytest.approx(-0.2)
    assert compare_base.relative_gain(0.5, 0.0, False) is None
    assert compare_base.relative_gain(None, 0.5, False) is None
    assert compare_base.delta_m({"a": 0.1, "b": -0.04, "c": 0.0}) == pytest.approx(0.02)
    assert compare_base.delta_m({"a": 0.1, "b": None}) is None


def _task(ttype, metrics, n, classes=("a", "b")):
    return {"type": ttype, "classes": list(classes), "metrics": metrics, "eval_examples": n}


def test_task_figure_per_type():
    assert compare_base.task_figure(_task("binary", {"accuracy": 0.9, "auc": 0.95}, 10)) == 0.9
    assert compare_base.task_figure(_task("regression", {"mean_absolute_error": 3.5}, 10, ())) == 3.5
    ml = _task("multilabel", {"auc/x": 0.7, "auc/y": 0.9, "binary_accuracy/x": 0.1}, 10, ("x", "y"))
    assert compare_base.task_figure(ml) == pytest.approx(0.8)
    assert compare_base.task_figure(_task("multilabel", {"auc/x": 0.7}, 10, ("x", "y"))) is None
    assert compare_base.task_figure(_task("binary", {}, 0)) is None


def _config_with_regression(cfg):
    reg = dataclasses.replace(cfg.tasks[2], name="age", type="regression", classes=(), thresholds={})
    return dataclasses.replace(cfg, tasks=(cfg.tasks[0], reg))


def test_build_comparison_exact(cfg):
    config = _config_with_regression(cfg)
    multi = {"tasks": {"smile": _task("binary", {"accuracy": 0.9}, 110),
                       "age": _task("regression", {"mean_absolute_error": 6.0}, 142, ())}}
    single = {"smile": {"tasks": {"smile": _task("binary", {"accuracy": 0.8}, 110)}},
              "age": {"tasks": {"age": _task("regression", {"mean_absolute_error": 5.0}, 140, ())}}}
    c = compare.build_comparison(multi, single, config)
    assert c["tasks"]["smile"] == {"metric": "accuracy", "lower_is_better": False, "single_task": 0.8,
                                   "multitask": 0.9, "gain": pytest.approx(0.125), "eval_examples": 110,
                                   "eval_examples_single_task": 110, "examples_matched": None, "paired": None}
    assert c["tasks"]["age"]["metric"] == "mean_absolute_error" and c["tasks"]["age"]["lower_is_better"]
    assert c["tasks"]["age"]["gain"] == pytest.approx(-0.2)
    assert c["delta_m"] == pytest.approx((0.125 - 0.2) / 2)  # -3.75 %
    assert c["train"] == {"steps": 600, "batch_size": 32, "seed": 42}
    assert c["delta_m_ci95"] is None  # no per-example outcomes given
    assert c["delta_m_ci_method"] == "paired bootstrap over eval examples, B=1000"
    assert c["warnings"] == ["task age: 142 eval examples in the multitask run, 140 in the single-task run; "
                             "the figures are not on the same examples"]
    assert compare.format_table(c) == (
        "task   metric               single-task  multitask  gain   \n"
        "smile  accuracy             0.8000       0.9000     +12.50%\n"
        "age    mean_absolute_error  5.0000       6.0000     -20.00%\n"
        "delta_m (mean relative gain of multitask): -3.75%")
    interval = {"ci95": [-0.1, 0.0125], "tasks": {"smile": {"matched": 110, "paired": True}},
                "warnings": ["task age: 140 of 142 multitask and 140 single-task eval examples match by id; ..."]}
    c = compare.build_comparison(multi, single, config, interval)
    assert c["delta_m_ci95"] == [-0.1, 0.0125]
    assert (c["tasks"]["smile"]["examples_matched"], c["tasks"]["smile"]["paired"]) == (110, True)
    assert (c["tasks"]["age"]["examples_matched"], c["tasks"]["age"]["paired"]) == (None, None)
    assert c["warnings"][1:] == interval["warnings"]
    assert compare.format_table(c).endswith(
        "delta_m (mean relative gain of multitask): -3.75%, 95% interval [-10.00%, +1.25%] "
        "(paired bootstrap over eval examples, B=1000)")
    assert ("&Delta;m = -3.75%</b> (mean relative gain over tasks), 95% interval [-10.00%, +1.25%] "
            "(paired bootstrap over eval examples, B=1000)</p>") in compare.render_html(c)


def test_html_section_goes_before_body_end_and_replaces_an_earlier_one(cfg):
    c = compare.build_comparison(
        {"tasks": {t: _task("binary", {"accuracy": 0.5}, 4) for t in cfg.task_names}},
        {t: {"tasks": {t: _task("binary", {"accuracy": 0.4}, 4)}} for t in cfg.task_names}, cfg)
    section = compare.render_html(c)
    assert "<td" in section and "+25.00%" in section and "&Delta;m = +25.00%" in section
    page = "<html><body><h1>report</h1></body></html>"
    once = compare_base.insert_html(page, section, MARKERS)
    assert once.startswith("<html><body><h1>report</h1>" + compare.HTML_START) and once.endswith("</body></html>")
    c["tasks"]["smile"]["gain"] = -0.5
    twice = compare_base.insert_html(once, compare.render_html(c), MARKERS)
    assert twice.count(compare.HTML_START) == 1 and twice.count("<section") == 1 and "-50.00%" in twice
    assert compare_base.insert_html("no body", "S", MARKERS) == "no bodyS"


def _outcomes(task, accuracy, n=40):
    right = round(accuracy * n)
    return {"metric": "accuracy", "ids": [f"src/{k}/{task}" for k in range(n)],
            "scores": [1.0] * right + [0.0] * (n - right)}


def _fake_run(figures, calls):
    """A `run` that writes report.json + index.html as run_local.py would."""
    def run(config_path, out, no_cache):
        config = load(config_path)
        calls.append((config.name, config.task_names, out, no_cache))
        tasks = {t: _task("binary" if t != "age" else "multiclass",
                          {"accuracy": figures[(len(config.tasks) > 1, t)]}, 7) for t in config.task_names}
        os.makedirs(os.path.join(out, "report"), exist_ok=True)
        with open(os.path.join(out, "report", "report.json"), "w") as f:
            json.dump({"config_name": config.name, "tasks": tasks}, f)
        with open(os.path.join(out, "report", "index.html"), "w") as f:
            f.write("<html><body>per-task report</body></html>")
        # per-example outcomes of 40 eval examples per task, accuracy = the figure (ReportGen's per_example.json)
        with open(os.path.join(out, "report", "per_example.json"), "w") as f:
            json.dump({"tasks": {t: _outcomes(t, figures[(len(config.tasks) > 1, t)]) for t in config.task_names}}, f)
        return 12.34
    return run


def test_compare_runs_every_variant_and_writes_the_comparison(tmp_path):
    figures = {(True, "smile"): 0.9, (False, "smile"): 0.8, (True, "gender"): 0.9, (False, "gender"): 0.9,
               (True, "age"): 0.5, (False, "age"): 0.625}
    calls = []
    out = tmp_path / "out"
    c = compare.compare(DEFAULT, str(out), run=_fake_run(figures, calls), log=lambda s: None)
    assert [(n, t, o) for n, t, o, _ in calls] == [
        ("bknet_smile_gender_age", ("smile", "gender", "age"), str(out)),
        ("bknet_smile_gender_age_single_smile", ("smile",), str(out / "compare" / "smile")),
        ("bknet_smile_gender_age_single_gender", ("gender",), str(out / "compare" / "gender")),
        ("bknet_smile_gender_age_single_age", ("age",), str(out / "compare" / "age"))]
    gains = {t: v["gain"] for t, v in c["tasks"].items()}
    assert gains == pytest.approx({"smile": 0.125, "gender": 0.0, "age": -0.2})
    assert c["delta_m"] == pytest.approx(-0.075 / 3)
    assert c["runs"]["age"] == {"output_dir": str(out / "compare" / "age"),
                                "config": str(out / "compare" / "age" / "config.yaml"), "wall_s": 12.3}

    report = json.loads((out / "report" / "report.json").read_text())
    assert report["config_name"] == "bknet_smile_gender_age" and "smile" in report["tasks"]  # kept
    assert report["comparison"]["delta_m"] == pytest.approx(-0.025)
    assert set(report["comparison"]["tasks"]["age"]) >= {"single_task", "multitask", "gain", "metric"}
    assert json.loads((out / "report" / "comparison.json").read_text()) == report["comparison"]
    # delta_m's interval: the paired bootstrap over the runs' per_example.json, 40 examples matched per task
    expected = compare_interval.delta_m_interval({t: _outcomes(t, figures[(True, t)]) for t in gains},
                                                 {t: _outcomes(t, figures[(False, t)]) for t in gains})
    assert c["delta_m_ci95"] == expected["ci95"] and c["delta_m_ci95"][0] < c["delta_m"] < c["delta_m_ci95"][1]
    assert all((v["examples_matched"], v["paired"]) == (40, True) for v in c["tasks"].values())
    assert report["comparison"]["delta_m_ci95"] == c["delta_m_ci95"] and c["warnings"] == []
    page = (out / "report" / "index.html").read_text()
    assert page.startswith("<html><body>per-task report" + compare.HTML_START) and "-20.00%" in page

    # Again (a cached rerun rewrites nothing): still one section, same figures.
    compare.compare(DEFAULT, str(out), run=_fake_run(figures, calls), log=lambda s: None)
    assert (out / "report" / "index.html").read_text().count(compare.HTML_START) == 1


def test_cli_bad_config_exits_2_before_any_run(tmp_path, capsys):
    raw = yaml.safe_load(open(DEFAULT))
    raw["sources"][1]["options"]["age_task"] = "gender"  # wrong type: binary, no age bins fit
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    assert compare.main(["--config", str(bad), "--output-dir", str(tmp_path / "out")]) == 2
    assert "config key 'sources[1].options." in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_with_a_compare_section_runs_the_grid(tmp_path, monkeypatch):
    from runners import grid

    raw = yaml.safe_load(open(DEFAULT))
    for s in raw["sources"]:
        s["path"] = os.path.abspath(os.path.join(os.path.dirname(DEFAULT), s["path"]))
    path = tmp_path / "c.yaml"
    asked = []
    monkeypatch.setattr(grid, "main", lambda argv: asked.append(argv) or 0)
    path.write_text(yaml.safe_dump({**raw, "compare": {"methods": ["none", "pcgrad"]}}))
    assert compare.main(["--config", str(path), "--output-dir", "o", "--no-cache"]) == 0
    assert asked == [["--config", str(path), "--output-dir", "o", "--no-cache"]]
    path.write_text(yaml.safe_dump(raw))  # no compare section: the one-seed comparison, not the grid
    monkeypatch.setattr(compare, "compare", lambda *a: (_ for _ in ()).throw(ConfigError("ran compare")))
    assert compare.main(["--config", str(path), "--output-dir", "o"]) == 2 and len(asked) == 1
