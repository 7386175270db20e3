"""Each task's own eval examples counted from the raw eval split, and the chance level they
give: what the report compares every metric with (docs/report.md: `chance`, `class_counts`)."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import tensorflow as tf

from config import Config, TaskConfig


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
