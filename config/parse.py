"""Validation of a run config: YAML mapping -> typed ``config.types.Config``.

Every key is checked here on load, so a bad config fails in one line that
names the key, what was received and what is valid, before any heavy import
or Beam job starts. Import ``parse`` / ``load`` from ``config``.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping

import yaml

from config import registry
from config.errors import ConfigError
from config.types import (  # noqa: F401
    TASK_TYPES,
    SAMPLERS,
    NORMALIZATIONS,
    TASK_LOSSES,
    LOSS_WEIGHTINGS,
    STRATEGIES,
    LR_DECAYS,
    KEEPS,
    PREP_COLORS,
    PREP_RESIZE,
    TaskConfig,
    PrepConfig,
    SourceConfig,
    ImageConfig,
    SplitsConfig,
    SamplingConfig,
    LossWeightingConfig,
    AugmentConfig,
    TrainConfig,
    ModelConfig,
    SliceConfig,
    EvaluationConfig,
    BeamConfig,
    TFRecordsConfig,
    Config,
)


def _fail(key: str, msg: str) -> None:
    raise ConfigError(f"config key '{key}': {msg}")


def _check_keys(where: str, raw: Mapping[str, Any], allowed: set[str], required: set[str] = frozenset()):
    if not isinstance(raw, Mapping):
        _fail(where, f"expected a mapping, received {type(raw).__name__}: {raw!r}")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        _fail(f"{where}.{unknown[0]}" if where else unknown[0],
              f"unknown key; valid keys here: {', '.join(sorted(allowed))}")
    for k in sorted(required):
        if k not in raw:
            _fail(f"{where}.{k}" if where else k, "required key is missing")


def _num(key: str, value: Any, kind=float, lo=None, hi=None, lo_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        _fail(key, f"expected {'an integer' if kind is int else 'a number'}, received {value!r}")
    if not math.isfinite(value):
        _fail(key, f"expected a finite number, received {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        _fail(key, f"must be {'>' if lo_open else '>='} {lo}, received {value!r}")
    if hi is not None and value > hi:
        _fail(key, f"must be <= {hi}, received {value!r}")
    return kind(value)


def _parse_task(i: int, raw: Any) -> TaskConfig:
    where = f"tasks[{i}]"
    _check_keys(where, raw, {"name", "type", "classes", "loss", "loss_weight", "thresholds", "tolerance"},
                {"name", "type"})
    name = raw["name"]
    if not isinstance(name, str) or not name.isidentifier():
        _fail(f"{where}.name", f"expected an identifier-like string (letters, digits, _), received {name!r}")
    ttype = raw["type"]
    if ttype not in TASK_TYPES:
        _fail(f"{where}.type", f"received {ttype!r}; valid: {', '.join(TASK_TYPES)}")
    classes = raw.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, (str, int)) for c in classes):
        _fail(f"{where}.classes", f"expected a list of class names, received {classes!r}")
    classes = tuple(str(c) for c in classes)
    if ttype == "regression":
        if classes:
            _fail(f"{where}.classes", f"a regression task has no classes, received {list(classes)!r}")
    elif ttype == "binary" and len(classes) != 2:
        _fail(f"{where}.classes", f"a binary task needs exactly 2 classes (negative, positive), received {list(classes)!r}")
    elif len(classes) < 2:
        _fail(f"{where}.classes", f"a {ttype} task needs at least 2 classes, received {list(classes)!r}")
    if len(set(classes)) != len(classes):
        _fail(f"{where}.classes", f"duplicate class names in {list(classes)!r}")
    thresholds = raw.get("thresholds", {}) or {}
    _check_keys(f"{where}.thresholds", thresholds, set(thresholds))
    thresholds = {k: _num(f"{where}.thresholds.{k}", v) for k, v in thresholds.items()}
    tolerance = raw.get("tolerance")
    if tolerance is not None:
        if ttype != "regression":
            _fail(f"{where}.tolerance", f"only regression tasks have a tolerance; this task is {ttype}")
        tolerance = _num(f"{where}.tolerance", tolerance, lo=0, lo_open=True)
    loss = raw.get("loss", TASK_LOSSES[ttype][0])
    if loss not in TASK_LOSSES[ttype]:
        _fail(f"{where}.loss", f"received {loss!r}; valid for a {ttype} task: {', '.join(TASK_LOSSES[ttype])}")
    return TaskConfig(
        name=name, type=ttype, classes=classes,
        loss_weight=_num(f"{where}.loss_weight", raw.get("loss_weight", 1.0), lo=0),
        thresholds=thresholds, tolerance=tolerance, loss=loss,
    )


def _parse_source(i: int, raw: Any, task_names: tuple[str, ...], base_dir: str | None) -> SourceConfig:
    where = f"sources[{i}]"
    _check_keys(where, raw, {"name", "format", "path", "tasks", "options", "sample", "prep"},
                {"name", "format", "path", "tasks"})
    name = raw["name"]
    if not isinstance(name, str) or not name.isidentifier():
        _fail(f"{where}.name", f"expected an identifier-like string (letters, digits, _), received {name!r}")
    if raw["format"] not in registry.FORMATS:
        _fail(f"{where}.format", f"received {raw['format']!r}; valid: {', '.join(sorted(registry.FORMATS))}")
    tasks = raw["tasks"]
    if isinstance(tasks, str):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks:
        _fail(f"{where}.tasks", f"expected a non-empty list of task names, received {tasks!r}")
    for t in tasks:
        if t not in task_names:
            _fail(f"{where}.tasks", f"received unknown task {t!r}; tasks in this config: {', '.join(task_names)}")
    path = raw["path"]
    if not isinstance(path, str) or not path:
        _fail(f"{where}.path", f"expected a path, received {path!r}")
    # Relative paths are relative to the config file, so a config and its data
    # travel together; URLs (gs://, s3://) are left alone.
    if base_dir and "://" not in path and not os.path.isabs(path):
        path = os.path.normpath(os.path.join(base_dir, path))
    options = raw.get("options", {}) or {}
    _check_keys(f"{where}.options", options, set(options))
    sample = raw.get("sample")
    if sample is not None:
        _check_keys(f"{where}.sample", sample, set(sample))
    return SourceConfig(name=name, format=raw["format"], path=path, tasks=tuple(tasks),
                        options=dict(options), sample=None if sample is None else dict(sample),
                        prep=_parse_prep(f"{where}.prep", raw.get("prep", {}) or {}))


def _parse_prep(where: str, raw: Any) -> PrepConfig:
    """Per-source image prep; whether the format gives face boxes is checked by data_prep."""
    _check_keys(where, raw, {f.name for f in dataclasses.fields(PrepConfig)})
    d = PrepConfig()
    for key, valid in (("color", PREP_COLORS), ("resize", PREP_RESIZE), ("encoding", (None, "png", "jpeg"))):
        if raw.get(key, getattr(d, key)) not in valid:
            _fail(f"{where}.{key}", f"received {raw[key]!r}; valid: "
                                    f"{', '.join('null (= image.encoding)' if v is None else v for v in valid)}")
    if not isinstance(raw.get("face_crop", False), bool):
        _fail(f"{where}.face_crop", f"expected true or false, received {raw['face_crop']!r}")
    return PrepConfig(color=raw.get("color", d.color), resize=raw.get("resize", d.resize),
                      face_crop=raw.get("face_crop", d.face_crop),
                      face_margin=_num(f"{where}.face_margin", raw.get("face_margin", d.face_margin), lo=0, hi=2),
                      encoding=raw.get("encoding", d.encoding),
                      jpeg_quality=_num(f"{where}.jpeg_quality", raw.get("jpeg_quality", d.jpeg_quality), int,
                                        lo=1, hi=100))


def parse(raw: Any, base_dir: str | None) -> Config:
    """Validates a config mapping (as read from YAML) into a ``Config``."""
    _check_keys("", raw, {"name", "image", "tasks", "sources", "splits", "train", "model", "beam", "evaluation",
                         "tfrecords"}, {"name", "tasks", "sources"})
    if not isinstance(raw["name"], str) or not raw["name"]:
        _fail("name", f"expected a non-empty string, received {raw['name']!r}")

    img = raw.get("image", {}) or {}
    _check_keys("image", img, {"size", "channels", "normalization", "encoding"})
    size = img.get("size", [48, 48])
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        _fail("image.size", f"expected [height, width] of positive integers, received {size!r}")
    if img.get("channels", 1) not in (1, 3):
        _fail("image.channels", f"received {img.get('channels')!r}; valid: 1, 3")
    if img.get("normalization", "centered") not in NORMALIZATIONS:
        _fail("image.normalization", f"received {img.get('normalization')!r}; valid: {', '.join(NORMALIZATIONS)}")
    if img.get("encoding", "png") not in ("png", "jpeg"):
        _fail("image.encoding", f"received {img.get('encoding')!r}; valid: png, jpeg")
    image = ImageConfig(size=tuple(size), channels=img.get("channels", 1),
                        normalization=img.get("normalization", "centered"), encoding=img.get("encoding", "png"))

    if not isinstance(raw["tasks"], list) or not raw["tasks"]:
        _fail("tasks", f"expected a non-empty list of tasks, received {raw['tasks']!r}")
    tasks = tuple(_parse_task(i, t) for i, t in enumerate(raw["tasks"]))
    names = tuple(t.name for t in tasks)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        _fail("tasks", f"duplicate task names: {', '.join(dup)}")

    if not isinstance(raw["sources"], list) or not raw["sources"]:
        _fail("sources", f"expected a non-empty list of sources, received {raw['sources']!r}")
    sources = tuple(_parse_source(i, s, names, base_dir) for i, s in enumerate(raw["sources"]))
    snames = [s.name for s in sources]
    dup = sorted({n for n in snames if snames.count(n) > 1})
    if dup:
        _fail("sources", f"duplicate source names: {', '.join(dup)}")
    unlabelled = [t for t in names if not any(t in s.tasks for s in sources)]
    if unlabelled:
        _fail("tasks", f"task(s) {', '.join(unlabelled)} have no source labelling them")

    sp = raw.get("splits", {}) or {}
    _check_keys("splits", sp, {"eval", "salt"})
    splits = SplitsConfig(eval=_num("splits.eval", sp.get("eval", 0.2), lo=0, hi=0.9, lo_open=True),
                          salt=str(sp.get("salt", "")))

    tr = raw.get("train", {}) or {}
    _check_keys("train", tr, {"steps", "batch_size", "eval_steps", "learning_rate", "seed", "sampling",
                              "loss_weighting", "augment", "strategy", "warmup", "lr_decay", "keep"})
    sm = tr.get("sampling", {}) or {}
    _check_keys("train.sampling", sm, {"type", "temperature", "weights"})
    if sm.get("type", "natural") not in SAMPLERS:
        _fail("train.sampling.type", f"received {sm.get('type')!r}; valid: {', '.join(SAMPLERS)}")
    weights = sm.get("weights", {}) or {}
    _check_keys("train.sampling.weights", weights, set(snames))
    if sm.get("type") == "weights" and not weights:
        _fail("train.sampling.weights", "sampling type 'weights' needs a weight per source name")
    sampling = SamplingConfig(
        type=sm.get("type", "natural"),
        temperature=_num("train.sampling.temperature", sm.get("temperature", 1.0), lo=0, lo_open=True),
        weights={k: _num(f"train.sampling.weights.{k}", v, lo=0) for k, v in weights.items()},
    )
    train = TrainConfig(
        steps=_num("train.steps", tr.get("steps", 200), int, lo=1),
        batch_size=_num("train.batch_size", tr.get("batch_size", 32), int, lo=1),
        eval_steps=_num("train.eval_steps", tr.get("eval_steps", 10), int, lo=1),
        learning_rate=_num("train.learning_rate", tr.get("learning_rate", TrainConfig.learning_rate), lo=0, lo_open=True),
        seed=_num("train.seed", tr.get("seed", 42), int),
        sampling=sampling,
        loss_weighting=_parse_loss_weighting(tr.get("loss_weighting", {}) or {}),
        augment=_parse_augment(tr.get("augment", {}) or {}, image.size),
        strategy=tr.get("strategy", TrainConfig.strategy),
        warmup=_num("train.warmup", tr.get("warmup", TrainConfig.warmup), lo=0, hi=0.5),
        lr_decay=tr.get("lr_decay", TrainConfig.lr_decay),
        keep=tr.get("keep", TrainConfig.keep),
    )
    for key, valid in (("strategy", STRATEGIES), ("lr_decay", LR_DECAYS), ("keep", KEEPS)):
        value = getattr(train, key)
        if not isinstance(value, str) or value not in valid:
            _fail(f"train.{key}", f"received {value!r}; valid: {', '.join(valid)}")

    md = raw.get("model", {}) or {}
    _check_keys("model", md, {"name", "params"})
    if md.get("name", "bknet") not in registry.MODELS:
        _fail("model.name", f"received {md.get('name')!r}; valid: {', '.join(sorted(registry.MODELS))}")
    params = md.get("params", {}) or {}
    _check_keys("model.params", params, set(params))
    try:  # the family owns its params' names and ranges
        registry.validate_params(md.get("name", "bknet"), params, task_names=names, normalization=image.normalization)
        # File params (a backbone's weights) are relative to the config file, like sources' paths.
        params = registry.resolve_paths(md.get("name", "bknet"), params, base_dir)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    model = ModelConfig(name=md.get("name", "bknet"), params=dict(params))

    bm = raw.get("beam", {}) or {}
    _check_keys("beam", bm, {"args"})
    args = bm.get("args", []) or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        _fail("beam.args", f"expected a list of strings, received {args!r}")
    rec = raw.get("tfrecords", {}) or {}
    _check_keys("tfrecords", rec, {"gzip_level"})
    level = rec.get("gzip_level", "auto")
    if level != "auto" and (isinstance(level, bool) or level not in range(10)):
        _fail("tfrecords.gzip_level", f'received {level!r}; valid: "auto" or an integer 0-9')
    tfrecords = TFRecordsConfig(gzip_level=level)
    return Config(name=raw["name"], image=image, tasks=tasks, sources=sources, splits=splits,
                  train=train, model=model, beam=BeamConfig(args=tuple(args)),
                  evaluation=_parse_evaluation(raw.get("evaluation", {}) or {}, tasks), tfrecords=tfrecords)


def _parse_loss_weighting(raw: Any) -> LossWeightingConfig:
    _check_keys("train.loss_weighting", raw, {"type", "temperature"})
    if raw.get("type", "static") not in LOSS_WEIGHTINGS:
        _fail("train.loss_weighting.type", f"received {raw.get('type')!r}; valid: {', '.join(LOSS_WEIGHTINGS)}")
    return LossWeightingConfig(
        type=raw.get("type", "static"),
        temperature=_num("train.loss_weighting.temperature", raw.get("temperature", 2.0), lo=0, lo_open=True))


def _parse_augment(raw: Any, size: tuple[int, int]) -> AugmentConfig:
    _check_keys("train.augment", raw, {"flip", "crop", "brightness"})
    flip = raw.get("flip", False)
    if not isinstance(flip, bool):
        _fail("train.augment.flip", f"expected true or false, received {flip!r}")
    crop = raw.get("crop", 0)
    if isinstance(crop, int) and not isinstance(crop, bool):
        # whole pixels cut off each side length; at least 1 x 1 must remain
        crop = _num("train.augment.crop", crop, int, lo=0, hi=min(size) - 1)
    else:
        if isinstance(crop, (int, float)) and not isinstance(crop, bool) and crop >= 1:
            _fail("train.augment.crop", f"a fraction must be in [0, 1), received {crop!r}; "
                                        "write an integer for pixels (crop: 4)")
        crop = _num("train.augment.crop", crop, lo=0, hi=1)
    return AugmentConfig(flip=flip, crop=crop,
                         brightness=_num("train.augment.brightness", raw.get("brightness", 0.0), lo=0, hi=1))


def _parse_evaluation(ev: Any, tasks: tuple[TaskConfig, ...]) -> EvaluationConfig:
    _check_keys("evaluation", ev, {"max_regression", "slices", "gate_on", "confidence_intervals"})
    max_regression = _num("evaluation.max_regression", ev.get("max_regression", 0.02), lo=0, hi=0.99)
    gate_on = ev.get("gate_on", "value")
    if gate_on not in ("value", "lower_bound"):
        _fail("evaluation.gate_on", f"received {gate_on!r}; valid: value, lower_bound")
    intervals = ev.get("confidence_intervals", EvaluationConfig.confidence_intervals)
    if not isinstance(intervals, bool):
        _fail("evaluation.confidence_intervals", f"expected true or false, received {intervals!r}")
    if gate_on == "lower_bound" and not intervals:
        _fail("evaluation.gate_on", "lower_bound gates on the confidence interval; "
                                    "evaluation.confidence_intervals is false")
    raw_slices = ev.get("slices")
    if raw_slices is None:  # absent or null: the default (every classification task by class)
        return EvaluationConfig(max_regression=max_regression, gate_on=gate_on, confidence_intervals=intervals)
    if not isinstance(raw_slices, list):
        _fail("evaluation.slices", f"expected a list of {{task, by}}, received {raw_slices!r}")
    by_name = {t.name: t for t in tasks}
    slices = []
    for i, sl in enumerate(raw_slices):
        where = f"evaluation.slices[{i}]"
        _check_keys(where, sl, {"task", "by"}, {"task"})
        if sl["task"] not in by_name:
            _fail(f"{where}.task", f"received {sl['task']!r}; valid: {', '.join(by_name)}")
        if by_name[sl["task"]].type == "regression":
            _fail(f"{where}.task", f"{sl['task']!r} is a regression task: it has no classes to slice by")
        by = sl.get("by", "class")
        if by in by_name:
            # One example per (image, task) carries only that task's label
            # (docs/data_contract.md), so no example knows both tasks.
            _fail(f"{where}.by", f"received task {by!r}: cross-task slices need examples labelled for both "
                                 f"tasks, and each example carries one task's label; valid: class")
        if by != "class":
            _fail(f"{where}.by", f"received {by!r}; valid: class")
        slices.append(SliceConfig(task=sl["task"], by=by))
    return EvaluationConfig(max_regression=max_regression, gate_on=gate_on, confidence_intervals=intervals,
                            slices=tuple(slices))


def load(path: str) -> Config:
    """Reads and validates a YAML config file. Raises ConfigError."""
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    return parse(raw, base_dir=os.path.dirname(os.path.abspath(path)))
