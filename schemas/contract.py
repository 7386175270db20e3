"""Builds the TFMD schema of the data contract from a run's config.

The contract's shape depends on the config (the `label` length is the widest
task's width, `task_index` ranges over the task list, `source` over the source
names), so the schema is derived, never hand-edited. `schemas/<config name>.pbtxt`
holds the schema of each config compiled for Kubeflow (read inside the image)
and is the readable reference; a test checks the default one against this
function.
"""
from __future__ import annotations

import hashlib
import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from config import Config, TaskConfig, slice_key


def build_schema(config: Config) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()

    def feature(name: str, ftype: int, dims: tuple[int, ...] = ()) -> schema_pb2.Feature:
        f = schema.feature.add(name=name, type=ftype)
        f.presence.min_fraction = 1.0
        f.presence.min_count = 1
        f.shape.SetInParent()  # a fixed shape (scalar when dims is empty)
        for d in dims:
            f.shape.dim.add(size=d)
        return f

    feature("image", schema_pb2.BYTES).image_domain.SetInParent()
    task_index = feature("task_index", schema_pb2.INT)
    task_index.int_domain.min = 0
    task_index.int_domain.max = len(config.tasks) - 1
    task_index.int_domain.is_categorical = True
    label = feature("label", schema_pb2.FLOAT, (config.label_width,))
    label.float_domain.min = -1e9 if any(t.type == "regression" for t in config.tasks) else 0.0
    label.float_domain.max = 1e9 if any(t.type == "regression" for t in config.tasks) else 1.0
    source = feature("source", schema_pb2.BYTES)
    source.string_domain.name = "source"
    source.string_domain.value.extend(s.name for s in config.sources)
    feature("example_id", schema_pb2.BYTES)
    for task in slice_tasks(config):
        # Slice-only (docs/data_contract.md): on the examples of a record's other tasks,
        # absent where the record lacks this task's label. No fixed shape, so Transform
        # and the serving signatures parse it as an optional VarLenFeature.
        f = schema.feature.add(name=slice_key(task.name), type=schema_pb2.BYTES)
        f.presence.min_fraction = 0.0
        f.value_count.min = 1
        f.value_count.max = 1
        f.string_domain.name = slice_key(task.name)
        f.string_domain.value.extend(task.classes)
    return schema


def slice_tasks(config: Config) -> list[TaskConfig]:
    """The binary / multiclass tasks some source labels together with another task: the
    ones whose class the examples of that source's other tasks carry as `slice_<task>`."""
    return [t for t in config.tasks if t.is_classification
            and any(t.name in s.tasks and len(s.tasks) > 1 for s in config.sources)]


def schema_text(config: Config) -> str:
    return text_format.MessageToString(build_schema(config))


def write_schema(config: Config, directory: str) -> str:
    """Writes the schema under `directory/<content hash>/schema.pbtxt`.

    The path changes with the content: ImportSchemaGen's cache key is the
    path, so a config change that changes the contract must not reuse an
    older import.
    """
    text = schema_text(config)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    out_dir = os.path.join(directory, digest)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "schema.pbtxt")
    with open(path, "w") as f:
        f.write(text)
    return path
