"""IMDB-WIKI layout: `<mat_file>` (struct named after the file stem) plus images at `full_path`.

Field types follow the real wiki.mat: 1xN double `dob` (datenum),
uint16 `photo_taken`, cells `full_path` ('17/10000217_1981-05-05_2009.jpg')
and `name`, double `gender` (1 male, 0 female, NaN), cell of 1x4 double
`face_location`, double `face_score` (-inf: no face) and `second_face_score`
(NaN: none). About a third as many people as rows, so group splits matter.

Rows are made invalid the way the real data is, at fixed positions so tests
can count them (the residues mod 10 differ, so no row has two faults):
  i % 20 == 7  face_score -inf             (no_face, 5%)
  i % 20 == 13 second_face_score set       (second_face, 5%)
  i % 30 == 4  face_score in [0.2, 0.9)    (low_face_score when min_face_score >= 0.9, 3.3%)
  i % 30 == 19 gender NaN                  (age example only, 3.3%)
  i % 50 == 21 photo_taken 5 years before birth (age -5: gender example only, 2%)
Drawn cues: long hair = female, forehead lines = the age group the
converter derives from dob / photo_taken and options.age_bins.
"""
from __future__ import annotations

import datetime
import io
import math
import os
import random

import numpy as np
import scipy.io

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats._labels import age_class
from data_prep.formats.imdb_wiki import option
from data_prep.generators.faces import LABEL_NOISE, Ambiguity, draw_face, jpeg_bytes, ordinal_cue

DEFAULT_AGE_BINS = [20, 30, 40, 55]
_FIRST = ["Anna", "Bui", "Carlos", "Dana", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas",
          "Kofi", "Lena", "Minh", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tuan"]
_LAST = ["Abe", "Berg", "Costa", "Diaz", "Eze", "Fox", "Gupta", "Hall", "Ito", "Jensen",
         "Khan", "Lopez", "Mori", "Nguyen", "Okafor", "Petrov", "Quist", "Rossi", "Sato", "Tran"]


def person_name(p: int) -> str:
    n = len(_FIRST) * len(_LAST)
    base = f"{_FIRST[p % len(_FIRST)]} {_LAST[(p // len(_FIRST)) % len(_LAST)]}"
    return base if p < n else f"{base} {p // n + 1}"


def _cell(values: list) -> np.ndarray:
    out = np.empty((1, len(values)), dtype=object)
    for i, v in enumerate(values):
        out[0, i] = v
    return out


def generate(source: SourceConfig, config: Config, *, count: int, seed: int = 0, size: int = 96,
             label_noise: float = LABEL_NOISE) -> None:
    rng, ambiguity = random.Random(seed), Ambiguity(seed, label_noise)
    bins = source.options.get("age_bins") or DEFAULT_AGE_BINS
    edges = [10, *bins, max(80, bins[-1] + 10)]  # group g covers ages [edges[g], edges[g+1])
    n_groups = len(edges) - 1
    persons = [(rng.random() < 0.6, datetime.date(rng.randint(1930, 1995), rng.randint(1, 12), rng.randint(1, 28)))
               for _ in range(max(1, count // 3))]
    cols = {k: [] for k in ("dob", "photo_taken", "full_path", "gender", "name", "face_location",
                            "face_score", "second_face_score")}
    for i in range(count):
        p = rng.randrange(len(persons))
        male, birth = persons[p]
        group = rng.randrange(n_groups)
        age = rng.randrange(edges[group], edges[group + 1])
        taken = birth.year + (age if i % 50 != 21 else -5)
        shows_male = ambiguity.shown(int(male), 2) == 1
        shows_group = ambiguity.shown(age_class(age, bins), n_groups)
        img, box = draw_face(rng, smile=rng.random() < 0.5, long_hair=not shows_male,
                             wrinkles=ordinal_cue(shows_group, n_groups), size=size)
        pid = 10000000 + i
        rel = f"{pid % 100:02d}/{pid}_{birth.isoformat()}_{taken}.jpg"
        fileio.write_bytes(os.path.join(source.path, rel), jpeg_bytes(img))
        face_score, second = rng.uniform(1.2, 6.0), math.nan
        if i % 20 == 7:
            face_score, box = -math.inf, (1.0, 1.0, 1.0, 1.0)
        elif i % 20 == 13:
            second = rng.uniform(1.0, 4.0)
        elif i % 30 == 4:
            face_score = rng.uniform(0.2, 0.9)
        cols["dob"].append(float(birth.toordinal() + 366))  # MATLAB datenum counts from year 0
        cols["photo_taken"].append(taken)
        cols["full_path"].append(rel)
        cols["gender"].append(math.nan if i % 30 == 19 else float(male))
        cols["name"].append(person_name(p))
        cols["face_location"].append(np.array([box], dtype=np.float64))
        cols["face_score"].append(face_score)
        cols["second_face_score"].append(second)
    struct = {
        "dob": np.array([cols["dob"]], dtype=np.float64),
        "photo_taken": np.array([cols["photo_taken"]], dtype=np.uint16),
        "full_path": _cell(cols["full_path"]),
        "gender": np.array([cols["gender"]], dtype=np.float64),
        "name": _cell(cols["name"]),
        "face_location": _cell(cols["face_location"]),
        "face_score": np.array([cols["face_score"]], dtype=np.float64),
        "second_face_score": np.array([cols["second_face_score"]], dtype=np.float64),
    }
    buf = io.BytesIO()
    scipy.io.savemat(buf, {os.path.splitext(option(source, "mat_file"))[0]: struct})
    fileio.write_bytes(os.path.join(source.path, option(source, "mat_file")), buf.getvalue())
