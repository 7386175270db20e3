"""DriftGate's `drift.json` in its artifact: the newest span against the previous one
(components/drift writes it; the report shows it as report.json `drift` and its "Data drift" section).

    {"status": "passed" | "breached" | "accepted" | "no previous span" | "off",
     "action": "fail" | "warn" | "off", "comparator": "infinity_norm" | ...,
     "compared": {source: {"previous": span, "new": span}},
     "features": {feature: {"distance", "threshold", "passed", "comparator", "previous", "new"}},
     "breaches": ["drift: <feature> ... > threshold ..."]}
"""
from __future__ import annotations

from typing import Any

from components.common.json_file import read_json, write_json

DRIFT_FILE = "drift.json"


def write_drift(uri: str, content: dict[str, Any]) -> str:
    return write_json(uri, DRIFT_FILE, content)


def read_drift(uri: str | None) -> dict[str, Any] | None:
    return read_json(uri, DRIFT_FILE)
