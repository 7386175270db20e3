"""Blessed or not, and exactly why: the report's verdict from the Evaluator's blessing and
TFMA's validation result (tfma_reader.validation_summary). docs/report.md, "Blessing".

A model that is not blessed always gets a non-empty `not_blessed_reason`, one clause per state
TFMA's ValidationResult can carry (missing_thresholds, missing_slices / missing_cross_slices,
each failure by its cause) and per `evaluation.gate_on: lower_bound` miss; the clauses are
joined with "; ". The strings are built here only, so the page, report.json, the model card
and the console read the same words.
"""
from __future__ import annotations

import math
from typing import Any

from config import PRIMARY_METRIC, Config

FROM_BLESSING = "model blessing"
FROM_TFMA = "tfma validation result"
FROM_TFMA_AND_GATE = "tfma validation result and evaluation.gate_on"
FROM_NO_THRESHOLDS = "no thresholds"
FROM_UNKNOWN = "unknown"

# What was dropped, why nothing was left, and what it costs: read beside TFX's Evaluator
# (components/evaluator/executor.py), which validates only where a threshold applies and
# drops the change thresholds of evaluation.max_regression while nothing has been pushed.
_NO_THRESHOLDS = (
    "{who}, and with no blessed baseline yet the change thresholds of evaluation.max_regression are dropped, "
    "so TFMA had nothing to validate (its validation result says missing_thresholds: true) and TFX's Evaluator "
    "blessed nothing; nothing is pushed, so later runs get no baseline either. To have models blessed and pushed, "
    "set thresholds past each task's chance level, e.g. {hint}")


def _fmt(x: Any) -> str:
    if x is None:
        return "none"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def _signed(x: float) -> str:
    """A change with its sign; one too small for 4 decimals (float noise in TFMA's candidate -
    baseline) in full, not as a bare -0.0000."""
    return f"{x:+.4f}" if x == 0 or abs(x) >= 5e-5 else f"{x:+.3g}"


def threshold_hint(config: Config, names: list[str]) -> str:
    """`tasks[i].thresholds: {<primary metric>: ...} (<task>)` for each task named."""
    return ", ".join(f"tasks[{config.task_index(n)}].thresholds: {{{PRIMARY_METRIC[config.task(n).type]}: ...}} ({n})"
                     for n in names)


def no_thresholds_reason(config: Config) -> str:
    """Why a run whose tasks set no thresholds is not blessed (TFMA's missing_thresholds)."""
    names = [t.name for t in config.tasks if not t.thresholds]
    who = (f"no task sets thresholds ({', '.join(names)})" if len(names) == len(config.tasks)
           else f"tasks {', '.join(names)} set no thresholds")
    return _NO_THRESHOLDS.format(who=who, hint=threshold_hint(config, names))


def missing_slices_reason(validation: dict[str, Any], eval_examples: int) -> str:
    """TFMA matched no slice of the data to the slicing spec of a threshold: nothing there was checked."""
    specs = ([f"missing_slices: {', '.join(validation['missing_slices'])}"] if validation["missing_slices"] else [])
    specs += ([f"missing_cross_slices: {', '.join(validation['missing_cross_slices'])}"]
              if validation["missing_cross_slices"] else [])
    return (f"TFMA found no slice of the eval data where its thresholds apply ({'; '.join(specs)}), so those "
            f"thresholds were not checked; the eval data hold {eval_examples} examples of the config's tasks")


def failure_clause(f: dict[str, Any]) -> str:
    """One TFMA validation failure (tfma_reader.validation_summary) in words."""
    where = f"{f['task']}: {f['metric']}"
    at = f" (slice {f['slice']})"
    if f.get("cause") == "metric_not_found":
        if f["kind"] == "change":
            return (f"{where}: its change from the baseline was not computed (TFMA: Metric not found.), as the "
                    f"candidate or the baseline model gave no value for it, so its change threshold could not be "
                    f"checked{at}")
        return f"{where} was not computed (TFMA: Metric not found.), so its value threshold could not be checked{at}"
    if f.get("cause") == "invalid_comparison":
        said = " ".join(f["message"].split())
        return f"{where}: TFMA could not compare it with its {f['kind']} threshold ({said}){at}"
    th = f.get("threshold") or {}
    if f["kind"] == "value":
        if "lower_bound" in th and f["value"] < th["lower_bound"]:
            return f"{where} {_fmt(f['value'])} is below its threshold {_fmt(th['lower_bound'])}{at}"
        return f"{where} {_fmt(f['value'])} is above its threshold {_fmt(th.get('upper_bound'))}{at}"
    # change: value = candidate - baseline, which TFMA compares with the threshold's own sign
    base = f.get("baseline")
    if "relative" in th and base is not None and math.isclose(base, 0.0):
        return (f"{where}: its relative change from the baseline is undefined (the baseline's value is 0), "
                f"which TFMA counts as a failure{at}")
    of = f" from the baseline's {_fmt(base)}" if base is not None else " from the baseline"
    change = f"{where} changed by {_signed(f['value'])}{of}"
    if "absolute" in th:
        return f"{change}, worse than evaluation.max_regression {abs(th['absolute']):g} allows{at}"
    return (f"{change}, a relative change of {_fmt(f.get('relative_change'))}, worse than its threshold "
            f"{th['relative']:+g}{at}")


def bound_clause(f: dict[str, Any]) -> str:
    """One `evaluation.gate_on: lower_bound` miss (component._bound_failures) in words."""
    lo, hi = (f.get("interval") or [None, None])[:2]
    if f.get("bound") == "lower_bound":
        return (f"{f['task']}: {f['metric']} {_fmt(f['value'])}, but its 95 % interval's lower end {_fmt(lo)} is "
                f"below the threshold {_fmt(f['threshold'].get('lower_bound'))}")
    return (f"{f['task']}: {f['metric']} {_fmt(f['value'])}, but its 95 % interval's upper end {_fmt(hi)} is "
            f"above the threshold {_fmt(f['threshold'].get('upper_bound'))}")


UNEXPLAINED = ("TFMA's validation result says validation_ok: false with no failure, missing slice or "
               "missing_thresholds to explain it")
BLESSING_ONLY = ("the Evaluator's ModelBlessing says not blessed, though TFMA's validation result passed and no "
                 "interval bound missed")
BLESSING_NO_RESULT = ("the Evaluator's ModelBlessing says not blessed, and the evaluation output holds no TFMA "
                      "validation result to say why")
NO_DECISION = ("no decision: the Evaluator's ModelBlessing has no `blessed` property and the evaluation output "
               "holds no TFMA validation result")


def not_blessed_reason(config: Config, validation: dict[str, Any], gate: list[dict[str, Any]],
                       eval_examples: int) -> str:
    """Every reason a model is not blessed, joined with "; " (never empty)."""
    parts = []
    if validation.get("missing_thresholds"):
        parts.append(no_thresholds_reason(config))
    if validation.get("missing_slices") or validation.get("missing_cross_slices"):
        parts.append(missing_slices_reason(validation, eval_examples))
    if validation.get("failures"):
        parts.append("TFMA's validation failed: " + "; ".join(
            failure_clause(f) for f in validation["failures"]))
    if gate:
        parts.append("evaluation.gate_on: lower_bound: " + "; ".join(bound_clause(f) for f in gate))
    if not parts:
        parts.append(UNEXPLAINED if validation.get("ok") is False
                     else BLESSING_NO_RESULT if validation.get("ok") is None else BLESSING_ONLY)
    return "; ".join(parts)


def decide(config: Config, blessed: bool | None, validation: dict[str, Any], gate: list[dict[str, Any]],
           eval_examples: int) -> tuple[bool | None, str, str | None]:
    """(blessed, blessed_from, not_blessed_reason) of the report.

    `blessed`: the ModelBlessing's `blessed` property, None without one (TFX's Evaluator leaves
    it out when no threshold applies). Then TFMA's validation result decides, as the
    Evaluator's gate would (`evaluation.gate_on`). The reason is None only for a blessed model.
    """
    if blessed is not None:
        return blessed, FROM_BLESSING, (None if blessed else
                                        not_blessed_reason(config, validation, gate, eval_examples))
    if validation["ok"] is None:  # TFX's Evaluator always leaves one, thresholds or not: output from elsewhere
        return None, FROM_UNKNOWN, NO_DECISION
    if validation["missing_thresholds"]:
        return False, FROM_NO_THRESHOLDS, not_blessed_reason(config, validation, gate, eval_examples)
    if validation["ok"] and not gate:
        return True, FROM_TFMA, None
    return False, FROM_TFMA_AND_GATE if validation["ok"] else FROM_TFMA, not_blessed_reason(
        config, validation, gate, eval_examples)
