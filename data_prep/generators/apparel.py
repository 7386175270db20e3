"""Synthetic garments for seed 003's colour + garment-type labels.

A garment type is a silhouette (dress = a flared trapezoid, jeans = two legs,
shirt = a T: body and sleeves) filled with its colour; position, size,
background and shade are jittered so only shape and hue carry the labels.
The seed's real set labels every image with exactly one colour and one type
(`black_jeans`); so does this one.
"""
from __future__ import annotations

import random

from PIL import Image, ImageDraw

GARMENTS = ("dress", "jeans", "shirt")
# Base RGB of each colour; shades are jittered around it.
COLORS = {"black": (25, 25, 30), "blue": (40, 70, 190), "red": (200, 40, 40),
          "white": (235, 235, 235), "green": (40, 160, 60)}


def draw_garment(rng: random.Random, garment: str, color: str, size: int = 96) -> Image.Image:
    """An RGB image of one garment of one colour."""
    if garment not in GARMENTS:
        raise ValueError(f"garment {garment!r} is not drawable; valid: {', '.join(GARMENTS)}")
    if color not in COLORS:
        raise ValueError(f"colour {color!r} is not drawable; valid: {', '.join(COLORS)}")
    bg = rng.randint(120, 200)
    img = Image.new("RGB", (size, size), tuple(min(255, max(0, bg + rng.randint(-20, 20))) for _ in range(3)))
    d = ImageDraw.Draw(img)
    fill = tuple(min(255, max(0, c + rng.randint(-25, 25))) for c in COLORS[color])
    s = size / 96.0 * rng.uniform(0.85, 1.1)
    cx, top = size / 2 + rng.uniform(-6, 6) * size / 96, size * 0.15 + rng.uniform(-4, 4) * size / 96
    if garment == "dress":
        d.polygon([(cx - 12 * s, top), (cx + 12 * s, top), (cx + 32 * s, top + 66 * s),
                   (cx - 32 * s, top + 66 * s)], fill=fill)
    elif garment == "jeans":
        d.rectangle([cx - 22 * s, top, cx + 22 * s, top + 12 * s], fill=fill)  # waist
        for side in (-1, 1):
            x0, x1 = cx + side * 4 * s, cx + side * 22 * s
            d.rectangle([min(x0, x1), top, max(x0, x1), top + 68 * s], fill=fill)
    else:  # shirt
        d.rectangle([cx - 18 * s, top, cx + 18 * s, top + 50 * s], fill=fill)
        d.polygon([(cx - 18 * s, top), (cx - 38 * s, top + 16 * s), (cx - 30 * s, top + 26 * s),
                   (cx - 18 * s, top + 16 * s)], fill=fill)
        d.polygon([(cx + 18 * s, top), (cx + 38 * s, top + 16 * s), (cx + 30 * s, top + 26 * s),
                   (cx + 18 * s, top + 16 * s)], fill=fill)
    for _ in range(size // 4):  # pixel noise so flat fills are not trivially compressible
        x, y = rng.randrange(size), rng.randrange(size)
        v = rng.randint(-30, 30)
        r, g, b = img.getpixel((x, y))
        img.putpixel((x, y), (max(0, min(255, r + v)), max(0, min(255, g + v)), max(0, min(255, b + v))))
    return img


def split_labels(classes) -> tuple[list[str], list[str]]:
    """A multilabel task's classes split into drawable colours and garments; raises
    ValueError naming a class that is neither."""
    colors = [c for c in classes if c in COLORS]
    garments = [c for c in classes if c in GARMENTS]
    other = [c for c in classes if c not in COLORS and c not in GARMENTS]
    if other or not colors or not garments:
        raise ValueError(f"apparel drawing needs classes that are colours ({', '.join(COLORS)}) and garments "
                         f"({', '.join(GARMENTS)}), at least one of each; received {list(classes)!r}")
    return colors, garments
