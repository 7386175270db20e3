"""The report's error gallery: per task, the eval examples the model got most confidently wrong.

The saved model's `serving_default` runs on the raw eval examples (the same
files TFMA evaluated); for each task, on its own examples only:

  binary, multiclass   wrong = argmax prediction != true class; ranked by the
                       predicted class's probability (most confident first)
  multilabel           wrong = some label on the wrong side of 0.5; ranked by
                       the largest |probability - label|
  regression           every example; ranked by |prediction - label|

At most `size` per task, each with its image embedded as a data URI (the
example's own encoded bytes: the page stays one self-contained file), its
example_id and source, the true and predicted class (or value). The scan
stops after `limit` examples, so a large eval split costs a bounded time;
report.json says how many were scanned. A model that cannot be loaded leaves
the gallery empty and says why (`error`), and the report is still written.
The scanned examples' labels and predictions per task are returned too
(`per_example`, not JSON), for the bootstrap intervals (bootstrap.py), and
their example_ids in the same order (`example_ids`), for the report's
per-example outcome file (outcomes.py).
"""
from __future__ import annotations

import base64
import heapq
from typing import Any, Iterable

import numpy as np
import tensorflow as tf

from config import Config

GALLERY_SIZE = 12
SCAN_LIMIT = 20_000
BATCH = 256


def _mime(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    return "image/gif" if data[:4] == b"GIF8" else "application/octet-stream"


def _entry(task, label: np.ndarray, pred: np.ndarray) -> tuple[float, dict] | None:
    """(rank score, entry) of one example of `task`, or None when it was predicted right."""
    names = task.classes
    if task.type in ("binary", "multiclass"):
        true, guess = int(np.argmax(label)), int(np.argmax(pred))
        if true == guess:
            return None
        return float(pred[guess]), {"true": names[true], "predicted": names[guess], "confidence": float(pred[guess])}
    if task.type == "multilabel":
        wrong = (pred > 0.5) != (label > 0.5)
        if not wrong.any():
            return None
        score = float(np.abs(pred - label).max())
        return score, {"true": [n for n, y in zip(names, label) if y > 0.5],
                       "predicted": [n for n, p in zip(names, pred) if p > 0.5], "error": score}
    error = float(abs(pred[0] - label[0]))
    return error, {"true": float(label[0]), "predicted": float(pred[0]), "error": error}


def error_gallery(config: Config, model_dir: str, files: Iterable[str], size: int = GALLERY_SIZE,
                  limit: int = SCAN_LIMIT) -> dict[str, Any]:
    """{"scanned": n, "tasks": {task: [entry, ...]}} with the entries most wrong first."""
    files = list(files)
    heaps: dict[str, list] = {t.name: [] for t in config.tasks}
    seen: dict[str, tuple[list, list, list]] = {t.name: ([], [], []) for t in config.tasks}  # labels, preds, ids
    scanned = 0
    if files and size > 0:
        try:
            serve = tf.saved_model.load(model_dir).signatures["serving_default"]
        except (OSError, KeyError) as e:  # the report is still written, saying why there is no gallery
            return {"scanned": 0, "limit": limit, "size": size, "tasks": {name: [] for name in heaps},
                    "error": f"the model at {model_dir} could not be loaded: {type(e).__name__}: {str(e)[:200]}"}
        spec = {"task_index": tf.io.FixedLenFeature([], tf.int64),
                "label": tf.io.FixedLenFeature([config.label_width], tf.float32),
                "image": tf.io.FixedLenFeature([], tf.string),
                "example_id": tf.io.FixedLenFeature([], tf.string, default_value=""),
                "source": tf.io.FixedLenFeature([], tf.string, default_value="")}
        for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit).batch(BATCH):
            parsed = tf.io.parse_example(serialized, spec)
            outputs = {k: v.numpy() for k, v in serve(examples=serialized).items()}
            example_ids = parsed["example_id"].numpy()
            for i, ti in enumerate(parsed["task_index"].numpy()):
                task = config.tasks[int(ti)]
                label = parsed["label"].numpy()[i, :task.width]
                seen[task.name][0].append(label)
                seen[task.name][1].append(outputs[task.name][i])
                seen[task.name][2].append(example_ids[i].decode(errors="replace"))
                ranked = _entry(task, label, outputs[task.name][i])
                if ranked is None:
                    continue
                score, entry = ranked
                # a min-heap of the `size` highest scores; ties keep reading order (earlier first)
                key, heap = (score, -(scanned + i)), heaps[task.name]
                if len(heap) < size:
                    heapq.heappush(heap, (*key, _materialise(entry, i, parsed)))
                elif key > heap[0][:2]:
                    heapq.heapreplace(heap, (*key, _materialise(entry, i, parsed)))
            scanned += int(serialized.shape[0])
    tasks = {name: [e for _, _, e in sorted(heap, key=lambda x: (-x[0], -x[1]))] for name, heap in heaps.items()}
    per_example = {t.name: (np.asarray(seen[t.name][0], np.float64).reshape(-1, t.width),
                            np.asarray(seen[t.name][1], np.float64).reshape(-1, t.width)) for t in config.tasks}
    return {"scanned": scanned, "limit": limit, "size": size, "tasks": tasks, "per_example": per_example,
            "example_ids": {name: ids for name, (_, _, ids) in seen.items()}}


def _materialise(entry: dict, i: int, parsed) -> dict:
    image = parsed["image"].numpy()[i]
    return {**entry, "example_id": parsed["example_id"].numpy()[i].decode(errors="replace"),
            "source": parsed["source"].numpy()[i].decode(errors="replace"),
            "image": f"data:{_mime(image)};base64,{base64.b64encode(image).decode()}"}
