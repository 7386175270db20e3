"""The report's per-example outcome file, `per_example.json`: what `make compare` bootstraps.

For every task, the eval examples the error gallery scanned (gallery.py: the
saved model's `serving_default` on the raw eval split, at most its
`SCAN_LIMIT` examples, so the file is bounded like the gallery), each named
by its `example_id` (data_prep.convert.example_id: `<source>/<raw id>/<task>`,
the same in a multitask run and in a single-task run of the same data), with
what the task's primary metric (config.PRIMARY_METRIC) averages:

  binary, multiclass   scores: 1.0 if argmax(prediction) == argmax(label), else 0.0 (accuracy is their mean)
  regression           scores: |prediction - label| (mean_absolute_error is their mean)
  multilabel           labels and predictions per example: AUC is a rank statistic, not a mean
                       of per-example scores, so the file keeps what it needs (auc/<label> per label)

runners/compare_interval.py matches the multitask run's file against each
single-task run's by id and bootstraps delta_m from them (docs/compare.md).
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

from config import PRIMARY_METRIC, Config

FILE = "per_example.json"
KEY = "per_example_outcomes"  # build_report's key for it; write_report writes it to FILE, not to report.json


def example_outcomes(config: Config, per_example: Mapping[str, tuple[np.ndarray, np.ndarray]],
                     ids: Mapping[str, Sequence[str]], scanned: int, limit: int) -> dict[str, Any]:
    """per_example.json's content from the gallery's `per_example` {task: (labels, predictions)}
    and `example_ids` {task: [id, ...]} (same order)."""
    tasks = {}
    for task in config.tasks:
        labels, preds = per_example.get(task.name, (np.zeros((0, task.width)), np.zeros((0, task.width))))
        labels, preds = np.asarray(labels, np.float64), np.asarray(preds, np.float64)
        entry: dict[str, Any] = {"type": task.type, "metric": PRIMARY_METRIC[task.type],
                                 "ids": [str(i) for i in ids.get(task.name, [])]}
        if task.type in ("binary", "multiclass"):
            entry["scores"] = (np.argmax(preds, axis=1) == np.argmax(labels, axis=1)).astype(float).tolist()
        elif task.type == "regression":
            entry["scores"] = np.abs(preds[:, 0] - labels[:, 0]).tolist()
        else:
            entry["classes"] = list(task.classes)
            entry["labels"], entry["predictions"] = labels.tolist(), preds.tolist()
        tasks[task.name] = entry
    return {"scanned": scanned, "limit": limit, "tasks": tasks}


def write_outcomes(outcomes: Mapping[str, Any], report_dir: str) -> str:
    import tensorflow as tf  # here: runners.compare reads FILE without loading TensorFlow

    path = os.path.join(report_dir, FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(outcomes, sort_keys=True))
    return path
