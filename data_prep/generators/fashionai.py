"""FashionAI layout: `Images/<attr_key>/<hex>.jpg` and `Annotations/label.csv` (no header).

Rows `Images/<attr_key>/<hex>.jpg,<attr_key>,<labels>`, one letter per class:
`y` at the drawn class, `n` elsewhere, and in one row of five an `m`
(maybe) at another class, as the real set has. The `count` images are
shared out over the attributes of options.attributes in turn. The class is
drawn as the number of forehead lines (up to 5 classes distinct, more share
counts); the images are the project's synthetic faces, not garments.
"""
from __future__ import annotations

import hashlib
import os
import random

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats.fashionai import labels_file
from data_prep.generators.faces import LABEL_NOISE, Ambiguity, draw_face, jpeg_bytes, ordinal_cue


def generate(source: SourceConfig, config: Config, *, count: int, seed: int = 0, size: int = 96,
             label_noise: float = LABEL_NOISE) -> None:
    rng, ambiguity = random.Random(seed), Ambiguity(seed, label_noise)
    attrs = list(source.options["attributes"].items())
    rows = []
    for i in range(count):
        key, task = attrs[i % len(attrs)]
        n = config.task(task).width
        c = rng.randrange(n)
        letters = ["n"] * n
        letters[c] = "y"
        if rng.random() < 0.2:
            letters[(c + rng.randrange(1, n)) % n] = "m"
        img, _ = draw_face(rng, smile=rng.random() < 0.5, long_hair=rng.random() < 0.5,
                           wrinkles=ordinal_cue(ambiguity.shown(c, n), n), size=size)
        rel = f"Images/{key}/{hashlib.md5(f'{seed}:{i}'.encode()).hexdigest()}.jpg"
        fileio.write_bytes(os.path.join(source.path, rel), jpeg_bytes(img))
        rows.append(f"{rel},{key},{''.join(letters)}")
    fileio.write_bytes(os.path.join(source.path, labels_file(source)), ("\n".join(rows) + "\n").encode())
