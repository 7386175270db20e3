"""The report page's data sections: the conversion's accounting, the spans each side used and
the drift check (report.json `data`, `spans`, `spans_detail`, `drift`, `drift_check`)."""
from __future__ import annotations

import json
import os
from typing import Any

from components.report.plots import esc
from components.report.plots import num as _num

DEAD_LETTER_SAMPLES = 5


def read_prep_report(prep_report_uri: str) -> tuple[dict | None, list[dict]]:
    """(prep_stats.json, the first DEAD_LETTER_SAMPLES dead-letter records) of a PrepReport artifact."""
    import tensorflow as tf

    stats_path = os.path.join(prep_report_uri, "prep_stats.json")
    if not tf.io.gfile.exists(stats_path):
        return None, []
    with tf.io.gfile.GFile(stats_path) as f:
        stats = json.load(f)
    samples = []
    for path in sorted(tf.io.gfile.glob(os.path.join(prep_report_uri, "dead_letter", "*.jsonl"))):
        with tf.io.gfile.GFile(path) as f:
            for line in f:
                if line.strip() and len(samples) < DEAD_LETTER_SAMPLES:
                    samples.append(json.loads(line))
    return stats, samples


def history_keys(prep_stats: dict | None, drift: dict | None) -> dict[str, Any]:
    """report.json's keys for the data's history: `spans` (per source, the spans trained on),
    `spans_detail` (also the span evaluated, the previous one, what was converted and reused),
    `drift` ({feature: {distance, threshold, passed, ...}}) and `drift_check` (status, action,
    comparator, the spans compared, the breach lines)."""
    spans = (prep_stats or {}).get("spans") or {}
    drift = drift or {}
    return {
        "spans": {src: s.get("train") for src, s in spans.items()},
        "spans_detail": {src: {k: s.get(k) for k in ("pattern", "found", "train", "eval", "previous", "converted",
                                                      "reused")} for src, s in spans.items()},
        "drift": drift.get("features", {}),
        "drift_check": {k: drift.get(k) for k in ("status", "action", "comparator", "compared", "breaches")}
        if drift else None,
    }


def data_section(report: dict) -> str:
    """Per source: read, written, rejected by reason, examples per split; a few dead-letter records."""
    data = report.get("data")
    if not data:
        return ""
    rows = []
    for src, st in sorted((data.get("sources") or {}).items()):
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted((st.get("rejected_by_reason") or {}).items())) or "–"
        ex = st.get("examples") or {}
        rows.append(f"<tr><td class=l>{esc(src)}</td><td>{_num(st.get('read'))}</td><td>{_num(st.get('written'))}</td>"
                    f"<td>{_num(st.get('rejected'))}</td><td class=l>{esc(reasons)}</td>"
                    f"<td>{_num(ex.get('train'))}</td><td>{_num(ex.get('eval'))}</td></tr>")
    out = ["<h2 id='data'>Data</h2><p><small>the conversion's prep_stats.json (ExampleGen's prep report): records read "
           "per source, written as examples, rejected into the dead-letter files; examples per split</small></p>"
           "<table class='data-sources'><tr><th class=l>source</th><th>read</th><th>written</th><th>rejected</th>"
           "<th class=l>rejected by reason</th><th>train examples</th><th>eval examples</th></tr>"
           + "".join(rows) + "</table>"]
    dead = data.get("dead_letter_samples") or []
    if dead:
        items = "".join(f"<li><b>{esc(d.get('reason'))}</b>: {esc(d.get('source'))} {esc(d.get('id'))}"
                        + (f" <small>({esc(d.get('detail'))})</small>" if d.get("detail") else "") + "</li>"
                        for d in dead)
        out.append(f"<h3>Dead-letter records (first {len(dead)})</h3><ul class='dead-letter'>{items}</ul>")
    return "".join(out)


def _shares(shares: dict | None) -> str:
    return ", ".join(f"{esc(k)} {v:.3f}" for k, v in sorted((shares or {}).items())) or "–"


def spans_section(report: dict) -> str:
    detail = report.get("spans_detail") or {}
    if not any(s.get("pattern") and "{SPAN}" in s["pattern"] for s in detail.values()):
        return ""
    rows = "".join(
        f"<tr><td class=l>{esc(src)}</td><td class=l>{esc(s.get('pattern'))}</td>"
        f"<td>{esc(', '.join(map(str, s.get('found') or [])))}</td><td>{esc(', '.join(map(str, s.get('train') or [])))}"
        f"</td><td>{_num(s.get('eval'))}</td><td>{esc(', '.join(map(str, s.get('converted') or [])) or '–')}</td>"
        f"<td>{esc(', '.join(map(str, s.get('reused') or [])) or '–')}</td></tr>" for src, s in sorted(detail.items()))
    return ("<h2 id='spans'>Spans</h2><p><small>training reads the window's train splits, evaluation the newest "
            "span's eval split; a span converted before is reused</small></p><table><tr><th class=l>source</th>"
            "<th class=l>path</th><th>found</th><th>trained on</th><th>evaluated on</th><th>converted now</th>"
            "<th>reused</th></tr>" + rows + "</table>")


def drift_section(report: dict) -> str:
    """Per feature: distance against threshold, previous shares against new."""
    check = report.get("drift_check")
    if not check:
        return ""
    head = (f"<h2 id='drift'>Data drift</h2><p>status: <b>{esc(check.get('status'))}</b> "
            f"<small>(validation.drift.action: {esc(check.get('action'))}; comparator {esc(check.get('comparator'))}"
            + "".join(f"; {esc(src)}: span {_num(c.get('previous'))} against span {_num(c.get('new'))}"
                      for src, c in sorted((check.get("compared") or {}).items())) + ")</small></p>")
    features = report.get("drift") or {}
    if not features:
        return head
    rows = "".join(
        f"<tr><td class=l>{esc(name)}</td><td>{_num(f.get('distance'))}</td><td>{_num(f.get('threshold'))}</td>"
        f"<td>{'<span class=pass>pass</span>' if f.get('passed') else '<span class=fail>drift</span>'}</td>"
        f"<td class=l><small>{_shares(f.get('previous'))}</small></td><td class=l><small>{_shares(f.get('new'))}"
        "</small></td></tr>" for name, f in sorted(features.items()))
    return (head + "<table class='drift'><tr><th class=l>feature</th><th>distance</th><th>threshold</th><th></th>"
            "<th class=l>previous span</th><th class=l>new span</th></tr>" + rows + "</table>")
