"""The Trainer's `warm_start.json` in its model_run folder: where training started from
(components/trainer/warm_start.py writes it; the report shows it as report.json `warm_start`)."""
from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

WARM_START_FILE = "warm_start.json"


def write_warm_start(model_run_dir: str, source: str | None, reason: str) -> str:
    """{from: the served version's path or None, reason} as model_run_dir/warm_start.json."""
    tf.io.gfile.makedirs(model_run_dir)
    path = os.path.join(model_run_dir, WARM_START_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps({"from": source, "reason": reason}, indent=1, sort_keys=True))
    return path


def read_warm_start(model_run_dir: str | None) -> dict[str, Any] | None:
    """The record, or None for a run that wrote none (a model trained before train.warm_start existed)."""
    if not model_run_dir:
        return None
    path = os.path.join(model_run_dir, WARM_START_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
