"""Real broken files of the kinds found in scraped datasets, for tests and demos."""
from __future__ import annotations

import os
import random

from data_prep import fileio
from data_prep.generators.faces import draw_face, jpeg_bytes


def good_jpeg(seed: int = 0) -> bytes:
    img, _ = draw_face(random.Random(seed), smile=True, long_hair=False, wrinkles=1)
    return jpeg_bytes(img)


def write_zero_byte(path: str) -> None:
    fileio.write_bytes(path, b"")


def write_truncated_jpeg(path: str, seed: int = 0) -> None:
    """A JPEG cut in half: the header parses, pixel decoding fails."""
    data = good_jpeg(seed)
    fileio.write_bytes(path, data[: len(data) // 2])


def write_text_as_jpeg(path: str) -> None:
    fileio.write_bytes(path, b"<html><body>404 Not Found</body></html>\n")


def make_bad_files(directory: str) -> dict[str, str]:
    """Writes zero.jpg, truncated.jpg and text.jpg into `directory`; returns kind -> path."""
    paths = {k: os.path.join(directory, f"{k}.jpg") for k in ("zero", "truncated", "text")}
    write_zero_byte(paths["zero"])
    write_truncated_jpeg(paths["truncated"])
    write_text_as_jpeg(paths["text"])
    return paths
