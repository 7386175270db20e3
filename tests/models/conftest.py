"""Configs for model tests, built in code so the default YAML can change freely."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import pytest  # noqa: E402

from pipeline.config import parse  # noqa: E402


def config_dict(tasks=None, size=(48, 48), channels=1, params=None):
    tasks = tasks or [
        {"name": "smile", "type": "binary", "classes": ["no", "yes"]},
        {"name": "gender", "type": "binary", "classes": ["female", "male"]},
        {"name": "age", "type": "multiclass", "classes": ["a", "b", "c", "d", "e"]},
    ]
    return {
        "name": "test",
        "image": {"size": list(size), "channels": channels},
        "tasks": tasks,
        "sources": [{"name": "all", "format": "folder", "path": "/nonexistent",
                     "tasks": [t["name"] for t in tasks]}],
        "model": {"name": "bknet", "params": params or {}},
    }


@pytest.fixture
def make_config():
    return lambda **kw: parse(config_dict(**kw), base_dir=None)
