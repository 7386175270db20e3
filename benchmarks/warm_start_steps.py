"""Warm start: how many training steps it saves to reach the same accuracy on a new span.

    python -m benchmarks.warm_start_steps --output-dir DIR [--seeds 2] [--first-seed 0] [--quick]

(from the repo root, with `TF_USE_LEGACY_KERAS=1 PYTHONPATH=.` and the project
venv.) For each seed s, the continuous demo's setup (runners/demo_continuous.py,
configs/continuous.yaml) with every source's sample seed plus 1000 s and
`train.seed` plus s:

  1. DIR/seed-s/warm: span 1 of the sample data (demo_continuous.write_span), one
     run_local.py run: model A is pushed and serves. Then span 2 (other seeds,
     genki4k's smile share 0.85);
  2. WARM: run_local.py again in DIR/seed-s/warm (`train.warm_start: true`, as the
     demo's config): trains on spans 1 + 2 from model A's weights;
  3. SCRATCH: run_local.py in DIR/seed-s/scratch with the same config and data
     (its sources point at DIR/seed-s/warm/data) but `train.warm_start: false`.

Both run-2 variants train `train.steps` (the config's 600) on spans 1 + 2 and
validate after every epoch (components/trainer/run_fn.epochs_for: 600 steps =
10 epochs of 60) on span 2's eval split. From each run-2 report's per-epoch
validation curves (`tasks[<task>].training_curves[<metric>].validation`, accuracy;
mae for a regression task, lower better) `compare` computes per task: the
scratch run's final value (the target), the first step (epoch x steps per
epoch) at which the warm run reaches it, the steps saved (train.steps minus
that step; 0 when it never does), the scratch run's own first step at its final
value (its curve is not monotonic: the warm run is only ahead by the difference),
and both runs' first-epoch and final values. Beside them, the Evaluator's (TFMA's)
values on the same split: model A's before any training on span 2 (the warm
run's baseline, i.e. 0 steps) and the two run-2 models'.

The task thresholds are set to 0 (and `evaluation.max_regression` to 0.99) so
model A is always blessed and pushed: the warm run needs a served model, and
thresholds gate only the push, not the training. `validation.drift.action`
stays `warn` (span 2 is shifted on purpose). Each run's report is copied to
DIR/seed-s/report-<run>.json; a rerun skips runs whose copy exists. Prints a
table and writes DIR/warm_start_steps.json (docs/warm_start.md#what-a-warm-start-saves-measured-2026-12-06).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse
import json
import shutil
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED_STEP = 1000  # sample seeds of seed s: the config's + 1000 s (spans add 100 per span)
RUNS = ("first", "warm", "scratch")


# ---------------------------------------------------------------- the arithmetic


def metric_for(task_type: str) -> tuple[str, bool]:
    """The per-epoch validation metric compared for a task, and whether higher is better."""
    return ("mae", False) if task_type == "regression" else ("accuracy", True)


def validation_curve(report: dict, task: str, metric: str) -> list[float]:
    """A task's per-epoch validation values from report.json, in epoch order (epochs 0, 1, ...)."""
    points = report["tasks"][task]["training_curves"][metric]["validation"]
    return [v for _, v in sorted(points)]


def compare(warm: list[float], scratch: list[float], steps: int, steps_per_epoch: int,
            higher_is_better: bool = True) -> dict:
    """Steps a warm start saves, from two per-epoch validation curves of runs of `steps` steps.

    target: the scratch run's final value. reached_step: (epoch + 1) x steps_per_epoch of the
    warm run's first epoch at or past the target (None when it never gets there); steps_saved:
    steps - reached_step, 0 when never reached.
    """
    if not warm or not scratch:
        raise ValueError("empty validation curve")
    target = scratch[-1]

    def first_step(curve: list[float]) -> int | None:
        return next(((i + 1) * steps_per_epoch for i, v in enumerate(curve)
                     if (v >= target if higher_is_better else v <= target)), None)

    reached_step = first_step(warm)
    return {
        "steps": steps,
        "target": target,
        "reached_step": reached_step,
        "steps_saved": 0 if reached_step is None else steps - reached_step,
        "warm_first_epoch": warm[0],
        "scratch_first_epoch": scratch[0],
        "warm_final": warm[-1],
        "scratch_final": scratch[-1],
        # the scratch run's own first step at its final value (its curve need not be monotonic)
        "scratch_reached_step": first_step(scratch),
    }


def summarize(per_seed: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per task over seeds: mean steps saved, how many seeds reached the target, mean gaps."""
    tasks: dict[str, list[dict]] = {}
    for seed in per_seed.values():
        for task, row in seed.items():
            tasks.setdefault(task, []).append(row)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {task: {
        "seeds": len(rows),
        "reached": sum(r["reached_step"] is not None for r in rows),
        "mean_steps_saved": mean([r["steps_saved"] for r in rows]),
        # against the scratch run's own first step at its final value (never reached: counted at `steps`)
        "mean_steps_ahead_of_scratch": mean([r["scratch_reached_step"] - (r["reached_step"] or r["steps"])
                                             for r in rows]),
        "mean_first_epoch_gap": mean([r["warm_first_epoch"] - r["scratch_first_epoch"] for r in rows]),
        "mean_final_gap": mean([r["warm_final"] - r["scratch_final"] for r in rows]),
    } for task, rows in tasks.items()}


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def table(per_seed: dict[str, dict[str, dict]], steps: int) -> str:
    lines = [f"{'seed':>4} {'task':<7} {'target':>7} {'warm@step':>9} {'saved':>6} {'scratch@step':>12} "
             f"{'1st ep warm':>11} {'1st ep scratch':>14} {'final warm':>10} "
             f"{'TFMA: A':>7} {'warm':>6} {'scratch':>7}"]
    for seed, tasks in per_seed.items():
        for task, r in tasks.items():
            reached = "never" if r["reached_step"] is None else str(r["reached_step"])
            lines.append(f"{seed:>4} {task:<7} {r['target']:7.3f} {reached:>9} {r['steps_saved']:>6} "
                         f"{r['scratch_reached_step']:>12} "
                         f"{r['warm_first_epoch']:11.3f} {r['scratch_first_epoch']:14.3f} {r['warm_final']:10.3f} "
                         f"{_f(r.get('served_tfma')):>7} {_f(r.get('warm_final_tfma')):>6} "
                         f"{_f(r.get('scratch_final_tfma')):>7}")
    lines.append(f"(of {steps} steps; target = the scratch run's final per-epoch validation value, scratch@step "
                 f"the scratch run's own first step at it; TFMA: the "
                 f"Evaluator's values on span 2's eval split of model A before training on span 2, and of the "
                 f"warm and scratch models)")
    return "\n".join(lines)


# ---------------------------------------------------------------- the runs


def seed_config(raw: dict, seed: int, warm_start: bool, quick: bool) -> dict:
    """The demo's config (as write_config wrote it) for seed `seed`: sample seeds + SEED_STEP x seed,
    train.seed + seed, thresholds any model passes, and train.warm_start as given."""
    from config.types import TrainConfig

    raw = json.loads(json.dumps(raw))
    for src in raw["sources"]:
        src["sample"]["seed"] = src["sample"].get("seed", 0) + SEED_STEP * seed
    raw["train"]["seed"] = raw["train"].get("seed", TrainConfig().seed) + seed
    raw["train"]["warm_start"] = warm_start
    for task in raw["tasks"]:  # only the push depends on them: model A must be pushed to be warm-started from
        task["thresholds"] = {k: 0.0 for k in (task.get("thresholds") or {"accuracy": 0})}
    raw.setdefault("evaluation", {})["max_regression"] = 0.99
    return raw


def _write_yaml(raw: dict, path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    return path


def _pipeline(config_path: str, out: str, log: str) -> float:
    """run_local.py into `out`, its console output to `log`; the wall seconds. Raises on failure."""
    start = time.time()
    with open(log, "a") as f:
        rc = subprocess.call([sys.executable, "run_local.py", "--config", config_path, "--output-dir", out],
                             cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        raise RuntimeError(f"run_local.py --config {config_path} --output-dir {out} exited {rc}; see {log}")
    return time.time() - start


def run_seed(root: str, seed: int, quick: bool) -> dict:
    """The three runs of one seed (each skipped when its report copy exists); their reports."""
    from config import load
    from data_prep.demo_spans import write_config, write_span

    warm_dir, scratch_dir = os.path.join(root, "warm"), os.path.join(root, "scratch")
    os.makedirs(warm_dir, exist_ok=True)
    with open(write_config(warm_dir, quick)) as f:  # the demo's config, data under warm/data
        demo = yaml.safe_load(f)
    warm_cfg = _write_yaml(seed_config(demo, seed, True, quick), os.path.join(warm_dir, "continuous.yaml"))
    scratch_cfg = _write_yaml(seed_config(demo, seed, False, quick), os.path.join(scratch_dir, "continuous.yaml"))
    config = load(warm_cfg)

    reports, walls = {}, {}
    for run in RUNS:
        copy = os.path.join(root, f"report-{run}.json")
        if not os.path.exists(copy):
            write_span(config, 1 if run == "first" else 2)
            out, cfg = (scratch_dir, scratch_cfg) if run == "scratch" else (warm_dir, warm_cfg)
            print(f"seed {seed}: {run} run ...", flush=True)
            wall = _pipeline(cfg, out, os.path.join(root, f"{run}.log"))
            shutil.copyfile(os.path.join(out, "report", "report.json"), copy)
            with open(copy) as f:
                rep = json.load(f)
            rep["_benchmark_wall_s"] = wall
            with open(copy, "w") as f:
                json.dump(rep, f)
            print(f"seed {seed}: {run} run done in {wall:.0f}s; spans {rep.get('spans')}, "
                  f"warm started from {rep.get('warm_started_from')}, blessed {rep.get('blessed')}", flush=True)
        with open(copy) as f:
            reports[run] = json.load(f)
        walls[run] = reports[run].get("_benchmark_wall_s")
    return {"reports": reports, "wall_s": walls, "config": config}


def tfma_values(reports: dict, task: str, metric: str) -> dict:
    """The Evaluator's (TFMA's) values on span 2's eval split: the served model A's before any
    training on span 2 (the warm run's baseline, i.e. 0 steps), and both run-2 models'."""
    def value(run: str, key: str) -> float | None:
        return ((reports[run]["tasks"][task].get(key) or {}).get(metric))

    return {"served_tfma": value("warm", "baseline_metrics"), "warm_final_tfma": value("warm", "metrics"),
            "scratch_final_tfma": value("scratch", "metrics")}


def check(reports: dict) -> list[str]:
    """What would make the comparison meaningless."""
    problems = []
    if not reports["warm"].get("warm_started_from"):
        problems.append("the warm run did not warm-start")
    if reports["scratch"].get("warm_started_from"):
        problems.append("the scratch run warm-started")
    for run in ("warm", "scratch"):
        spans = reports[run].get("spans") or {}
        if any(v != [1, 2] for v in spans.values()) or not spans:
            problems.append(f"the {run} run did not train on spans 1 and 2: {spans}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Steps a warm start saves to reach a scratch run's accuracy.")
    ap.add_argument("--output-dir", required=True, help="where the runs and the JSON go")
    ap.add_argument("--seeds", type=int, default=2, help="how many seeds")
    ap.add_argument("--first-seed", type=int, default=0, help="the first seed (add seeds to an earlier output)")
    ap.add_argument("--quick", action="store_true", help="the demo's tiny data and 60 steps (a smoke test)")
    ap.add_argument("--json", default=None, help="default: OUTPUT_DIR/warm_start_steps.json")
    args = ap.parse_args(argv)
    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)

    from components.trainer.run_fn import epochs_for

    per_seed, detail = {}, {}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    # earlier seeds in the same output dir are included in the table and summary
    found = sorted(int(d.split("-", 1)[1]) for d in os.listdir(out)
                   if d.startswith("seed-") and os.path.exists(os.path.join(out, d, "report-scratch.json")))
    for seed in sorted(set(seeds) | set(found)):
        r = run_seed(os.path.join(out, f"seed-{seed}"), seed, args.quick)
        config, reports = r["config"], r["reports"]
        problems = check(reports)
        for p in problems:
            print(f"seed {seed}: WARNING: {p}", file=sys.stderr)
        steps = config.train.steps
        epochs = epochs_for(steps)
        rows = {}
        for task in config.tasks:
            metric, higher = metric_for(task.type)
            warm = validation_curve(reports["warm"], task.name, metric)
            scratch = validation_curve(reports["scratch"], task.name, metric)
            if len(warm) != epochs or len(scratch) != epochs:
                problems.append(f"{task.name}: {len(warm)} / {len(scratch)} validation points, expected {epochs}")
            rows[task.name] = {"metric": metric, **compare(warm, scratch, steps, steps // epochs, higher),
                               **tfma_values(reports, task.name, metric),
                               "warm_curve": warm, "scratch_curve": scratch}
        per_seed[str(seed)] = rows
        detail[str(seed)] = {"problems": problems, "wall_s": r["wall_s"],
                             "warm_started_from": reports["warm"].get("warm_started_from"),
                             "spans": reports["warm"].get("spans"),
                             "train_seed": config.train.seed,
                             "sample_seeds": {s.name: s.sample.get("seed") for s in config.sources}}

    steps = config.train.steps
    print(table(per_seed, steps))
    summary = summarize(per_seed)
    for task, s in summary.items():
        print(f"{task}: mean steps saved {s['mean_steps_saved']:.0f} of {steps} (target reached in {s['reached']}/"
              f"{s['seeds']} seeds), ahead of scratch's own first step at it by "
              f"{s['mean_steps_ahead_of_scratch']:.0f}; "
              f"first-epoch warm - scratch {s['mean_first_epoch_gap']:+.3f}; "
              f"final warm - scratch {s['mean_final_gap']:+.3f}")
    result = {"steps": steps, "epochs": epochs_for(steps), "steps_per_epoch": steps // epochs_for(steps),
              "quick": args.quick, "per_seed": per_seed, "detail": detail, "summary": summary}
    path = args.json or os.path.join(out, "warm_start_steps.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {path}")
    return 1 if any(d["problems"] for d in detail.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
