"""A TF 2.16 + tf_keras fix: keep AutoGraph out of tf_keras's own code.

AutoGraph leaves modules matching its DoNotConvert rules alone; TF 2.16's
rules name `keras` but not `tf_keras` (later TF releases add it), so every
trace of a tf_keras model (fit's train step, predict, each saved signature)
re-transpiles tf_keras's internals. Measured on BKNet here: tracing one
forward pass took 20 s before and ~1 s after this rule. Model code written
by us is still converted as usual.
"""
from __future__ import annotations

from tensorflow.python.autograph.core import config as _autograph_config


def skip_autograph_for_tf_keras() -> None:
    """Adds DoNotConvert('tf_keras') to AutoGraph's rules (idempotent)."""
    rules = _autograph_config.CONVERSION_RULES
    if any(isinstance(r, _autograph_config.DoNotConvert) and getattr(r, "_prefix", None) == "tf_keras" for r in rules):
        return
    _autograph_config.CONVERSION_RULES = rules + (_autograph_config.DoNotConvert("tf_keras"),)
