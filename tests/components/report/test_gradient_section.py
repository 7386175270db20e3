"""The report's gradient-conflict section (components/report/page.py, plots.cosine_heatmap)."""
from components.report.page import _gradient_section
from components.report.plots import cosine_heatmap


def report_with_probes():
    pairs = {"a/b": -0.2, "a/c": 0.3, "b/c": 0.1}
    return {"tasks": {"a": {}, "b": {}, "c": {}},
            "gradient_conflict": {p: {"cosine_mean": v, "negative_share": 1.0 if v < 0 else 0.0,
                                      "norm_ratio_last": 2.0} for p, v in pairs.items()},
            "gradient_probes": [{"step": s, "cosine": pairs, "norm": {"a": 1.0, "b": 0.5, "c": 1.0},
                                 "loss_weights": {"a": 1.0, "b": 1.0, "c": 1.0}} for s in (10, 20)]}


def test_section_has_the_table_heat_map_and_trajectories():
    report = report_with_probes()
    html = _gradient_section(report)
    assert html.count("<svg") == 2  # heat map, cosine over steps; the weights are constant: not drawn
    report["gradient_probes"][1]["loss_weights"]["a"] = 2.0
    assert _gradient_section(report).count("<svg") == 3
    assert "<td class=l>a/b</td><td>-0.2000</td><td>100 %</td>" in html
    assert "<td class=l>b/c</td><td>0.1000</td><td>0 %</td>" in html


def test_no_probe_no_section():
    assert _gradient_section({"tasks": {"a": {}}}) == ""
    assert _gradient_section({"tasks": {}, "gradient_conflict": None, "gradient_probes": None}) == ""


def test_heat_map_is_symmetric_with_a_unit_diagonal():
    svg = cosine_heatmap("t", {"a/b": -0.5}, ["a", "b"])
    assert svg.count("<rect") == 4
    assert svg.count("<title>a / b: -0.500</title>") == 1 and svg.count("<title>b / a: -0.500</title>") == 1
    assert svg.count(": 1.000</title>") == 2
    assert cosine_heatmap("t", {}, ["a"]) == ""
