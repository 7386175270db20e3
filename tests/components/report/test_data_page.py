"""The report's spans and drift: report.json keys from prep_stats.json and drift.json, and the page's sections."""
from components.report.data_page import drift_section, history_keys, spans_section

PREP = {"sources": {}, "spans": {
    "genki4k": {"pattern": "/d/genki4k/span-{SPAN}", "found": [1, 2], "train": [1, 2], "eval": 2, "previous": 1,
                "converted": [2], "reused": [1], "per_span": {}},
    "wiki": {"pattern": "/d/wiki", "found": [0], "train": [0], "eval": 0, "previous": None, "converted": [0],
             "reused": []}}}
DRIFT = {"status": "accepted", "action": "warn", "comparator": "infinity_norm",
         "compared": {"genki4k": {"previous": 1, "new": 2}}, "breaches": ["drift: label/smile ..."],
         "features": {"label/smile": {"distance": 0.31, "threshold": 0.15, "passed": False,
                                      "comparator": "infinity_norm", "previous": {"smile": 0.54, "no_smile": 0.46},
                                      "new": {"smile": 0.85, "no_smile": 0.15}}}}


def test_report_keys():
    keys = history_keys(PREP, DRIFT)
    assert keys["spans"] == {"genki4k": [1, 2], "wiki": [0]}
    assert keys["spans_detail"]["genki4k"] == {"pattern": "/d/genki4k/span-{SPAN}", "found": [1, 2], "train": [1, 2],
                                               "eval": 2, "previous": 1, "converted": [2], "reused": [1]}
    assert keys["drift"] == DRIFT["features"]
    assert keys["drift_check"] == {k: DRIFT[k] for k in ("status", "action", "comparator", "compared", "breaches")}
    assert history_keys(None, None) == {"spans": {}, "spans_detail": {}, "drift": {}, "drift_check": None}


def test_page_sections():
    report = history_keys(PREP, DRIFT)
    spans = spans_section(report)
    assert "<h2 id='spans'>Spans</h2>" in spans and "<td>1, 2</td><td>2</td><td>2</td><td>1</td>" in spans
    drift = drift_section(report)
    assert "status: <b>accepted</b>" in drift and "genki4k: span 1 against span 2" in drift
    assert ("<td class=l>label/smile</td><td>0.3100</td><td>0.1500</td><td><span class=fail>drift</span></td>"
            "<td class=l><small>no_smile 0.460, smile 0.540</small></td>"
            "<td class=l><small>no_smile 0.150, smile 0.850</small></td>") in drift
    no_spans = history_keys({"spans": {"wiki": PREP["spans"]["wiki"]}}, None)
    assert spans_section(no_spans) == "" and drift_section(no_spans) == ""
