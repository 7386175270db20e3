"""Multitask against single-task, measured: one single-task model per task.

    python -m runners.compare --config configs/default.yaml --output-dir outputs
    make compare CONFIG=configs/default.yaml OUTPUT=outputs

Runs the multitask config with `run_local.py` into `--output-dir` (TFX's
cache reuses a finished run of the same config, so `make run` then
`make compare` does not train it again), then, for every task, the same
pipeline on a single-task variant of the config (`single_task_config`) into
`<output-dir>/compare/<task>/`, each with its own pipeline name, pipeline
root and MLMD store so no cache or baseline crosses between variants. Then
it adds a `comparison` section to `<output-dir>/report/report.json` and
`index.html` and writes `<output-dir>/report/comparison.json`:

    gain_i = (-1)^{l_i} (M_m,i - M_s,i) / M_s,i     l_i = 1 when lower is better
    delta_m = mean_i gain_i

(Maninis et al. 2019, "Attentive single-tasking of multiple tasks"), so a
positive gain means the multitask model is better on that task. Each task is
scored by the metric its baseline comparison gates (config.PRIMARY_METRIC):
accuracy for classification, mean_absolute_error for regression, AUC
(mean over labels) for multilabel, on the same eval examples in both runs
(splits hash the group id, not the task). delta_m gets a 95 % interval from a
paired bootstrap over those eval examples, matched by id in the runs'
`report/per_example.json` (runners/compare_interval.py).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before any TensorFlow import

import argparse
import html
import json
import sys
import time
from typing import Any, Callable, Mapping

from config import Config, ConfigError, config_from_json, fail, load, validate
from runners import grid
from runners.compare_base import (
    delta_m,
    insert_html,
    relative_gain,
    run_local,
    single_task_config,
    task_figure,
    task_metric,
    write_config,
)
from runners.compare_interval import METHOD as CI_METHOD
from runners.compare_interval import comparison_interval, load_outcomes
from runners.console import run_or_report, text_table

COMPARE_DIR = "compare"  # <output-dir>/compare/<task>/ holds each single-task run
HTML_START, HTML_END = "<!-- comparison:start -->", "<!-- comparison:end -->"


def build_comparison(multitask_report: Mapping[str, Any], single_reports: Mapping[str, Mapping[str, Any]],
                     config: Config, interval: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`comparison` for report.json from the multitask report and one report per task;
    `interval`: delta_m's bootstrap (compare_interval.comparison_interval), None: not computed."""
    interval = interval or {"ci95": None, "tasks": {}, "warnings": []}
    tasks, warnings = {}, []
    for t in config.tasks:
        multi, single = multitask_report["tasks"][t.name], single_reports[t.name]["tasks"][t.name]
        metric, lower = task_metric(t.type)
        m, s = task_figure(multi), task_figure(single)
        n_m, n_s = multi.get("eval_examples"), single.get("eval_examples")
        if n_m != n_s:
            warnings.append(f"task {t.name}: {n_m} eval examples in the multitask run, {n_s} in the single-task "
                            f"run; the figures are not on the same examples")
        tasks[t.name] = {
            "metric": metric + (" (mean over labels)" if t.type == "multilabel" else ""),
            "lower_is_better": lower,
            "single_task": s,
            "multitask": m,
            "gain": relative_gain(m, s, lower),
            "eval_examples": n_m,
            "eval_examples_single_task": n_s,
            # examples of the task matched by id in both runs' per_example.json; paired: all of them
            "examples_matched": interval["tasks"].get(t.name, {}).get("matched"),
            "paired": interval["tasks"].get(t.name, {}).get("paired"),
        }
    return {
        "tasks": tasks,
        "delta_m": delta_m({k: v["gain"] for k, v in tasks.items()}),
        "delta_m_rule": "mean over tasks of (-1)^l (multitask - single_task) / single_task, "
                        "l = 1 for lower-is-better metrics; > 0: multitask is better",
        "delta_m_ci95": interval["ci95"],
        "delta_m_ci_method": CI_METHOD,
        "train": {"steps": config.train.steps, "batch_size": config.train.batch_size, "seed": config.train.seed},
        "warnings": warnings + list(interval["warnings"]),
    }


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x * 100:+.2f}%" if pct else f"{x:.4f}"


def format_table(comparison: Mapping[str, Any]) -> str:
    """Plain-text table: task, metric, single-task, multitask, gain; then delta_m."""
    rows = [("task", "metric", "single-task", "multitask", "gain")]
    for name, t in comparison["tasks"].items():
        rows.append((name, t["metric"], _fmt(t["single_task"]), _fmt(t["multitask"]), _fmt(t["gain"], True)))
    delta_m = f"delta_m (mean relative gain of multitask): {_fmt(comparison['delta_m'], True)}"
    return "\n".join([text_table(rows), delta_m + _ci_text(comparison)])


def _ci_text(comparison: Mapping[str, Any]) -> str:
    """`, 95% interval [low, high] (<method>)`, or "" without an interval."""
    ci = comparison.get("delta_m_ci95")
    if not ci:
        return ""
    return f", 95% interval [{_fmt(ci[0], True)}, {_fmt(ci[1], True)}] ({comparison['delta_m_ci_method']})"


def render_html(comparison: Mapping[str, Any]) -> str:
    """Self-contained section (inline styles only), between markers so a rerun replaces it."""
    e = html.escape
    td = 'style="border:1px solid #ccc;padding:.25em .6em;text-align:right"'
    th = 'style="border:1px solid #ccc;padding:.25em .6em;background:#f3f3f3"'
    rows = "".join(
        f"<tr><td {td}>{e(n)}</td><td {td}>{e(t['metric'])}{' (lower is better)' if t['lower_is_better'] else ''}"
        f"</td><td {td}>{_fmt(t['single_task'])}</td><td {td}>{_fmt(t['multitask'])}</td>"
        f"<td {td}>{_fmt(t['gain'], True)}</td><td {td}>{e(str(t['eval_examples']))}</td></tr>"
        for n, t in comparison["tasks"].items())
    head = "".join(f"<th {th}>{h}</th>" for h in
                   ("task", "metric", "single-task", "multitask", "relative gain", "eval examples"))
    warn = "".join(f"<li>{e(w)}</li>" for w in comparison.get("warnings", []))
    tr = comparison["train"]
    return (f'{HTML_START}\n<section id="comparison"><h2>Multitask vs single-task</h2>\n'
            f"<p>One single-task model per task, same pipeline, data, eval examples and budget "
            f"({tr['steps']} steps of {tr['batch_size']}, seed {tr['seed']}). Relative gain = "
            f"(-1)<sup>l</sup> (multitask &minus; single-task) / single-task, l = 1 when lower is better; "
            f"&gt; 0: the multitask model is better.</p>\n"
            f'<table style="border-collapse:collapse"><tr>{head}</tr>{rows}</table>\n'
            f"<p><b>&Delta;m = {_fmt(comparison['delta_m'], True)}</b> (mean relative gain over tasks)"
            f"{e(_ci_text(comparison))}</p>\n"
            + (f"<ul>{warn}</ul>\n" if warn else "") + f"</section>\n{HTML_END}")


def write_comparison(report_dir: str, comparison: Mapping[str, Any]) -> list[str]:
    """Adds `comparison` to report.json and the section to index.html; writes comparison.json."""
    paths = {n: os.path.join(report_dir, n) for n in ("report.json", "index.html", "comparison.json")}
    with open(paths["report.json"]) as f:
        report = json.load(f)
    report["comparison"] = comparison
    with open(paths["report.json"], "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    with open(paths["comparison.json"], "w") as f:
        json.dump(comparison, f, indent=2, sort_keys=True)
    page = open(paths["index.html"]).read() if os.path.exists(paths["index.html"]) else "<html><body></body></html>"
    with open(paths["index.html"], "w") as f:
        f.write(insert_html(page, render_html(comparison), (HTML_START, HTML_END)))
    return list(paths.values())


def compare(config_path: str, output_dir: str, no_cache: bool = False,
            run: Callable[[str, str, bool], float] = run_local, log: Callable[[str], None] = print) -> dict:
    """Runs the multitask config and every single-task variant, then writes the comparison."""
    config = load(config_path)
    validate(config)  # first the user's own file, so error messages index its sources
    variants = {t: single_task_config(config, t) for t in config.task_names}
    for i, (task, v) in enumerate(variants.items()):
        try:
            validate(config_from_json(v.to_json()), check_paths=False)  # as run_local.py will
        except ConfigError as e:
            fail(f"tasks[{i}]", f"the single-task variant for task {task!r} (sources: "
                                f"{', '.join(s.name for s in v.sources)}) is not valid: {e}")
    out = os.path.abspath(output_dir)
    runs = {}
    log(f"multitask: {config_path} -> {out} (log: {os.path.join(out, 'run.log')})")
    # absolute: run_local.py runs from the repository root, not the caller's directory
    runs["multitask"] = {"output_dir": out, "wall_s": round(run(os.path.abspath(config_path), out, no_cache), 1)}
    log(f"  done in {runs['multitask']['wall_s']:.0f} s")
    for task, variant in variants.items():
        vdir = os.path.join(out, COMPARE_DIR, task)
        vconfig = write_config(variant, os.path.join(vdir, "config.yaml"))
        log(f"single-task {task}: {vconfig} -> {vdir} (log: {os.path.join(vdir, 'run.log')})")
        runs[task] = {"output_dir": vdir, "config": vconfig, "wall_s": round(run(vconfig, vdir, no_cache), 1)}
        log(f"  done in {runs[task]['wall_s']:.0f} s")

    def report(d):
        with open(os.path.join(d, "report", "report.json")) as f:
            return json.load(f)

    # delta_m's 95 % interval: a paired bootstrap over the runs' per-example outcomes (compare_interval.py)
    interval = comparison_interval(load_outcomes(out), {t: load_outcomes(runs[t]["output_dir"]) for t in variants})
    comparison = build_comparison(report(out), {t: report(runs[t]["output_dir"]) for t in variants}, config,
                                  interval)
    comparison["runs"] = runs
    write_comparison(os.path.join(out, "report"), comparison)
    return comparison


def _wants_grid(config_path: str) -> bool:
    try:
        return bool(load(config_path).compare.methods)
    except ConfigError:
        return False  # compare() reports it, with the exit status every runner uses


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train one single-task model per task with the same pipeline "
                                             "and report multitask vs single-task per task and delta_m.")
    ap.add_argument("--config", default="configs/default.yaml", help="multitask run config (YAML)")
    ap.add_argument("--output-dir", default="outputs", help="the multitask run's output dir; "
                                                            "single-task runs go to <dir>/compare/<task>/")
    ap.add_argument("--no-cache", action="store_true", help="rerun every component of every run")
    args = ap.parse_args(argv)
    if _wants_grid(args.config):  # the config's `compare:` section asks for the grid of variants x seeds
        return grid.main(["--config", args.config, "--output-dir", args.output_dir]
                         + (["--no-cache"] if args.no_cache else []))
    start = time.time()
    comparison, rc = run_or_report(lambda: compare(args.config, args.output_dir, args.no_cache))
    if rc:
        return rc
    print()
    print(format_table(comparison))
    for w in comparison["warnings"]:
        print(f"warning: {w}")
    report_dir = os.path.join(os.path.abspath(args.output_dir), "report")
    print(f"\ncompare time: {time.time() - start:.0f} s")
    print(f"report: {os.path.join(report_dir, 'index.html')} (comparison also in comparison.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
