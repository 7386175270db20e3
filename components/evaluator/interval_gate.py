"""`evaluation.gate_on: lower_bound`: bless on the confidence interval's bound.

TFMA 0.47.1 cannot do it: its validator (evaluators/metrics_validator.py)
checks `float(metric)`, which for a metric computed with confidence intervals
is the unsampled point value; a `GenericValueThreshold` has no field that
names the interval. So the gate is applied where the blessing is decided:
`IntervalGatedEvaluator` is the pipeline's Evaluator (components/evaluator/executor.py)
whose executor, after TFMA has
validated and TFX has written the blessing, re-checks every value threshold of
the overall slice against the worse end of the metric's 95 % interval (the
lower bound of a higher-is-better metric, the upper bound of an error metric:
for a proportion the exact Clopper-Pearson interval of TFMA's counts, since
TFMA's own collapses to [1, 1] on an all-right eval set; for the rest TFMA's)
and turns a BLESSED model into NOT_BLESSED when a bound misses. It never
blesses a model TFMA did not bless, and change thresholds (against the
baseline) stay on the point value. The check itself, `bound_failures`, is in
components/common/interval_bounds.py: the report calls the same one to say why.
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

from components.common.interval_bounds import bound_failures
from components.evaluator.executor import BaselineAwareExecutor, Evaluator

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
