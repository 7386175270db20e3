"""Decode, crop, resize and re-encode one image to the configured contract form."""
from __future__ import annotations

import io

from PIL import Image, ImageOps

from data_prep.records import Reject
from pipeline.config import ImageConfig

_MODES = {1: "L", 3: "RGB"}
_FORMATS = {"png": "PNG", "jpeg": "JPEG"}


def decode(data: bytes) -> Image.Image:
    """Fully decodes image bytes; raises Reject('bad_image') for anything unusable.

    `verify()` catches corrupt structure without decoding pixels, `load()`
    catches truncated pixel data (PIL otherwise decodes lazily and would fail
    only later, or never for truncated JPEGs read partially).
    """
    if not data:
        raise Reject("bad_image", "zero-byte file")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        img = Image.open(io.BytesIO(data))
        img.load()
        # Phones store rotation in EXIF; apply it so the face is upright.
        return ImageOps.exif_transpose(img)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise Reject("bad_image", f"{type(e).__name__}: {e}") from e


def prep_image(data: bytes, image: ImageConfig,
               crop_box: tuple[float, float, float, float] | None = None) -> bytes:
    """Returns `data` as config.image says: channels (L/RGB), optional crop, size (H, W), encoding.

    `crop_box` is (left, top, right, bottom) in source pixels; it is clipped
    to the image, and a box with no area left raises Reject('bad_crop').
    """
    img = decode(data)
    img = img.convert(_MODES[image.channels])
    if crop_box is not None:
        left, top, right, bottom = crop_box
        box = (max(0, int(round(left))), max(0, int(round(top))),
               min(img.width, int(round(right))), min(img.height, int(round(bottom))))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise Reject("bad_crop", f"crop box {tuple(crop_box)} leaves no pixels of a "
                                     f"{img.width}x{img.height} image")
        img = img.crop(box)
    height, width = image.size
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    if image.encoding == "jpeg":
        img.save(out, format="JPEG", quality=95)
    else:
        img.save(out, format=_FORMATS[image.encoding])
    return out.getvalue()
