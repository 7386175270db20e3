"""DriftGate: which spans it compares, its status under each action, and the one line that stops a run."""
import json
import os

import pytest
from tfx.types import standard_artifacts  # noqa: F401 - registers TFX's artifact types

from components.artifacts import DriftReport, PrepReport
from components.common.drift_file import read_drift
from components.drift.component import DriftError, DriftGate, check_drift, compared_spans
from config.types import DEFAULT_DRIFT_THRESHOLDS


def span_stats(smile: int, no_smile: int) -> dict:
    n = smile + no_smile
    return {"read": n, "written": n, "rejected": 0, "rejected_by_reason": {},
            "examples_by_task": {"smile": n}, "labels_by_task": {"smile": {"smile": smile, "no_smile": no_smile}},
            "image_formats": {"JPEG": n}, "image_sizes": {"96x96": n}}


def prep_stats(span2: dict | None) -> dict:
    spans = {"genki4k": {"train": [1], "eval": 1, "previous": None,
                         "per_span": {"1": span_stats(54, 46)}}}
    if span2 is not None:
        spans["genki4k"] = {"train": [1, 2], "eval": 2, "previous": 1,
                            "per_span": {"1": span_stats(54, 46), "2": span2}}
    spans["wiki"] = {"train": [0], "eval": 0, "previous": None}  # no spans: nothing to compare
    return {"sources": {}, "spans": spans}


def drift(action="fail"):
    return {"action": action, "comparator": "infinity_norm", "thresholds": dict(DEFAULT_DRIFT_THRESHOLDS)}


def test_compares_the_newest_span_with_the_previous_of_sources_that_have_one():
    assert compared_spans(prep_stats(span_stats(55, 45))) == {"genki4k": {"previous": 1, "new": 2}}
    assert compared_spans(prep_stats(None)) == {}


def test_status_under_each_action():
    same, shifted = prep_stats(span_stats(55, 45)), prep_stats(span_stats(85, 15))
    assert check_drift(prep_stats(None), drift())["status"] == "no previous span"
    assert check_drift(shifted, drift("off")) == {"action": "off", "comparator": "infinity_norm", "compared": {},
                                                  "features": {}, "breaches": [], "status": "off"}
    out = check_drift(same, drift())
    assert out["status"] == "passed" and out["breaches"] == []
    # smile's share: 0.54 -> 0.55, an L-infinity distance of 0.01
    assert out["features"]["label/smile"]["distance"] == pytest.approx(0.01)
    out = check_drift(shifted, drift())
    assert out["status"] == "breached"
    assert out["features"]["label/smile"]["distance"] == pytest.approx(0.31)  # 0.85 - 0.54
    assert [b.split(" (")[0] for b in out["breaches"]] == [
        "drift: label/smile infinity_norm distance 0.310 > threshold 0.150"]
    assert check_drift(shifted, drift("warn"))["status"] == "accepted"


def run_gate(tmp_path, stats, action):
    report, out = PrepReport(), DriftReport()
    report.uri, out.uri = str(tmp_path / "prep"), str(tmp_path / "drift")
    os.makedirs(report.uri)
    with open(os.path.join(report.uri, "prep_stats.json"), "w") as f:
        json.dump(stats, f)
    DriftGate.EXECUTOR_SPEC.executor_class().Do(
        {"prep_report": [report]}, {"drift": [out]}, {"drift_json": json.dumps(drift(action))})
    return out


def test_a_breach_under_fail_stops_with_one_line_naming_feature_distance_and_threshold(tmp_path):
    with pytest.raises(DriftError, match=r"^drift: label/smile infinity_norm distance 0\.310 > threshold 0\.150 "
                                         r".*validation\.drift\.action: warn"):
        run_gate(tmp_path, prep_stats(span_stats(85, 15)), "fail")
    assert read_drift(str(tmp_path / "drift"))["status"] == "breached"  # written before it stops


def test_warn_records_the_breach_and_goes_on(tmp_path):
    out = run_gate(tmp_path, prep_stats(span_stats(85, 15)), "warn")
    assert out.get_string_custom_property("status") == "accepted"
    assert read_drift(out.uri)["features"]["label/smile"]["passed"] is False
