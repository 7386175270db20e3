"""Synthetic 'faces' whose every task cue survives a 48x48 grayscale resize.

Cues (drawn on every image; random where a source has no such label, so the
trunk sees them all): smile = an open grin (filled lower half-ellipse)
versus a thin flat line or frown (an area cue: a thin smiling arc alone was
not picked up by a BKNet-sized model in 300 mixed steps); long hair = dark
bands down both sides of the face, versus hair on top only; age group k = k
horizontal forehead lines (0..4), an ordinal cue whose dark-pixel mass grows with k; optionally (UTKFace's race) nose
width k = a filled triangle nose k steps wide (0..4), another area cue. Position, size, brightness, colour
and pixel noise are jittered so only the cue carries the label.
"""
from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageDraw

MAX_WRINKLES = 4
# Share of sample images whose face shows another class than their label (an
# ambiguous face), so every sample task has a Bayes error to state: see
# docs/data_prep.md, "Sample data".
LABEL_NOISE = 0.1


class Ambiguity:
    """Which class each image shows: its label's, or with probability `noise` another one.

    The other class is drawn uniformly from the remaining n - 1. A model that
    reads the cue perfectly then scores 1 - noise in expectation, and nothing
    scores better as long as (1 - noise) * p_min > noise * p_max / (n - 1) for
    the class shares p (true of every generator's shares at noise 0.1). Its own
    random stream, two draws per call whatever the outcome, keeps every other
    draw, so only the ambiguous images differ from a noise-free set of a seed.
    """

    def __init__(self, seed: int, noise: float):
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < 0.5:
            raise ValueError(f"label_noise must be a number in [0, 0.5), received {noise!r}")
        self.noise = float(noise)
        self._rng = random.Random(f"label_noise:{seed}")

    def shown(self, index: int, n: int) -> int:
        """The class (0..n-1) the image of a class-`index` example shows."""
        flip, other = self._rng.random(), self._rng.randrange(max(1, n - 1))
        if flip >= self.noise or n < 2:
            return index
        return other if other < index else other + 1


def draw_face(rng: random.Random, *, smile: bool, long_hair: bool, wrinkles: int,
              size: int = 96, nose: int | None = None) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Returns an RGB image and the face box (x1, y1, x2, y2) in its pixels.

    nose None draws the plain line nose (the image for a seed is the same as before the option)."""
    for name, v in (("wrinkles", wrinkles), ("nose", 0 if nose is None else nose)):
        if not 0 <= v <= MAX_WRINKLES:
            raise ValueError(f"{name} must be in [0, {MAX_WRINKLES}], received {v}")
    # One draw from the caller's stream whatever the cues: what the caller draws next
    # does not depend on them, so an ambiguous face changes only its own image.
    rng = random.Random(rng.getrandbits(64))
    s = size / 96.0  # the layout below is in 96-pixel units

    def px(v: float) -> float:
        return v * s

    bg = rng.randint(40, 210)
    img = Image.new("RGB", (size, size), tuple(min(255, max(0, bg + rng.randint(-25, 25))) for _ in range(3)))
    d = ImageDraw.Draw(img)
    cx, cy = px(48 + rng.uniform(-5, 5)), px(50 + rng.uniform(-4, 4))
    rx, ry = px(29 + rng.uniform(-2, 2)), px(38 + rng.uniform(-2, 2))
    hair = tuple([rng.randint(10, 60)] * 3)
    ink = rng.randint(0, 50)
    skin_level = rng.randint(165, 235)
    skin = (skin_level, max(0, skin_level - rng.randint(10, 40)), max(0, skin_level - rng.randint(20, 60)))

    if long_hair:  # bands from the temples down past the chin, both sides
        for side in (-1, 1):
            x_out = cx + side * (rx + px(9))
            d.rectangle([min(x_out, cx + side * (rx - px(4))), cy - ry + px(6),
                         max(x_out, cx + side * (rx - px(4))), size], fill=hair)
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=skin)
    d.chord([cx - rx, cy - ry - px(2), cx + rx, cy - ry + px(10)], 180, 360, fill=hair)  # hair on top

    for k in range(wrinkles):  # forehead lines, top down, thick and as wide as the forehead there
        y = cy - px(29) + px(6) * k
        half = rx * (1 - ((y - cy) / ry) ** 2) ** 0.5 - px(3)
        d.line([cx - half, y, cx + half, y], fill=(ink,) * 3, width=max(1, round(px(4))))
    for side in (-1, 1):  # eyes
        ex, ey, er = cx + side * px(12), cy, px(4)
        d.ellipse([ex - er, ey - er, ex + er, ey + er], fill=(ink,) * 3)
    if nose is None:
        d.line([cx, cy + px(3), cx, cy + px(12)], fill=(ink,) * 3, width=max(1, round(px(2))))  # nose
    else:  # base half-width 1.5 + 2.5 per step: 1.5 .. 11.5 (x 96-pixel units)
        half = px(1.5 + 2.5 * nose)
        d.polygon([(cx, cy + px(1)), (cx - half, cy + px(14)), (cx + half, cy + px(14))], fill=(ink,) * 3)
    mouth_w = max(1, round(px(4)))
    if smile:  # open grin: a filled lower half-ellipse, corners up; its dark area survives any resize
        d.chord([cx - px(16), cy + px(10), cx + px(16), cy + px(32)], 0, 180, fill=(ink,) * 3)
    elif rng.random() < 0.5:  # flat
        d.line([cx - px(14), cy + px(23), cx + px(14), cy + px(23)], fill=(ink,) * 3, width=mouth_w)
    else:  # frown: upper half, corners down
        d.arc([cx - px(15), cy + px(20), cx + px(15), cy + px(38)], 195, 345, fill=(ink,) * 3, width=mouth_w)

    arr = np.asarray(img, dtype=np.float32)
    arr = arr * rng.uniform(0.8, 1.2) + rng.uniform(-15, 15)
    arr += np.random.default_rng(rng.getrandbits(32)).normal(0, 6, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return img, (cx - rx, cy - ry, cx + rx, cy + ry)


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def ordinal_cue(index: int, n_groups: int) -> int:
    """Wrinkle count for group `index` of `n_groups`: the index itself up to 5 groups, spread over 0..4 beyond."""
    if n_groups <= MAX_WRINKLES + 1:
        return index
    return round(index * MAX_WRINKLES / (n_groups - 1))
