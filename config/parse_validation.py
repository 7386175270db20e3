"""`validation:`: the drift check's settings (docs/config.md#validation, docs/drift.md)."""
from __future__ import annotations

from typing import Any

from config.checks import as_mapping, choice, number, section
from config.types import DRIFT_ACTIONS, DRIFT_COMPARATORS, DRIFT_FEATURES, DriftConfig, ValidationConfig


def parse_validation(raw: Any) -> ValidationConfig:
    d = section("validation", raw, ValidationConfig)
    drift = section("validation.drift", d["drift"], DriftConfig)
    given = as_mapping("validation.drift.thresholds", drift["thresholds"] or {}, set(DRIFT_FEATURES))
    thresholds = dict(DriftConfig().thresholds)
    # A distance of 1 is the most an L-infinity norm or a Jensen-Shannon divergence (base 2) can be.
    thresholds.update({k: number(f"validation.drift.thresholds.{k}", v, lo=0, hi=1) for k, v in given.items()})
    return ValidationConfig(drift=DriftConfig(
        action=choice("validation.drift.action", drift["action"], DRIFT_ACTIONS),
        comparator=choice("validation.drift.comparator", drift["comparator"], DRIFT_COMPARATORS),
        thresholds=thresholds))
