"""`evaluation.gate_on: lower_bound`: bless on the confidence interval's bound.

TFMA 0.47.1 cannot do it: its validator (evaluators/metrics_validator.py)
checks `float(metric)`, which for a metric computed with confidence intervals
is the unsampled point value; a `GenericValueThreshold` has no field that
names the interval. So the gate is applied where the blessing is decided:
`IntervalGatedEvaluator` is the pipeline's Evaluator (components/evaluator/executor.py)
whose executor, after TFMA has
validated and TFX has written the blessing, re-checks every value threshold of
the overall slice against the worse end of the metric's 95 % interval (the
lower bound of a higher-is-better metric, the upper bound of an error metric)
and turns a BLESSED model into NOT_BLESSED when a bound misses. It never
blesses a model TFMA did not bless, and change thresholds (against the
baseline) stay on the point value. The report calls the same
`bound_failures` to say why.
"""
from __future__ import annotations

import os
from typing import Any

import tensorflow as tf
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tfx.components.evaluator import constants as _consts
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs

from components.evaluator.executor import BaselineAwareExecutor, Evaluator
from components.report.tfma_reader import class_id_of, interval_of

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


# --- TFX: the Evaluator with the gate -----------------------------------------


def apply_gate(blessing, eval_config: tfma.EvalConfig, eval_output_uri: str) -> list[dict[str, Any]]:
    """Turns a blessed ModelBlessing into not blessed when a bound misses; returns the misses."""
    if not blessing.has_custom_property(_consts.ARTIFACT_PROPERTY_BLESSED_KEY) or \
            blessing.get_int_custom_property(_consts.ARTIFACT_PROPERTY_BLESSED_KEY) != _consts.BLESSED_VALUE:
        return []
    failures = bound_failures(eval_config, eval_output_uri)
    if failures:
        blessed_file = os.path.join(blessing.uri, _consts.BLESSED_FILE_NAME)
        if tf.io.gfile.exists(blessed_file):
            tf.io.gfile.remove(blessed_file)
        with tf.io.gfile.GFile(os.path.join(blessing.uri, _consts.NOT_BLESSED_FILE_NAME), "w") as f:
            f.write("")
        blessing.set_int_custom_property(_consts.ARTIFACT_PROPERTY_BLESSED_KEY, _consts.NOT_BLESSED_VALUE)
        blessing.set_string_custom_property("not_blessed_by", "evaluation.gate_on: lower_bound")
    return failures


class IntervalGateExecutor(BaselineAwareExecutor):
    """The pipeline's Evaluator executor, then `apply_gate` on its blessing."""

    def Do(self, input_dict, output_dict, exec_properties):
        super().Do(input_dict, output_dict, exec_properties)
        raw = exec_properties.get(standard_component_specs.EVAL_CONFIG_KEY)
        blessings = output_dict.get(standard_component_specs.BLESSING_KEY) or []
        if not raw or not blessings:
            return
        eval_config = json_format.Parse(raw, tfma.EvalConfig())
        apply_gate(artifact_utils.get_single_instance(blessings), eval_config,
                   artifact_utils.get_single_uri(output_dict[standard_component_specs.EVALUATION_KEY]))


class IntervalGatedEvaluator(Evaluator):
    """The Evaluator for `evaluation.gate_on: lower_bound` (same inputs, outputs and properties)."""
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(IntervalGateExecutor)
