"""Decode, crop, resize and re-encode one image to the configured contract form.

`config.image` fixes what every example shares (size, channels); a source's
`prep` (PrepConfig) chooses how its images get there: desaturate first or
not, stretch / pad / centre-crop to the size, crop to the face box, and the
encoding. The resize modes are PIL's own (`Image.resize`, `ImageOps.pad`,
`ImageOps.fit`), all bilinear.
"""
from __future__ import annotations

import io

from PIL import Image, ImageOps

from config import ImageConfig, PrepConfig
from data_prep.records import Reject

_MODES = {1: "L", 3: "RGB"}
_FORMATS = {"png": "PNG", "jpeg": "JPEG"}
_DEFAULT_PREP = PrepConfig()
# Images with more pixels (width x height, from the header) are refused before decoding, here and by
# serving (models.image_decode.decode_pixels): Pillow's DecompressionBombError threshold
# (2 x Image.MAX_IMAGE_PIXELS at its default), fixed so a changed Pillow global does not move it.
MAX_PIXELS = 2 * 89478485


def decode(data: bytes) -> Image.Image:
    """Fully decodes image bytes; raises Reject('bad_image') for anything unusable.

    `load()` catches truncated pixel data (PIL otherwise decodes lazily and
    would fail only later, or never for truncated JPEGs read partially); a
    PNG is `verify()`-ed first, for the chunk checksums load() does not read.
    Only PNG's verify checks anything in Pillow (for JPEG and the rest it
    just closes the file), and it needs a second open after it, so other
    formats skip it: a second open cost ~60 us a JPEG, an eighth of its prep.
    """
    if not data:
        raise Reject("bad_image", "zero-byte file")
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise Image.DecompressionBombError(
                f"{img.width} x {img.height} = {img.width * img.height} pixels, over the pixel limit "
                f"of {MAX_PIXELS}")
        if img.format == "PNG":
            img.verify()
            img = Image.open(io.BytesIO(data))
        img.load()
        # Phones store rotation in EXIF; apply it so the face is upright.
        return ImageOps.exif_transpose(img)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise Reject("bad_image", f"{type(e).__name__}: {e}") from e


# Pillow's single-channel modes wider than 8 bits. Its convert("L") clips their values at
# 255 instead of scaling them, which turns a 16-bit PNG almost white.
_WIDE_GRAY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit grayscale image as 8 bits: each value's high byte, v >> 8, exactly what
    TensorFlow's decode_png(dtype=uint8) gives for the same file (so training and the
    serving signatures see the same pixels); other images unchanged. 32-bit integer
    images with values above 65535 are scaled by their own maximum instead."""
    if img.mode not in _WIDE_GRAY:
        return img
    import numpy as np

    values = np.asarray(img).astype(np.int64)
    top = int(values.max()) if values.size else 0
    if top > 65535:
        values = values * 255 // top
    else:
        values = np.clip(values, 0, 65535) >> 8
    return Image.fromarray(values.astype(np.uint8), "L")


def to_mode(img: Image.Image, channels: int, color: str = "auto") -> Image.Image:
    """A decoded image as the contract's mode: L (channels 1) or RGB (3). 16-bit gray takes its
    high byte (to_8bit); palette, CMYK, alpha and the rest convert as PIL's convert does (alpha
    dropped, not composited). models.image_decode.decode_pixels gives serving the same pixels."""
    img = to_8bit(img)
    if color == "grayscale":
        img = img.convert("L")
    return img.convert(_MODES[channels])


def face_box(box: tuple[float, float, float, float], margin: float) -> tuple[float, float, float, float]:
    """`box` widened by `margin` x its width on the left and right, x its height on top and bottom."""
    left, top, right, bottom = box
    dx, dy = (right - left) * margin, (bottom - top) * margin
    return left - dx, top - dy, right + dx, bottom + dy


def prep_image(data: bytes, image: ImageConfig,
               crop_box: tuple[float, float, float, float] | None = None,
               prep: PrepConfig = _DEFAULT_PREP) -> bytes:
    """Returns `data` with `image.size` (H, W) and `image.channels` (L / RGB), prepped as `prep` says.

    `crop_box` is (left, top, right, bottom) in source pixels (a face box;
    widened by `prep.face_margin`); it is clipped to the image, and a box with
    no area left raises Reject('bad_crop').
    """
    img = to_mode(decode(data), image.channels, prep.color)
    if crop_box is not None:
        left, top, right, bottom = face_box(crop_box, prep.face_margin)
        box = (max(0, int(round(left))), max(0, int(round(top))),
               min(img.width, int(round(right))), min(img.height, int(round(bottom))))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise Reject("bad_crop", f"crop box {tuple(crop_box)} leaves no pixels of a "
                                     f"{img.width}x{img.height} image")
        img = img.crop(box)
    height, width = image.size
    if img.size != (width, height):
        if prep.resize == "pad":  # keep the aspect ratio, black bars on the short sides
            img = ImageOps.pad(img, (width, height), method=Image.Resampling.BILINEAR)
        elif prep.resize == "crop":  # keep the aspect ratio, cut the long sides (centred)
            img = ImageOps.fit(img, (width, height), method=Image.Resampling.BILINEAR)
        else:
            img = img.resize((width, height), Image.Resampling.BILINEAR)
    encoding = prep.encoding or image.encoding
    out = io.BytesIO()
    if encoding == "jpeg":
        img.save(out, format="JPEG", quality=prep.jpeg_quality)
    else:
        img.save(out, format=_FORMATS[encoding])
    return out.getvalue()
