"""Multitask variants against single-task, over seeds, with intervals: `python -m runners.grid`.

    python -m runners.grid --config configs/default.yaml --output-dir outputs \\
        --methods none,pcgrad,imtl --sharing hard,mmoe --seeds 3
    make compare-grid CONFIG=configs/default.yaml OUTPUT=outputs GRID="--methods none,pcgrad --seeds 3"

A variant is a (train.mtl.method, model.sharing.type) pair; each is trained
with `--seeds` seeds (train.seed = the config's seed + s), and one single-task
model per task per seed is trained once (runners.compare_base.single_task_config;
a rerun reuses every finished run through TFX's cache). Every run is the
whole pipeline, via run_local.py, under `<output-dir>/grid/<name>/s<seed>/`.

Per variant and task: the primary metric's mean over seeds and its 95 %
Student-t interval. Per variant and seed: delta_m against the single-task
models of the same seed (runners.compare_base.delta_m; Maninis et al. 2019), then
delta_m's mean and 95 % t interval over seeds. Variants are ranked by mean
delta_m; `beats_single_task` is true when the whole interval is above 0.
Written to `<output-dir>/report/grid.json` and as a section of
`<output-dir>/report/index.html`; the table is printed.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before any TensorFlow import

import argparse
import dataclasses
import html
import json
import math
import statistics
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import yaml

from config import MTL_METHODS, SHARINGS, Config, ConfigError, MtlConfig, config_from_json, load, validate
from runners import compare_base
from runners.console import run_or_report, text_table

GRID_DIR = "grid"
# The page when the output dir has no report of its own (the grid was run into a fresh dir).
STANDALONE_PAGE = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>multitask grid</title><style>'
                   "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
                   "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}</style></head>"
                   "<body></body></html>")
HTML_START, HTML_END = "<!-- grid:start -->", "<!-- grid:end -->"


def interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean and the 95 % Student-t interval of the mean (None bounds with one value)."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    from scipy import stats

    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def variant_name(config: Config, method: str, sharing: str) -> str:
    return compare_base.derived_name(config, f"{method}_{sharing}", "the grid's")


def variant_config(config: Config, method: str, sharing: str, seed: int) -> Config:
    """The config with train.mtl.method, model.sharing.type and train.seed set (a gradient method
    gets loss_weighting static, as it requires; other mtl settings are kept)."""
    train = config.train
    mtl = MtlConfig(method=method, grad_on=train.mtl.grad_on,
                    params=train.mtl.params if method == train.mtl.method else {})
    weighting = train.loss_weighting if method == "none" else dataclasses.replace(train.loss_weighting,
                                                                                  type="static")
    return dataclasses.replace(
        config, name=variant_name(config, method, sharing),
        train=dataclasses.replace(train, seed=seed, mtl=mtl, loss_weighting=weighting),
        model=dataclasses.replace(config.model, sharing=dataclasses.replace(config.model.sharing, type=sharing)))


def single_config(config: Config, task: str, seed: int) -> Config:
    single = compare_base.single_task_config(config, task)
    return dataclasses.replace(single, train=dataclasses.replace(single.train, seed=seed))


def build_grid(config: Config, variant_reports: Mapping[str, Sequence[Mapping]],
               single_reports: Mapping[str, Sequence[Mapping]]) -> dict[str, Any]:
    """grid.json from {variant: [report per seed]} and {task: [single-task report per seed]}."""
    variants = {}
    for name, reports in variant_reports.items():
        tasks = {}
        for t in config.tasks:
            values = [compare_base.task_figure(r["tasks"][t.name]) for r in reports]
            tasks[t.name] = interval(values) if None not in values else None
        per_seed = []
        for s, r in enumerate(reports):
            gains = {t.name: compare_base.relative_gain(
                compare_base.task_figure(r["tasks"][t.name]),
                compare_base.task_figure(single_reports[t.name][s]["tasks"][t.name]),
                compare_base.task_metric(t.type)[1]) for t in config.tasks}
            per_seed.append(compare_base.delta_m(gains))
        dm = interval(per_seed) if None not in per_seed else None
        variants[name] = {"tasks": tasks, "delta_m": dm, "delta_m_per_seed": per_seed,
                          "beats_single_task": bool(dm and dm["low"] is not None and dm["low"] > 0)}
    single = {t.name: interval([compare_base.task_figure(r["tasks"][t.name]) for r in single_reports[t.name]])
              for t in config.tasks}
    ranking = sorted((n for n in variants if variants[n]["delta_m"]),
                     key=lambda n: -variants[n]["delta_m"]["mean"])
    baseline = next(iter(variants), None)
    for name, v in variants.items():
        v["vs_baseline"] = paired(v, variants[baseline]) if name != baseline else None
    return {"variants": variants, "single_task": single, "ranking": ranking, "baseline": baseline,
            "metrics": {t.name: compare_base.task_metric(t.type)[0] for t in config.tasks},
            "seeds": len(next(iter(variant_reports.values()), [])),
            "train": {"steps": config.train.steps, "batch_size": config.train.batch_size},
            "rule": "delta_m per seed against the single-task models of that seed; mean and 95 % Student-t "
                    "interval over seeds; beats_single_task: the interval is above 0; vs_baseline: the "
                    "variant's delta_m minus the first variant's, paired by seed, with its t interval"}


def paired(variant: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any] | None:
    """The variant's delta_m minus the baseline's, seed by seed (same data, seed and single-task
    models), with the t interval of that difference: a sharper test between two variants than
    comparing their two intervals, which carry the seed-to-seed spread twice."""
    if variant["delta_m"] is None or baseline["delta_m"] is None:
        return None
    diffs = [a - b for a, b in zip(variant["delta_m_per_seed"], baseline["delta_m_per_seed"])]
    iv = interval(diffs)
    verdict = ("not shown" if iv["low"] is None or iv["low"] <= 0 <= iv["high"]
               else "better" if iv["low"] > 0 else "worse")
    return {**iv, "per_seed": diffs, "verdict": verdict}


def _ci(x: Mapping | None, pct: bool = False) -> str:
    if not x:
        return "-"
    f = (lambda v: f"{100 * v:+.2f}%") if pct else (lambda v: f"{v:.4f}")
    return f(x["mean"]) + ("" if x["low"] is None else f" [{f(x['low'])}, {f(x['high'])}]")


def _rows(grid: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The table's body, shared by the printed table and the page: single-task, then the ranking."""
    tasks = list(grid["metrics"])
    rows = [("single-task", *[_ci(grid["single_task"][t]) for t in tasks], "-", "-", "-")]
    for name in grid["ranking"] + [n for n in grid["variants"] if n not in grid["ranking"]]:
        v = grid["variants"][name]
        vs = v.get("vs_baseline")
        rows.append((name, *[_ci(v["tasks"][t]) for t in tasks], _ci(v["delta_m"], pct=True),
                     "yes" if v["beats_single_task"] else "no",
                     "-" if not vs else f"{_ci(vs, pct=True)} {vs['verdict']}"))
    return rows


def _header(grid: Mapping[str, Any], delta: str) -> tuple[str, ...]:
    return ("variant", *[f"{t} {grid['metrics'][t]}" for t in grid["metrics"]], delta, "beats",
            f"vs {grid.get('baseline')} (paired)")


def format_grid(grid: Mapping[str, Any]) -> str:
    return text_table([_header(grid, "delta_m [95% interval]"), *_rows(grid)])


def render_html(grid: Mapping[str, Any]) -> str:
    e = html.escape
    cells = lambda row, tag="td": "".join(f"<{tag}>{e(str(c))}</{tag}>" for c in row)  # noqa: E731
    return (f'{HTML_START}\n<section id="grid"><h2>Multitask variants against single-task</h2>'
            f"<p>{grid['seeds']} seeds each, {grid['train']['steps']} steps of {grid['train']['batch_size']}; "
            f"mean [95 % Student-t interval] over seeds. {e(grid['rule'])}.</p>"
            f"<table><tr>{cells(_header(grid, 'Δm [95 % interval]'), 'th')}</tr>"
            + "".join(f"<tr>{cells(r)}</tr>" for r in _rows(grid)) + f"</table></section>\n{HTML_END}")


def finished(run_dir: str, config: Config) -> bool:
    """True when run_dir holds a report of a run of exactly this config (for --reuse-finished)."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(os.path.join(run_dir, "report", "report.json")) or not os.path.exists(path):
        return False
    try:
        with open(path) as f:  # parsed back, so a run written before a config key was added still matches
            return config_from_json(json.dumps(yaml.safe_load(f))) == config
    except (OSError, yaml.YAMLError, ConfigError):
        return False


def run_grid(config_path: str, output_dir: str, methods: Sequence[str] = (), sharings: Sequence[str] = (),
             seeds: int | None = None, run: Callable[[str, str, bool], float] = compare_base.run_local,
             log: Callable[[str], None] = print, reuse_finished: bool = False, no_cache: bool = False) -> dict:
    """Empty methods / sharings and seeds None come from the config's `compare:` section, and
    without one from its own train.mtl.method and model.sharing.type (3 seeds)."""
    config = load(config_path)
    validate(config)
    methods = methods or config.compare.methods or (config.train.mtl.method,)
    sharings = sharings or config.compare.sharing or (config.model.sharing.type,)
    seeds = seeds or config.compare.seeds
    out = os.path.abspath(output_dir)
    base_seed = config.train.seed
    plans = {}  # run dir -> config
    variant_dirs: dict[str, list[str]] = {}
    for method in methods:
        for sharing in sharings:
            name = f"{method}_{sharing}"
            variant_dirs[name] = []
            for s in range(seeds):
                v = variant_config(config, method, sharing, base_seed + s)
                d = os.path.join(out, GRID_DIR, name, f"s{s}")
                plans[d], variant_dirs[name] = v, variant_dirs[name] + [d]
    single_dirs = {t: [os.path.join(out, GRID_DIR, f"single_{t}", f"s{s}") for s in range(seeds)]
                   for t in config.task_names}
    for t, dirs in single_dirs.items():
        for s, d in enumerate(dirs):
            plans[d] = single_config(config, t, base_seed + s)
    for v in plans.values():  # every run's config, as run_local.py will check it, before the first run
        validate(config_from_json(v.to_json()), check_paths=False)
    for i, (d, v) in enumerate(plans.items(), start=1):
        log(f"[{i}/{len(plans)}] {os.path.relpath(d, out)}")
        if reuse_finished and finished(d, v):
            log("  reused: a finished run of the same config")
            continue
        path = compare_base.write_config(v, os.path.join(d, "config.yaml"))
        log(f"  done in {run(path, d, no_cache):.0f} s")

    def report(d):
        with open(os.path.join(d, "report", "report.json")) as f:
            return json.load(f)

    grid = build_grid(config, {n: [report(d) for d in ds] for n, ds in variant_dirs.items()},
                      {t: [report(d) for d in ds] for t, ds in single_dirs.items()})
    report_dir = os.path.join(out, "report")
    os.makedirs(report_dir, exist_ok=True)
    with open(os.path.join(report_dir, "grid.json"), "w") as f:
        json.dump(grid, f, indent=2, sort_keys=True)
    page_path = os.path.join(report_dir, "index.html")
    page = open(page_path).read() if os.path.exists(page_path) else STANDALONE_PAGE
    with open(page_path, "w") as f:
        f.write(compare_base.insert_html(page, render_html(grid), (HTML_START, HTML_END)))
    return grid


def _names(text: str, valid: Sequence[str], flag: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"{flag}: received {text!r}; valid: {', '.join(valid)}")
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runners.grid", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--output-dir", default="outputs")
    ap.add_argument("--methods", default=(), type=lambda t: _names(t, MTL_METHODS, "--methods"),
                    help=f"comma-separated train.mtl.method values ({', '.join(MTL_METHODS)}); default: the "
                         "config's compare.methods, else its train.mtl.method")
    ap.add_argument("--sharing", default=(), type=lambda t: _names(t, SHARINGS, "--sharing"),
                    help=f"comma-separated model.sharing.type values ({', '.join(SHARINGS)}); default: the "
                         "config's compare.sharing, else its model.sharing.type")
    ap.add_argument("--seeds", type=int, default=None,
                    help="seeds per variant and per single-task model (>= 1); default: compare.seeds (3)")
    ap.add_argument("--reuse-finished", action="store_true",
                    help="skip a run whose folder already holds a report of the same config (code changes "
                         "since are not detected; without the flag, TFX's cache decides)")
    ap.add_argument("--no-cache", action="store_true", help="rerun every component of every run")
    args = ap.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        ap.error("--seeds: at least 1")
    start = time.time()
    grid, rc = run_or_report(lambda: run_grid(args.config, args.output_dir, args.methods, args.sharing,
                                             args.seeds, reuse_finished=args.reuse_finished,
                                             no_cache=args.no_cache))
    if rc:
        return rc
    print()
    print(format_grid(grid))
    print(f"\ngrid time: {time.time() - start:.0f} s")
    print(f"report: {os.path.join(os.path.abspath(args.output_dir), 'report', 'index.html')} (and grid.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
