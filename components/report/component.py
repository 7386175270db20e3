"""The per-task report a person opens after a run: report.json + index.html.

`build_report` is pure (reads TFMA output and the eval TFRecords, returns a
dict); `write_report` writes it; `ReportGen` is the TFX component that calls
both from the Evaluator's artifacts. Field meanings: docs/report.md.
"""
import collections
import json
import math
import os
from typing import Any

import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.artifacts import DriftReport, PrepReport, Report  # TYPE_NAME components.Report
from components.baseline import PUSHED_VERSION
from components.common.drift_file import read_drift
from components.common.eval_config import (
    PRIMARY_METRIC,
    build_eval_config,
    class_slice_column,
    histogram_edges,
    metric_defs,
    positive_class_ids,
)
from components.common.interval_bounds import bound_failures
from components.common.probe_file import read_probe
from components.common.warm_start_file import read_warm_start
from components.report import intervals as metric_intervals
from components.report.blessing import decide
from components.report.data_page import history_keys, read_prep_report
from components.report.fairness import task_fairness
from components.report.gallery import error_gallery
from components.report.history import FALLBACK_WARN, mtl_fallback_share, training_curves
from components.report.label_stats import chance_levels, eval_label_stats
from components.report.model_card import MODEL_CARD_JSON, build_model_card, write_model_card
from components.report.outcomes import KEY as OUTCOMES_KEY
from components.report.outcomes import example_outcomes, write_outcomes
from components.report.page import render_html
from components.report.tfma_reader import (  # noqa: F401
    Key,
    load_calibration_curves,
    load_confusion_matrices,
    load_plots,
    load_tfma_metrics,
    validation_summary,
)
from config import Config, TaskConfig, config_from_json, split_dir, split_name
from serving import trained_precision
from serving.versions import record_push

_Key = Key


def _task_metrics(task: TaskConfig, values: dict[_Key, Any], items: tuple) -> dict[str, float]:
    """One task's scalar metrics in one slice, per-class ones as `name/<class>`
    (binary: only the positive class, reported under the bare name)."""
    out = {}
    for name, m in metric_defs(task, fairness=True).items():  # FPR/FNR only where TFMA wrote them
        if m.plot or m.array:
            continue
        if not m.per_class:
            v = values.get((items, task.name, name, None))
            if v is not None:
                out[name] = v
            continue
        for cid in positive_class_ids(task):
            v = values.get((items, task.name, name, cid))
            if v is not None:
                out[name if task.type == "binary" else f"{name}/{task.classes[cid]}"] = v
    return out


def _per_class(task: TaskConfig, overall: dict[str, float], matrix: list | None,
               counts: list[int] | None) -> dict[str, dict[str, float]]:
    """{class: {support, <per-class metric>: value}} on the overall slice.

    support: the class's eval examples (confusion-matrix row, or for
    multilabel the examples carrying the label).
    """
    out = {}
    for cid, c in enumerate(task.classes):
        row: dict[str, float] = {}
        if matrix is not None:
            row["support"] = float(np.sum(matrix[cid]))
        elif counts is not None:
            row["support"] = float(counts[cid])
        suffix = "/" + c
        for k, v in overall.items():
            if task.type == "binary":
                if cid == 1 and k in ("auc", "precision", "recall", "f1", "calibration"):
                    row[k] = v
            elif k.endswith(suffix):
                row[k[: -len(suffix)]] = v
        out[c] = row
    return out


def _error_histogram(task: TaskConfig, values: dict[_Key, Any]) -> dict[str, Any] | None:
    counts = values.get(((), task.name, "error_histogram", None))
    if counts is None:
        return None
    return {"edges": histogram_edges(task), "counts": counts, "tolerance": task.tolerance,
            "unit": "prediction - label, in the label's unit; first and last bins are open"}


def _clean(x):
    """NaN/inf are not JSON: report them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


INTERVALS_TFMA = ("proportions (accuracy, precision, recall, false positive / negative rates, within_tolerance, "
                  "subset and binary accuracy): exact Clopper-Pearson from TFMA's counts k of n, the interval "
                  "evaluation.gate_on: lower_bound checks; other metrics: TFMA Poisson bootstrap "
                  "(evaluation.confidence_intervals), 20 replicates, t-interval")


def build_report(config: Config, eval_output_uri: str, model_dir: str, eval_data: list[str],
                 blessed: bool | None, model_run_dir: str | None = None,
                 prep_stats: dict | None = None, dead_letters: list | None = None) -> dict[str, Any]:
    """report.json content from the Evaluator's output and the raw eval split.

    `blessed` comes from the ModelBlessing artifact; None (no blessing given)
    falls back to TFMA's own validation result, and `blessed_from` says which.
    `model_run_dir`: the Trainer's ModelRun (TensorBoard events) for the
    training curves; None leaves them out. `prep_stats` (the conversion's
    prep_stats.json) and `dead_letters` (a few of its dead-letter records)
    fill the data section; None leaves it out.
    """
    sole_task = config.task_names[0] if len(config.tasks) == 1 else None
    metrics = load_tfma_metrics(eval_output_uri, sole_task)
    plots = load_plots(eval_output_uri, sole_task)
    matrices = load_confusion_matrices(eval_output_uri, config, plots)
    curves = load_calibration_curves(eval_output_uri, plots)
    history = training_curves(model_run_dir, config)
    probe = read_probe(model_run_dir) if model_run_dir else None  # which tasks fight: gradient_probe.py
    gallery = error_gallery(config, model_dir, eval_data)  # the most confident errors, per task
    # Clopper-Pearson for proportions in every mode (what the gate checks); TFMA's intervals for the
    # rest when on, else the numpy bootstrap (intervals.py, bootstrap.py)
    per_example = gallery.pop("per_example", {})
    tfma_ci = bool(config.evaluation.confidence_intervals)
    # per example and task: id and what the primary metric averages, for make compare (outcomes.py)
    outcomes = example_outcomes(config, per_example, gallery.pop("example_ids", {}), gallery["scanned"],
                                gallery["limit"])
    label_stats = eval_label_stats(config, eval_data)
    validation = validation_summary(eval_output_uri, config, metrics)
    cand = metrics["candidate"]
    gate = _bound_failures(config, eval_output_uri)
    slices = sorted({k[0] for k in cand if k[0]}, key=lambda s: [(c, str(v)) for c, v in s])

    warnings = [f"error gallery left out: {gallery['error']}"] if gallery.get("error") else []
    fallback_share = mtl_fallback_share(model_run_dir)
    warm_start = read_warm_start(model_run_dir)
    if fallback_share > FALLBACK_WARN:
        warnings.append(f"train.mtl.method {config.train.mtl.method}: its solver failed on {fallback_share:.0%} of "
                        f"the training steps (above {FALLBACK_WARN:.0%}), which kept the previous weights there")
    tasks = {}
    for task in config.tasks:
        overall = _task_metrics(task, cand, ())
        eval_examples = overall.get("weighted_example_count")
        n_data = label_stats[task.name]["n"]
        if eval_examples is None or abs(eval_examples - n_data) > 1e-6:
            warnings.append(f"task {task.name}: TFMA weighted_example_count {eval_examples} != "
                            f"{n_data} examples with task_index {config.task_index(task.name)} in eval_data")
        by_slice: dict[str, dict[str, Any]] = collections.defaultdict(dict)
        slice_intervals: dict[str, dict[str, Any]] = collections.defaultdict(dict)
        for items in slices:
            m = _task_metrics(task, cand, items)
            # A slice without this task's examples reports 0.0 for accuracy/AUC: leave it out.
            if m.get("weighted_example_count", 0) > 0 and len(items) == 1:
                if items[0][0] == class_slice_column(task):
                    # One true class: AUC is undefined there (TFMA writes 0.0).
                    m = {k: v for k, v in m.items() if not k.startswith("auc")}
                by_slice[items[0][0]][str(items[0][1])] = m
                slice_intervals[items[0][0]][str(items[0][1])] = {
                    **({k: v for k, v in _task_metrics(task, metrics["intervals"], items).items() if k in m}
                       if tfma_ci else {}),
                    # proportions: Clopper-Pearson in every mode, as on the overall slice
                    **metric_intervals.slice_intervals(task, m, matrices.get((items, task.name))),
                }
        baseline = _task_metrics(task, metrics["baseline"], ())
        matrix = matrices.get(((), task.name))
        if tfma_ci:
            ints, int_methods, int_counts = metric_intervals.tfma_task_intervals(
                task, overall, matrix, _task_metrics(task, metrics["intervals"], ()))
        else:
            labels, preds = per_example.get(task.name, (np.zeros((0, task.width)), np.zeros((0, task.width))))
            ints, int_methods, int_counts = metric_intervals.task_intervals(task, overall, matrix, labels, preds)
        entry = {
            "type": task.type,
            "classes": list(task.classes),
            # TFMA sums 0/1 weights as floats; the count is a whole number.
            "eval_examples": None if eval_examples is None else int(round(eval_examples)),
            "eval_examples_in_data": n_data,
            **chance_levels(task, label_stats[task.name]),
            "thresholds": dict(task.thresholds),
            "metrics": overall,
            # 95 % intervals beside each metric: Clopper-Pearson (proportions) and TFMA's
            # (components.common.eval_config) or the bootstrap (the rest): intervals.py
            "intervals": ints,
            "interval_methods": int_methods,  # {metric: clopper_pearson | bootstrap | bootstrap_degenerate... | tfma}
            "interval_counts": int_counts,  # {metric: [k, n]} of the Clopper-Pearson ones
            "primary_metric": PRIMARY_METRIC[task.type],
            "slices": dict(by_slice),
            "slice_intervals": dict(slice_intervals),
            **task_fairness(config, task, overall, by_slice),  # cross-task slices (fairness.py)
            "passed": not any(f["task"] == task.name for f in validation["failures"] + gate),
            "checked": _checked(task, validation, baseline, gate),
        }
        if task.type == "binary":
            entry["positive_class"] = task.classes[1]
        if baseline:
            entry["baseline_metrics"] = baseline
        if matrix is not None:
            entry["confusion_matrix"] = matrix
        if task.type != "regression":
            entry["per_class"] = _per_class(task, overall, matrix, label_stats[task.name]["class_counts"])
            entry["calibration_curve"] = {task.classes[cid]: curves[key] for cid in positive_class_ids(task)
                                          if (key := ((), task.name, cid)) in curves}
            entry["class_slice"] = class_slice_column(task) if class_slice_column(task) in by_slice else None
        else:
            entry["tolerance"] = task.tolerance
            entry["error_histogram"] = _error_histogram(task, cand)
        entry["training_curves"] = history.get(task.name, {})
        entry["error_gallery"] = gallery["tasks"][task.name]
        tasks[task.name] = entry

    blessed, blessed_from, not_blessed_reason = decide(
        config, blessed, validation, gate, sum(label_stats[t.name]["n"] for t in config.tasks))
    return _clean({
        "config_name": config.name,
        "model_dir": model_dir,
        "eval_output_uri": eval_output_uri,
        "eval_data": list(eval_data),
        "blessed": blessed,
        "blessed_from": blessed_from,
        "not_blessed_reason": not_blessed_reason,
        "validation": validation,
        "warnings": warnings,
        "max_regression": config.evaluation.max_regression,
        "gate_on": config.evaluation.gate_on,
        "bound_failures": gate,
        "model_run_dir": model_run_dir,
        "training_curves_total": history.get("", {}),
        "mtl_fallback_share": fallback_share,
        "warm_start": warm_start,  # {from, reason}: components/trainer/warm_start.py
        "warm_started_from": (warm_start or {}).get("from"),  # issue 27's key: the served model's path or None
        "gradient_conflict": None if probe is None else probe["summary"],
        "gradient_probes": None if probe is None else probe["probes"],
        "error_gallery_scanned": gallery["scanned"],
        "intervals_method": INTERVALS_TFMA if tfma_ci else metric_intervals.METHOD,
        "gate_use": (probe["probes"][-1].get("gate_use") if probe and probe["probes"] else None),
        "cross_stitch": (probe["probes"][-1].get("cross_stitch") if probe and probe["probes"] else None),
        "tasks": tasks,
        "model": {"architecture": config.model.name,
                  "input_format": (f"serialized tf.Example, encoded image resized to {config.image.size[0]}x"
                                   f"{config.image.size[1]}x{config.image.channels}")},
        "model_card": MODEL_CARD_JSON,
        "precision": trained_precision(model_dir),  # {setting, policy, reason}: train.precision as resolved
        "data": None if prep_stats is None else {
            "sources": prep_stats.get("sources", {}), "total": prep_stats.get("total"),
            "dead_letter_samples": list(dead_letters or [])},
        OUTCOMES_KEY: outcomes,  # written to per_example.json, not to report.json (write_report)
    })


def _checked(task: TaskConfig, validation: dict[str, Any], baseline: dict, gate: list) -> bool:
    """Whether a threshold was checked on the task: `passed` means nothing without one. TFX drops
    the change thresholds without a baseline, so then only the task's own thresholds apply."""
    if any(f["task"] == task.name for f in validation["failures"] + gate):
        return True
    if not validation["ok"] and not validation["failures"]:  # none run, missing_thresholds, unexplained
        return False
    return bool(task.thresholds or baseline) and "overall" not in validation["missing_slices"]


def _bound_failures(config: Config, eval_output_uri: str) -> list[dict[str, Any]]:
    """`evaluation.gate_on: lower_bound`: the value thresholds whose interval bound misses
    (components.evaluator.interval_gate), named like validation failures (task, metric)."""
    if config.evaluation.gate_on != "lower_bound" or not tf.io.gfile.exists(eval_output_uri):
        return []
    sole = config.task_names[0] if len(config.tasks) == 1 else None
    out = []
    for f in bound_failures(build_eval_config(config), eval_output_uri):
        task_name = f["output"] or sole or ""
        metric = f["metric"]
        if f["class_id"] is not None and task_name in config.task_names and config.task(task_name).type != "binary":
            metric = f"{metric}/{config.task(task_name).classes[f['class_id']]}"
        out.append({"task": task_name, "metric": metric, "slice": "overall", "kind": "bound",
                    "bound": f["bound"], "interval": f["interval"], "interval_method": f["interval_method"],
                    **({"interval_counts": f["counts"]} if "counts" in f else {}), "value": f["value"],
                    "threshold": f["threshold"], "by": f["by"]})
    return out


def write_report(report: dict[str, Any], report_dir: str) -> list[str]:
    """Writes report.json, a self-contained index.html, the model card
    (model_card/model_card.json and .html) and, when the report has them, the
    per-example outcomes (per_example.json, outcomes.py); returns their paths."""
    outcomes = report.get(OUTCOMES_KEY)
    report = {k: v for k, v in report.items() if k != OUTCOMES_KEY}
    tf.io.gfile.makedirs(report_dir)
    paths = [os.path.join(report_dir, "report.json"), os.path.join(report_dir, "index.html")]
    with tf.io.gfile.GFile(paths[0], "w") as f:
        f.write(json.dumps(report, indent=2, sort_keys=True))
    with tf.io.gfile.GFile(paths[1], "w") as f:
        f.write(render_html(report))
    paths += write_model_card(build_model_card(report), report_dir)
    return paths + ([write_outcomes(outcomes, report_dir)] if outcomes is not None else [])


def eval_files(examples_uri: str, config: Config) -> list[str]:
    """Raw eval-split TFRecords of every source under an Examples artifact."""
    files = []
    for s in config.sources:
        files += sorted(tf.io.gfile.glob(os.path.join(split_dir(examples_uri, split_name("eval", s.name)), "*")))
    return files


# --- TFX component ---------------------------------------------------------
# The decorator needs runtime type annotations, so this module must not use
# `from __future__ import annotations`.

SERVING_MODEL_SUBDIR = "Format-Serving"


@component
def ReportGen(
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    report: OutputArtifact[Report],
    config_json: Parameter[str],
    report_dir: Parameter[str] = "",
    blessing: InputArtifact[standard_artifacts.ModelBlessing] = None,
    model_run: InputArtifact[standard_artifacts.ModelRun] = None,
    prep_report: InputArtifact[PrepReport] = None,
    pushed_model: InputArtifact[standard_artifacts.PushedModel] = None,
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
    drift: InputArtifact[DriftReport] = None,
) -> None:
    """Writes the per-task report to its artifact and, if given, to `report_dir`.

    `model_run` (the Trainer's `model_run` output, optional) adds the training
    curves read from its TensorBoard events; `prep_report` (ExampleGen's,
    optional) the data section: per source read / written / rejected by
    reason and a few dead-letter records; `pushed_model` (the Pusher's) and
    `baseline_model` (PushedModelBaseline's) the serving history's record of a
    push (serving/versions.py); `drift` (DriftGate's) the spans compared and the
    drift found (components/report/data_page.py)."""
    config = config_from_json(config_json)
    blessed = None
    # Without thresholds the Evaluator publishes a blessing artifact with no `blessed` property
    # (it validated nothing): that is "no decision", not "not blessed".
    if blessing is not None and blessing.has_custom_property("blessed"):
        blessed = bool(blessing.get_int_custom_property("blessed"))
    prep_stats, dead_letters = read_prep_report(prep_report.uri) if prep_report is not None else (None, None)
    content = build_report(
        config,
        eval_output_uri=evaluation.uri,
        model_dir=os.path.join(model.uri, SERVING_MODEL_SUBDIR),
        eval_data=eval_files(examples.uri, config),
        blessed=blessed,
        model_run_dir=model_run.uri if model_run is not None else None,
        prep_stats=prep_stats, dead_letters=dead_letters,
    )
    content.update(history_keys(prep_stats, read_drift(drift.uri) if drift is not None else None))
    write_report(content, report.uri)
    if report_dir:
        write_report(content, report_dir)
    report.set_int_custom_property("blessed", -1 if content["blessed"] is None else int(content["blessed"]))
    if pushed_model is not None and _property(pushed_model, "pushed"):
        # Here, not in the Pusher: only this step knows the run's metrics; artifact properties
        # (not MLMD queries) so the same code records on Kubeflow.
        path = record_push(str(_property(pushed_model, "pushed_destination")),
                           str(_property(pushed_model, "pushed_version")), json.loads(config.to_json()), content,
                           blessed_against=_property(baseline_model, PUSHED_VERSION) if baseline_model else None,
                           model_uri=model.uri, report_dir=report_dir)
        print(f"report: recorded the push in {path}")


def _property(artifact, name: str):
    """A custom property whatever its type (a KFP launcher passes ints back as floats); None if unset."""
    return artifact.get_custom_property(name) if artifact.has_custom_property(name) else None
