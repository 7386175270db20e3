"""The Trainer's `gradient_conflict.json` in its model_run folder: written by the
gradient-conflict probe (components/trainer/gradient_probe.py) and read by the
report (report.json `gradient_conflict`, `gradient_probes`)."""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

import tensorflow as tf

PROBE_FILE = "gradient_conflict.json"


def write_probe(out_dir: str, doc: Mapping[str, Any]) -> str:
    """Writes `doc` ({tasks, probe_examples, summary, probes}) as out_dir/gradient_conflict.json; returns the path."""
    tf.io.gfile.makedirs(out_dir)
    path = os.path.join(out_dir, PROBE_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(doc, indent=1, sort_keys=True))
    return path


def read_probe(model_run_dir: str) -> dict | None:
    """The Trainer's gradient_conflict.json, or None when the run wrote none."""
    path = os.path.join(model_run_dir, PROBE_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
