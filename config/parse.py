"""Parsing a run config: YAML mapping -> typed ``config.types.Config``.

Every key is checked here on load, cheaply and without touching the data:
types, ranges (finite numbers only), choices, names, cross-references between
sections. A bad value fails with one ConfigError line,
`config key '<path>': <what was received and what is valid>`, where <path>
is the key as the YAML file spells it (`sources[0].prep.face_crop`).
Defaults live once, in the dataclasses of config/types.py; each section has
one parse function. The checks that import format modules or look at the
disk are in config/validate.py. Import ``parse`` / ``load`` from ``config``.

A mapping-valued key (a section, `options`, `thresholds`, `model.params`)
may be empty or null: all its defaults. Other keys are null only where
docs/config.md says what null means (`tolerance`, `sample`, `prep.encoding`,
`evaluation.slices`).
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

import yaml

from config import registry
from config.checks import (
    MAX_IMAGE_SIDE,
    MAX_LOSS_WEIGHT,
    MAX_SAMPLE_COUNT,
    MAX_SEED,
    as_mapping,
    boolean,
    choice,
    defaults,
    listed,
    number,
    plain,
    safe_name,
    section,
    unique,
)
from config.errors import ConfigError, fail, show
from config.parse_train import parse_train
from config.parse_validation import parse_validation
from config.spans import check_pattern, parse_window
from config.types import (
    MTL_METHODS,
    NORMALIZATIONS,
    PIPELINE_NAME_PATTERN,
    PREP_COLORS,
    PREP_RESIZE,
    SHARINGS,
    TASK_LOSSES,
    TASK_TYPES,
    THRESHOLD_METRICS,
    TRUNK_SHARINGS,
    BeamConfig,
    CompareConfig,
    Config,
    EvaluationConfig,
    ImageConfig,
    ModelConfig,
    PrepConfig,
    SharingConfig,
    SliceConfig,
    SourceConfig,
    SplitsConfig,
    TaskConfig,
    TFRecordsConfig,
)

_PIPELINE_NAME = re.compile(PIPELINE_NAME_PATTERN + r"\Z")
MAX_GRID_SEEDS = 20  # compare.seeds: each seed is (variants + tasks) whole-pipeline runs


# ----------------------------------------------------------------- sections
def _parse_image(raw: Any) -> ImageConfig:
    d = section("image", raw, ImageConfig)
    size = d["size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_IMAGE_SIDE for s in size)):
        fail("image.size", f"expected [height, width], integers 1-{MAX_IMAGE_SIDE}, received {show(size)}")
    channels = d["channels"]
    if isinstance(channels, bool) or not isinstance(channels, int) or channels not in (1, 3):
        fail("image.channels", f"received {show(channels)}; valid: 1, 3")
    return ImageConfig(size=tuple(size), channels=channels,
                       normalization=choice("image.normalization", d["normalization"], NORMALIZATIONS),
                       encoding=choice("image.encoding", d["encoding"], ("png", "jpeg")))


def _parse_task(i: int, raw: Any) -> TaskConfig:
    where = f"tasks[{i}]"
    user = as_mapping(where, raw, {f.name for f in dataclasses.fields(TaskConfig)}, ("name", "type"))
    d = {**defaults(TaskConfig), **user}
    name = safe_name(f"{where}.name", d["name"])
    ttype = choice(f"{where}.type", d["type"], TASK_TYPES)
    classes = d["classes"]
    if (not isinstance(classes, (list, tuple))
            or not all(isinstance(c, (str, int)) and not isinstance(c, bool) and str(c) for c in classes)):
        fail(f"{where}.classes", f"expected a list of class names, received {show(classes)}")
    classes = tuple(str(c) for c in classes)
    if ttype == "regression":
        if classes:
            fail(f"{where}.classes", f"a regression task has no classes, received {show(list(classes))}")
    elif ttype == "binary" and len(classes) != 2:
        fail(f"{where}.classes", f"a binary task needs exactly 2 classes (negative, positive), "
                                 f"received {show(list(classes))}")
    elif len(classes) < 2:
        fail(f"{where}.classes", f"a {ttype} task needs at least 2 classes, received {show(list(classes))}")
    if len(set(classes)) != len(classes):
        fail(f"{where}.classes", f"duplicate class names in {show(list(classes))}")
    tolerance = d["tolerance"]
    if tolerance is not None:
        if ttype != "regression":
            fail(f"{where}.tolerance", f"only regression tasks have a tolerance; this task is {ttype}")
        tolerance = number(f"{where}.tolerance", tolerance, lo=0, lo_open=True)
    metrics = THRESHOLD_METRICS[ttype]
    thresholds = {}
    for metric, bound in as_mapping(f"{where}.thresholds", d["thresholds"]).items():
        key = f"{where}.thresholds.{metric}"
        if metric not in metrics:
            fail(key, f"no such gateable metric for a {ttype} task; valid: {', '.join(sorted(metrics))}")
        if metric == "within_tolerance" and tolerance is None:
            fail(key, f"within_tolerance needs {where}.tolerance")
        # a score bound above 1 is valid: it can never be met (tests force "not blessed" with it)
        thresholds[metric] = number(key, bound, lo=0)
    # an absent loss is the type's default; an explicit one must be valid for the type
    loss = user.get("loss", TASK_LOSSES[ttype][0])
    if not isinstance(loss, str) or loss not in TASK_LOSSES[ttype]:
        fail(f"{where}.loss", f"received {show(loss)}; valid for a {ttype} task: {', '.join(TASK_LOSSES[ttype])}")
    return TaskConfig(name=name, type=ttype, classes=classes,
                      loss_weight=number(f"{where}.loss_weight", d["loss_weight"], lo=0, hi=MAX_LOSS_WEIGHT),
                      thresholds=thresholds, tolerance=tolerance, loss=loss)


def _parse_tasks(raw: Any) -> tuple[TaskConfig, ...]:
    tasks = tuple(_parse_task(i, t) for i, t in enumerate(listed("tasks", raw, "tasks")))
    unique("tasks", [t.name for t in tasks], "task names")
    if not any(t.loss_weight > 0 for t in tasks):
        fail("tasks[0].loss_weight", "every task has loss_weight 0: nothing would be trained; give at least "
                                     "one task a loss_weight > 0")
    return tasks


def _parse_prep(where: str, raw: Any) -> PrepConfig:
    """Per-source image prep; whether the format gives face boxes is checked by config.validate."""
    d = section(where, raw, PrepConfig)
    if d["encoding"] is not None and d["encoding"] not in ("png", "jpeg"):
        fail(f"{where}.encoding", f"received {show(d['encoding'])}; valid: null (= image.encoding), png, jpeg")
    return PrepConfig(color=choice(f"{where}.color", d["color"], PREP_COLORS),
                      resize=choice(f"{where}.resize", d["resize"], PREP_RESIZE),
                      face_crop=boolean(f"{where}.face_crop", d["face_crop"]),
                      face_margin=number(f"{where}.face_margin", d["face_margin"], lo=0, hi=2),
                      encoding=d["encoding"],
                      jpeg_quality=number(f"{where}.jpeg_quality", d["jpeg_quality"], int, lo=1, hi=100))


def _parse_sample(where: str, raw: Any) -> dict | None:
    """Sample-data settings: count and seed here; the rest belong to the format's generator
    (config.validate checks them against its signature)."""
    if raw is None:
        return None
    sample = plain(where, as_mapping(where, raw))
    count = sample.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SAMPLE_COUNT:
        fail(f"{where}.count", f"expected a positive integer, received {show(count)} (at most {MAX_SAMPLE_COUNT})")
    seed = sample.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        fail(f"{where}.seed", f"expected an integer 0-{MAX_SEED}, received {show(seed)}")
    return sample


def _parse_source(i: int, raw: Any, task_names: tuple[str, ...], base_dir: str | None) -> SourceConfig:
    where = f"sources[{i}]"
    d = section(where, raw, SourceConfig, ("name", "format", "path", "tasks"))
    name = safe_name(f"{where}.name", d["name"])
    fmt = choice(f"{where}.format", d["format"], registry.FORMATS)
    tasks = [d["tasks"]] if isinstance(d["tasks"], str) else listed(f"{where}.tasks", d["tasks"], "task names")
    for t in tasks:
        if not isinstance(t, str) or t not in task_names:
            fail(f"{where}.tasks", f"received unknown task {show(t)}; tasks in this config: {', '.join(task_names)}")
    unique(f"{where}.tasks", tasks, "tasks")
    path = d["path"]
    if not isinstance(path, str) or not path.strip() or "\0" in path:
        fail(f"{where}.path", f"expected a path, received {show(path)}")
    check_pattern(f"{where}.path", path)
    # Relative paths are relative to the config file, so a config and its data
    # travel together; URLs (gs://, s3://) are left alone.
    if base_dir and "://" not in path and not os.path.isabs(path):
        path = os.path.normpath(os.path.join(base_dir, path))
    return SourceConfig(name=name, format=fmt, path=path, tasks=tuple(tasks),
                        options=plain(f"{where}.options", as_mapping(f"{where}.options", d["options"])),
                        sample=_parse_sample(f"{where}.sample", d["sample"]),
                        prep=_parse_prep(f"{where}.prep", d["prep"]),
                        spans=parse_window(f"{where}.spans", d["spans"]))


def _parse_sources(raw: Any, tasks: tuple[TaskConfig, ...], base_dir: str | None) -> tuple[SourceConfig, ...]:
    names = tuple(t.name for t in tasks)
    sources = tuple(_parse_source(i, s, names, base_dir) for i, s in enumerate(listed("sources", raw, "sources")))
    unique("sources", [s.name for s in sources], "source names")
    unlabelled = [t for t in names if not any(t in s.tasks for s in sources)]
    if unlabelled:
        fail("tasks", f"task(s) {', '.join(unlabelled)} have no source labelling them")
    return sources


def _parse_splits(raw: Any) -> SplitsConfig:
    d = section("splits", raw, SplitsConfig)
    salt = d["salt"]
    if isinstance(salt, bool) or not isinstance(salt, (str, int)):
        fail("splits.salt", f"expected a string, received {show(salt)}")
    return SplitsConfig(eval=number("splits.eval", d["eval"], lo=0, hi=0.9, lo_open=True), salt=str(salt))


def _parse_model(raw: Any, tasks: tuple[TaskConfig, ...], image: ImageConfig, base_dir: str | None) -> ModelConfig:
    d = section("model", raw, ModelConfig)
    name = choice("model.name", d["name"], registry.MODELS)
    params = plain("model.params", as_mapping("model.params", d["params"]))
    try:  # the family owns its params' names and ranges (TensorFlow-free *_params modules)
        registry.validate_params(name, params, task_names=[t.name for t in tasks],
                                 normalization=image.normalization)
        # File params (a backbone's weights) are relative to the config file, like sources' paths.
        params = registry.resolve_paths(name, params, base_dir)
    except ConfigError:
        raise
    except ValueError as e:  # a family's own message, `config key 'model.params.<key>': ...`
        raise ConfigError(str(e)) from e
    except (TypeError, KeyError, AttributeError) as e:  # a value of a type the family did not expect
        fail("model.params", f"{name} rejected these params ({type(e).__name__}: {e}), received {show(params)}")
    sharing = _parse_sharing(d["sharing"], name)
    check = getattr(registry.load(registry.PARAMS, name, "model"), "check_sharing", None)
    if check is not None:  # e.g. cross_stitch needs towers of one shape
        check(sharing.type, params, task_names=[t.name for t in tasks])
    return ModelConfig(name=name, params=dict(params), sharing=sharing)


def _shared_trunk(family: str) -> bool:
    """Whether the family's tasks share a trunk (its params module's SHARED_TRUNK, default True)."""
    return getattr(registry.load(registry.PARAMS, family, "model"), "SHARED_TRUNK", True)


def _family_sharings(family: str) -> tuple[str, ...]:
    """The model.sharing types a family takes: its params module's SHARINGS, else every trunk sharing."""
    return getattr(registry.load(registry.PARAMS, family, "model"), "SHARINGS", TRUNK_SHARINGS)


def _parse_sharing(raw: Any, family: str) -> SharingConfig:
    d = section("model.sharing", raw, SharingConfig)
    kind = choice("model.sharing.type", d["type"], SHARINGS)
    valid = _family_sharings(family)
    if kind not in valid:
        why = ("has no trunk shared by the tasks to put experts on" if not _shared_trunk(family)
               else "has one shared trunk, not a column per task to cross-stitch")
        fail("model.sharing.type", f"received {kind!r} for model {family!r}, which {why}; "
                                   f"valid for {family}: {', '.join(valid)}")
    return SharingConfig(
        type=kind,
        experts=number("model.sharing.experts", d["experts"], int, lo=1, hi=64),
        expert_units=number("model.sharing.expert_units", d["expert_units"], int, lo=1, hi=4096),
        task_experts=number("model.sharing.task_experts", d["task_experts"], int, lo=1, hi=16),
        levels=number("model.sharing.levels", d["levels"], int, lo=1, hi=8))


def _parse_beam(raw: Any) -> BeamConfig:
    d = section("beam", raw, BeamConfig)
    args = d["args"]
    if args is None:  # `args:` with nothing under it: none
        args = []
    if not isinstance(args, (list, tuple)) or not all(isinstance(a, str) and a for a in args):
        fail("beam.args", f"expected a list of strings (e.g. [--direct_num_workers=2]), received {show(args)}")
    return BeamConfig(args=tuple(args))


def _parse_evaluation(raw: Any, tasks: tuple[TaskConfig, ...], sources: tuple[SourceConfig, ...]) -> EvaluationConfig:
    d = section("evaluation", raw, EvaluationConfig)
    max_regression = number("evaluation.max_regression", d["max_regression"], lo=0, hi=0.99)
    gate_on = choice("evaluation.gate_on", d["gate_on"], ("value", "lower_bound"))
    intervals = boolean("evaluation.confidence_intervals", d["confidence_intervals"])
    if gate_on == "lower_bound" and not intervals:
        fail("evaluation.gate_on", "lower_bound gates on the confidence interval; "
                                   "evaluation.confidence_intervals is false")
    min_slice = number("evaluation.min_slice_size", d["min_slice_size"], kind=int, lo=1, hi=MAX_SAMPLE_COUNT)
    common = dict(max_regression=max_regression, gate_on=gate_on, confidence_intervals=intervals,
                  min_slice_size=min_slice)
    if d["slices"] is None:  # absent or null: the default (every classification task by class)
        return EvaluationConfig(**common)
    by_name = {t.name: t for t in tasks}
    slices = []
    for i, sl in enumerate(listed("evaluation.slices", d["slices"], "{task, by} mappings", non_empty=False)):
        where = f"evaluation.slices[{i}]"
        s = section(where, sl, SliceConfig, ("task",))
        task = choice(f"{where}.task", s["task"], tuple(by_name))
        by = _slice_by(where, task, s["by"], by_name, sources)
        if by == "class" and by_name[task].type == "regression":
            fail(f"{where}.task", f"{task!r} is a regression task: it has no classes to slice by")
        slices.append(SliceConfig(task=task, by=by))
    return EvaluationConfig(**common, slices=tuple(slices))


def _slice_by(where: str, task: str, by: Any, by_name: dict, sources: tuple[SourceConfig, ...]) -> str:
    """`class`, or another binary / multiclass task that some source labels together with `task`:
    only such a source's examples of `task` carry that task's class (the slice-only feature
    `slice_<by>`, docs/data_contract.md)."""
    together = [t for t in by_name if t != task and by_name[t].is_classification
                and any(task in s.tasks and t in s.tasks for s in sources)]
    if by == "class" or by in together:
        return by
    valid = "; valid: " + ", ".join(["class"] + together)
    if isinstance(by, str) and by == task:
        fail(f"{where}.by", f"received {task!r}, the sliced task itself (use class){valid}")
    if isinstance(by, str) and by in by_name and not by_name[by].is_classification:
        fail(f"{where}.by", f"received task {by!r}, a {by_name[by].type} task: only binary and multiclass "
                            f"tasks have classes to slice by{valid}")
    if isinstance(by, str) and by in by_name:
        fail(f"{where}.by", f"received task {by!r}: no source labels both {task!r} and {by!r}, so no "
                            f"{task} example knows its {by} class{valid}")
    fail(f"{where}.by", f"received {show(by)}{valid}")


def _parse_tfrecords(raw: Any) -> TFRecordsConfig:
    level = section("tfrecords", raw, TFRecordsConfig)["gzip_level"]
    if level != "auto" and (isinstance(level, bool) or not isinstance(level, int) or level not in range(10)):
        fail("tfrecords.gzip_level", f'received {show(level)}; valid: "auto" or an integer 0-9')
    return TFRecordsConfig(gzip_level=level)


def _parse_compare(raw: Any, model: ModelConfig) -> CompareConfig:
    d = section("compare", raw, CompareConfig)
    valid = _family_sharings(model.name)
    names = {}
    for key, allowed in (("methods", MTL_METHODS), ("sharing", valid)):
        names[key] = tuple(choice(f"compare.{key}[{i}]", v, allowed)
                           for i, v in enumerate(listed(f"compare.{key}", d[key] or [], key, non_empty=False)))
        unique(f"compare.{key}", names[key], key)
    return CompareConfig(methods=names["methods"], sharing=names["sharing"],
                         seeds=number("compare.seeds", d["seeds"], int, lo=1, hi=MAX_GRID_SEEDS))


def parse(raw: Any, base_dir: str | None) -> Config:
    """Validates a config mapping (as read from YAML or JSON) into a ``Config``; raises ConfigError.
    `base_dir`: the config file's folder, against which relative paths resolve (None: from JSON)."""
    d = as_mapping("", raw, {f.name for f in dataclasses.fields(Config)}, ("name", "tasks", "sources"))
    name = safe_name("name", d["name"], _PIPELINE_NAME, "letters, digits, _ and -, starting with a letter and "
                                                    "ending with a letter or digit")
    image = _parse_image(d.get("image"))
    tasks = _parse_tasks(d["tasks"])
    sources = _parse_sources(d["sources"], tasks, base_dir)
    train = parse_train(d.get("train"), image, [s.name for s in sources])
    model = _parse_model(d.get("model"), tasks, image, base_dir)
    if train.mtl.grad_on == "representation" and train.mtl.method != "none" and not _shared_trunk(model.name):
        fail("train.mtl.grad_on", f"received 'representation' for model {model.name!r}, whose tasks share no "
                                  "layer: use 'params'")
    k = train.sampling.min_per_task
    if k * len(tasks) > train.batch_size:
        fail("train.sampling.min_per_task", f"received {k}: {len(tasks)} tasks x {k} = {k * len(tasks)} examples "
                                            f"exceed train.batch_size {train.batch_size}; valid: 0 to "
                                            f"{train.batch_size // len(tasks)}")
    return Config(name=name, image=image, tasks=tasks, sources=sources,
                  splits=_parse_splits(d.get("splits")), train=train, model=model,
                  beam=_parse_beam(d.get("beam")),
                  evaluation=_parse_evaluation(d.get("evaluation"), tasks, sources),
                  tfrecords=_parse_tfrecords(d.get("tfrecords")),
                  compare=_parse_compare(d.get("compare"), model),
                  validation=parse_validation(d.get("validation")))


def load(path: str) -> Config:
    """Reads and parses a YAML config file; raises ConfigError. Errors about the file as a
    whole (missing, not UTF-8, not YAML) name the key path '' (the document)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail("", f"cannot read config file {path}: {e.strerror or e}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail("", f"config file {path} is not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start}")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        fail("", f"config file {path} is not valid YAML{where}: {problem}")
    except (ValueError, OverflowError, RecursionError) as e:  # e.g. a date YAML reads but Python cannot hold
        fail("", f"config file {path} cannot be read as YAML: {type(e).__name__}: {e}")
    return parse(raw, base_dir=os.path.dirname(os.path.abspath(path)))
