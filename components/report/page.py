"""index.html for the report: one self-contained page (inline CSS, no scripts,
no external assets) so it opens from a bucket, a zip or a mail attachment."""
from __future__ import annotations

from typing import Any

from components.report import plots
from components.report.data_page import data_section, drift_section, spans_section
from components.report.fairness import fairness_html
from components.report.plots import esc
from components.report.plots import num as _num

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:68em}
h1{font-size:1.5em} h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0 1em} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
.banner{padding:.8em 1em;border-radius:4px;font-weight:bold}
.ok{background:#e3f4e1;color:#1d5e1a} .bad{background:#fbe3e3;color:#8a1c1c} .unk{background:#eee}
.fail{color:#8a1c1c;font-weight:bold} .pass{color:#1d5e1a} .diag{background:#eef4fb}
small{color:#666} .figs{display:flex;flex-wrap:wrap;gap:1em;margin:.5em 0} svg.fig{font-family:inherit}
.gallery{display:flex;flex-wrap:wrap;gap:.6em} figure.err{margin:0;width:9em;font-size:.8em}
figure.err img{image-rendering:pixelated;border:1px solid #ccc}
h3{font-size:1.05em;margin-bottom:.2em} .ci{color:#555;font-size:.85em;white-space:nowrap}
table.summary td,table.summary th{padding:.3em .7em}
"""



def _th(name: str) -> str:
    """A header cell that may break after underscores (long metric names)."""
    return f"<th>{esc(name).replace('_', '_<wbr>')}</th>"


DEGENERATE = "bootstrap_degenerate"  # components.report.intervals.DEGENERATE


def _ci(value: Any, ci: Any, method: str | None = None) -> str:
    """`value ± half-width [low, high]` of a 95 % interval (the point and its bounds); a degenerate
    bootstrap (every resample the same value, `method` DEGENERATE) is marked, not read as certainty."""
    if value is None or not ci or ci[0] is None or ci[1] is None:
        return _num(value)
    lo, hi = ci
    mark = (" <small class=degenerate title='every bootstrap resample gave the same value: "
            "the interval claims no width'>degenerate</small>" if method == DEGENERATE else "")
    return (f"{_num(value)} <span class=ci title='95 % confidence interval'>± {(hi - lo) / 2:.3g} "
            f"[{_num(lo)}, {_num(hi)}]{mark}</span>")


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:+.2f} %"


def _failure_item(f: dict) -> str:
    """One TFMA validation failure, with its numbers, under the banner's reason."""
    lim = ", ".join(f"{k} {_num(val)}" for k, val in f.get("threshold", {}).items())
    if f.get("cause") == "metric_not_found":
        what = f"{esc(f['metric'])} not computed ({esc(f.get('message'))})"
    elif f.get("cause") == "invalid_comparison":
        what = f"{esc(f['metric'])} not comparable ({esc(' '.join(str(f.get('message')).split()))})"
    elif f.get("kind") == "change" and f.get("baseline") is not None:
        what = f"{esc(f['metric'])} changed by {_num(f['value'])} from the baseline's {_num(f['baseline'])}"
        if f.get("relative_change") is not None:
            what += f" (relative {_pct(f.get('relative_change'))})"
    else:
        what = f"{esc(f['metric'])} = {_num(f['value'])}"
    return (f"<li>task <b>{esc(f['task'])}</b>: {what} "
            f"({esc(f['kind'])} threshold: {esc(lim)}; missed by {_num(f.get('by'))}; "
            f"slice {esc(f['slice'])})</li>")


def _banner(report: dict) -> str:
    """Blessed or not, then why: `not_blessed_reason` word for word (what report.json, the model
    card and the console say), then each failed check with its numbers; or why it passed."""
    blessed = report.get("blessed")
    cls, word = {True: ("ok", "BLESSED"), False: ("bad", "NOT BLESSED")}.get(blessed, ("unk", "BLESSING UNKNOWN"))
    v = report.get("validation", {})
    why = [_failure_item(f) for f in v.get("failures", [])]
    for f in report.get("bound_failures") or []:
        ci = f.get("interval") or [None, None]
        end = "lower" if f.get("bound") == "lower_bound" else "upper"
        lim = ", ".join(f"{k} {_num(val)}" for k, val in f.get("threshold", {}).items())
        why.append(f"<li>task <b>{esc(f['task'])}</b>: {esc(f['metric'])} = {_num(f['value'])}, "
                   "but the 95 % interval's "
                   f"{end} end is {_num(ci[0] if end == 'lower' else ci[1])} (evaluation.gate_on: lower_bound; "
                   f"value threshold: {esc(lim)}; missed by {_num(f.get('by'))})</li>")
    if blessed and not why:
        if v.get("rubber_stamp") and not v.get("checked"):
            why.append("<li>no threshold applied (no task sets one, and there is no baseline model yet): "
                       "TFMA rubber-stamped the model without checking anything</li>")
        elif v.get("rubber_stamp"):
            why.append("<li>all value thresholds met; no baseline model yet, so no comparison was made</li>")
        else:
            mr = report.get("max_regression")
            why.append("<li>all thresholds met, including the comparison with the baseline "
                       f"(no gated metric worse by more than {_num(mr)} in its own unit)</li>")
    out = [f'<div class="banner {cls}">{word} <small>({esc(report.get("blessed_from"))})</small></div>']
    if report.get("not_blessed_reason"):
        out.append(f'<p class="reason"><b>Why:</b> {esc(report["not_blessed_reason"])}</p>')
    if why:
        out.append("<ul>" + "".join(why) + "</ul>")
    for w in report.get("warnings", []):
        out.append(f'<p class="fail">warning: {esc(w)}</p>')
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
    intervals, methods = t.get("intervals") or {}, t.get("interval_methods") or {}
    for metric, value in sorted(t["metrics"].items()):
        th = t["thresholds"].get(metric, t["thresholds"].get(metric.split("/")[0]))  # auc/<label>, f1/<class>
        if "/" in metric and th is None and metric not in failed and metric not in chance:
            continue  # ungated per-class values: in the per-class table
        status = ""
        if metric in failed:
            status = '<span class="fail">fail</span>'
        elif th is not None and t.get("checked", True):
            status = '<span class="pass">pass</span>'
        cell = _ci(value, intervals.get(metric), methods.get(metric))
        rows.append(f"<tr><td class=l>{esc(metric)}</td><td>{cell}</td><td>{_num(th)}</td>"
                    f"<td>{_num(chance.get(metric))}</td><td>{_num(base.get(metric))}</td><td>{status}</td></tr>")
    return ("<table><tr><th class=l>metric</th><th>value <small>± 95 % interval</small></th>"
            "<th>threshold</th><th>chance</th><th>baseline</th><th></th></tr>"
            + "".join(rows) + "</table>")


def same_as_overall(m: dict, overall: dict) -> bool:
    """A slice whose every metric equals the task's overall row (all its examples): no information."""
    return bool(m) and all(k in overall and (v == overall[k] or (isinstance(v, float) and isinstance(overall[k], float)
                                                               and abs(v - overall[k]) <= 1e-9 * max(1.0, abs(v))))
                           for k, v in m.items())


def _slices(t: dict) -> str:
    out = []
    class_col = t.get("class_slice")
    skipped = []
    for column, by_value in sorted(t.get("slices", {}).items()):
        if column == class_col or column in (t.get("fairness") or {}):
            continue  # shown in the per-class table / the fairness tables
        by_value = {v: m for v, m in by_value.items() if not same_as_overall(m, t.get("metrics", {}))}
        if not by_value:
            skipped.append(column)
            continue
        ints = (t.get("slice_intervals") or {}).get(column, {})
        # Whole-task metrics only (per-class ones are in report.json); example_count = weighted.
        names = sorted({k for m in by_value.values() for k in m
                        if (t["type"] == "binary" or "/" not in k) and k != "example_count"})
        head = "".join(_th(n) for n in names)
        rows = "".join(f"<tr><td class=l>{esc(v)}</td>" + "".join(
            f"<td>{_ci(m.get(n), ints.get(v, {}).get(n) if n != 'weighted_example_count' else None)}</td>"
            for n in names) + "</tr>" for v, m in sorted(by_value.items()))
        out.append(f"<h3>By {esc(column)}</h3><p><small>slices holding this task's examples</small></p>"
                   f"<table class='slice-{esc(column)}'><tr><th class=l>{esc(column)}</th>{head}</tr>{rows}</table>")
    if skipped:
        out.append(f"<p class='skipped-slices'><small>not shown: slices by {esc(', '.join(skipped))} "
                   "(their only slice holding this task's examples equals the overall row)</small></p>")
    return "".join(out)


def _per_class(t: dict) -> str:
    per = t.get("per_class")
    if not per:
        return ""
    in_slice = t.get("slices", {}).get(t.get("class_slice") or "", {})
    names = sorted({k for m in per.values() for k in m if k != "support"})
    slice_cols = ["weighted_example_count", "accuracy" if t["type"] != "multilabel" else "subset_accuracy"]
    head = "<th>support</th>" + "".join(_th(n) for n in names)
    if in_slice:
        head += "".join(f"<th>{esc(n).replace('_', '_<wbr>')}<br><small>in class slice</small></th>"
                        for n in slice_cols)
    rows = []
    ints, methods = t.get("intervals") or {}, t.get("interval_methods") or {}
    key = (lambda n, c: n) if t["type"] == "binary" else (lambda n, c: f"{n}/{c}")  # noqa: E731
    for c, m in per.items():
        cells = f"<td>{_num(m.get('support'))}</td>" + "".join(
            f"<td>{_ci(m.get(n), ints.get(key(n, c)), methods.get(key(n, c)))}</td>" for n in names)
        if in_slice:
            cells += "".join(f"<td>{_num(in_slice.get(c, {}).get(n))}</td>" for n in slice_cols)
        rows.append(f"<tr><td class=l>{esc(c)}</td>{cells}</tr>")
    note = ("binary: per-class metrics are those of the positive class; " if t["type"] == "binary" else "")
    if in_slice:
        note += "'in class slice' = TFMA slice of the examples whose true class is that class"
    return (f"<h3>By class</h3><p><small>{esc(note)}</small></p>"
            f"<table class='per-class'><tr><th class=l>class</th>{head}</tr>{''.join(rows)}</table>")


def is_constant(series: list) -> bool:
    """Every point of every series has one value (e.g. static loss weights, a flat 1.0): no information."""
    ys = {y for _, pts in series for _, y in pts}
    return len(ys) == 1 and sum(len(pts) for _, pts in series) > 0


def summary_table(report: dict) -> str:
    """The first screen: a row per task with its primary metric ± interval, n, chance, baseline,
    threshold and pass/fail."""
    rows = []
    for name, t in report.get("tasks", {}).items():
        p = t.get("primary_metric") or next(iter(sorted(t.get("metrics", {}))), "")
        per_label = sorted((v, k) for k, v in t.get("metrics", {}).items() if k.startswith(p + "/") and v is not None)
        if p not in t.get("metrics", {}) and per_label:  # multilabel auc: gated per label; show the lowest
            p = per_label[0][1]
        th = t.get("thresholds", {}).get(p, t.get("thresholds", {}).get(p.split("/")[0]))
        chance = t.get("chance") if t.get("chance_metric") == p else None
        status = ('<span class="fail">fail</span>' if not t.get("passed")
                  else '<span class="pass">pass</span>' if t.get("checked", True)
                  else '<span title="no threshold applied to this task">not checked</span>')
        value = _ci(t.get("metrics", {}).get(p), (t.get("intervals") or {}).get(p),
                    (t.get("interval_methods") or {}).get(p))
        rows.append(f"<tr><td class=l><a href='#task-{esc(name)}'>{esc(name)}</a></td>"
                    f"<td class=l>{esc(t.get('type'))}</td><td class=l>{esc(p)}</td><td>{value}</td>"
                    f"<td>{_num(t.get('eval_examples'))}</td><td>{_num(chance)}</td>"
                    f"<td>{_num((t.get('baseline_metrics') or {}).get(p))}</td><td>{_num(th)}</td>"
                    f"<td>{status}</td></tr>")
    return ("<table class='summary'><tr><th class=l>task</th><th class=l>type</th><th class=l>primary metric</th>"
            "<th>value <small>± 95 % interval</small></th><th>n</th><th>chance</th><th>baseline</th><th>threshold</th>"
            "<th>all gates</th></tr>" + "".join(rows) + "</table>"
            + (f"<p class='intervals-method'><small>95 % intervals: {esc(report['intervals_method'])}"
               "</small></p>" if report.get("intervals_method") else ""))


def _figures(name: str, t: dict) -> str:
    figs = []
    if t.get("confusion_matrix"):
        figs.append(plots.heatmap(f"{name}: confusion matrix", t["confusion_matrix"], t["classes"]))
    hist = t.get("error_histogram")
    if hist:
        tol = hist["tolerance"]
        figs.append(plots.histogram(f"{name}: prediction - label", hist["edges"], hist["counts"],
                                    "error (label unit)", band=(-tol, tol)))
    cal = t.get("calibration_curve") or {}
    series = [(c, [[b["mean_prediction"], b["mean_label"]] for b in buckets]) for c, buckets in cal.items() if buckets]
    if series:
        figs.append(plots.line_chart(f"{name}: calibration (one vs rest)", series, "mean predicted probability",
                                     "share of the class", xlim=(0, 1), ylim=(0, 1), diagonal=True))
    flat = []
    for metric, runs in sorted((t.get("training_curves") or {}).items(), key=lambda kv: kv[0] != "loss"):
        series = [(run, pts) for run, pts in sorted(runs.items())]
        if is_constant(series):
            flat.append(f"{metric} = {_num(series[0][1][0][1])}")
            continue
        figs.append(plots.line_chart(f"{name}: training {metric}", series, "epoch", metric,
                                     dashed=("validation",), integer_x=True))
    if flat:
        figs.append(f"<p class='flat'><small>not drawn, constant over every epoch: {esc('; '.join(flat))}</small></p>")
    if not t.get("training_curves"):
        figs.append("<p><small>no training curves (no TensorBoard events from the Trainer were given)</small></p>")
    if t["type"] == "regression" and not hist:
        figs.append("<p><small>no error histogram: set tasks[].tolerance for it and within_tolerance</small></p>")
    return f"<div class='figs'>{''.join(f for f in figs if f)}</div>"


def _cross_stitch(units: dict) -> str:
    """model.sharing cross_stitch: each unit's mixing weights at the last probe (mean over channels)."""
    if not units:
        return ""
    names = list(next(iter(units.values())))
    body = "".join(f"<tr><td class=l>{esc(u)}</td><td class=l>{esc(t)}</td>"
                   + "".join(f"<td>{_num(rows[t][s])}</td>" for s in names) + "</tr>"
                   for u, rows in units.items() for t in names)
    return ("</table><p><small>Cross-stitch units at the last probe: the weight of each column (from) in each "
            "task's column (to) after the unit, averaged over channels; it starts at 0.9 on itself.</small></p>"
            "<table><tr><th class=l>unit</th><th class=l>to</th>"
            + "".join(f"<th>from {esc(s)}</th>" for s in names) + f"</tr>{body}")


def render_html(report: dict) -> str:
    """The whole page for one report dict (as built by `build_report`)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Report: {esc(report.get('config_name'))}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Evaluation report: {esc(report.get('config_name'))}</h1>", _banner(report), summary_table(report),
             (f"<p class='model-card'>Model card: <a href='{esc(report['model_card'][:-len('.json')])}.html'>"
              f"{esc(report['model_card'][:-len('.json')])}.html</a> "
              f"(<a href='{esc(report['model_card'])}'>JSON</a>, Model Card Toolkit schema)</p>"
              if report.get("model_card") else ""),
             f"<p><small>model: {esc(report.get('model_dir'))}<br>eval data: {len(report.get('eval_data', []))} file(s)"
             f"<br>TFMA output: {esc(report.get('eval_output_uri'))}</small></p>", data_section(report),
             spans_section(report), drift_section(report)]
    for name, t in report.get("tasks", {}).items():
        t = dict(t, _failures=[f for f in report.get("validation", {}).get("failures", []) if f["task"] == name])
        chance = t.get("chance")
        extra = f" (positive class: {esc(t['positive_class'])})" if t.get("positive_class") else ""
        parts.append(
            f"<h2 id='task-{esc(name)}'>{esc(name)} <small>{esc(t['type'])}{extra}</small></h2>"
            f"<p>{_num(t.get('eval_examples'))} eval examples. Chance: {_num(chance)} "
            f"<small>({esc(t.get('chance_rule'))})</small>"
            + (f"; uniform guess: {_num(t['chance_uniform'])}" if t.get("chance_uniform") is not None else "")
            + "</p>")
        if t.get("tolerance") is not None:
            parts.append(f"<p>Tolerance: ± {_num(t['tolerance'])} (label unit) for within_tolerance.</p>")
        parts.append(_metric_table(name, t))
        parts.append(_figures(name, t))
        parts.append(_gallery(t))
        parts.append(_per_class(t))
        parts.append(_slices(t))
        parts.append(fairness_html(t, _num))
    total = report.get("training_curves_total") or {}
    if total.get("loss") or total.get("learning_rate"):
        figs = []
        if total.get("loss"):
            figs.append(plots.line_chart("total weighted loss", sorted(total["loss"].items()), "epoch", "loss",
                                         dashed=("validation",), integer_x=True))
        if total.get("learning_rate"):  # as Keras logs it: the rate at the end of each epoch
            figs.append(plots.line_chart("learning rate (end of epoch)", sorted(total["learning_rate"].items()),
                                         "epoch", "learning rate", integer_x=True))
        parts.append("<h2 id='training'>Training (all tasks)</h2><div class='figs'>" + "".join(figs) + "</div>")
    parts.append(_gradient_section(report))
    parts.append("</body></html>")
    return "\n".join(parts)


def _gallery(t: dict) -> str:
    """Thumbnails of the task's most confident wrong predictions (components/report/gallery.py)."""
    entries = t.get("error_gallery") or []
    if not entries:
        return ""

    def caption(e: dict) -> str:
        show = lambda v: ", ".join(v) if isinstance(v, list) else (_num(v) if isinstance(v, float) else str(v))  # noqa: E731
        score = f"confidence {e['confidence']:.2f}" if "confidence" in e else f"error {_num(e['error'])}"
        return f"true {esc(show(e['true']))}<br>predicted {esc(show(e['predicted']))}<br><small>{score}</small>"

    cells = "".join(f"<figure class='err'><img src='{esc(e['image'])}' width=72 height=72 alt='{esc(e['example_id'])}' "
                    f"title='{esc(e['source'])}: {esc(e['example_id'])}'><figcaption>{caption(e)}</figcaption></figure>"
                    for e in entries)
    what = "largest errors" if t.get("type") == "regression" else "most confident wrong predictions"
    return f"<h3>Error gallery: {what}</h3><div class='gallery'>{cells}</div>"


def _gradient_section(report: dict) -> str:
    """Which tasks fight: the gradient-conflict probe (components/trainer/gradient_probe.py)."""
    probes, summary = report.get("gradient_probes") or [], report.get("gradient_conflict") or {}
    if not probes or not summary:
        return ""
    names = list(report.get("tasks") or probes[-1]["norm"])
    figs = [plots.cosine_heatmap("mean gradient cosine (shared layers)",
                                 {p: s["cosine_mean"] for p, s in summary.items()}, names),
            plots.line_chart("cosine of task gradients over training",
                             [(p, [[q["step"], q["cosine"][p]] for q in probes]) for p in summary], "step", "cosine",
                             ylim=(-1.0, 1.0))]
    weights = [(t, [[q["step"], q["loss_weights"][t]] for q in probes]) for t in names]
    if not is_constant(weights):  # static weights, flat at 1: nothing to see
        figs.append(plots.line_chart("loss weights used", weights, "step", "weight"))
    rows = "".join(f"<tr><td class=l>{esc(p)}</td><td>{_num(s['cosine_mean'])}</td>"
                   f"<td>{100 * s['negative_share']:.0f} %</td><td>{_num(s.get('norm_ratio_last'))}</td></tr>"
                   for p, s in summary.items())
    gates = report.get("gate_use") or {}
    if gates:  # mixture-of-experts sharing: how much each task uses each expert (last probe)
        k = max(len(v) for v in gates.values())
        head = "".join(f"<th>expert {i}</th>" for i in range(k))
        body = "".join(f"<tr><td class=l>{esc(t)}</td>" + "".join(f"<td>{100 * v:.0f} %</td>" for v in shares)
                       + "</tr>" for t, shares in gates.items())
        rows_note = (f"</table><p><small>Gate use at the last probe: each task's mean gate weight over the "
                     f"experts it mixes (cgc / ple: its own experts first, then the shared ones).</small></p>"
                     f"<table><tr><th class=l>task</th>{head}</tr>{body}")
    else:
        rows_note = ""
    rows_note += _cross_stitch(report.get("cross_stitch") or {})
    return ("<h2 id='gradients'>Task gradients: which tasks fight</h2><p><small>Each epoch, on one fixed batch "
            "holding every task, the gradient of each task's loss on the shared layers. Cosine &lt; 0: a step "
            "that helps one task hurts the other. Norm ratio: how much more one task pulls the shared layers "
            "than the other (last probe).</small></p><table><tr><th class=l>tasks</th><th>mean cosine</th>"
            f"<th>probes with cosine &lt; 0</th><th>norm ratio</th></tr>{rows}{rows_note}</table>"
            "<div class='figs'>" + "".join(figs) + "</div>")
