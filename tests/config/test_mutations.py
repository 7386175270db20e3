"""Property: one hostile mutation of any preset either loads and validates into a config whose
numbers are finite and names safe, or fails with one ConfigError line naming a key of the
mutated file. (Issue 15: 61 of 192 single mutations of the default config gave a traceback,
a late failure or a silent default.)"""
from __future__ import annotations

import copy
import dataclasses
import glob
import math
import os
import re
import tempfile

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import MAX_NAME_LENGTH, ConfigError, load, validate
from config.types import NAME_PATTERN, PIPELINE_NAME_PATTERN

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRESETS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml")))
RAW = {os.path.basename(p): yaml.safe_load(open(p)) for p in PRESETS}

HOSTILE = [
    "x", "", "é名", "a" * 300, "../../x", "/etc/passwd", 0, 1, -1, 10**12, -(10**12), 0.5, 1e308, -1e308,
    math.nan, math.inf, -math.inf, True, False, None, [], [1, "a"], [math.nan], {}, {"a": 1}, {1: "x"},
    {"nested": {"deeper": [math.inf]}},
]
_INDEX = re.compile(r"\[(\d+)\]")


def key_paths(node, prefix=()):
    """Every key path of a YAML tree: tuples of dict keys and list indices."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append(prefix + (k,))
        out.extend(key_paths(v, prefix + (k,)))
    return out


def text_path(path) -> str:
    text = ""
    for k in path:
        text += f"[{k}]" if isinstance(k, int) and not isinstance(k, bool) else (f".{k}" if text else str(k))
    return text


def parse_text_path(text: str) -> list:
    """`sources[0].options.x` -> ['sources', 0, 'options', 'x']."""
    out = []
    for part in text.split(".") if text else []:
        name = _INDEX.split(part)[0]
        if name:
            out.append(name)
        out.extend(int(i) for i in _INDEX.findall(part))
    return out


def lookup(node, path) -> tuple[bool, object]:
    for k in path:
        if isinstance(node, dict):
            match = [key for key in node if key == k or str(key) == str(k)]
            if not match:
                return False, None
            node = node[match[0]]
        elif isinstance(node, list) and isinstance(k, int) and 0 <= k < len(node):
            node = node[k]
        else:
            return False, None
    return True, node


def names_an_existing_key(message: str, raw) -> bool:
    """The message's key path is in the file; or, for a key the user is to add (a required key,
    an option), its parent is a mapping in the file."""
    m = re.match(r"config key '([^']*)': ", message)
    if not m:
        return False
    path = parse_text_path(m.group(1))
    found, _ = lookup(raw, path)
    if found:
        return True
    parent_found, parent = lookup(raw, path[:-1])
    return parent_found and (isinstance(parent, dict) or parent is None)


def numbers_and_names_are_safe(config) -> None:
    def walk(x, where):
        if isinstance(x, float):
            assert math.isfinite(x), where
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{where}.{k}")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{where}[{i}]")
    walk(dataclasses.asdict(config), "")
    assert re.fullmatch(PIPELINE_NAME_PATTERN, config.name) and len(config.name) <= MAX_NAME_LENGTH
    for name in config.task_names + tuple(s.name for s in config.sources):
        assert re.fullmatch(NAME_PATTERN, name) and len(name) <= MAX_NAME_LENGTH, name
    config.to_json()


@st.composite
def mutations(draw):
    preset = draw(st.sampled_from(sorted(RAW)))
    raw = copy.deepcopy(RAW[preset])
    paths = key_paths(raw)
    kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
    path = draw(st.sampled_from(paths))
    parent = lookup(raw, path[:-1])[1]
    if kind == "replace":
        parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))
    elif kind == "delete":
        del parent[path[-1]]
    else:  # an unknown key (a string or an int) into a mapping on the path, or the top
        target = next((n for n in (lookup(raw, path[:i])[1] for i in range(len(path), -1, -1))
                       if isinstance(n, dict)), raw)
        target[draw(st.sampled_from(["zz_unknown", 7, "é"]))] = draw(st.sampled_from(HOSTILE))
    return preset, kind, text_path(path), raw


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_one_mutation_of_a_preset_loads_safely_or_names_its_key(mutation):
    preset, kind, where, raw = mutation
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, "configs"))  # relative paths resolve as the preset's do, to tmp/data/...
        path = os.path.join(tmp, "configs", preset)
        with open(path, "w") as f:
            yaml.safe_dump(raw, f, allow_unicode=True)
        try:
            config = load(path)
            validate(config)
        except ConfigError as e:
            message = str(e)
            assert message.startswith("config key '") and "\n" not in message, (kind, where, message)
            assert names_an_existing_key(message, raw), (kind, where, message)
            return
    numbers_and_names_are_safe(config)


def test_the_path_helpers():
    raw = {"sources": [{"options": {"a": 1, 3: 2}}], "name": "x"}
    assert parse_text_path("sources[0].options.a") == ["sources", 0, "options", "a"]
    assert names_an_existing_key("config key 'sources[0].options.3': x", raw)
    assert names_an_existing_key("config key 'sources[0].options.b': required key is missing", raw)
    assert not names_an_existing_key("config key 'sources[0].options.options.a': x", raw)
    assert not names_an_existing_key("config key 'sources[1].name': x", raw)
    assert names_an_existing_key("config key '': x", raw)
