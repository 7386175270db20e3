"""Config builder for data_prep tests (a uniquely named module: every test dir has a conftest)."""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from config import Config, parse  # noqa: E402

TASKS = [
    {"name": "smile", "type": "binary", "classes": ["no_smile", "smile"]},
    {"name": "gender", "type": "binary", "classes": ["female", "male"]},
    {"name": "age", "type": "multiclass", "classes": ["0-19", "20-29", "30-39", "40-54", "55+"]},
    {"name": "mood", "type": "multiclass", "classes": ["neutral", "happy", "sad"]},
    # used by the utkface / fashionai / csv / tfds tests
    {"name": "years", "type": "regression"},
    {"name": "race", "type": "multiclass", "classes": ["White", "Black", "Asian", "Indian", "Others"]},
    {"name": "collar", "type": "multiclass", "classes": ["shirt", "peter_pan", "puritan", "rib", "other"]},
    {"name": "tags", "type": "multilabel", "classes": ["hat", "glasses", "beard"]},
]
WIKI_OPTIONS = {"mat_file": "wiki.mat", "age_task": "age", "gender_task": "gender",
                "age_bins": [20, 30, 40, 55], "min_face_score": 1.0, "drop_second_face": True}


def make_config(root: str, sources: list[dict] | None = None, **top) -> Config:
    """A config with those of the 4 test tasks the sources label (default sources: genki4k,
    wiki (imdb_wiki), faces (folder) -> tasks smile 0, gender 1, age 2, mood 3; label width 5)."""
    if sources is None:
        sources = [
            {"name": "genki4k", "format": "genki4k", "path": f"{root}/genki4k", "tasks": ["smile"],
             "sample": {"count": 24, "seed": 1}},
            {"name": "wiki", "format": "imdb_wiki", "path": f"{root}/wiki", "tasks": ["gender", "age"],
             "options": dict(WIKI_OPTIONS), "sample": {"count": 40, "seed": 2}},
            {"name": "faces", "format": "folder", "path": f"{root}/faces", "tasks": ["mood"],
             "options": {"group_regex": r"^(p\d+)_"}, "sample": {"count": 24, "seed": 3}},
        ]
    used = {t for s in sources for t in s["tasks"]}  # a config may not hold unlabelled tasks
    raw = {"name": "test", "image": {"size": [48, 48], "channels": 1},
           "tasks": [t for t in TASKS if t["name"] in used],
           "sources": sources, **top}
    return parse(raw, base_dir=None)
