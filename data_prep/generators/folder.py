"""Class-folder layout: <class>/p<person>_<n>.jpg (group_regex '^(p\\d+)_' finds the person).

The class is drawn as the smile cue for 2 classes, else as the number of
forehead lines (up to 5 classes distinct, more share line counts).
"""
from __future__ import annotations

import os
import random

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.generators.faces import LABEL_NOISE, MAX_WRINKLES, Ambiguity, draw_face, jpeg_bytes, ordinal_cue


def generate(source: SourceConfig, config: Config, *, count: int, seed: int = 0, size: int = 96,
             label_noise: float = LABEL_NOISE) -> None:
    classes = config.task(source.tasks[0]).classes
    rng, ambiguity = random.Random(seed), Ambiguity(seed, label_noise)
    persons = max(1, count // 3)
    for k in range(count):
        c = rng.randrange(len(classes))
        shown = ambiguity.shown(c, len(classes))
        if len(classes) == 2:
            cue = dict(smile=shown == 1, wrinkles=rng.randint(0, MAX_WRINKLES))
        else:
            cue = dict(smile=rng.random() < 0.5, wrinkles=ordinal_cue(shown, len(classes)))
        img, _ = draw_face(rng, long_hair=rng.random() < 0.5, size=size, **cue)
        person = rng.randrange(persons)
        fileio.write_bytes(os.path.join(source.path, classes[c], f"p{person:03d}_{k:04d}.jpg"), jpeg_bytes(img))
