"""Guard: every field of every config dataclass is read by config/parse.py. Two configs that set
every key to a value other than its default parse to configs where each field differs from its
dataclass default (a field the parser forgot would silently keep its default), and survive JSON.
A new field fails here until a non-default value for it is added below."""
from __future__ import annotations

import copy
import dataclasses

from config import config_from_json, parse

FIRST = {
    "name": "guard-name",
    "image": {"size": [32, 40], "channels": 3, "normalization": "unit", "encoding": "jpeg"},
    "tasks": [
        {"name": "a", "type": "regression", "loss": "mae", "loss_weight": 2.0,
         "thresholds": {"mean_absolute_error": 3.0}, "tolerance": 1.5},
        {"name": "b", "type": "binary", "classes": ["n", "y"]},
    ],
    "sources": [{"name": "s", "format": "csv", "path": "/data/s", "tasks": ["a", "b"],
                 "options": {"manifest": "m.csv"}, "sample": {"count": 5},
                 "prep": {"color": "grayscale", "resize": "pad", "face_crop": True, "face_margin": 0.1,
                          "encoding": "jpeg", "jpeg_quality": 80}, "spans": "last 2"}],
    "splits": {"eval": 0.3, "salt": "s"},
    "train": {"steps": 7, "batch_size": 8, "eval_steps": 3, "learning_rate": 0.01, "seed": 1,
              "sampling": {"type": "temperature", "temperature": 2.0, "weights": {"s": 1.0}, "min_per_task": 1},
              "loss_weighting": {"type": "dwa", "temperature": 3.0},
              "augment": {"flip": True, "crop": 2, "brightness": 0.1},
              "strategy": "mirrored", "warmup": 0.2, "lr_decay": "constant", "keep": "best",
              "precision": "mixed_bfloat16", "warm_start": True},
    "model": {"name": "backbone", "params": {"backbone": "mobilenet_v2"},
              "sharing": {"type": "ple", "experts": 2, "expert_units": 16, "task_experts": 2, "levels": 3}},
    "beam": {"args": ["--direct_num_workers=2"]},
    "evaluation": {"max_regression": 0.05, "gate_on": "lower_bound", "confidence_intervals": True,
                   "slices": [{"task": "b", "by": "class"}], "min_slice_size": 10},
    "tfrecords": {"gzip_level": 3},
    "validation": {"drift": {"action": "warn", "comparator": "jensen_shannon_divergence",
                             "thresholds": {"label_distribution": 0.02}}},
    "compare": {"methods": ["none", "pcgrad"], "sharing": ["hard", "mmoe"], "seeds": 2},
}
SECOND = copy.deepcopy(FIRST)  # what FIRST's choices exclude
SECOND["train"]["loss_weighting"] = {"type": "static"}
SECOND["train"]["mtl"] = {"method": "cagrad", "grad_on": "representation", "params": {"c": 0.5}}
SECOND["evaluation"]["slices"] = [{"task": "a", "by": "b"}]  # a cross-task slice: s labels both

ALWAYS_DEFAULT: set = set()


def _defaults(obj) -> dict:
    out = {}
    for f in dataclasses.fields(obj):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _fields_left_at_default(obj, seen: dict) -> None:
    """(class, field) -> whether any instance in the tree has a non-default value."""
    if isinstance(obj, (list, tuple)):
        for x in obj:
            _fields_left_at_default(x, seen)
        return
    if not dataclasses.is_dataclass(obj):
        return
    defaults = _defaults(obj)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = (type(obj).__name__, f.name)
        differs = f.name not in defaults or value != defaults[f.name]
        seen[key] = seen.get(key, False) or differs
        _fields_left_at_default(value, seen)


def test_every_field_is_parsed():
    seen: dict = {}
    for raw in (FIRST, SECOND):
        config = parse(copy.deepcopy(raw), base_dir=None)
        assert config_from_json(config.to_json()) == config
        _fields_left_at_default(config, seen)
    left = sorted(k for k, differs in seen.items() if not differs and k not in ALWAYS_DEFAULT)
    assert left == [], (f"fields at their default in both parsed configs: {left}; a new field: give it a "
                        f"non-default value in FIRST or SECOND above; else config/parse.py does not read it")
