"""Model families, one module each, resolved by name from the config's `model.name`.

The registry maps names to modules so that config validation needs no
TensorFlow import; `get_builder` imports the module when a model is built.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from pipeline import registry

# name -> module exposing `build(config) -> tf_keras.Model`
MODELS = {
    "bknet": "models.bknet",
    "multibranch": "models.multibranch",
    "backbone": "models.backbone",
}


# name -> TensorFlow-free module exposing
#   resolve_params(params, task_names=(), normalization=None) -> dict
# and optionally PATH_PARAMS, the params that name files.
PARAMS = {
    "bknet": "models.bknet_params",
    "multibranch": "models.multibranch_params",
    "backbone": "models.backbone_params",
}


def validate_params(name: str, params: Mapping[str, Any], task_names=(), normalization: str | None = None) -> dict:
    """The model's params with defaults filled in; raises ValueError naming the bad key.
    Imports no TensorFlow, so config loading can call it. `task_names` and
    `normalization` (the config's tasks and image.normalization) let a family
    check params that refer to them."""
    return registry.load(PARAMS, name, "model").resolve_params(
        params, task_names=tuple(task_names), normalization=normalization)


def resolve_paths(name: str, params: Mapping[str, Any], base_dir: str | None) -> dict:
    """`params` with the family's file params made absolute against `base_dir`
    (the config file's folder), as sources' paths are; URLs are left alone.
    With a base_dir (a config read from a file) a local file that does not
    exist is an error now, not an hour later in the Trainer."""
    out = dict(params)
    for key in getattr(registry.load(PARAMS, name, "model"), "PATH_PARAMS", ()):
        path = out.get(key)
        if not isinstance(path, str) or not path or "://" in path:
            continue
        if base_dir and not os.path.isabs(path):
            out[key] = os.path.normpath(os.path.join(base_dir, path))
        # a file (.h5) or a TF checkpoint prefix (its .index file exists)
        if base_dir and not (os.path.isfile(out[key]) or os.path.isfile(out[key] + ".index")):
            raise ValueError(f"config key 'model.params.{key}': no such file {out[key]!r}"
                             + (f" (from {path!r}, relative to the config's folder {base_dir})"
                                if out[key] != path else ""))
    return out


def get_builder(name: str):
    return registry.load(MODELS, name, "model").build
