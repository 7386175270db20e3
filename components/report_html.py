"""index.html for the report: one self-contained page (inline CSS, no scripts,
no external assets) so it opens from a bucket, a zip or a mail attachment."""
from __future__ import annotations

import html
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.5em} h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0 1em} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
.banner{padding:.8em 1em;border-radius:4px;font-weight:bold}
.ok{background:#e3f4e1;color:#1d5e1a} .bad{background:#fbe3e3;color:#8a1c1c} .unk{background:#eee}
.fail{color:#8a1c1c;font-weight:bold} .pass{color:#1d5e1a} .diag{background:#eef4fb}
small{color:#666}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e9:
        return str(int(x))
    if isinstance(x, float):
        return f"{x:.4f}" if abs(x) < 1e4 else f"{x:.4g}"
    return _e(x)


def _banner(report: dict) -> str:
    blessed = report.get("blessed")
    cls, word = {True: ("ok", "BLESSED"), False: ("bad", "NOT BLESSED")}.get(blessed, ("unk", "BLESSING UNKNOWN"))
    v = report.get("validation", {})
    why = []
    for f in v.get("failures", []):
        lim = ", ".join(f"{k} {_num(val)}" for k, val in f.get("threshold", {}).items())
        why.append(f"<li>task <b>{_e(f['task'])}</b>: {_e(f['metric'])} = {_num(f['value'])} "
                   f"({_e(f['kind'])} threshold: {_e(lim)}; missed by {_num(f.get('by'))}; slice {_e(f['slice'])})</li>")
    if not why:
        if blessed and v.get("rubber_stamp"):
            why.append("<li>all value thresholds met; no baseline model yet, so no comparison was made</li>")
        elif blessed:
            why.append("<li>all thresholds met, including the comparison with the baseline</li>")
        elif v.get("ok") is None:
            why.append("<li>no validation result (no thresholds configured or Evaluator output missing)</li>")
    out = [f'<div class="banner {cls}">{word} <small>({_e(report.get("blessed_from"))})</small></div>']
    if why:
        out.append("<ul>" + "".join(why) + "</ul>")
    for w in report.get("warnings", []):
        out.append(f'<p class="fail">warning: {_e(w)}</p>')
    return "\n".join(out)


def _metric_table(name: str, t: dict) -> str:
    rows = []
    failed = {f["metric"] for f in t.get("_failures", [])}
    base = t.get("baseline_metrics", {})
    chance = {}
    if t.get("chance_metric"):
        chance[t["chance_metric"]] = t.get("chance")
        for c, v in (t.get("chance_per_class") or {}).items():
            chance[f"{t['chance_metric']}/{c}"] = v
    for metric, value in sorted(t["metrics"].items()):
        th = t["thresholds"].get(metric, t["thresholds"].get(metric.split("/")[0]))  # multilabel: auc/<label>
        status = ""
        if metric in failed:
            status = '<span class="fail">fail</span>'
        elif th is not None:
            status = '<span class="pass">pass</span>'
        rows.append(f"<tr><td class=l>{_e(metric)}</td><td>{_num(value)}</td><td>{_num(th)}</td>"
                    f"<td>{_num(chance.get(metric))}</td><td>{_num(base.get(metric))}</td><td>{status}</td></tr>")
    return ("<table><tr><th class=l>metric</th><th>value</th><th>threshold</th><th>chance</th><th>baseline</th><th></th></tr>"
            + "".join(rows) + "</table>")


def _confusion(t: dict) -> str:
    m = t.get("confusion_matrix")
    if not m:
        return ""
    classes = t["classes"]
    head = "".join(f"<th>{_e(c)}</th>" for c in classes)
    rows = []
    for i, row in enumerate(m):
        cells = "".join(f'<td{" class=diag" if i == j else ""}>{v:g}</td>' for j, v in enumerate(row))
        rows.append(f"<tr><th class=l>{_e(classes[i])}</th>{cells}</tr>")
    return ("<p>Confusion matrix (rows: true class, columns: predicted = argmax):</p>"
            f"<table><tr><th class=l>true \\ pred</th>{head}</tr>{''.join(rows)}</table>")


def _slices(t: dict) -> str:
    out = []
    for column, by_value in sorted(t.get("slices", {}).items()):
        names = sorted({k for m in by_value.values() for k in m})
        head = "".join(f"<th>{_e(n)}</th>" for n in names)
        rows = "".join(f"<tr><td class=l>{_e(v)}</td>" + "".join(f"<td>{_num(m.get(n))}</td>" for n in names) + "</tr>"
                       for v, m in sorted(by_value.items()))
        out.append(f"<p>By <b>{_e(column)}</b> (slices holding this task's examples):</p>"
                   f"<table><tr><th class=l>{_e(column)}</th>{head}</tr>{rows}</table>")
    return "".join(out)


def render_html(report: dict) -> str:
    """The whole page for one report dict (as built by `build_report`)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Report: {_e(report.get('config_name'))}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Evaluation report: {_e(report.get('config_name'))}</h1>", _banner(report),
             f"<p><small>model: {_e(report.get('model_dir'))}<br>eval data: {len(report.get('eval_data', []))} file(s)"
             f"<br>TFMA output: {_e(report.get('eval_output_uri'))}</small></p>"]
    for name, t in report.get("tasks", {}).items():
        t = dict(t, _failures=[f for f in report.get("validation", {}).get("failures", []) if f["task"] == name])
        chance = t.get("chance")
        extra = f" (positive class: {_e(t['positive_class'])})" if t.get("positive_class") else ""
        parts.append(
            f"<h2 id='task-{_e(name)}'>{_e(name)} <small>{_e(t['type'])}{extra}</small></h2>"
            f"<p>{_num(t.get('eval_examples'))} eval examples. Chance: {_num(chance)} "
            f"<small>({_e(t.get('chance_rule'))})</small>"
            + (f"; uniform guess: {_num(t['chance_uniform'])}" if t.get("chance_uniform") is not None else "")
            + "</p>")
        parts.append(_metric_table(name, t))
        parts.append(_confusion(t))
        parts.append(_slices(t))
    parts.append("</body></html>")
    return "\n".join(parts)
