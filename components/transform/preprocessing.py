"""Transform's preprocessing_fn: raw contract features -> model features.

Referenced by name (`components.transform.preprocessing.preprocessing_fn`) from the
pipeline; Transform passes `custom_config={'config': Config.to_json()}`, decoded by
`config.config_from_custom_config` (config/codec.py, shared with the Trainer's run_fn).
Outputs, for every task in the config:
  image           float32 [H, W, C]  (models.preprocess, the shared function)
  label_<task>    float32 [width]    the task's own slots of `label` (they start at 0),
                                     zero on other tasks' examples
  weight_<task>   float32 scalar     1.0 where task_index is this task, else 0.0
  task_index      int64 scalar       passed through for slicing
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

from config import Config, config_from_custom_config, label_key, weight_key
from models.preprocess import preprocess_image_batch


def _dense(x: tf.Tensor | tf.SparseTensor | tf.RaggedTensor, width: int | None, default: Any) -> tf.Tensor:
    """A dense [N] (width None) or [N, width] tensor from whatever the raw spec gave."""
    if isinstance(x, tf.SparseTensor):
        rows = tf.cast(x.dense_shape[0], tf.int64)
        x = tf.sparse.to_dense(tf.sparse.reset_shape(x, [rows, width or 1]), default_value=default)
    elif isinstance(x, tf.RaggedTensor):
        x = x.to_tensor(default_value=default, shape=[None, width or 1])
    return tf.reshape(x, [-1] if width is None else [-1, width])


def transform_features(inputs: Mapping[str, Any], config: Config) -> dict[str, tf.Tensor]:
    """The transformation itself, on batched raw features; also usable outside TFT."""
    missing = sorted({"image", "label", "task_index"} - set(inputs))
    if missing:
        raise ValueError(f"raw features {missing} are missing; the data contract needs image, label, "
                         f"task_index. Received: {sorted(inputs)}")
    images = _dense(inputs["image"], None, b"")
    labels = tf.cast(_dense(inputs["label"], config.label_width, 0.0), tf.float32)
    task_index = tf.cast(_dense(inputs["task_index"], None, -1), tf.int64)

    outputs = {"image": preprocess_image_batch(images, config.image), "task_index": task_index}
    for i, task in enumerate(config.tasks):
        weight = tf.cast(tf.equal(task_index, i), tf.float32)
        # Zeroed on other tasks' examples: their slots hold another task's
        # label (a regression value of 37.0, say), which TFMA's range checks
        # on binary / AUC metrics reject even where the weight is 0.
        outputs[label_key(task.name)] = labels[:, : task.width] * weight[:, None]
        outputs[weight_key(task.name)] = weight
    return outputs


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """TFX Transform entry point (no analyzers: every output is per example)."""
    return transform_features(inputs, config_from_custom_config(custom_config))
