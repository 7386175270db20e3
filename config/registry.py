"""Name -> module registries: every configurable choice is resolved here.

A choice in the config (a source's `format`, `model.name`) is a name; each
table below maps it to the module that implements it. Names map to module
paths, not modules, so that validating a config imports nothing heavy and this
bottom package imports nothing of the project: the module is imported only
when the choice is used (`load`). A new format or model family is one row
here plus its module.
"""
from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any, Mapping

from config.errors import fail

# Source formats (data_prep/formats/__init__.py says what each module exposes).
FORMATS = {
    "genki4k": "data_prep.formats.genki4k",
    "imdb_wiki": "data_prep.formats.imdb_wiki",
    "folder": "data_prep.formats.folder",
    "utkface": "data_prep.formats.utkface",
    "fashionai": "data_prep.formats.fashionai",
    "csv": "data_prep.formats.csv_manifest",
    "tfds": "data_prep.formats.tfds",
}

# Sample-data generators, one per source format: `generate(source, config, *, count, seed, **kwargs)`.
GENERATORS = {name: module.replace(".formats.", ".generators.") for name, module in FORMATS.items()}

# Model families: name -> module exposing `build(config) -> tf_keras.Model`.
MODELS = {
    "bknet": "models.bknet",
    "multibranch": "models.multibranch",
    "backbone": "models.backbone",
}

# Model families' params: name -> TensorFlow-free module exposing
#   resolve_params(params, task_names=(), normalization=None) -> dict
# and optionally PATH_PARAMS, the params that name files.
PARAMS = {name: f"{module}_params" for name, module in MODELS.items()}


def load(registry: Mapping[str, str], name: str, what: str) -> ModuleType:
    """Imports `registry[name]`; an unknown name fails listing the valid ones."""
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(sorted(registry))}")
    # sys.modules first: import_module takes the import lock on every call (~3 us), and the
    # conversion resolves a record's format once per record.
    return sys.modules.get(registry[name]) or importlib.import_module(registry[name])


def validate_params(name: str, params: Mapping[str, Any], task_names=(), normalization: str | None = None) -> dict:
    """The model's params with defaults filled in; raises ValueError naming the bad key.
    Imports no TensorFlow, so config loading can call it. `task_names` and
    `normalization` (the config's tasks and image.normalization) let a family
    check params that refer to them."""
    return load(PARAMS, name, "model").resolve_params(
        params, task_names=tuple(task_names), normalization=normalization)


def resolve_paths(name: str, params: Mapping[str, Any], base_dir: str | None) -> dict:
    """`params` with the family's file params made absolute against `base_dir`
    (the config file's folder), as sources' paths are; URLs are left alone.
    With a base_dir (a config read from a file) a local file that does not
    exist is an error now (ConfigError), not an hour later in the Trainer."""
    out = dict(params)
    for key in getattr(load(PARAMS, name, "model"), "PATH_PARAMS", ()):
        path = out.get(key)
        if not isinstance(path, str) or not path or "://" in path:
            continue
        if base_dir and not os.path.isabs(path):
            out[key] = os.path.normpath(os.path.join(base_dir, path))
        # a file (.h5) or a TF checkpoint prefix (its .index file exists)
        if base_dir and not (os.path.isfile(out[key]) or os.path.isfile(out[key] + ".index")):
            fail(f"model.params.{key}", f"no such file {out[key]!r}"
                                        + (f" (from {path!r}, relative to the config's folder {base_dir})"
                                           if out[key] != path else ""))
    return out
