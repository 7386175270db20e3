"""The value thresholds a metric's 95 % interval misses, on the overall slice:
what `evaluation.gate_on: lower_bound` gates on. The Evaluator's gate
(components/evaluator/interval_gate.py) turns a blessing into NOT_BLESSED on
a miss; the report (components/report/component.py) calls the same
`bound_failures` to say why. Read from the EvalConfig
(components/common/eval_config.py) and TFMA's output.

Which interval: a proportion metric (accuracy, precision, recall, within_tolerance,
subset_accuracy, binary_accuracy) is checked against its exact Clopper-Pearson interval from
TFMA's overall-slice counts (components/common/proportions.py), because TFMA's 20-replicate
t-interval collapses at the boundary (110 of 110 right: [1, 1]) and would let a threshold of
0.99 pass on evidence that cannot support it; every other metric against TFMA's interval. The
report shows these same intervals, computed by the same functions from the same k and n.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow_model_analysis as tfma

from components.common.proportions import CLOPPER_PEARSON, counts, proportion_interval
from components.common.tfma_values import class_id_of, interval_of

_CANDIDATE_NAMES = ("", "candidate")
TFMA = "tfma"  # interval_method of a metric checked against TFMA's own interval
CONFUSION_PLOT = "multi_class_confusion_matrix_plot"


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


def overall_confusion_matrices(eval_output_uri: str) -> dict[str, np.ndarray]:
    """{output: argmax confusion matrix (rows true, columns predicted)} of the candidate on the
    overall slice, as the report reads it (components/report/tfma_reader.py)."""
    out = {}
    for per_slice in tfma.load_plots(eval_output_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for kv in per_slice.plot_keys_and_values:
            if kv.key.model_name not in _CANDIDATE_NAMES or kv.key.name != CONFUSION_PLOT:
                continue
            # TFMA's default threshold 0.0 is argmax; one matrix, its entries sparse
            entries = kv.value.multi_class_confusion_matrix_at_thresholds.matrices[0].entries
            k = 1 + max([max(e.actual_class_id, e.predicted_class_id) for e in entries], default=-1)
            m = np.zeros((k, k))
            for e in entries:
                m[e.actual_class_id, e.predicted_class_id] += e.num_weighted_examples
            out[kv.key.output_name] = m
    return out


def bound_failures(eval_config: tfma.EvalConfig, eval_output_uri: str) -> list[dict[str, Any]]:
    """Value thresholds the interval's worse end misses, on the overall slice.

    Each: output, metric, class_id, bound ('lower_bound' or 'upper_bound': the
    end of the interval that was checked), interval [low, high], interval_method
    ('clopper_pearson' for a proportion, with counts [k, n]; 'tfma' for the rest),
    value (the point), threshold, by (> 0: how far past the threshold the bound
    is). A thresholded metric without an interval counts as a failure (interval
    None): gating on a bound that is not there must not pass silently.
    """
    thresholds = value_thresholds(eval_config)
    if not thresholds:
        return []
    seen: dict[tuple, tuple[float, list[float] | None]] = {}
    example_counts: dict[str, float] = {}
    for per_slice in tfma.load_metrics(eval_output_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for kv in per_slice.metric_keys_and_values:
            k = kv.key
            if k.is_diff or k.model_name not in _CANDIDATE_NAMES:
                continue
            key = (k.output_name, k.name, class_id_of(k))
            if key not in thresholds and k.name != "weighted_example_count":
                continue
            value = (kv.value.double_value.value if kv.value.HasField("double_value")
                     else kv.value.bounded_value.value.value)
            if k.name == "weighted_example_count":
                example_counts[k.output_name] = value  # n of the task's shares
            if key in thresholds:
                seen[key] = (value, interval_of(kv))
    matrices = overall_confusion_matrices(eval_output_uri) if seen else {}
    failures = []
    for (output, name, cid), th in sorted(thresholds.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or -1)):
        if (output, name, cid) not in seen:
            continue  # TFMA's own validation reports a missing metric
        value, ci = seen[(output, name, cid)]
        rec = {"output": output, "metric": name, "class_id": cid, "value": value}
        kn = counts(name, cid, value, matrices.get(output), example_counts.get(output))
        if kn is not None:
            ci = proportion_interval(*kn, value)
            rec.update(interval=ci, interval_method=CLOPPER_PEARSON, counts=list(kn))
        else:
            rec.update(interval=ci, interval_method=TFMA)
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
