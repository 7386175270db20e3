"""The per-task report a person opens after a run: report.json + index.html.

`build_report` is pure (reads TFMA output and the eval TFRecords, returns a
dict); `write_report` writes it; `ReportGen` is the TFX component that calls
both from the Evaluator's artifacts. Field meanings: docs/report.md.
"""
import collections
import json
import math
import os
from typing import Any, Iterable

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.eval_config import metric_defs, positive_class_ids
from components.report_html import render_html
from pipeline.config import Config, TaskConfig, split_name

# TFMA names the models "candidate"/"baseline" when TFX passes a baseline, and
# "" when it does not.
_CANDIDATE_NAMES = ("", "candidate")
_BASELINE_NAME = "baseline"
_CONFUSION_PLOT = "multi_class_confusion_matrix_plot"

# (slice as ((column, value), ...), output, metric name, class_id or None)
_Key = tuple


def _slice_items(slice_key) -> tuple:
    items = []
    for s in slice_key.single_slice_keys:
        kind = s.WhichOneof("kind")
        value = getattr(s, kind)
        items.append((s.column, value.decode() if isinstance(value, bytes) else value))
    return tuple(items)


def _slice_name(items: tuple) -> str:
    return "overall" if not items else ", ".join(f"{c}={v}" for c, v in items)


def _class_id(key) -> int | None:
    return key.sub_key.class_id.value if key.HasField("sub_key") and key.sub_key.HasField("class_id") else None


def load_tfma_metrics(eval_output_uri: str) -> dict[str, dict[_Key, float]]:
    """TFMA metrics as {'candidate'|'baseline'|'diff': {(slice, output, name, class_id): value}}."""
    out: dict[str, dict[_Key, float]] = {"candidate": {}, "baseline": {}, "diff": {}}
    for per_slice in tfma.load_metrics(eval_output_uri):
        items = _slice_items(per_slice.slice_key)
        for kv in per_slice.metric_keys_and_values:
            if not kv.value.HasField("double_value"):
                continue
            k = kv.key
            which = ("diff" if k.is_diff else "candidate" if k.model_name in _CANDIDATE_NAMES
                     else "baseline" if k.model_name == _BASELINE_NAME else None)
            if which:
                out[which][(items, k.output_name, k.name, _class_id(k))] = kv.value.double_value.value
    return out


def load_confusion_matrices(eval_output_uri: str, config: Config) -> dict[tuple, list[list[float]]]:
    """{(slice, output): K x K weighted counts, rows = true class, columns = argmax prediction}."""
    out = {}
    for per_slice in tfma.load_plots(eval_output_uri):
        items = _slice_items(per_slice.slice_key)
        for kv in per_slice.plot_keys_and_values:
            if kv.key.name != _CONFUSION_PLOT or kv.key.model_name not in _CANDIDATE_NAMES:
                continue
            k = config.task(kv.key.output_name).width
            m = np.zeros((k, k))
            # TFMA's default threshold 0.0 is argmax; one matrix.
            for e in kv.value.multi_class_confusion_matrix_at_thresholds.matrices[0].entries:
                m[e.actual_class_id, e.predicted_class_id] += e.num_weighted_examples
            out[(items, kv.key.output_name)] = m.tolist()
    return out


def eval_label_stats(config: Config, files: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Counts each task's own eval examples and labels from raw GZIP tf.Example files.

    Returns per task: n, class_counts (classification), positives (multilabel),
    values (regression).
    """
    stats = {t.name: {"n": 0, "class_counts": [0] * t.width if t.type != "regression" else None,
                      "values": []} for t in config.tasks}
    spec = {"task_index": tf.io.FixedLenFeature([], tf.int64),
            "label": tf.io.FixedLenFeature([config.label_width], tf.float32)}
    files = list(files)
    if not files:
        return stats
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024).map(
        lambda x: tf.io.parse_example(x, spec))
    for batch in ds.as_numpy_iterator():
        for ti, label in zip(batch["task_index"], batch["label"]):
            if not 0 <= ti < len(config.tasks):
                raise ValueError(f"eval example has task_index {ti}; valid: 0..{len(config.tasks) - 1}")
            task = config.tasks[ti]
            s = stats[task.name]
            s["n"] += 1
            if task.type == "regression":
                s["values"].append(float(label[0]))
            elif task.type == "multilabel":
                for c in range(task.width):
                    s["class_counts"][c] += int(label[c] > 0.5)
            else:
                s["class_counts"][int(np.argmax(label[:task.width]))] += 1
    return stats


def chance_levels(task: TaskConfig, s: dict[str, Any]) -> dict[str, Any]:
    """What a model that ignores the image scores on this task's eval examples."""
    n = s["n"]
    if n == 0:
        return {"chance": None, "chance_rule": "no eval examples"}
    if task.type == "regression":
        v = np.asarray(s["values"])
        return {"chance": float(np.mean(np.abs(v - v.mean()))), "chance_metric": "mean_absolute_error",
                "chance_rule": "mean_absolute_error of predicting the eval mean"}
    counts = s["class_counts"]
    if task.type == "multilabel":
        per = {c: max(k, n - k) / n for c, k in zip(task.classes, counts)}
        return {"chance": float(np.mean(list(per.values()))), "chance_per_class": per,
                "chance_metric": "binary_accuracy",
                "chance_rule": "per-label majority rate (binary_accuracy), mean over labels",
                "chance_uniform": 0.5}
    return {"chance": max(counts) / n, "chance_metric": "accuracy", "chance_rule": "majority-class rate (accuracy)",
            "chance_uniform": 1.0 / task.width,
            "class_counts": dict(zip(task.classes, counts))}


def _task_metrics(task: TaskConfig, values: dict[_Key, float], items: tuple) -> dict[str, float]:
    """One task's scalar metrics in one slice, per-class ones as `name/<class>`
    (binary: only the positive class, reported under the bare name)."""
    out = {}
    for name, m in metric_defs(task).items():
        if m.plot:
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


def _clean(x):
    """NaN/inf are not JSON: report them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def validation_summary(eval_output_uri: str, config: Config,
                       metrics: dict[str, dict[_Key, float]] | None = None) -> dict[str, Any]:
    """TFMA's validation result as {ok, rubber_stamp, failures: [...]}; ok None if none was run.

    Each failure: task, metric (`name` or `name/<class>` for multilabel), slice,
    kind ('value' or 'change'), threshold, value (for 'change': candidate -
    baseline), and `by`: how far past its limit the value is (> 0).
    """
    if not tf.io.gfile.glob(os.path.join(eval_output_uri, "validations*")):
        return {"ok": None, "rubber_stamp": None, "failures": []}
    vr = tfma.load_validation_result(eval_output_uri)
    failures = []
    for per_slice in vr.metric_validations_per_slice:
        items = _slice_items(per_slice.slice_key)
        for f in per_slice.failures:
            k, th = f.metric_key, f.metric_threshold
            value = f.metric_value.double_value.value
            cid = _class_id(k)
            metric = k.name
            if cid is not None and k.output_name in config.task_names and config.task(k.output_name).type == "multilabel":
                metric = f"{k.name}/{config.task(k.output_name).classes[cid]}"
            rec = {"task": k.output_name, "metric": metric, "slice": _slice_name(items),
                   "value": value, "message": f.message}
            if th.HasField("value_threshold"):
                vt = th.value_threshold
                rec["kind"] = "value"
                rec["threshold"] = {b: getattr(vt, b).value for b in ("lower_bound", "upper_bound") if vt.HasField(b)}
                lo, hi = rec["threshold"].get("lower_bound", -math.inf), rec["threshold"].get("upper_bound", math.inf)
                rec["by"] = lo - value if value < lo else value - hi
            else:
                ct = th.change_threshold
                higher = ct.direction == tfma.MetricDirection.HIGHER_IS_BETTER
                rec["kind"] = "change"
                rec["threshold"] = {"direction": "higher_is_better" if higher else "lower_is_better"}
                by = []
                if ct.HasField("absolute"):
                    rec["threshold"]["absolute"] = ct.absolute.value
                    by.append(ct.absolute.value - value if higher else value - ct.absolute.value)
                if ct.HasField("relative"):
                    rec["threshold"]["relative"] = ct.relative.value
                    base = (metrics or {}).get("baseline", {}).get((items, k.output_name, k.name, cid))
                    rec["baseline"] = base
                    if base:
                        ratio = value / base
                        rec["relative_change"] = ratio
                        by.append(ct.relative.value - ratio if higher else ratio - ct.relative.value)
                rec["by"] = max(by) if by else None
            failures.append(rec)
    return {"ok": bool(vr.validation_ok), "rubber_stamp": bool(vr.rubber_stamp), "failures": _clean(failures)}


def build_report(config: Config, eval_output_uri: str, model_dir: str, eval_data: list[str],
                 blessed: bool | None) -> dict[str, Any]:
    """report.json content from the Evaluator's output and the raw eval split.

    `blessed` comes from the ModelBlessing artifact; None (no blessing given)
    falls back to TFMA's own validation result, and `blessed_from` says which.
    """
    metrics = load_tfma_metrics(eval_output_uri)
    matrices = load_confusion_matrices(eval_output_uri, config)
    label_stats = eval_label_stats(config, eval_data)
    validation = validation_summary(eval_output_uri, config, metrics)
    cand = metrics["candidate"]
    slices = sorted({k[0] for k in cand if k[0]}, key=lambda s: [(c, str(v)) for c, v in s])

    warnings = []
    tasks = {}
    for task in config.tasks:
        overall = _task_metrics(task, cand, ())
        eval_examples = overall.get("weighted_example_count")
        n_data = label_stats[task.name]["n"]
        if eval_examples is None or abs(eval_examples - n_data) > 1e-6:
            warnings.append(f"task {task.name}: TFMA weighted_example_count {eval_examples} != "
                            f"{n_data} examples with task_index {config.task_index(task.name)} in eval_data")
        by_slice: dict[str, dict[str, Any]] = collections.defaultdict(dict)
        for items in slices:
            m = _task_metrics(task, cand, items)
            # A slice without this task's examples reports 0.0 for accuracy/AUC: leave it out.
            if m.get("weighted_example_count", 0) > 0 and len(items) == 1:
                by_slice[items[0][0]][str(items[0][1])] = m
        baseline = _task_metrics(task, metrics["baseline"], ())
        entry = {
            "type": task.type,
            "classes": list(task.classes),
            # TFMA sums 0/1 weights as floats; the count is a whole number.
            "eval_examples": None if eval_examples is None else int(round(eval_examples)),
            "eval_examples_in_data": n_data,
            **chance_levels(task, label_stats[task.name]),
            "thresholds": dict(task.thresholds),
            "metrics": overall,
            "slices": dict(by_slice),
            "passed": not any(f["task"] == task.name for f in validation["failures"]),
        }
        if task.type == "binary":
            entry["positive_class"] = task.classes[1]
        if baseline:
            entry["baseline_metrics"] = baseline
        if ((), task.name) in matrices:
            entry["confusion_matrix"] = matrices[((), task.name)]
        tasks[task.name] = entry

    if blessed is None:
        blessed_from = "tfma validation result" if validation["ok"] is not None else "unknown"
        blessed = validation["ok"]
    else:
        blessed_from = "model blessing"
    return _clean({
        "config_name": config.name,
        "model_dir": model_dir,
        "eval_output_uri": eval_output_uri,
        "eval_data": list(eval_data),
        "blessed": blessed,
        "blessed_from": blessed_from,
        "validation": validation,
        "warnings": warnings,
        "tasks": tasks,
    })


def write_report(report: dict[str, Any], report_dir: str) -> list[str]:
    """Writes report.json and a self-contained index.html; returns their paths."""
    tf.io.gfile.makedirs(report_dir)
    paths = [os.path.join(report_dir, "report.json"), os.path.join(report_dir, "index.html")]
    with tf.io.gfile.GFile(paths[0], "w") as f:
        f.write(json.dumps(report, indent=2, sort_keys=True))
    with tf.io.gfile.GFile(paths[1], "w") as f:
        f.write(render_html(report))
    return paths


def eval_files(examples_uri: str, config: Config) -> list[str]:
    """Raw eval-split TFRecords of every source under an Examples artifact."""
    files = []
    for s in config.sources:
        files += sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split_name('eval', s.name)}", "*")))
    return files


# --- TFX component ---------------------------------------------------------
# Imported late in the file only for readability; the decorator needs runtime
# type annotations, so this module must not use `from __future__ import annotations`.
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter  # noqa: E402
from tfx.dsl.component.experimental.decorators import component  # noqa: E402
from tfx.types import standard_artifacts  # noqa: E402

from components.artifacts import Report  # noqa: E402  (TYPE_NAME components.Report)

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
) -> None:
    """Writes the per-task report to its artifact and, if given, to `report_dir`."""
    config = Config.from_json(config_json)
    blessed = None
    if blessing is not None:
        blessed = bool(blessing.get_int_custom_property("blessed"))
    content = build_report(
        config,
        eval_output_uri=evaluation.uri,
        model_dir=os.path.join(model.uri, SERVING_MODEL_SUBDIR),
        eval_data=eval_files(examples.uri, config),
        blessed=blessed,
    )
    write_report(content, report.uri)
    if report_dir:
        write_report(content, report_dir)
    report.set_int_custom_property("blessed", -1 if content["blessed"] is None else int(content["blessed"]))
