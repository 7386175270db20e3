"""BKNet's `model.params`: names, defaults and validation, free of TensorFlow so
config loading can check them (config.parse calls config.registry.validate_params)."""
from __future__ import annotations

import math
from typing import Any, Mapping

from config.errors import fail

# The seed feeds keep_prob 0.5 to its FC layers. Block dropout and L2 are off by
# default: measured on real images (python -m benchmarks.defaults_sweep, docs/results.md)
# the old 0.2 / 5e-4 cost 10-20 accuracy points at a few hundred steps. BN momentum
# 0.9 lets the moving statistics settle within a few hundred steps.
DEFAULT_PARAMS: dict[str, float] = {
    "dropout": 0.5,        # after each FC layer of a branch
    "conv_dropout": 0.0,   # after each trunk block's max-pool
    "l2": 0.0,             # L2 factor on every kernel (keras L2: l2 * sum(w^2))
    "bn_momentum": 0.9,
}


def resolve_params(params: Mapping[str, Any], task_names=(), normalization=None) -> dict[str, float]:
    """Defaults overlaid with config.model.params; unknown or bad values fail by name.
    (BKNet's params do not depend on the tasks or the normalization.)"""
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        fail(f"model.params.{unknown[0]}", f"unknown BKNet parameter; valid: {', '.join(sorted(DEFAULT_PARAMS))}")
    out = dict(DEFAULT_PARAMS)
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail(f"model.params.{key}", f"expected a finite number, received {value!r}")
        if key in ("dropout", "conv_dropout", "bn_momentum") and not 0 <= value < 1:
            fail(f"model.params.{key}", f"must be in [0, 1), received {value!r}")
        if key == "l2" and value < 0:
            fail("model.params.l2", f"must be >= 0, received {value!r}")
        if key == "l2" and value > 1:
            fail("model.params.l2", f"must be <= 1, received {value!r}")
        out[key] = float(value)
    return out
