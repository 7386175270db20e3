"""train.precision: a choice like every train key, auto by default, errors naming what was
received and what is valid (components/trainer/precision.py resolves `auto`)."""
import pytest

from config import PRECISIONS, ConfigError, parse

VALID = "valid: float32, mixed_bfloat16, mixed_float16, auto"


def config_dict() -> dict:
    return {"name": "p", "tasks": [{"name": "smile", "type": "binary", "classes": ["no", "yes"]}],
            "sources": [{"name": "s", "format": "genki4k", "path": "/nonexistent", "tasks": ["smile"]}],
            "train": {}}


def with_precision(value):
    raw = config_dict()
    raw["train"]["precision"] = value
    return raw


def test_auto_unless_set():
    assert parse(config_dict(), base_dir=None).train.precision == "auto"


@pytest.mark.parametrize("value", PRECISIONS)
def test_every_choice_parses(value):
    assert parse(with_precision(value), base_dir=None).train.precision == value


@pytest.mark.parametrize("value, shown", [
    ("bfloat16", "'bfloat16'"),    # a dtype, not a policy
    ("Float32", "'Float32'"),
    ("mixed-bfloat16", "'mixed-bfloat16'"),
    (16, "16"),
    (None, "None"),
    (["auto"], "['auto']"),
])
def test_a_bad_value_names_what_was_received_and_what_is_valid(value, shown):
    with pytest.raises(ConfigError) as e:
        parse(with_precision(value), base_dir=None)
    assert str(e.value) == f"config key 'train.precision': received {shown}; {VALID}"
