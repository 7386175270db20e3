"""Helpers shared by the data_prep tests: the test config builder, record outcomes, reading
what a conversion wrote, and a wiki.mat writer (imdb_wiki)."""
from __future__ import annotations

import glob
import math
import os

from config import Config, parse
from data_prep.records import Reject

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


def outcome(module, record, source, config):
    """(group id, labels, missing, crop box) of a parsed record, or its reject reason."""
    try:
        p = module.parse_record(record, source, config)
        return (p.group_id, dict(p.labels), dict(p.missing), p.crop_box)
    except Reject as r:
        return r.reason


def read_examples(pattern: str) -> list:
    import tensorflow as tf

    files = sorted(glob.glob(pattern))
    assert files, pattern
    return [tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def feature(ex, key):
    f = ex.features.feature[key]
    return list(getattr(f, f.WhichOneof("kind")).value)


def dead_letters(out: str, source: str) -> list[dict]:
    import json

    return [json.loads(line) for p in sorted(glob.glob(f"{out}/dead_letter/{source}-*.jsonl")) for line in open(p)]


def write_mat(path, rows, stem="wiki"):
    """Writes rows (dicts like BASE) as a MATLAB wiki.mat / imdb.mat struct."""
    import numpy as np
    import scipy.io

    def cell(values):
        out = np.empty((1, len(values)), dtype=object)
        for i, v in enumerate(values):
            out[0, i] = v
        return out

    col = lambda k: [r[k] for r in rows]  # noqa: E731
    struct = {"dob": np.array([col("dob")]), "photo_taken": np.array([col("photo_taken")], dtype=np.uint16),
              "full_path": cell(col("full_path")), "gender": np.array([col("gender")]),
              "name": cell(col("name")), "face_location": cell([np.array([r["loc"]]) for r in rows]),
              "face_score": np.array([col("face_score")]), "second_face_score": np.array([col("second")])}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scipy.io.savemat(path, {stem: struct})


# One wiki.mat row (imdb_wiki): age 28 -> age class 1.
BASE = dict(dob=723671.0, photo_taken=2009, gender=1.0, name="Sami", loc=[10.0, 20.0, 60.0, 80.0],
            face_score=3.5, second=math.nan)
