"""Backbone's `model.params`: names, defaults and validation, free of
TensorFlow so config loading can check them (config.parse calls
config.registry.validate_params and resolve_paths).

    model:
      name: backbone
      params:
        backbone: vgg16           # vgg16, resnet50, mobilenet_v2, inception_resnet_v2
        weights: weights/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
        trainable: false          # false: frozen; true: fine-tuned
        fine_tune_last: 0         # with trainable: true, only the last N backbone layers train (0: all)
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from config.errors import fail

KEY = "model.params."  # the params' key path in the config, for error messages

# name -> (tf_keras.applications constructor, the image.normalization its
# pretrained weights expect, the smallest input side keras accepts)
BACKBONES: dict[str, tuple[str, str, int]] = {
    "vgg16": ("VGG16", "caffe", 32),
    "resnet50": ("ResNet50", "caffe", 32),
    "mobilenet_v2": ("MobileNetV2", "tf", 32),
    "inception_resnet_v2": ("InceptionResNetV2", "tf", 75),
}
POOLINGS = ("avg", "max", "flatten")

DEFAULT_PARAMS: dict[str, Any] = {
    "backbone": "vgg16",
    "weights": None,         # a local .h5 / checkpoint of the backbone without its top (include_top=False)
    "trainable": False,      # seed 001 freezes the base; seed 004 fine-tunes it
    "fine_tune_last": 0,     # trainable: true only: train the last N backbone layers, freeze the rest
    "pooling": "avg",        # backbone feature map -> vector: avg (seed 004), max, flatten (seed 001)
    "dense": [],             # hidden dense layers of each head (seed 001: [1024, 256]), ReLU
    "dropout": 0.5,          # before each head's layers (seed 004: 0.5)
    # Momentum of the backbone's batch-norm moving averages; null keeps keras's
    # (0.999 for MobileNetV2, 0.99 ResNet50): right for long fine-tuning, but a
    # short run from random weights ends with moving statistics still near their
    # initial values and evaluates at chance (seen: preset 004, 300 steps).
    "bn_momentum": None,
}
# Params that name files: made absolute against the config's folder (models.resolve_paths).
PATH_PARAMS = ("weights",)



def resolve_params(params: Mapping[str, Any], task_names=(), normalization=None) -> dict[str, Any]:
    """Defaults overlaid with config.model.params; unknown or bad values fail by
    name. Pretrained weights need the image.normalization they were trained with."""
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        fail(KEY + unknown[0], f"unknown backbone parameter; valid: {', '.join(sorted(DEFAULT_PARAMS))}")
    p = {**DEFAULT_PARAMS, **params}
    if not isinstance(p["backbone"], str) or p["backbone"] not in BACKBONES:
        fail(KEY + "backbone", f"received {p['backbone']!r}; valid: {', '.join(BACKBONES)}")
    if p["weights"] is not None and (not isinstance(p["weights"], str) or not p["weights"]):
        fail(KEY + "weights", f"expected a path to a weights file or null, received {p['weights']!r}")
    if not isinstance(p["trainable"], bool):
        fail(KEY + "trainable", f"expected true or false, received {p['trainable']!r}")
    n = p["fine_tune_last"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        fail(KEY + "fine_tune_last", f"expected an integer >= 0, received {n!r}")
    if n and not p["trainable"]:
        fail(KEY + "fine_tune_last", f"received {n} with trainable: false; set trainable: true to fine-tune "
                                "the last layers, or fine_tune_last: 0")
    if not isinstance(p["pooling"], str) or p["pooling"] not in POOLINGS:
        fail(KEY + "pooling", f"received {p['pooling']!r}; valid: {', '.join(POOLINGS)}")
    dense = p["dense"]
    if not isinstance(dense, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dense):
        fail(KEY + "dense", f"expected a list of positive integers, received {dense!r}")
    if any(d > 8192 for d in dense):
        fail(KEY + "dense", f"each entry must be <= 8192, received {dense!r}")
    d = p["dropout"]
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or not 0 <= d < 1:
        fail(KEY + "dropout", f"expected a number in [0, 1), received {d!r}")
    m = p["bn_momentum"]
    if m is not None and (isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1):
        fail(KEY + "bn_momentum", f"expected a number in [0, 1) or null, received {m!r}")
    expected = BACKBONES[p["backbone"]][1]
    if p["weights"] is not None and normalization is not None and normalization != expected:
        fail(KEY + "weights", f"{p['backbone']}'s pretrained weights expect image.normalization {expected!r}, "
                         f"the config has {normalization!r}; set image.normalization: {expected}")
    p["dense"], p["dropout"] = list(dense), float(d)
    return p
