"""Configs for model tests, built in code so the default YAML can change freely."""


def config_dict(tasks=None, size=(48, 48), channels=1, params=None, model="bknet", normalization="centered"):
    tasks = tasks or [
        {"name": "smile", "type": "binary", "classes": ["no", "yes"]},
        {"name": "gender", "type": "binary", "classes": ["female", "male"]},
        {"name": "age", "type": "multiclass", "classes": ["a", "b", "c", "d", "e"]},
    ]
    return {
        "name": "test",
        "image": {"size": list(size), "channels": channels, "normalization": normalization},
        "tasks": tasks,
        "sources": [{"name": "all", "format": "folder", "path": "/nonexistent",
                     "tasks": [t["name"] for t in tasks]}],
        "model": {"name": model, "params": params or {}},
    }
