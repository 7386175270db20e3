"""GENKI-4K layout: files/file0001.jpg... and labels.txt (`smile yaw pitch roll` per line)."""
from __future__ import annotations

import os
import random

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats.genki4k import IMAGES_DIR, LABELS_FILE
from data_prep.generators.faces import LABEL_NOISE, MAX_WRINKLES, Ambiguity, draw_face, jpeg_bytes


def generate(source: SourceConfig, config: Config, *, count: int, seed: int = 0, size: int = 96,
             label_noise: float = LABEL_NOISE) -> None:
    rng, ambiguity = random.Random(seed), Ambiguity(seed, label_noise)
    lines = []
    for k in range(1, count + 1):
        smile = rng.random() < 0.54  # GENKI-4K: 2162 of 4000 smile
        img, _ = draw_face(rng, smile=ambiguity.shown(smile, 2) == 1, long_hair=rng.random() < 0.5,
                           wrinkles=rng.randint(0, MAX_WRINKLES), size=size)
        fileio.write_bytes(os.path.join(source.path, IMAGES_DIR, f"file{k:04d}.jpg"), jpeg_bytes(img))
        yaw, pitch, roll = (rng.uniform(-0.3, 0.3) for _ in range(3))
        lines.append(f"{int(smile)} {yaw:.6f} {pitch:.6f} {roll:.6f}")
    fileio.write_bytes(os.path.join(source.path, LABELS_FILE), ("\n".join(lines) + "\n").encode())
