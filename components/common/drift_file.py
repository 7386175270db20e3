"""DriftGate's `drift.json` in its artifact: the newest span against the previous one
(components/drift writes it; the report shows it as report.json `drift` and its "Data drift" section).

    {"status": "passed" | "breached" | "accepted" | "no previous span" | "off",
     "action": "fail" | "warn" | "off", "comparator": "infinity_norm" | ...,
     "compared": {source: {"previous": span, "new": span}},
     "features": {feature: {"distance", "threshold", "passed", "comparator", "previous", "new"}},
     "breaches": ["drift: <feature> ... > threshold ..."]}
"""
from __future__ import annotations

import json
import os
from typing import Any

DRIFT_FILE = "drift.json"


def write_drift(uri: str, content: dict[str, Any]) -> str:
    import tensorflow as tf

    tf.io.gfile.makedirs(uri)
    path = os.path.join(uri, DRIFT_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(content, indent=1, sort_keys=True))
    return path


def read_drift(uri: str | None) -> dict[str, Any] | None:
    import tensorflow as tf

    if not uri:
        return None
    path = os.path.join(uri, DRIFT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())
