"""A model card from the pipeline's own outputs, in the Model Card Toolkit's
JSON schema (version 0.0.2), plus an HTML rendering.

`model-card-toolkit` is not in the pinned environment and cannot be installed
offline here, so the JSON is written field by field after MCT's schema
v0.0.2 (model_details, model_parameters, quantitative_analysis,
considerations); every value comes from the report dict (components/report/component.py)
and, when given, the conversion's prep_stats.json. Values in
`performance_metrics` are strings, as the schema wants them.
"""
from __future__ import annotations

import json
import os
from typing import Any

from components.report.plots import esc

SCHEMA_VERSION = "0.0.2"
MODEL_CARD_DIR = "model_card"
MODEL_CARD_JSON = f"{MODEL_CARD_DIR}/model_card.json"
MODEL_CARD_HTML = f"{MODEL_CARD_DIR}/model_card.html"

LIMITATIONS = (
    "Evaluated only on the eval split of the configured sources; the bundled sample data is generated "
    "(synthetic images), so numbers on it say nothing about real faces.",
    "Trained from scratch: no pretrained weights.",
    "Metrics are point values on a finite eval set; the 95 % confidence intervals show how far they may "
    "move; on small eval sets they are wide.",
    "Each example carries one task's label: per-task numbers are on that task's own examples only.",
)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def _metrics(name: str, t: dict) -> list[dict[str, Any]]:
    out = []
    ints = t.get("intervals") or {}
    for metric, value in sorted((t.get("metrics") or {}).items()):
        if value is None:
            continue
        m = {"type": f"{name}/{metric}", "value": _fmt(value), "slice": "overall"}
        ci = ints.get(metric)
        if ci and ci[0] is not None and ci[1] is not None:
            m["confidence_interval"] = {"lower_bound": _fmt(ci[0]), "upper_bound": _fmt(ci[1])}
        out.append(m)
    slice_ints = t.get("slice_intervals") or {}
    fairness = t.get("fairness") or {}
    for column, by_value in sorted((t.get("slices") or {}).items()):
        for v, ms in sorted(by_value.items()):
            if (fairness.get(column) or {}).get(v, {}).get("too_small"):
                continue  # under evaluation.min_slice_size: no number (see ethical_considerations)
            for rate in ("false_positive_rate", "false_negative_rate"):
                if (fairness.get(column) or {}).get(v, {}).get(rate) is not None:
                    out.append({"type": f"{name}/{rate}", "value": _fmt(fairness[column][v][rate]),
                                "slice": f"{column}={v}"})
            p = t.get("primary_metric")
            if p in ms and ms[p] is not None:
                m = {"type": f"{name}/{p}", "value": _fmt(ms[p]), "slice": f"{column}={v}"}
                ci = (slice_ints.get(column) or {}).get(v, {}).get(p)
                if ci and ci[0] is not None and ci[1] is not None:
                    m["confidence_interval"] = {"lower_bound": _fmt(ci[0]), "upper_bound": _fmt(ci[1])}
                out.append(m)
    return out


def _fairness(name: str, t: dict) -> list[dict[str, str]]:
    """One MCT ethical consideration per cross-task slice: the largest gaps to the overall value,
    and the slices too small to report (evaluation.min_slice_size)."""
    out = []
    for column, by_value in sorted((t.get("fairness") or {}).items()):
        sized = {v: e for v, e in by_value.items() if not e.get("too_small")}
        gaps = []
        for k in (t.get("primary_metric"), "false_positive_rate", "false_negative_rate"):
            worst = max(((v, e[f"{k}_gap"]) for v, e in sized.items() if e.get(f"{k}_gap") is not None),
                        key=lambda x: abs(x[1]), default=None)
            if worst:
                gaps.append(f"{k} {worst[1]:+.3f} at {worst[0]} ({_fmt(sized[worst[0]][k])}, n={sized[worst[0]]['n']})")
        small = [f"{v} (n={e['n']})" for v, e in sorted(by_value.items()) if e.get("too_small")]
        out.append({"name": f"{name} by {column}: largest gaps to the overall value: " + ("; ".join(gaps) or "none"),
                    "mitigation_strategy": (f"rates: {t.get('fairness_rule')}. "
                                            + (f"Too small to report (n < {t.get('min_slice_size')}): "
                                               + ", ".join(small) + ". " if small else "")
                                            + "Gaps on small slices are noisy: read them with their n.")})
    return out


def build_model_card(report: dict[str, Any]) -> dict[str, Any]:
    """The card (MCT schema v0.0.2 field names) for one report dict."""
    tasks = report.get("tasks") or {}
    model = report.get("model") or {}
    verdict = {True: "BLESSED", False: "NOT BLESSED"}.get(report.get("blessed"), "BLESSING UNKNOWN")
    # The report's reason word for word (components/report/blessing.py); a report written before
    # every verdict had one still lists its failures.
    reasons = ([report["not_blessed_reason"]] if report.get("not_blessed_reason") else
               [f"{f['task']}: {f['metric']} {f.get('kind')} threshold {f.get('threshold')} missed by {f.get('by')}"
                for f in (report.get("validation") or {}).get("failures", []) + (report.get("bound_failures") or [])])
    overview = (f"Multitask image model '{report.get('config_name')}' with one output per task: "
                + ", ".join(f"{n} ({t.get('type')}, {len(t.get('classes') or [])} classes)" if t.get("classes")
                            else f"{n} ({t.get('type')})" for n, t in tasks.items())
                + f". Blessing: {verdict} ({report.get('blessed_from')}).")
    data = []
    for src, s in sorted(((report.get("data") or {}).get("sources") or {}).items()):
        rej = ", ".join(f"{r}: {n}" for r, n in sorted((s.get("rejected_by_reason") or {}).items())) or "none"
        data.append({"name": f"training and eval data: source {src}",
                     "description": (f"read {s.get('read')}, written {s.get('written')}, rejected {s.get('rejected')} "
                                     f"(by reason: {rej}); examples train {(s.get('examples') or {}).get('train')}, "
                                     f"eval {(s.get('examples') or {}).get('eval')}")})
    data.append({"name": "evaluation data",
                 "description": "; ".join(f"{n}: {t.get('eval_examples')} eval examples" for n, t in tasks.items())
                 + f" ({len(report.get('eval_data') or [])} TFRecord file(s))"})
    thresholds = {n: t.get("thresholds") for n, t in tasks.items() if t.get("thresholds")}
    gated_on = ("point value" if report.get("gate_on", "value") == "value"
                else "worse end of the 95 % interval")
    return {
        "schema_version": SCHEMA_VERSION,
        "model_details": {
            "name": str(report.get("config_name")),
            "overview": overview,
            "version": {"name": os.path.basename(os.path.dirname(str(report.get("model_dir") or ""))) or "unknown"},
            "path": str(report.get("model_dir")),
            "references": [{"reference": "index.html (the evaluation report this card was written with)"}],
        },
        "model_parameters": {
            "model_architecture": str(model.get("architecture", "unknown")) + (
                f", trained in {p['policy']} (train.precision {p['setting']}: {p['reason']})"
                if (p := report.get("precision")) else ""),
            "input_format": str(model.get("input_format", "serialized tf.Example with an encoded image")),
            "output_format": "one output per task: " + ", ".join(
                f"{n}: " + ("value" if t.get("type") == "regression"
                           else "probabilities over " + ", ".join(t.get("classes") or []))
                for n, t in tasks.items()),
            "data": data,
        },
        "quantitative_analysis": {
            "performance_metrics": [m for n, t in tasks.items() for m in _metrics(n, t)],
        },
        "considerations": {
            "limitations": [{"description": d} for d in LIMITATIONS]
            + [{"description": f"Intervals: {m}."} for m in [report.get("intervals_method")] if m],
            "tradeoffs": [{"description":
                           "Blessing gates on the " + gated_on +
                           f" of each thresholded metric (evaluation.gate_on: {report.get('gate_on', 'value')}); "
                           f"thresholds: {json.dumps(thresholds, sort_keys=True)}; against the last blessed model a "
                           f"gated metric may be at most {report.get('max_regression')} worse (absolute)."}],
            "use_cases": [{"description": f"Decision: {verdict}" + (": " + "; ".join(reasons) if reasons else "")}],
            "ethical_considerations": [c for n, t in tasks.items() for c in _fairness(n, t)],
        },
    }



def render_model_card_html(card: dict[str, Any]) -> str:
    """A self-contained page for the card (no scripts, no external assets)."""
    d, p, q, c = (card["model_details"], card["model_parameters"], card["quantitative_analysis"],
                  card["considerations"])
    rows = "".join(
        f"<tr><td>{esc(m['type'])}</td><td>{esc(m['slice'])}</td><td>{esc(m['value'])}</td>"
        f"<td>{esc(m['confidence_interval']['lower_bound']) if 'confidence_interval' in m else '–'}</td>"
        f"<td>{esc(m['confidence_interval']['upper_bound']) if 'confidence_interval' in m else '–'}</td></tr>"
        for m in q["performance_metrics"])
    lis = lambda items: "<ul>" + "".join(f"<li>{esc(i['description'])}</li>" for i in items) + "</ul>"  # noqa: E731
    data = "<ul>" + "".join(f"<li><b>{esc(x['name'])}</b>: {esc(x['description'])}</li>" for x in p["data"]) + "</ul>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Model card: {esc(d['name'])}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:1.5em;max-width:68em}"
            "table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:.2em .5em}</style></head><body>"
            f"<h1>Model card: {esc(d['name'])}</h1><p>{esc(d['overview'])}</p>"
            f"<p><small>schema {esc(card['schema_version'])} (Model Card Toolkit); model {esc(d['path'])}; "
            f"<a href='../index.html'>evaluation report</a></small></p>"
            f"<h2>Model parameters</h2><p>Architecture: {esc(p['model_architecture'])}<br>"
            f"Input: {esc(p['input_format'])}<br>Output: {esc(p['output_format'])}</p><h3>Data</h3>{data}"
            "<h2>Quantitative analysis</h2><table><tr><th>metric</th><th>slice</th><th>value</th>"
            f"<th>95 % lower</th><th>95 % upper</th></tr>{rows}</table>"
            f"<h2>Considerations</h2><h3>Limitations</h3>{lis(c['limitations'])}"
            f"<h3>Tradeoffs</h3>{lis(c['tradeoffs'])}<h3>Decision</h3>{lis(c['use_cases'])}"
            + ("<h3>Fairness (cross-task slices)</h3><ul>" + "".join(
                f"<li>{esc(e['name'])}<br><small>{esc(e['mitigation_strategy'])}</small></li>"
                for e in c.get("ethical_considerations") or []) + "</ul>" if c.get("ethical_considerations") else "")
            + "</body></html>")


def write_model_card(card: dict[str, Any], report_dir: str) -> list[str]:
    """Writes model_card/model_card.json and .html under report_dir; returns their paths."""
    import tensorflow as tf

    tf.io.gfile.makedirs(os.path.join(report_dir, MODEL_CARD_DIR))
    paths = [os.path.join(report_dir, MODEL_CARD_JSON), os.path.join(report_dir, MODEL_CARD_HTML)]
    with tf.io.gfile.GFile(paths[0], "w") as f:
        f.write(json.dumps(card, indent=2, sort_keys=True))
    with tf.io.gfile.GFile(paths[1], "w") as f:
        f.write(render_model_card_html(card))
    return paths
