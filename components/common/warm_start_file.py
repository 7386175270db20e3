"""The Trainer's `warm_start.json` in its model_run folder: where training started from
(components/trainer/warm_start.py writes it; the report shows it as report.json `warm_start`)."""
from __future__ import annotations

from typing import Any

from components.common.json_file import read_json, write_json

WARM_START_FILE = "warm_start.json"


def write_warm_start(model_run_dir: str, source: str | None, reason: str) -> str:
    """{from: the served version's path or None, reason} as model_run_dir/warm_start.json."""
    return write_json(model_run_dir, WARM_START_FILE, {"from": source, "reason": reason})


def read_warm_start(model_run_dir: str | None) -> dict[str, Any] | None:
    """The record, or None for a run that wrote none (a model trained before train.warm_start existed)."""
    return read_json(model_run_dir, WARM_START_FILE)
