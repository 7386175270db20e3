"""Reading one TFMA metric value: its class id and its 95 % interval. Shared by
the Evaluator's interval gate (components/common/interval_bounds.py) and the
report's reader (components/report/tfma_reader.py)."""
from __future__ import annotations


def class_id_of(key) -> int | None:
    return key.sub_key.class_id.value if key.HasField("sub_key") and key.sub_key.HasField("class_id") else None


def interval_of(kv) -> list[float] | None:
    """[lower, upper] of a scalar metric's 95 % confidence interval as TFMA wrote it, or None.

    TFMA 0.47.1 (metrics_plots_and_validations_writer) writes the unsampled
    value as `value` and the t-interval (alpha 0.05, degrees of freedom =
    replicates - 1) as `confidence_interval.{lower,upper}_bound`; older writers
    put both in a `bounded_value`."""
    if kv.HasField("confidence_interval"):
        ci = kv.confidence_interval
        if ci.lower_bound.HasField("double_value") and ci.upper_bound.HasField("double_value"):
            return [ci.lower_bound.double_value.value, ci.upper_bound.double_value.value]
    if kv.value.HasField("bounded_value"):
        b = kv.value.bounded_value
        return [b.lower_bound.value, b.upper_bound.value]
    return None
