"""The Evaluator this pipeline runs: TFX's, with the baseline from `PushedModelBaseline`.

`components/baseline.py` always hands the Evaluator a `Model` artifact; when
nothing has been pushed yet that artifact is empty (`found` = 0). TFX's
executor would try to load it, so it is dropped here first, and the
evaluation runs as TFX runs a first one: value thresholds only, the change
thresholds against a baseline left out.
"""
from __future__ import annotations

from tfx import v1 as tfx
from tfx.components.evaluator import executor as _evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs

from components.baseline import has_baseline

_BASELINE = standard_component_specs.BASELINE_MODEL_KEY


def without_empty_baseline(input_dict: dict) -> dict:
    """input_dict with the baseline list emptied when it holds only 'nothing pushed yet'."""
    models = [m for m in input_dict.get(_BASELINE) or [] if has_baseline(m)]
    return {**input_dict, _BASELINE: models}


class BaselineAwareExecutor(_evaluator_executor.Executor):
    """TFX's Evaluator executor, run without the baseline when `PushedModelBaseline` found none."""

    def Do(self, input_dict, output_dict, exec_properties):
        super().Do(without_empty_baseline(input_dict), output_dict, exec_properties)


class Evaluator(tfx.components.Evaluator):
    """TFX's Evaluator (same inputs, outputs and properties) with `BaselineAwareExecutor`."""
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(BaselineAwareExecutor)
