"""A 95 % interval for `make compare`'s delta_m: a paired bootstrap over the eval examples.

Each run's ReportGen writes `report/per_example.json` (components/report/outcomes.py):
per task, the example ids and what the primary metric averages (1/0 correct for
accuracy, |error| for MAE; labels and predictions for a multilabel task's AUC).
Per task, the multitask run's examples are matched to the single-task run's by id.
Each of `RESAMPLES` resamples (fixed `SEED`) then draws, per task, n of its n
matched examples with replacement, the same draw for both models (paired: the
spread of the difference, not of each model), computes the task's metric of both
models on it, the relative gain, and delta_m, the mean gain over tasks; the
interval is the 2.5th and 97.5th percentile of the resampled delta_m (numpy's
linear interpolation). A task whose ids do not match one to one (an id missing on
one side, or repeated) is resampled unpaired instead: each model's examples drawn
independently, with a warning. A resample where a single-task figure is 0, or an
AUC is undefined (no positive or no negative drawn), is left out of the percentiles.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

# components.report.* is imported where used: the `components` package loads TFX (its
# artifact types), and `python -m runners.compare` must answer a config error with one
# line before TensorFlow starts logging.

RESAMPLES = 1000
SEED = 20261201
# Higher-is-better per primary metric (config.PRIMARY_METRIC); mirrors the MetricDef
# directions in components/common/eval_config.py (test_compare checks they agree)
# without importing TFMA for a table lookup.
LOWER_IS_BETTER = {"accuracy": False, "auc": False, "mean_absolute_error": True}
METHOD = f"paired bootstrap over eval examples, B={RESAMPLES}"


def load_outcomes(run_output_dir: str) -> dict[str, Any] | None:
    """A run's `<output dir>/report/per_example.json`, or None when there is none (a report
    written before ReportGen wrote it)."""
    from components.report.outcomes import FILE

    path = os.path.join(run_output_dir, "report", FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def match_ids(ids_m: list[str], ids_s: list[str]) -> tuple[list[int] | None, int]:
    """(for each multitask example, the index of the same example in the single-task list, or None
    when the two lists are not the same unique ids; how many ids both lists hold)."""
    matched = len(set(ids_m) & set(ids_s))
    unique = len(set(ids_m)) == len(ids_m) and len(set(ids_s)) == len(ids_s)
    if not unique or matched != len(ids_m) or matched != len(ids_s) or "" in ids_m:
        return None, matched
    where = {i: k for k, i in enumerate(ids_s)}
    return [where[i] for i in ids_m], matched


def _data(entry: Mapping[str, Any], order: list[int] | None = None) -> dict[str, np.ndarray]:
    keys = ("labels", "predictions") if entry["metric"] == "auc" else ("scores",)
    out = {k: np.asarray(entry[k], np.float64) for k in keys}
    return {k: v[order] if order is not None else v for k, v in out.items()}


def resampled_metric(metric: str, data: Mapping[str, np.ndarray], w: np.ndarray) -> np.ndarray:
    """[R] metric values under example counts `w` [R, n] (a resample draws example k w[r, k] times)."""
    from components.report.bootstrap import weighted_auc, weighted_mean

    if metric != "auc":
        return weighted_mean(w, data["scores"])

    labels, preds = data["labels"], data["predictions"]
    per_label = [weighted_auc(w, preds[:, c], labels[:, c] > 0.5) for c in range(labels.shape[1])]
    return np.mean(per_label, axis=0)


def _counts(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """[resamples, n]: how often each of n examples is drawn in n draws with replacement."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def delta_m_interval(per_task_mt: Mapping[str, Mapping[str, Any]], per_task_st: Mapping[str, Mapping[str, Any]],
                     resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """{"ci95": [low, high] or None, "tasks": {task: {"matched", "paired"}}, "warnings": [...]}.

    `per_task_mt`: per_example.json's `tasks` of the multitask run; `per_task_st`: {task: that
    task's entry in its single-task run's file}. Tasks in `per_task_mt`'s order, each drawn
    from one generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    gains, tasks, warnings = [], {}, []
    for name, mt in per_task_mt.items():
        st = per_task_st.get(name)
        if st is None:
            warnings.append(f"task {name}: no per-example outcomes of its single-task run")
            return {"ci95": None, "tasks": tasks, "warnings": warnings}
        metric = mt["metric"]
        order, matched = match_ids(list(mt["ids"]), list(st["ids"]))
        n_m, n_s = len(mt["ids"]), len(st["ids"])
        tasks[name] = {"matched": matched, "paired": order is not None}
        if min(n_m, n_s) == 0:
            warnings.append(f"task {name}: no per-example outcomes ({n_m} multitask, {n_s} single-task examples)")
            return {"ci95": None, "tasks": tasks, "warnings": warnings}
        if order is not None:
            w_m = w_s = _counts(rng, n_m, resamples)
        else:
            warnings.append(f"task {name}: {matched} of {n_m} multitask and {n_s} single-task eval examples match "
                            f"by id; its examples are resampled unpaired (each model's independently)")
            w_m, w_s = _counts(rng, n_m, resamples), _counts(rng, n_s, resamples)
        m = resampled_metric(metric, _data(mt), w_m)
        s = resampled_metric(metric, _data(st, order), w_s)
        with np.errstate(invalid="ignore", divide="ignore"):
            gain = np.where(s != 0, (m - s) / np.where(s != 0, s, 1.0), np.nan)
        gains.append(-gain if LOWER_IS_BETTER[metric] else gain)
    if not gains:
        return {"ci95": None, "tasks": tasks, "warnings": warnings}
    from components.report.bootstrap import percentiles

    ci = percentiles(np.mean(gains, axis=0))
    if ci is None:
        warnings.append("delta_m is undefined in every resample (a single-task figure of 0)")
    return {"ci95": ci, "tasks": tasks, "warnings": warnings}


def comparison_interval(outcomes_mt: Mapping[str, Any] | None,
                        outcomes_st: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """delta_m_interval from the runs' per_example.json contents (None: a run without one)."""
    missing = ["multitask"] * (outcomes_mt is None) + [t for t, o in outcomes_st.items() if o is None]
    if missing:
        from components.report.outcomes import FILE

        return {"ci95": None, "tasks": {}, "warnings": [
            f"no delta_m interval: no report/{FILE} in the run(s) of {', '.join(missing)} "
            f"(reports written before ReportGen wrote it: rerun with --no-cache)"]}
    return delta_m_interval(outcomes_mt["tasks"],
                            {t: o["tasks"][t] for t, o in outcomes_st.items() if t in o["tasks"]})
