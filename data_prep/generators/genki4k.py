"""GENKI-4K layout: files/file0001.jpg... and labels.txt (`smile yaw pitch roll` per line)."""
from __future__ import annotations

import os
import random

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats.genki4k import IMAGES_DIR, LABELS_FILE
from data_prep.generators.faces import LABEL_NOISE, MAX_WRINKLES, Ambiguity, draw_face, jpeg_bytes

SMILE_SHARE = 0.54  # GENKI-4K: 2162 of 4000 smile


def generate(source: SourceConfig, config: Config, *, count: int, seed: int = 0, size: int = 96,
             label_noise: float = LABEL_NOISE, smile_share: float = SMILE_SHARE) -> None:
    """`smile_share`: the probability that an image is labelled smile, in (0, 1) (a delivery with
    another label distribution, for the drift check: docs/drift.md). The same draws whatever
    its value: a seed's images, pose lines and ambiguous faces are those of the default, and
    only the labels that cross the new share (and their faces) differ."""
    if isinstance(smile_share, bool) or not isinstance(smile_share, (int, float)) or not 0 < smile_share < 1:
        raise ValueError(f"smile_share must be a probability strictly between 0 and 1, received {smile_share!r}")
    rng, ambiguity = random.Random(seed), Ambiguity(seed, label_noise)
    lines = []
    for k in range(1, count + 1):
        smile = rng.random() < smile_share
        img, _ = draw_face(rng, smile=ambiguity.shown(smile, 2) == 1, long_hair=rng.random() < 0.5,
                           wrinkles=rng.randint(0, MAX_WRINKLES), size=size)
        fileio.write_bytes(os.path.join(source.path, IMAGES_DIR, f"file{k:04d}.jpg"), jpeg_bytes(img))
        yaw, pitch, roll = (rng.uniform(-0.3, 0.3) for _ in range(3))
        lines.append(f"{int(smile)} {yaw:.6f} {pitch:.6f} {roll:.6f}")
    fileio.write_bytes(os.path.join(source.path, LABELS_FILE), ("\n".join(lines) + "\n").encode())
