"""Wall time of `run_local.py` on the default config, then of the same run again.

The second run changes nothing, so every component should come from the
cache (issue: reruns that reuse what did not change).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks.figures import Figure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _timed_run(output_dir: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run_local.py", "--config", "configs/default.yaml",
                    "--output-dir", output_dir], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "outputs")
        first = _timed_run(out)
        second = _timed_run(out)
    return [
        Figure("default_run_s", round(first, 1), 300.0, "s", "lower"),
        Figure("cached_rerun_s", round(second, 1), 60.0, "s", "lower"),
    ]
