"""The value thresholds a metric's 95 % interval misses, on the overall slice:
what `evaluation.gate_on: lower_bound` gates on. The Evaluator's gate
(components/evaluator/interval_gate.py) turns a blessing into NOT_BLESSED on
a miss; the report (components/report/component.py) calls the same
`bound_failures` to say why. Read from the EvalConfig
(components/common/eval_config.py) and TFMA's output.
"""
from __future__ import annotations

from typing import Any

import tensorflow_model_analysis as tfma

from components.common.tfma_values import class_id_of, interval_of

_CANDIDATE_NAMES = ("", "candidate")


def value_thresholds(eval_config: tfma.EvalConfig) -> dict[tuple, tfma.GenericValueThreshold]:
    """{(output, metric name, class_id): value threshold} of the overall slice, as TFMA reads the config."""
    out = {}
    for key, thresholds in tfma.metrics.metric_thresholds_from_metrics_specs(
            eval_config.metrics_specs, eval_config=eval_config).items():
        if key.is_diff or key.model_name not in _CANDIDATE_NAMES:
            continue
        for slice_spec, th in thresholds:
            overall = slice_spec is None or slice_spec == tfma.SlicingSpec()
            if overall and isinstance(th, tfma.GenericValueThreshold):
                cid = key.sub_key.class_id if key.sub_key and key.sub_key.class_id is not None else None
                out[(key.output_name, key.name, cid)] = th
    return out


def bound_failures(eval_config: tfma.EvalConfig, eval_output_uri: str) -> list[dict[str, Any]]:
    """Value thresholds the interval's worse end misses, on the overall slice.

    Each: output, metric, class_id, bound ('lower_bound' or 'upper_bound': the
    end of the interval that was checked), interval [low, high], value (the
    point), threshold, by (> 0: how far past the threshold the bound is). A
    thresholded metric without an interval counts as a failure (bound None):
    gating on a bound that is not there must not pass silently.
    """
    thresholds = value_thresholds(eval_config)
    if not thresholds:
        return []
    seen: dict[tuple, tuple[float, list[float] | None]] = {}
    for per_slice in tfma.load_metrics(eval_output_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for kv in per_slice.metric_keys_and_values:
            k = kv.key
            if k.is_diff or k.model_name not in _CANDIDATE_NAMES:
                continue
            key = (k.output_name, k.name, class_id_of(k))
            if key in thresholds:
                value = (kv.value.double_value.value if kv.value.HasField("double_value")
                         else kv.value.bounded_value.value.value)
                seen[key] = (value, interval_of(kv))
    failures = []
    for (output, name, cid), th in sorted(thresholds.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or -1)):
        if (output, name, cid) not in seen:
            continue  # TFMA's own validation reports a missing metric
        value, ci = seen[(output, name, cid)]
        rec = {"output": output, "metric": name, "class_id": cid, "value": value, "interval": ci}
        if th.HasField("lower_bound"):
            lo = th.lower_bound.value
            rec.update(bound="lower_bound", threshold={"lower_bound": lo})
            if ci is None or ci[0] < lo:
                failures.append(dict(rec, by=None if ci is None else lo - ci[0]))
                continue
        if th.HasField("upper_bound"):
            hi = th.upper_bound.value
            rec.update(bound="upper_bound", threshold={"upper_bound": hi})
            if ci is None or ci[1] > hi:
                failures.append(dict(rec, by=None if ci is None else ci[1] - hi))
    return failures
