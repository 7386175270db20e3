"""Shared record types, errors and the data-contract encoding.

Kept free of heavy imports (no TensorFlow at all: examples are serialized
with data_prep.example_proto) so config validation and the CLI fail fast and
Beam workers start in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from config import TaskConfig, slice_key
from data_prep.example_proto import Example


class Reject(Exception):
    """One raw record cannot be converted; it goes to the dead-letter output.

    `reason` is a short stable code (`bad_image`, `missing_label`, ...) that
    stats count by; `detail` says what was received.
    """

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class SourceError(ValueError):
    """A whole source is unusable (missing path, no records, unreadable index)."""


@dataclass(frozen=True)
class RawRecord:
    """One raw record as enumerated cheaply on the driver: an id, the image
    path and the format's raw label fields (parsed later, on workers).
    `problem`: (reason, detail) when the listing already knows the record
    cannot convert (a symbolic link out of the dataset, ...): it is
    dead-lettered with that reason before anything else is read."""

    raw_id: str
    path: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class Parsed:
    """A raw record's labels, decided before the image is read.

    `labels`: task name -> class index (binary/multiclass), list of class
    indices (multilabel) or float (regression). `missing`: task name ->
    reason code for tasks this source labels but this record does not.
    `crop_box`: (left, top, right, bottom) in source pixels, or None.
    """

    group_id: str
    labels: Mapping[str, Any]
    missing: Mapping[str, str] = field(default_factory=dict)
    crop_box: tuple[float, float, float, float] | None = None


def encode_label(task: TaskConfig, value: Any, width: int) -> list[float]:
    """The padded `label` vector of the data contract for one task's value."""
    out = [0.0] * width
    if task.type == "regression":
        out[0] = float(value)
        return out
    indices = list(value) if task.type == "multilabel" else [value]
    for idx in indices:
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < task.width:
            raise ValueError(f"task {task.name!r}: class index must be an int in [0, {task.width}), "
                             f"received {idx!r}")
        out[idx] = 1.0
    return out


def make_example(image: bytes, task_index: int, label: Sequence[float], source: str, example_id: str,
                 slices: Mapping[str, str] | None = None) -> bytes:
    """Serializes one tf.train.Example with exactly the data-contract features (without TensorFlow:
    see example_proto). Deterministic: protobuf writes map entries in no fixed order otherwise
    (38 byte strings from 50 serializations of one example), and the same input must give the
    same TFRecord bytes. `slices`: slice-only features (`slice_<task>` -> class name, see
    slice_features), none by default."""
    example = Example()
    feature = example.features.feature
    feature["image"].bytes_list.value.append(image)
    feature["task_index"].int64_list.value.append(task_index)
    feature["label"].float_list.value.extend(label)
    feature["source"].bytes_list.value.append(source.encode())
    feature["example_id"].bytes_list.value.append(example_id.encode())
    for key, value in (slices or {}).items():
        feature[key].bytes_list.value.append(value.encode())
    return example.SerializeToString(deterministic=True)


def slice_features(tasks: Sequence[TaskConfig], labels: Mapping[str, Any], own: str) -> dict[str, str]:
    """The slice-only features of the example of task `own` (docs/data_contract.md): the
    record's class of every OTHER binary / multiclass task it is labelled for, as
    `slice_<task>` -> class name. Never a training label: Transform does not read them,
    so `label`, `task_index` and the loss are the same with or without them. A task the
    record lacks has no feature (the missing value is absence); a record of one task has none."""
    return {slice_key(t.name): t.classes[labels[t.name]] for t in tasks
            if t.name != own and t.is_classification and t.name in labels}
