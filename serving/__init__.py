"""Using a pushed model: `python -m serving.predict --model DIR IMAGE...`.

The Trainer writes what a client needs besides the graph (task names, types
and class names) into the SavedModel directory as `assets.extra/multitask.json`
(SavedModel's place for files the graph does not read; the Pusher copies the
whole directory), so the model directory alone is enough to name predictions.
"""
from __future__ import annotations

import json
import os
from typing import Any

METADATA_FILE = os.path.join("assets.extra", "multitask.json")


def model_metadata(config, precision: dict | None = None) -> dict[str, Any]:
    """What serving needs to read the outputs, plus the whole run config for provenance and
    the dtype policy the Trainer resolved `train.precision` to (`auto` is decided by the
    machine, so the config alone does not say)."""
    out = {
        "signature": "serving_image",
        "tasks": [{"name": t.name, "type": t.type, "classes": list(t.classes)} for t in config.tasks],
        "image": {"size": list(config.image.size), "channels": config.image.channels,
                  "normalization": config.image.normalization},
        "config": json.loads(config.to_json()),
    }
    if precision is not None:
        out["precision"] = dict(precision)
    return out


def write_metadata(model_dir: str, config, precision: dict | None = None) -> str:
    import tensorflow as tf  # gfile: the model dir may be on GCS

    path = os.path.join(model_dir, METADATA_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(model_metadata(config, precision), indent=1, sort_keys=True))
    return path


def read_metadata(model_dir: str) -> dict[str, Any]:
    import tensorflow as tf

    path = os.path.join(model_dir, METADATA_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} not found: {model_dir} is not a model saved by this project's Trainer "
                                "(it writes the task names there)")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def trained_precision(model_dir: str) -> dict[str, Any] | None:
    """{setting, policy, reason} the model was trained with; None for a model saved without
    it (before train.precision existed, or not by this project's Trainer)."""
    try:
        return read_metadata(model_dir).get("precision")
    except FileNotFoundError:
        return None
