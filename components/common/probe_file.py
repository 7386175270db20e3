"""The Trainer's `gradient_conflict.json` in its model_run folder: written by the
gradient-conflict probe (components/trainer/gradient_probe.py) and read by the
report (report.json `gradient_conflict`, `gradient_probes`)."""
from __future__ import annotations

from typing import Any, Mapping

from components.common.json_file import read_json, write_json

PROBE_FILE = "gradient_conflict.json"


def write_probe(out_dir: str, doc: Mapping[str, Any]) -> str:
    """Writes `doc` ({tasks, probe_examples, summary, probes}) as out_dir/gradient_conflict.json; returns the path."""
    return write_json(out_dir, PROBE_FILE, doc)


def read_probe(model_run_dir: str) -> dict | None:
    """The Trainer's gradient_conflict.json, or None when the run wrote none."""
    return read_json(model_run_dir, PROBE_FILE)
