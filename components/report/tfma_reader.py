"""Reading the Evaluator's output (TFMA metrics, plots, validation result)
into plain Python for the report. Nothing here computes a metric: every
number is TFMA's."""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.common.tfma_values import class_id_of, interval_of
from config import Config

# TFMA names the models "candidate"/"baseline" when TFX passes a baseline, and
# "" when it does not.
_CANDIDATE_NAMES = ("", "candidate")
_BASELINE_NAME = "baseline"
CONFUSION_PLOT = "multi_class_confusion_matrix_plot"
CALIBRATION_PLOT = "calibration_plot"

# (slice as ((column, value), ...), output, metric name, class_id or None)
Key = tuple


def slice_items(slice_key) -> tuple:
    items = []
    for s in slice_key.single_slice_keys:
        kind = s.WhichOneof("kind")
        value = getattr(s, kind)
        items.append((s.column, value.decode() if isinstance(value, bytes) else value))
    return tuple(items)


def slice_name(items: tuple) -> str:
    return "overall" if not items else ", ".join(f"{c}={v}" for c, v in items)


def _array(value) -> list[float] | None:
    a = value.array_value
    for field in ("float64_values", "float32_values", "int64_values", "int32_values"):
        if getattr(a, field):
            return [float(x) for x in getattr(a, field)]
    return None


def load_tfma_metrics(eval_output_uri: str, sole_task: str | None = None) -> dict[str, dict[Key, Any]]:
    """TFMA metrics as {'candidate'|'baseline'|'diff': {(slice, output, name, class_id): value}}.

    Scalars are floats; array metrics (error_histogram) are lists of floats.
    With confidence intervals on (components.common.eval_config), the value is TFMA's
    unsampled value (the metric on all examples) and the 95 % interval it
    writes beside it is in 'intervals' (candidate), 'baseline_intervals' and
    'diff_intervals': {key: [lower_bound, upper_bound]}.
    `sole_task`: the task of a one-task model, whose outputs TFMA leaves unnamed
    (see components.common.eval_config: a one-output model's metrics name no output).
    """
    out: dict[str, dict[Key, Any]] = {"candidate": {}, "baseline": {}, "diff": {}, "intervals": {},
                                      "baseline_intervals": {}, "diff_intervals": {}}
    for per_slice in tfma.load_metrics(eval_output_uri):
        items = slice_items(per_slice.slice_key)
        for kv in per_slice.metric_keys_and_values:
            if kv.value.HasField("double_value"):
                value = kv.value.double_value.value
            elif kv.value.HasField("bounded_value"):
                value = kv.value.bounded_value.value.value
            elif kv.value.HasField("array_value"):
                value = _array(kv.value)
            else:
                continue
            k = kv.key
            which = ("diff" if k.is_diff else "candidate" if k.model_name in _CANDIDATE_NAMES
                     else "baseline" if k.model_name == _BASELINE_NAME else None)
            if which and value is not None:
                key = (items, k.output_name or sole_task or "", k.name, class_id_of(k))
                out[which][key] = value
                ci = interval_of(kv)
                if ci is not None:
                    out[{"candidate": "intervals"}.get(which, which + "_intervals")][key] = ci
    return out


def _candidate_plots(eval_output_uri: str, sole_task: str | None = None):
    """(slice items, PlotKey, value) of the candidate model; unnamed outputs named `sole_task`."""
    for per_slice in tfma.load_plots(eval_output_uri):
        items = slice_items(per_slice.slice_key)
        for kv in per_slice.plot_keys_and_values:
            if kv.key.model_name in _CANDIDATE_NAMES:
                key = kv.key
                if sole_task and not key.output_name:
                    key = type(key)()
                    key.CopyFrom(kv.key)
                    key.output_name = sole_task
                yield items, key, kv.value


def load_confusion_matrices(eval_output_uri: str, config: Config, plots=None) -> dict[tuple, list[list[float]]]:
    """{(slice, output): K x K weighted counts, rows = true class, columns = argmax prediction}."""
    out = {}
    for items, key, value in plots if plots is not None else _candidate_plots(eval_output_uri):
        if key.name != CONFUSION_PLOT:
            continue
        k = config.task(key.output_name).width
        m = np.zeros((k, k))
        # TFMA's default threshold 0.0 is argmax; one matrix.
        for e in value.multi_class_confusion_matrix_at_thresholds.matrices[0].entries:
            m[e.actual_class_id, e.predicted_class_id] += e.num_weighted_examples
        out[(items, key.output_name)] = m.tolist()
    return out


def load_calibration_curves(eval_output_uri: str, plots=None) -> dict[tuple, list[dict[str, float]]]:
    """{(slice, output, class_id): buckets holding examples}, in score order.

    Each bucket: lower/upper score bounds, weight (examples), mean_prediction
    (mean score of the class) and mean_label (share of the bucket's examples
    that are of the class).
    """
    out = {}
    for items, key, value in plots if plots is not None else _candidate_plots(eval_output_uri):
        # TFMA writes the calibration plot's key without its name: tell it by its value.
        if key.name not in ("", CALIBRATION_PLOT) or not value.HasField("calibration_histogram_buckets"):
            continue
        buckets = []
        for b in value.calibration_histogram_buckets.buckets:
            w = b.num_weighted_examples.value
            if w > 0:
                buckets.append({"lower": max(b.lower_threshold_inclusive, 0.0),
                                "upper": min(b.upper_threshold_exclusive, 1.0), "weight": w,
                                "mean_prediction": b.total_weighted_refined_prediction.value / w,
                                "mean_label": b.total_weighted_label.value / w})
        out[(items, key.output_name, class_id_of(key))] = buckets
    return out


def load_plots(eval_output_uri: str, sole_task: str | None = None) -> list:
    """All candidate plots, read once (see load_confusion_matrices / load_calibration_curves)."""
    return list(_candidate_plots(eval_output_uri, sole_task))


def _metric_label(config: Config, output: str, name: str, cid: int | None) -> str:
    """`name`, or `name/<class>` for per-class metrics of multiclass/multilabel tasks."""
    if cid is None or output not in config.task_names:
        return name
    task = config.task(output)
    return name if task.type == "binary" else f"{name}/{task.classes[cid]}"


# TFMA's message on a ValidationFailure whose metric is absent from the slice's metrics
# (evaluators/metrics_validator.py). For a change threshold the metric is the candidate -
# baseline diff, absent when the baseline did not produce the metric.
METRIC_NOT_FOUND = "Metric not found."


def spec_name(spec) -> str:
    """A SlicingSpec or CrossSlicingSpec as the report names it: `overall`, `source=*` (a slice
    per value), `source=genki4k`, `SQL <query>`; a cross spec `<baseline spec> vs <spec> | ...`."""
    if hasattr(spec, "baseline_spec"):
        return f"{spec_name(spec.baseline_spec)} vs {' | '.join(spec_name(s) for s in spec.slicing_specs)}"
    parts = [f"{k}=*" for k in spec.feature_keys] + [f"{k}={v}" for k, v in sorted(spec.feature_values.items())]
    if spec.slice_keys_sql:
        parts.append(f"SQL {spec.slice_keys_sql}")
    return ", ".join(parts) or "overall"


def _failure_slice(per_slice) -> tuple[tuple, str]:
    if per_slice.HasField("cross_slice_key"):
        ck = per_slice.cross_slice_key
        pair = (slice_name(slice_items(ck.baseline_slice_key)), slice_name(slice_items(ck.comparison_slice_key)))
        return (), " vs ".join(pair)
    items = slice_items(per_slice.slice_key)
    return items, slice_name(items)


NO_VALIDATION = {"ok": None, "rubber_stamp": None, "missing_thresholds": None, "missing_slices": [],
                 "missing_cross_slices": [], "checked": [], "failures": []}


def validation_summary(eval_output_uri: str, config: Config,
                       metrics: dict[str, dict[Key, float]] | None = None) -> dict[str, Any]:
    """Every state TFMA's ValidationResult can carry, in plain Python (NO_VALIDATION if there is none).

    ok, rubber_stamp, missing_thresholds: its flags. missing_slices,
    missing_cross_slices: the slicing specs of thresholds that no slice of the
    data matched (named by spec_name). checked: its validation_details, the
    slicing specs whose thresholds were checked, with num_matching_slices.
    failures: each with task, metric (`name` or `name/<class>` for
    multiclass and multilabel), slice, kind ('value' or 'change'), threshold,
    value (for 'change': candidate - baseline; None where TFMA had none),
    message (TFMA's), cause ('threshold': missed; 'metric_not_found';
    'invalid_comparison'), and `by`: how far past its limit the value is (> 0;
    None without a value).
    """
    if not tf.io.gfile.glob(os.path.join(eval_output_uri, "validations*")):
        return {k: (list(v) if isinstance(v, list) else v) for k, v in NO_VALIDATION.items()}
    vr = tfma.load_validation_result(eval_output_uri)
    failures = []
    for per_slice in vr.metric_validations_per_slice:
        items, where = _failure_slice(per_slice)
        for f in per_slice.failures:
            k, th = f.metric_key, f.metric_threshold
            message = f.message.strip()
            cause = ("metric_not_found" if message == METRIC_NOT_FOUND
                     else "invalid_comparison" if message else "threshold")
            value = f.metric_value.double_value.value if f.HasField("metric_value") else None
            cid = class_id_of(k)
            # A one-task model's outputs are unnamed (see load_tfma_metrics).
            output = k.output_name or (config.task_names[0] if len(config.tasks) == 1 else "")
            rec = {"task": output, "metric": _metric_label(config, output, k.name, cid),
                   "slice": where, "value": value, "message": message, "cause": cause}
            if th.HasField("value_threshold"):
                vt = th.value_threshold
                rec["kind"] = "value"
                rec["threshold"] = {b: getattr(vt, b).value for b in ("lower_bound", "upper_bound") if vt.HasField(b)}
                lo, hi = rec["threshold"].get("lower_bound", -math.inf), rec["threshold"].get("upper_bound", math.inf)
                rec["by"] = None if value is None else lo - value if value < lo else value - hi
            else:
                ct = th.change_threshold
                higher = ct.direction == tfma.MetricDirection.HIGHER_IS_BETTER
                rec["kind"] = "change"
                rec["threshold"] = {"direction": "higher_is_better" if higher else "lower_is_better"}
                by = []
                base = (metrics or {}).get("baseline", {}).get((items, output, k.name, cid))
                rec["baseline"] = base
                if ct.HasField("absolute"):
                    rec["threshold"]["absolute"] = ct.absolute.value
                    if value is not None:
                        by.append(ct.absolute.value - value if higher else value - ct.absolute.value)
                if ct.HasField("relative"):
                    rec["threshold"]["relative"] = ct.relative.value
                    if base and value is not None:
                        ratio = value / base
                        rec["relative_change"] = ratio
                        by.append(ct.relative.value - ratio if higher else ratio - ct.relative.value)
                rec["by"] = max(by) if by else None
            failures.append(rec)
    return {"ok": bool(vr.validation_ok), "rubber_stamp": bool(vr.rubber_stamp),
            "missing_thresholds": bool(vr.missing_thresholds),
            "missing_slices": [spec_name(s) for s in vr.missing_slices],
            "missing_cross_slices": [spec_name(s) for s in vr.missing_cross_slices],
            "checked": [{"slice": spec_name(d.cross_slicing_spec if d.HasField("cross_slicing_spec")
                                            else d.slicing_spec), "num_matching_slices": d.num_matching_slices}
                        for d in vr.validation_details.slicing_details],
            "failures": failures}
