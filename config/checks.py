"""The checks every section of config/parse.py is built from: one value at a time, each
failing with `config key '<path>': ...` (config.errors.fail) naming what was received."""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Mapping

from config.errors import fail, show
from config.types import MAX_NAME_LENGTH, NAME_PATTERN

NAME = re.compile(NAME_PATTERN + r"\Z")

# Upper bounds that keep a typo (an extra zero, 1e9) from starting a run that cannot finish.
MAX_IMAGE_SIDE = 4096
MAX_STEPS = 10_000_000
MAX_BATCH_SIZE = 65_536
MAX_SEED = 2**31 - 1
MAX_SAMPLE_COUNT = 1_000_000
MAX_LOSS_WEIGHT = 1000.0
MAX_LEARNING_RATE = 10.0
MAX_TEMPERATURE = 100.0


def key_path(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def as_mapping(where: str, raw: Any, allowed: Any = None, required: tuple[str, ...] = ()) -> dict:
    """`raw` as a dict with string keys (null: empty); unknown keys fail when `allowed` is given."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        fail(where, f"expected a mapping, received {type(raw).__name__} {show(raw)}")
    for k in raw:  # YAML keys can be numbers, booleans, dates: compared as names they are wrong
        if not isinstance(k, str):
            fail(key_path(where, k), f"a key must be a name (a string), received {type(k).__name__} {show(k)}")
    if allowed is not None:
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            fail(key_path(where, unknown[0]), f"unknown key; valid keys here: {', '.join(sorted(allowed))}")
    for k in required:
        if k not in raw:
            fail(key_path(where, k), "required key is missing")
    return dict(raw)


def defaults(cls) -> dict[str, Any]:
    """The dataclass's field defaults, by field name (factories called); a sub-section's
    default (a dataclass instance) is None: its parse function fills in its own defaults."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = None if dataclasses.is_dataclass(f.default) else f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def section(where: str, raw: Any, cls, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """One section: its keys are `cls`'s fields; what the user left out is the dataclass's default."""
    return {**defaults(cls), **as_mapping(where, raw, {f.name for f in dataclasses.fields(cls)}, required)}


def number(key: str, value: Any, kind=float, lo=None, hi=None, lo_open=False, hi_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        fail(key, f"expected {'an integer' if kind is int else 'a number'}, received {show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        fail(key, f"expected a finite number, received {value!r}")
    if kind is float and abs(value) > 1e300:  # an integer too large for a float
        fail(key, f"expected a number of a usable size, received {show(value)}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        fail(key, f"must be {'>' if lo_open else '>='} {lo}, received {show(value)}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        fail(key, f"must be {'<' if hi_open else '<='} {hi}, received {show(value)}")
    return kind(value)


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        fail(key, f"expected true or false, received {show(value)}")
    return value


def choice(key: str, value: Any, valid) -> str:
    if not isinstance(value, str) or value not in valid:
        fail(key, f"received {show(value)}; valid: {', '.join(sorted(valid) if isinstance(valid, Mapping) else valid)}")
    return value


def safe_name(key: str, value: Any, pattern: re.Pattern = NAME, rule: str = "letters, digits and _, not starting "
                                                                       "with a digit") -> str:
    if not isinstance(value, str) or not pattern.match(value) or len(value) > MAX_NAME_LENGTH:
        fail(key, f"expected a name of at most {MAX_NAME_LENGTH} ASCII characters ({rule}), received {show(value)}")
    return value


def plain(key: str, value: Any) -> Any:
    """A free-form value (format options, sample settings, model params) checked to be plain
    data: strings, finite numbers, booleans, null, lists and string-keyed mappings of them
    (what JSON carries to the components). A copy."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return number(key, value, type(value))
    if isinstance(value, list):
        return [plain(f"{key}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: plain(key_path(key, k), v) for k, v in as_mapping(key, value).items()}
    fail(key, f"expected a string, number, boolean, list or mapping, received {type(value).__name__} {show(value)}")


def listed(key: str, value: Any, what: str, non_empty: bool = True) -> list:
    if not isinstance(value, list) or (non_empty and not value):
        fail(key, f"expected a {'non-empty ' if non_empty else ''}list of {what}, received {show(value)}")
    return value


def unique(key: str, names, what: str) -> None:
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        fail(key, f"duplicate {what}: {', '.join(dup)}")
