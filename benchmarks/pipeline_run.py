"""Wall time of `run_local.py` on the default config, then of the same run again.

The second run changes nothing, so every component should come from the
cache (issue: reruns that reuse what did not change).

With BENCH_BASELINE_CHECKOUT=DIR (another checkout of this project, e.g. a
`git worktree` of an older main) the fresh run is also timed there, alternated
with this checkout's in the order B A A B B A ... (BENCH_RUN_PAIRS pairs,
default 2), so a load change on the machine falls on both sides alike:

  default_run_s           median of this checkout's fresh runs
  default_run_baseline_s  median of the baseline checkout's fresh runs
  default_run_ratio       the two medians' ratio (goal <= 0.75, issue 28)

Both checkouts run their own `run_local.py` on their own configs/default.yaml
with their own `.venv/bin/python` (what `make run` runs there; this Python
where a checkout has no .venv), so each side runs as its own `make setup`
installed it. Their sample data is generated before the first timed run, so no
timed run includes the generation.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.figures import Figure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATIO_GOAL = 0.75
# Generates whatever sample data configs/default.yaml asks for, in the checkout it runs in.
_GENERATE = ("from config import load; from data_prep.generate import generate_missing; "
             "print(*generate_missing(load('configs/default.yaml')))")


def _env(checkout: str) -> dict:
    # each checkout imports its own packages, whatever PYTHONPATH this process was given
    return {**os.environ, "PYTHONPATH": checkout}


def python_of(checkout: str) -> str:
    """The checkout's own venv Python (the one its `make run` uses), else this one."""
    own = os.path.join(checkout, ".venv", "bin", "python")
    return own if os.access(own, os.X_OK) else sys.executable


def _timed_run(output_dir: str, checkout: str = ROOT) -> float:
    start = time.perf_counter()
    subprocess.run([python_of(checkout), "run_local.py", "--config", "configs/default.yaml",
                    "--output-dir", output_dir], cwd=checkout, check=True, env=_env(checkout),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def component_seconds(last_run_json: str) -> dict[str, float]:
    """{component: seconds} from a run's last_run.json; {} where the run wrote none."""
    if not os.path.exists(last_run_json):
        return {}
    with open(last_run_json) as f:
        return {c["component"]: round(c["seconds"], 1) for c in json.load(f).get("components", [])}


def run_order(pairs: int) -> list[str]:
    """'B' (baseline) and 'A' (this checkout) alternated as B A A B B A ...: each side runs
    first in half the pairs, so a drift in the machine's load cancels."""
    if pairs < 1:
        raise ValueError(f"BENCH_RUN_PAIRS must be >= 1, received {pairs}")
    return [s for i in range(pairs) for s in (("B", "A") if i % 2 == 0 else ("A", "B"))]


def _compare(baseline: str, pairs: int, tmp: str) -> tuple[list[Figure], str]:
    """Alternated fresh runs in both checkouts; the figures and the first output dir of
    this checkout (for the cached rerun)."""
    if not os.path.exists(os.path.join(baseline, "run_local.py")):
        raise ValueError(f"BENCH_BASELINE_CHECKOUT: no run_local.py in {baseline!r}")
    for checkout in (ROOT, baseline):
        subprocess.run([python_of(checkout), "-c", _GENERATE], cwd=checkout, check=True, env=_env(checkout),
                       stdout=subprocess.DEVNULL)
    times: dict[str, list[float]] = {"A": [], "B": []}
    components: dict[str, list[dict]] = {"A": [], "B": []}
    for i, side in enumerate(run_order(pairs)):
        out = os.path.join(tmp, f"{side}{i}")
        seconds = _timed_run(out, ROOT if side == "A" else baseline)
        times[side].append(seconds)
        # where a slow run lost its time (run_local writes each component's seconds)
        components[side].append(component_seconds(os.path.join(out, "last_run.json")))
        shown = ", ".join(f"{k} {v:.0f}" for k, v in components[side][-1].items() if v >= 1)
        print(f"  run {i + 1}: {'this checkout' if side == 'A' else 'baseline'} {seconds:.1f} s ({shown})",
              flush=True)
    mine, base = statistics.median(times["A"]), statistics.median(times["B"])
    print(f"  this checkout {[round(t, 1) for t in times['A']]} s, baseline {baseline} "
          f"{[round(t, 1) for t in times['B']]} s", flush=True)
    first_mine = os.path.join(tmp, f"A{run_order(pairs).index('A')}")
    return [
        Figure("default_run_s", round(mine, 1), 300.0, "s", "lower"),
        Figure("default_run_baseline_s", round(base, 1), 300.0, "s", "lower"),
        Figure("default_run_ratio", round(mine / base, 3), RATIO_GOAL, "ratio", "lower",
               detail={"this_checkout_s": times["A"], "baseline_s": times["B"], "baseline": baseline,
                       "this_checkout_python": python_of(ROOT), "baseline_python": python_of(baseline),
                       "this_checkout_components_s": components["A"], "baseline_components_s": components["B"]}),
    ], first_mine


def run() -> list[Figure]:
    baseline = os.environ.get("BENCH_BASELINE_CHECKOUT")
    with tempfile.TemporaryDirectory() as tmp:
        if baseline:
            figures, out = _compare(os.path.abspath(baseline), int(os.environ.get("BENCH_RUN_PAIRS", "2")), tmp)
        else:
            out = os.path.join(tmp, "outputs")
            figures = [Figure("default_run_s", round(_timed_run(out), 1), 300.0, "s", "lower")]
        second = _timed_run(out)
    return figures + [Figure("cached_rerun_s", round(second, 1), 60.0, "s", "lower")]
