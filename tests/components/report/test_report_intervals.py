"""Issue 17 on the shared TFMA run: confidence intervals in report.json and on
the page, evaluation.gate_on: lower_bound (the gate and the blessing it
changes), the summary table, the model card and the data section."""
import json
import os

import pytest
import tensorflow_model_analysis as tfma

from components.common.eval_config import build_eval_config
from components.common.interval_bounds import bound_failures
from components.common.proportions import proportion_interval
from components.evaluator.interval_gate import apply_gate
from components.report.component import Report, ReportGen, build_report, write_report
from components.report.model_card import MODEL_CARD_JSON, SCHEMA_VERSION
from components.report.page import is_constant, render_html, same_as_overall, summary_table
from tests.components.evaluator import helpers as fx

# Intervals cost ~28x the TFMA time (docs/report.md#confidence-intervals): these run on their
# own evaluation with `confidence_intervals: true`, in `make test-all`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(run_ci):
    return run_ci


@pytest.fixture(scope="module")
def report(run):
    return build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=None,
                        model_run_dir=run.model_run_dir)


def _tfma_intervals(eval_output):
    """{(output, name, class_id): [lo, hi]} of the overall slice, straight from TFMA's protos."""
    out = {}
    for ps in tfma.load_metrics(eval_output):
        if ps.slice_key.single_slice_keys:
            continue
        for kv in ps.metric_keys_and_values:
            if kv.HasField("confidence_interval") and kv.confidence_interval.lower_bound.HasField("double_value"):
                cid = kv.key.sub_key.class_id.value if kv.key.sub_key.HasField("class_id") else None
                out[(kv.key.output_name, kv.key.name, cid)] = [kv.confidence_interval.lower_bound.double_value.value,
                                                               kv.confidence_interval.upper_bound.double_value.value]
    return out


def test_every_gateable_metric_has_an_interval(run, report):
    raw = _tfma_intervals(run.eval_output)
    assert raw, "TFMA wrote no confidence intervals"
    for name, t in report["tasks"].items():
        ints = t["intervals"]
        assert set(ints) <= set(t["metrics"])
        for metric, _value in t["metrics"].items():
            if metric in ("example_count", "weighted_example_count"):
                continue
            assert metric in ints, (name, metric)
            lo, hi = ints[metric]
            # NaN replicates (a class no replicate predicts: precision 0/0) give NaN bounds, written as null
            assert (lo is None) == (hi is None) and (lo is None or lo <= hi), (name, metric, lo, hi)
        # proportions: the Clopper-Pearson interval of their counts, the one gate_on: lower_bound checks;
        # the rest: TFMA's own bounds, not recomputed
        primary = "mean_absolute_error" if t["type"] == "regression" else \
            "subset_accuracy" if t["type"] == "multilabel" else "accuracy"
        if t["type"] == "regression":
            assert ints[primary] == raw[(name, primary, None)] and t["interval_methods"][primary] == "tfma"
        else:
            k, n = t["interval_counts"][primary]
            assert n == t["eval_examples"] and t["interval_methods"][primary] == "clopper_pearson"
            assert ints[primary] == proportion_interval(k, n, t["metrics"][primary])
        assert None not in ints[primary]
    assert report["tasks"]["smile"]["intervals"]["auc"] == raw[("smile", "auc", 1)]
    assert report["tasks"]["smile"]["interval_methods"]["auc"] == "tfma"
    assert report["tasks"]["attrs"]["intervals"]["auc/coat"] == raw[("attrs", "auc", 1)]
    # slices carry intervals too (source slices of smile)
    src = report["tasks"]["smile"]["slice_intervals"]["source"]
    assert set(src) == {"genki4k", "extra"} and len(src["extra"]["accuracy"]) == 2


def _tasks_with(thresholds: dict) -> list:
    tasks = []
    for t in fx.RAW_CONFIG["tasks"]:
        t = {k: v for k, v in t.items() if k != "thresholds"}
        if t["name"] in thresholds:
            t["thresholds"] = thresholds[t["name"]]
        tasks.append(t)
    return tasks


def test_gate_on_lower_bound_fails_a_point_that_passes(run, report):
    g, s = report["tasks"]["gender"], report["tasks"]["score"]
    acc, (acc_lo, _) = g["metrics"]["accuracy"], g["intervals"]["accuracy"]
    mae, (_, mae_hi) = s["metrics"]["mean_absolute_error"], s["intervals"]["mean_absolute_error"]
    assert acc_lo < acc and mae < mae_hi
    floor, ceiling = (acc_lo + acc) / 2, (mae + mae_hi) / 2   # the point passes, the bound does not
    tasks = _tasks_with({"gender": {"accuracy": floor}, "score": {"mean_absolute_error": ceiling}})
    ev = dict(fx.RAW_CONFIG["evaluation"])
    on_value = fx.make_config(tasks=tasks, evaluation=dict(ev, gate_on="value"))
    on_bound = fx.make_config(tasks=tasks, evaluation=dict(ev, gate_on="lower_bound", confidence_intervals=True))

    r = build_report(on_value, run.eval_output, run.model_dir, run.eval_files, blessed=None)
    assert r["gate_on"] == "value" and r["bound_failures"] == [] and r["tasks"]["gender"]["passed"]

    r = build_report(on_bound, run.eval_output, run.model_dir, run.eval_files, blessed=None)
    a, b = r["bound_failures"]
    assert (a["task"], a["metric"], a["bound"], a["threshold"]) == ("gender", "accuracy", "lower_bound",
                                                                     {"lower_bound": floor})
    assert a["by"] == pytest.approx(floor - acc_lo) and a["value"] == acc
    # the gate checked the very intervals the report shows: Clopper-Pearson for accuracy, TFMA's for MAE
    assert (a["interval"], a["interval_method"]) == (g["intervals"]["accuracy"], "clopper_pearson")
    assert (b["interval"], b["interval_method"]) == (s["intervals"]["mean_absolute_error"], "tfma")
    assert (b["task"], b["metric"], b["bound"]) == ("score", "mean_absolute_error", "upper_bound")
    assert b["by"] == pytest.approx(mae_hi - ceiling)
    assert not r["tasks"]["gender"]["passed"] and not r["tasks"]["score"]["passed"] and r["tasks"]["smile"]["passed"]
    page = render_html(r)
    assert "but the 95 % interval's lower end is" in page and "evaluation.gate_on: lower_bound" in page

    # thresholds the bound meets: nothing fails
    ok = fx.make_config(tasks=_tasks_with({"gender": {"accuracy": acc_lo - 0.01}}),
                        evaluation=dict(ev, gate_on="lower_bound", confidence_intervals=True))
    assert bound_failures(build_eval_config(ok), run.eval_output) == []


def _blessing(tmp_path, blessed: int):
    from tfx.types import standard_artifacts

    b = standard_artifacts.ModelBlessing()
    b.uri = str(tmp_path / f"blessing{blessed}")
    os.makedirs(b.uri)
    open(os.path.join(b.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    b.set_int_custom_property("blessed", blessed)
    return b


def test_apply_gate_unblesses_but_never_blesses(run, report, tmp_path):
    g = report["tasks"]["gender"]
    acc, (acc_lo, _) = g["metrics"]["accuracy"], g["intervals"]["accuracy"]
    ev = dict(fx.RAW_CONFIG["evaluation"], gate_on="lower_bound", confidence_intervals=True)
    missing = build_eval_config(fx.make_config(tasks=_tasks_with({"gender": {"accuracy": (acc_lo + acc) / 2}}),
                                               evaluation=ev))
    meets = build_eval_config(fx.make_config(tasks=_tasks_with({"gender": {"accuracy": acc_lo - 0.01}}),
                                             evaluation=ev))
    b = _blessing(tmp_path, 1)
    assert apply_gate(b, meets, run.eval_output) == []
    assert b.get_int_custom_property("blessed") == 1 and os.listdir(b.uri) == ["BLESSED"]
    (f,) = apply_gate(b, missing, run.eval_output)
    assert f["metric"] == "accuracy" and f["output"] == "gender"
    assert b.get_int_custom_property("blessed") == 0 and os.listdir(b.uri) == ["NOT_BLESSED"]
    nb = _blessing(tmp_path, 0)
    assert apply_gate(nb, meets, run.eval_output) == [] and nb.get_int_custom_property("blessed") == 0


def test_pipeline_uses_the_gated_evaluator_only_for_lower_bound(tmp_path):
    import dataclasses

    from components.evaluator.interval_gate import IntervalGatedEvaluator, IntervalGateExecutor
    from config import load
    from pipeline.pipeline import PipelinePaths, RunOptions, create_components

    base = load("configs/default.yaml")
    fields = {f.name for f in dataclasses.fields(PipelinePaths)}
    paths = PipelinePaths(**{k: str(tmp_path / k) for k in fields})
    for gate_on, cls in (("value", None), ("lower_bound", IntervalGatedEvaluator)):
        config = dataclasses.replace(base, evaluation=dataclasses.replace(base.evaluation, gate_on=gate_on))
        (ev,) = [c for c in create_components(config, paths, RunOptions()) if c.id == "Evaluator"]
        if cls is None:
            assert type(ev).__name__ == "Evaluator"
        else:
            assert isinstance(ev, cls) and ev.executor_spec.executor_class is IntervalGateExecutor
        (rg,) = [c for c in create_components(config, paths, RunOptions()) if c.id == "ReportGen"]
        assert "prep_report" in rg.inputs


def test_summary_table_is_first_and_has_a_row_per_task(report):
    page = render_html(report)
    table = summary_table(report)
    assert page.index("class='summary'") < page.index("id='task-smile'")
    assert page.index("NOT BLESSED") < page.index("class='summary'")
    for name, _t in report["tasks"].items():
        assert f"<a href='#task-{name}'>{name}</a>" in table
    # the failing task says fail, a passing one pass; the value carries its interval
    age_row = table[table.index("#task-age"):].split("</tr>")[0]
    assert '<span class="fail">fail</span>' in age_row and "± " in age_row and "<td>20</td>" in age_row
    smile_row = table[table.index("#task-smile"):].split("</tr>")[0]
    assert '<span class="pass">pass</span>' in smile_row
    # multilabel auc is gated per label: the lowest label's auc is shown
    attrs_row = table[table.index("#task-attrs"):].split("</tr>")[0]
    lowest = min((v, k) for k, v in report["tasks"]["attrs"]["metrics"].items() if k.startswith("auc/"))[1]
    assert f"<td class=l>{lowest}</td>" in attrs_row


def test_uninformative_plots_and_slices_are_left_out(report):
    assert is_constant([("train", [[0, 1.0], [1, 1.0]]), ("validation", [[0, 1.0]])])
    assert not is_constant([("train", [[0, 1.0], [1, 0.9]])]) and not is_constant([])
    smile = report["tasks"]["smile"]
    # smile's one task_index slice holds all its examples: the same numbers as the overall row
    assert same_as_overall(smile["slices"]["task_index"]["0"], smile["metrics"])
    assert not same_as_overall(smile["slices"]["source"]["extra"], smile["metrics"])
    page = render_html(report)
    assert "not shown: slices by task_index" in page
    section = page[page.index("id='task-smile'"):page.index("id='task-gender'")]
    assert "class='slice-source'" in section and "class='slice-task_index'" not in section
    # static weighting: loss_weight at 1.0 every epoch is named, not drawn
    r = json.loads(json.dumps(report))
    r["tasks"]["smile"]["training_curves"]["loss_weight"] = {"train": [[0, 1.0], [1, 1.0], [2, 1.0]]}
    page = render_html(r)
    assert 'aria-label="smile: training loss_weight"' not in page
    assert "not drawn, constant over every epoch: loss_weight = 1" in page
    r["tasks"]["smile"]["training_curves"]["loss_weight"] = {"train": [[0, 1.0], [1, 0.8], [2, 1.2]]}
    assert 'aria-label="smile: training loss_weight"' in render_html(r)


def test_model_card_fields_and_link(report, tmp_path):
    paths = write_report(report, str(tmp_path / "report"))
    assert [os.path.relpath(p, str(tmp_path / "report")) for p in paths] == [
        "report.json", "index.html", "model_card/model_card.json", "model_card/model_card.html", "per_example.json"]
    written = json.load(open(paths[0]))
    assert written["model_card"] == MODEL_CARD_JSON == "model_card/model_card.json"
    card = json.load(open(os.path.join(str(tmp_path / "report"), written["model_card"])))
    assert card["schema_version"] == SCHEMA_VERSION == "0.0.2"
    assert set(card) == {"schema_version", "model_details", "model_parameters", "quantitative_analysis",
                         "considerations"}
    assert card["model_details"]["name"] == "eval_test" and "NOT BLESSED" in card["model_details"]["overview"]
    assert card["model_parameters"]["model_architecture"] == "bknet"
    assert [d["name"] for d in card["model_parameters"]["data"]] == ["evaluation data"]
    pm = {(m["type"], m["slice"]): m for m in card["quantitative_analysis"]["performance_metrics"]}
    age = pm[("age/accuracy", "overall")]
    assert float(age["value"]) == pytest.approx(report["tasks"]["age"]["metrics"]["accuracy"], rel=1e-5)
    lo, hi = report["tasks"]["age"]["intervals"]["accuracy"]
    assert float(age["confidence_interval"]["lower_bound"]) == pytest.approx(lo, rel=1e-5, abs=1e-9)
    assert float(age["confidence_interval"]["upper_bound"]) == pytest.approx(hi, rel=1e-5, abs=1e-9)
    assert ("smile/accuracy", "source=extra") in pm and ("score/mean_absolute_error", "overall") in pm
    assert all(isinstance(m["value"], str) for m in pm.values())
    lim = " ".join(x["description"] for x in card["considerations"]["limitations"])
    assert "generated" in lim and "no pretrained weights" in lim
    assert card["considerations"]["use_cases"][0]["description"] == (
        f"Decision: NOT BLESSED: {report['not_blessed_reason']}") and "age: accuracy" in report["not_blessed_reason"]
    page = open(paths[1]).read()
    assert "href='model_card/model_card.html'" in page and "href='model_card/model_card.json'" in page
    card_page = open(paths[3]).read()
    assert "<script" not in card_page and "age/accuracy" in card_page and "95 % lower" in card_page


def test_data_section_from_the_prep_report(run, tmp_path):
    from tfx.types import standard_artifacts

    from components.artifacts import PrepReport

    prep = PrepReport()
    prep.uri = str(tmp_path / "prep")
    os.makedirs(os.path.join(prep.uri, "dead_letter"))
    stats = {"sources": {"wiki": {"read": 30, "written": 27, "rejected": 3,
                                  "rejected_by_reason": {"corrupt_image": 2, "missing_label": 1},
                                  "examples": {"train": 20, "eval": 14}}},
             "total": {"read": 30, "written": 27, "rejected": 3}}
    json.dump(stats, open(os.path.join(prep.uri, "prep_stats.json"), "w"))
    with open(os.path.join(prep.uri, "dead_letter", "wiki-00000-of-00001.jsonl"), "w") as f:
        for i in range(7):
            f.write(json.dumps({"source": "wiki", "id": f"img{i}.jpg", "reason": "corrupt_image",
                                "detail": "cannot identify image file"}) + "\n")

    def art(cls, uri):
        a = cls()
        a.uri = uri
        return a

    out = art(Report, str(tmp_path / "report"))
    ReportGen.EXECUTOR_SPEC.executor_class().Do(
        {"evaluation": [art(standard_artifacts.ModelEvaluation, run.eval_output)],
         "model": [art(standard_artifacts.Model, str(tmp_path / "model"))],
         "examples": [art(standard_artifacts.Examples, os.path.join(run.root, "examples"))],
         "prep_report": [prep]},
        {"report": [out]}, {"config_json": run.config.to_json(), "report_dir": ""})
    r = json.load(open(os.path.join(out.uri, "report.json")))
    assert r["data"]["sources"] == stats["sources"] and r["data"]["total"] == stats["total"]
    assert [d["id"] for d in r["data"]["dead_letter_samples"]] == [f"img{i}.jpg" for i in range(5)]
    page = open(os.path.join(out.uri, "index.html")).read()
    assert "<h2 id='data'>Data</h2>" in page and "corrupt_image: 2, missing_label: 1" in page
    assert page.count("<li><b>corrupt_image</b>: wiki img") == 5
    card = json.load(open(os.path.join(out.uri, r["model_card"])))
    assert card["model_parameters"]["data"][0]["name"] == "training and eval data: source wiki"
    description = card["model_parameters"]["data"][0]["description"]
    assert "rejected 3 (by reason: corrupt_image: 2, missing_label: 1)" in description
    # without a prep report: no data section
    assert build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=None)["data"] is None
