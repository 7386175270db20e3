"""DriftGate: compares the newest span's conversion counts with the previous span's.

Reads ExampleGen's prep report (`prep_stats.json`, whose `spans` section keeps
each span's own counts: data_prep/spans.py), measures every drift feature
with TFDV's comparators (components/drift/measure.py), writes `drift.json`
(components/common/drift_file.py) and, on a breach under
`validation.drift.action: fail`, stops the run with one line per breached
feature before Transform and the Trainer. `warn` records the breach and goes
on; `off` measures nothing. Sources without a previous span (a first
delivery, a source without `{SPAN}`) have nothing to be compared with.
"""

import json
import os

from tfx import v1 as tfx

from components.artifacts import DriftReport, PrepReport
from components.common.drift_file import write_drift


class DriftError(RuntimeError):
    """The newest span drifted past a `validation.drift` threshold under action `fail`."""


def compared_spans(prep_stats: dict) -> dict[str, dict]:
    """{source: {previous, new}} for every source with a previous span."""
    return {src: {"previous": s["previous"], "new": s["eval"]}
            for src, s in (prep_stats.get("spans") or {}).items() if s.get("previous") is not None}


def check_drift(prep_stats: dict, drift: dict) -> dict:
    """drift.json's content for a run's prep_stats.json and its `validation.drift` settings (a dict)."""
    from components.drift.measure import breaches, measure_drift

    out = {"action": drift["action"], "comparator": drift["comparator"], "compared": {}, "features": {},
           "breaches": []}
    if drift["action"] == "off":
        return dict(out, status="off")
    compared = compared_spans(prep_stats)
    out["compared"] = compared
    if not compared:
        return dict(out, status="no previous span")
    per_span = {src: prep_stats["spans"][src]["per_span"] for src in compared}
    previous = {src: per_span[src][str(c["previous"])] for src, c in compared.items()}
    new = {src: per_span[src][str(c["new"])] for src, c in compared.items()}
    out["features"] = measure_drift(previous, new, drift["thresholds"], drift["comparator"])
    out["breaches"] = breaches(out["features"])
    status = "passed" if not out["breaches"] else ("breached" if drift["action"] == "fail" else "accepted")
    return dict(out, status=status)


@tfx.dsl.components.component
def DriftGate(
    prep_report: tfx.dsl.components.InputArtifact[PrepReport],
    drift: tfx.dsl.components.OutputArtifact[DriftReport],
    drift_json: tfx.dsl.components.Parameter[str],
):
    """The drift check between the newest span and the previous one (module docstring)."""
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(prep_report.uri, "prep_stats.json")) as f:
        prep_stats = json.loads(f.read())
    content = check_drift(prep_stats, json.loads(drift_json))
    write_drift(drift.uri, content)
    drift.set_string_custom_property("status", content["status"])
    for line in content["breaches"]:
        print(line)
    if content["status"] == "breached":
        more = f" (and {len(content['breaches']) - 1} more in {drift.uri})" if len(content["breaches"]) > 1 else ""
        raise DriftError(f"{content['breaches'][0]}{more}; the new span is refused: set "
                         "validation.drift.action: warn to accept it, or raise the threshold (docs/drift.md)")
