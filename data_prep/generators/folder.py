"""Class-folder layout: <class>/p<person>_<n>.jpg (group_regex '^(p\\d+)_' finds the person).

The class is drawn as the smile cue for 2 classes, else as the number of
forehead lines (up to 5 classes distinct, more share line counts).
"""
from __future__ import annotations

import os
import random

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.generators.faces import MAX_WRINKLES, draw_face, jpeg_bytes, ordinal_cue


def generate(source: SourceConfig, config: Config, *, count: int, seed: int = 0, size: int = 96) -> None:
    classes = config.task(source.tasks[0]).classes
    rng = random.Random(seed)
    persons = max(1, count // 3)
    for k in range(count):
        c = rng.randrange(len(classes))
        if len(classes) == 2:
            cue = dict(smile=c == 1, wrinkles=rng.randint(0, MAX_WRINKLES))
        else:
            cue = dict(smile=rng.random() < 0.5, wrinkles=ordinal_cue(c, len(classes)))
        img, _ = draw_face(rng, long_hair=rng.random() < 0.5, size=size, **cue)
        person = rng.randrange(persons)
        fileio.write_bytes(os.path.join(source.path, classes[c], f"p{person:03d}_{k:04d}.jpg"), jpeg_bytes(img))
