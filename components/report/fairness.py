"""Fairness slices across tasks: a task's metrics per class of another task.

`evaluation.slices: [{task: age, by: gender}]` slices the Evaluator's output
by the slice-only feature `slice_gender` (docs/data_contract.md), which only
the examples of a record labelled for both tasks carry. From TFMA's numbers
per slice (nothing is recomputed here) this builds report.json's per task

    fairness: {<slice feature>: {<value>: {<metric>: value, "n": count, ...}}}

with, for binary and multiclass tasks, Fairness Indicators' false positive
and false negative rates (argmax, one class against the rest: binary = the
positive class; multiclass = the macro mean over the classes defined in the
slice, per class as `<rate>/<class>` too) and each value's gap to the task's
overall value (slice - overall). A slice with fewer of the task's examples
than `evaluation.min_slice_size` keeps only `n` and `too_small: true`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from components.common.eval_config import fairness_slice_column, fairness_slices
from components.report.plots import esc
from config import PRIMARY_METRIC, Config, TaskConfig

RATES = ("false_positive_rate", "false_negative_rate")
RATE_LABELS = {"false_positive_rate": "FPR", "false_negative_rate": "FNR"}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def rates(task: TaskConfig, metrics: dict[str, float]) -> dict[str, float]:
    """FPR and FNR of one slice's metrics (report names): binary: the positive class's;
    multiclass: per class (`<rate>/<class>`) and their macro mean over the classes where
    the rate is defined (FPR needs examples not of the class, FNR examples of it)."""
    out: dict[str, float] = {}
    if task.type == "binary":
        return {r: metrics[r] for r in RATES if _finite(metrics.get(r))}
    if task.type != "multiclass":
        return out
    for r in RATES:
        per = {c: metrics.get(f"{r}/{c}") for c in task.classes}
        defined = [v for v in per.values() if _finite(v)]
        out.update({f"{r}/{c}": v for c, v in per.items() if _finite(v)})
        if defined:
            out[r] = sum(defined) / len(defined)
    return out


def rate_rule(task: TaskConfig) -> str:
    if task.type == "binary":
        return f"argmax, positive class {task.classes[1]!r}"
    if task.type == "multiclass":
        return "argmax, one class against the rest, macro mean over the classes defined in the slice"
    return "none: false positive / negative rates are for binary and multiclass tasks"


def task_fairness(config: Config, task: TaskConfig, overall: dict[str, float],
                  slices: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """{fairness, fairness_overall, fairness_rule} of one task (empty without cross-task slices).

    `overall`: the task's overall-slice metrics; `slices`: its metrics per slice column and
    value (report.json's `slices`, only slices holding the task's examples)."""
    columns = [fairness_slice_column(s.by) for s in fairness_slices(config) if s.task == task.name]
    if not columns:
        return {}
    primary = PRIMARY_METRIC[task.type]
    ref = {primary: overall.get(primary), **rates(task, overall), "n": overall.get("weighted_example_count")}
    out: dict[str, dict[str, Any]] = {}
    for column in columns:
        out[column] = {}
        for value, m in sorted((slices.get(column) or {}).items()):
            n = int(round(m.get("weighted_example_count") or 0))
            if n < config.evaluation.min_slice_size:
                out[column][value] = {"n": n, "too_small": True}
                continue
            entry: dict[str, Any] = {"n": n, primary: m.get(primary), **rates(task, m)}
            for k in [primary, *RATES]:
                if _finite(entry.get(k)) and _finite(ref.get(k)):
                    entry[f"{k}_gap"] = entry[k] - ref[k]
            out[column][value] = entry
    return {"fairness": out, "fairness_overall": ref, "fairness_rule": rate_rule(task),
            "min_slice_size": config.evaluation.min_slice_size}


def fairness_html(t: dict, num: Callable[[Any], str]) -> str:
    """One table per fairness slice of a task: value, n, metric, FPR, FNR, gaps to the overall row;
    slices under min_slice_size marked too small instead of numbers."""
    fairness = t.get("fairness") or {}
    if not fairness:
        return ""
    primary = t.get("primary_metric")
    ref = t.get("fairness_overall") or {}
    cols = [primary] + ([r for r in RATES] if t.get("type") in ("binary", "multiclass") else [])
    gap = lambda v: "–" if v is None else f"{v:+.3f}"  # noqa: E731
    out = []
    for column, by_value in sorted(fairness.items()):
        head = "".join(f"<th>{esc(RATE_LABELS.get(c, c))}</th>" for c in cols)
        gaps = "".join(f"<th>gap {esc(RATE_LABELS.get(c, c))}</th>" for c in cols)
        rows = [f"<tr class='overall'><td class=l><i>overall</i></td><td>{num(ref.get('n'))}</td>"
                + "".join(f"<td>{num(ref.get(c))}</td>" for c in cols) + "<td></td>" * len(cols) + "</tr>"]
        for value, e in sorted(by_value.items()):
            if e.get("too_small"):
                rows.append(f"<tr class='too-small'><td class=l>{esc(value)}</td><td>{e['n']}</td>"
                            f"<td class=l colspan={2 * len(cols)}><small>too small (n={e['n']} &lt; "
                            f"{t.get('min_slice_size')})</small></td></tr>")
                continue
            rows.append(f"<tr><td class=l>{esc(value)}</td><td>{e['n']}</td>"
                        + "".join(f"<td>{num(e.get(c))}</td>" for c in cols)
                        + "".join(f"<td>{gap(e.get(c + '_gap'))}</td>" for c in cols) + "</tr>")
        out.append(f"<h3>Fairness: by {esc(column)}</h3><p><small>this task's eval examples whose record is also "
                   f"labelled for {esc(column[len('slice_'):])}; rates: {esc(t.get('fairness_rule'))}; gap = slice "
                   f"- overall</small></p><table class='fairness-{esc(column)}'><tr><th class=l>{esc(column)}</th>"
                   f"<th>n</th>{head}{gaps}</tr>{''.join(rows)}</table>")
    return "".join(out)
