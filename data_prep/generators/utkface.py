"""UTKFace layout: `<path>/[age]_[gender]_[race]_[date&time].jpg.chip.jpg`, 200x200 like the real chips.

Drawn cues: long hair = female (gender 1), forehead lines = the age group
(options.age_bins, or [20, 30, 40, 55] for a regression age task), nose
width = race (0-4). Races follow the real set's shares (White 42%, Black
19%, Asian 14%, Indian 17%, Others 8%). Every 40th file (i % 40 == 17) lacks
its race field, as three real files do (`61_1_20170109142408075.jpg.chip.jpg`),
so the converter rejects it as `bad_name`.
"""
from __future__ import annotations

import os
import random

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats._labels import age_class
from data_prep.generators.faces import LABEL_NOISE, Ambiguity, draw_face, jpeg_bytes, ordinal_cue

DEFAULT_AGE_BINS = [20, 30, 40, 55]
RACE_SHARES = [0.42, 0.19, 0.14, 0.17, 0.08]


def generate(source: SourceConfig, config: Config, *, count: int, seed: int = 0, size: int = 200,
             label_noise: float = LABEL_NOISE) -> None:
    rng, ambiguity = random.Random(seed), Ambiguity(seed, label_noise)
    bins = source.options.get("age_bins") or DEFAULT_AGE_BINS
    edges = [1, *bins, max(80, bins[-1] + 10)]  # group g covers ages [edges[g], edges[g+1])
    names = set()
    for i in range(count):
        group = rng.randrange(len(edges) - 1)
        age = rng.randrange(edges[group], edges[group + 1])
        female = rng.random() < 0.48
        race = rng.choices(range(len(RACE_SHARES)), RACE_SHARES)[0]
        img, _ = draw_face(rng, smile=rng.random() < 0.5, long_hair=ambiguity.shown(int(female), 2) == 1,
                           size=size, nose=ambiguity.shown(race, len(RACE_SHARES)),
                           wrinkles=ordinal_cue(ambiguity.shown(age_class(age, bins), len(edges) - 1),
                                                len(edges) - 1))
        while True:  # yyyymmddHHMMSSfff, unique
            stamp = (f"2017{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 23):02d}"
                     f"{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}{rng.randint(0, 999):03d}")
            fields = [age, int(female), race, stamp] if i % 40 != 17 else [age, int(female), stamp]
            name = "_".join(map(str, fields)) + ".jpg.chip.jpg"
            if name not in names:
                break
        names.add(name)
        fileio.write_bytes(os.path.join(source.path, name), jpeg_bytes(img))
