"""What `runners.compare` (multitask against single-task) and `runners.grid`
(variants x seeds) both build on, below both so neither imports the other's
module for it: the derived runs' configs and pipeline names
(`single_task_config`, `derived_name`), writing a config and running it through
run_local.py (`write_config`, `run_local`), a task's figure from report.json
(`task_metric`, `task_figure`), the relative gain and delta_m (Maninis et al.
2019), and placing a section on the report page (`insert_html`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Any, Mapping

import yaml

from config import MAX_NAME_LENGTH as MAX_PIPELINE_NAME
from config import PRIMARY_METRIC, Config, ConfigError
from runners.compare_interval import LOWER_IS_BETTER

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def derived_name(config: Config, suffix: str, what: str, fix: str = "shorten the config name") -> str:
    """`<config name>_<suffix>`, the pipeline name of a derived run; `what` names it and `fix`
    says what to shorten when it is too long for TFX."""
    name = f"{config.name}_{suffix}"
    if len(name) > MAX_PIPELINE_NAME:
        raise ConfigError(f"config key 'name': {what} pipeline name {name!r} is {len(name)} characters; "
                          f"TFX allows {MAX_PIPELINE_NAME}: {fix}")
    return name


def single_task_name(config: Config, task: str) -> str:
    return derived_name(config, f"single_{task}", "single-task", "shorten the config name or the task name")


def single_task_options(options: Mapping[str, Any], dropped: set[str]) -> dict[str, Any]:
    """A source's format options without what maps the `dropped` tasks.

    Format modules name tasks in their options in three ways, all handled:
    `<x>_task: <task>` (imdb_wiki, utkface, genki4k), which goes together with
    its `<x>_*` settings (`age_task` with `age_bins`, `age_range`); a mapping
    to tasks (fashionai `attributes: {attr: task}`); a mapping from tasks
    (csv `columns: {task: column}`). Entries for dropped tasks go.
    """
    prefixes = tuple(k[:-len("task")] for k, v in options.items() if k.endswith("_task") and v in dropped)
    out = {}
    for k, v in options.items():
        if prefixes and k.startswith(prefixes):
            continue
        if isinstance(v, Mapping):
            v = {a: b for a, b in v.items() if a not in dropped and not (isinstance(b, str) and b in dropped)}
        out[k] = v
    return out


def single_task_config(config: Config, task: str) -> Config:
    """The config reduced to one task: same pipeline, data, image, model and train settings.

    Sources that do not label `task` are dropped; a source labelling several
    tasks keeps only `task`, and its format options mapping a dropped task
    are removed (`single_task_options`), so it emits only `task`'s examples.
    Sampling weights of dropped sources, evaluation slices of dropped tasks
    and model params keyed by dropped tasks go too. The pipeline name gets
    `_single_<task>` so MLMD and caches are its own.
    """
    keep = config.task(task)  # KeyError naming the valid tasks
    sources = []
    for s in config.sources:
        if task not in s.tasks:
            continue
        options = single_task_options(s.options, set(s.tasks) - {task})
        sources.append(dataclasses.replace(s, tasks=(task,), options=options))
    names = {s.name for s in sources}
    sm = config.train.sampling
    sampling = dataclasses.replace(sm, weights={k: v for k, v in sm.weights.items() if k in names})
    # Model params keyed by task (multibranch's `towers: {age: ...}`) keep only the task's entry.
    params = {k: ({t: x for t, x in v.items() if t == task}
                  if isinstance(v, Mapping) and v and set(v) <= set(config.task_names) else v)
              for k, v in config.model.params.items()}
    ev = config.evaluation  # class slices of dropped tasks go (None = the default: every task)
    slices = None if ev.slices is None else tuple(sl for sl in ev.slices if sl.task == task and sl.by == "class")
    return dataclasses.replace(config, name=single_task_name(config, task), tasks=(keep,),
                               sources=tuple(sources),
                               train=dataclasses.replace(config.train, sampling=sampling),
                               model=dataclasses.replace(config.model, params=params),
                               evaluation=dataclasses.replace(ev, slices=slices))


def task_metric(task_type: str) -> tuple[str, bool]:
    """(metric name, lower is better) that scores a task of this type."""
    metric = PRIMARY_METRIC[task_type]
    return metric, LOWER_IS_BETTER[metric]


def task_figure(task_report: Mapping[str, Any]) -> float | None:
    """A task's figure from report.json's `tasks.<task>`: its primary metric
    (multilabel: the mean of the per-label values `auc/<label>`)."""
    metric, _ = task_metric(task_report["type"])
    metrics = task_report.get("metrics", {})
    if task_report["type"] == "multilabel":
        values = [metrics.get(f"{metric}/{c}") for c in task_report["classes"]]
        return None if not values or None in values else sum(values) / len(values)
    return metrics.get(metric)


def relative_gain(multitask: float | None, single: float | None, lower_is_better: bool) -> float | None:
    """(-1)^l (M_m - M_s) / M_s; None when a figure is missing or M_s is 0."""
    if multitask is None or single is None or single == 0:
        return None
    gain = (multitask - single) / single
    return -gain if lower_is_better else gain


def delta_m(gains: Mapping[str, float | None]) -> float | None:
    """Mean relative gain over tasks; None if any task's gain is undefined."""
    values = list(gains.values())
    if not values or any(g is None for g in values):
        return None
    return sum(values) / len(values)


def insert_html(page: str, section: str, markers: tuple[str, str]) -> str:
    """`page` with `section` (which begins and ends with `markers`) replacing an earlier one, else
    placed before </body> (or appended)."""
    start, end = page.find(markers[0]), page.find(markers[1])
    if start != -1 and end > start:
        return page[:start] + section + page[end + len(markers[1]):]
    at = page.rfind("</body>")
    return page + section if at == -1 else page[:at] + section + "\n" + page[at:]


def write_config(config: Config, path: str) -> str:
    """A config as a YAML file run_local.py loads back unchanged (paths are already absolute)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("# Written by runners.compare: a single-task variant of the compared config.\n")
        yaml.safe_dump(json.loads(config.to_json()), f, sort_keys=False)
    return path


def run_local(config_path: str, output_dir: str, no_cache: bool = False) -> float:
    """Runs run_local.py in its own process (a fresh TensorFlow per run); returns its wall time.

    Its output goes to `<output_dir>/run.log`; on failure the log's tail is in the error.
    """
    os.makedirs(output_dir, exist_ok=True)
    log = os.path.join(output_dir, "run.log")
    cmd = [sys.executable, os.path.join(ROOT, "run_local.py"), "--config", config_path, "--output-dir", output_dir]
    start = time.time()
    with open(log, "w") as f:
        rc = subprocess.run(cmd + (["--no-cache"] if no_cache else []), cwd=ROOT, stdout=f,
                            stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = open(log).read()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {rc}; log {log} ends:\n{tail}")
    return time.time() - start
