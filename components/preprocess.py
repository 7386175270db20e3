"""The one image preprocessing function: encoded bytes -> normalised float32 pixels.

Transform's `preprocessing_fn` (hence training and the `serving_default` /
`transform_features` signatures) and the `serving_image` signature all call
this module, so a model never sees pixels prepared two different ways.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

from data_prep.image_prep import MAX_PIXELS  # noqa: E402  (the conversion's pixel limit)
from pipeline.config import NORMALIZATIONS, ImageConfig  # noqa: E402

# keras.applications' "caffe" mode (VGG16, ResNet50): RGB -> BGR, minus the
# ImageNet channel means, in BGR order, no scaling.
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)
# One gray channel stands for R = G = B; it is centred on the mean of the three
# means, and a backbone adds back each channel's remainder when it tiles gray
# to 3 channels (models/backbone.py), so it sees exactly caffe(gray, gray, gray).
CAFFE_GRAY_MEAN = sum(CAFFE_BGR_MEANS) / 3  # 114.799333


def caffe_gray_offsets() -> tuple[float, float, float]:
    """What to add to each tiled copy of a caffe-normalised gray channel to get
    keras' caffe mode of the RGB image R = G = B (BGR order)."""
    return tuple(CAFFE_GRAY_MEAN - m for m in CAFFE_BGR_MEANS)


def normalize(pixels: tf.Tensor, normalization: str) -> tf.Tensor:
    """float pixels in [0, 255], [..., C] with C 1 or 3 (RGB) -> the model's input scale."""
    if normalization == "centered":
        # Seed 000 (BKNet): (x - 128) / 255, pixels land in [-0.502, 0.498].
        return (pixels - 128.0) / 255.0
    if normalization == "unit":
        return pixels / 255.0
    if normalization == "caffe":
        if pixels.shape[-1] == 1:
            return pixels - CAFFE_GRAY_MEAN
        return pixels[..., ::-1] - tf.constant(CAFFE_BGR_MEANS, pixels.dtype)
    if normalization == "tf":
        # keras.applications "tf" mode (MobileNetV2, InceptionResNetV2): [-1, 1].
        return pixels / 127.5 - 1.0
    raise ValueError(f"unknown image normalization {normalization!r}; valid: {', '.join(NORMALIZATIONS)}")


def pixel_range(normalization: str, channels: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(lowest, highest) normalised value per channel, [C] each: what pixels 0
    and 255 become. Augmentation clips to it and scales brightness by it."""
    low = normalize(tf.zeros([channels], tf.float32), normalization)
    high = normalize(tf.fill([channels], 255.0), normalization)
    return low, high


# ------------------------------------------------------------------ decoding: the conversion's pixels, in-graph
#
# data_prep.image_prep.prep_image (PIL) is what the tf.Example holds; this is what serving
# decodes from a client's file. Both: refuse more than MAX_PIXELS (from the header, before
# decoding), apply the JPEG EXIF Orientation as PIL's ImageOps.exif_transpose, take a GIF's first
# frame, drop alpha, map palettes, keep a 16-bit PNG's high byte, convert CMYK to RGB, and make
# gray with PIL's integer formula. TF ops only (no py_function), so it lives in a SavedModel.

PIXEL_LIMIT_MESSAGE = "image over the pixel limit"
# PIL's convert("L"): L = (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16 (ITU-R 601-2 in 16.16)
_GRAY_WEIGHTS = (19595, 38470, 7471)
_TIFF_II, _TIFF_MM = 0x4949, 0x4D4D
_ORIENTATION_TAG = 0x0112


def _raw_bytes(data: tf.Tensor, pos: tf.Tensor, n) -> tf.Tensor:
    """int64 [n]: bytes data[pos:pos + n], zeros past the end (or for a position outside data)."""
    size = tf.cast(tf.strings.length(data), tf.int64)
    pos = tf.cast(pos, tf.int64)
    inside = tf.logical_and(pos >= 0, pos <= size)
    part = tf.strings.substr(data, tf.where(inside, pos, size), tf.cast(n, tf.int64))
    raw = tf.cast(tf.io.decode_raw(part, tf.uint8), tf.int64)
    padded = tf.pad(raw, [[0, tf.cast(n, tf.int32) - tf.shape(raw)[0]]])
    return tf.reshape(padded, [n]) if isinstance(n, int) else padded


def _big_endian(b: tf.Tensor) -> tf.Tensor:
    """The unsigned integer in bytes b[..., k] (int64), most significant first."""
    out = tf.zeros_like(b[..., 0])
    for i in range(b.shape[-1]):
        out = out * 256 + b[..., i]
    return out


def _little_endian(b: tf.Tensor) -> tf.Tensor:
    return _big_endian(b[..., ::-1])


def image_header_size(image_bytes: tf.Tensor) -> tf.Tensor:
    """int64 [2]: (height, width) as the file's header states them, without decoding pixels;
    (0, 0) for a format TF does not decode. JPEG: its SOF (tf.image.extract_jpeg_shape); PNG:
    IHDR; GIF: the logical screen, enlarged to hold the first frame (PIL's size); BMP: its info header."""
    head = _raw_bytes(image_bytes, 0, 26)

    def jpeg():
        return tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64)

    def png():
        return tf.stack([_big_endian(head[20:24]), _big_endian(head[16:20])])

    def gif():
        return _gif_size(image_bytes)

    def bmp():
        core = tf.equal(_little_endian(head[14:18]), 12)  # BITMAPCOREHEADER: 16-bit sizes
        width = tf.where(core, _little_endian(head[18:20]), _little_endian(head[18:22]))
        height = tf.where(core, _little_endian(head[20:22]), _little_endian(head[22:26]))
        height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)  # negative: stored top-down
        return tf.stack([height, width])

    is_png = tf.reduce_all(tf.equal(head[:8], [137, 80, 78, 71, 13, 10, 26, 10]))
    is_gif = _is_gif(image_bytes)
    is_bmp = tf.reduce_all(tf.equal(head[:2], [66, 77]))  # "BM"
    return tf.case([(tf.io.is_jpeg(image_bytes), jpeg), (is_png, png), (is_gif, gif), (is_bmp, bmp)],
                   default=lambda: tf.zeros([2], tf.int64), exclusive=True)


def _exif_tiff_offset(image_bytes: tf.Tensor) -> tf.Tensor:
    """int64: where the TIFF header of a JPEG's first APP1 "Exif\\0\\0" segment starts, or -1.
    Walks the markers from SOI to SOS as PIL does (0xFF fill bytes skipped)."""
    size = tf.cast(tf.strings.length(image_bytes), tf.int64)

    def body(pos, found, done):
        b = _raw_bytes(image_bytes, pos, 4)  # 0xFF, marker, segment length (2 bytes, BE)
        fill = tf.logical_and(tf.equal(b[0], 0xFF), tf.equal(b[1], 0xFF))
        length = b[2] * 256 + b[3]
        stop = tf.logical_or(tf.not_equal(b[0], 0xFF),
                             tf.reduce_any(tf.equal(b[1], [0xDA, 0xD9])))  # not a marker, SOS, EOI
        stop = tf.logical_or(stop, tf.logical_and(tf.logical_not(fill), length < 2))
        exif = tf.logical_and(tf.equal(b[1], 0xE1), length >= 8)
        ident = tf.strings.substr(image_bytes, tf.minimum(pos + 4, size), tf.constant(6, tf.int64))
        exif = tf.logical_and(exif, tf.equal(ident, b"Exif\x00\x00"))
        exif = tf.logical_and(tf.logical_not(tf.logical_or(stop, fill)), exif)
        found = tf.where(exif, pos + 10, found)
        next_pos = tf.where(fill, pos + 1, pos + 2 + length)
        done = tf.reduce_any(tf.stack([stop, exif, next_pos + 4 > size]))
        return next_pos, found, done

    _, found, _ = tf.while_loop(lambda pos, found, done: tf.logical_not(done), body,
                                (tf.constant(2, tf.int64), tf.constant(-1, tf.int64), size < 6))
    return found


def exif_orientation(image_bytes: tf.Tensor) -> tf.Tensor:
    """int32: a JPEG's EXIF Orientation (IFD0 tag 0x0112, a SHORT or LONG with count 1, in either
    TIFF byte order), 1 when it has none or is not a JPEG. Values outside 1..8 are left as they are
    (and ignored, as PIL ignores them)."""

    def from_exif():
        tiff = _exif_tiff_offset(image_bytes)

        def read():
            head = _raw_bytes(image_bytes, tiff, 8)
            order = _big_endian(head[:2])
            little = tf.equal(order, _TIFF_II)
            unsigned = lambda b: tf.where(little, _little_endian(b), _big_endian(b))  # noqa: E731
            ifd = tiff + unsigned(head[4:8])
            count = tf.minimum(unsigned(_raw_bytes(image_bytes, ifd, 2)), 1024)
            entries = tf.reshape(_raw_bytes(image_bytes, ifd + 2, count * 12), [-1, 12])
            tags, types = unsigned(entries[:, 0:2]), unsigned(entries[:, 2:4])
            counts = unsigned(entries[:, 4:8])
            value = tf.where(tf.equal(types, 3), unsigned(entries[:, 8:10]), unsigned(entries[:, 8:12]))
            match = tf.reduce_all(tf.stack([tf.equal(tags, _ORIENTATION_TAG), tf.equal(counts, 1),
                                            tf.logical_or(tf.equal(types, 3), tf.equal(types, 4))]), axis=0)
            # PIL reads every entry into a dict: a repeated tag keeps its last value
            last = tf.reduce_max(tf.where(match, tf.range(tf.shape(match, out_type=tf.int64)[0]), -1))
            known = tf.logical_and(last >= 0, tf.logical_or(little, tf.equal(order, _TIFF_MM)))
            return tf.where(known, tf.gather(value, tf.maximum(last, 0)), 1)

        return tf.cast(tf.cond(tiff >= 0, read, lambda: tf.constant(1, tf.int64)), tf.int32)

    return tf.cond(tf.io.is_jpeg(image_bytes), from_exif, lambda: tf.constant(1, tf.int32))


def exif_transpose(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """[H, W, C] as PIL's ImageOps.exif_transpose shows it for EXIF `orientation`: 2 mirror,
    3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90
    counter-clockwise; 1 and anything else unchanged."""
    branches = [
        lambda: image,
        lambda: image[:, ::-1],
        lambda: image[::-1, ::-1],
        lambda: image[::-1],
        lambda: tf.transpose(image, [1, 0, 2]),
        lambda: tf.image.rot90(image, k=3),
        lambda: tf.transpose(image, [1, 0, 2])[::-1, ::-1],
        lambda: tf.image.rot90(image, k=1),
    ]
    index = tf.where(tf.logical_and(orientation >= 1, orientation <= 8), orientation - 1, 0)
    return tf.switch_case(index, branches)


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """uint8 [H, W, 1..4] (gray, gray + alpha, RGB, RGBA) -> [H, W, channels] as PIL's convert
    ("L" or "RGB"): alpha dropped (not composited), gray tiled to RGB, RGB to gray by PIL's formula."""
    n = tf.shape(image)[-1]
    if channels == 3:
        return tf.cond(n >= 3, lambda: image[..., :3], lambda: tf.tile(image[..., :1], [1, 1, 3]))
    if channels != 1:
        raise ValueError(f"image channels must be 1 or 3, received {channels}")

    def gray():
        rgb = tf.cast(image[..., :3], tf.int32)
        weighted = tf.reduce_sum(rgb * tf.constant(_GRAY_WEIGHTS, tf.int32), axis=-1, keepdims=True)
        return tf.cast(tf.bitwise.right_shift(weighted + 0x8000, 16), tf.uint8)

    return tf.cond(n >= 3, gray, lambda: image[..., :1])


def _gif_first_frame(image_bytes: tf.Tensor) -> dict:
    """Where a GIF's first frame is: walks the blocks after the header and global colour table up
    to the first image descriptor (extensions skipped sub-block by sub-block). The last Graphic
    Control Extension before it is the frame's. int64 fields: `descriptor` and `gce` (positions,
    -1 if absent), `top`, `left`, `height`, `width` (the frame), `screen` ([height, width]),
    `has_global` (bool)."""
    size = tf.cast(tf.strings.length(image_bytes), tf.int64)
    head = _raw_bytes(image_bytes, 0, 11)
    has_global = head[10] >= 128
    start = 13 + tf.where(has_global, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), head[10] % 8), 0)

    def body(pos, in_blocks, gce, done):
        b = _raw_bytes(image_bytes, pos, 2)
        # in an extension's sub-blocks: skip one (a zero size ends them)
        sub_pos = pos + 1 + b[0]
        # at a block: an extension (0x21) starts sub-blocks after its label; anything else ends
        is_ext = tf.equal(b[0], 0x21)
        gce = tf.where(tf.logical_and(tf.logical_not(in_blocks), tf.logical_and(is_ext, tf.equal(b[1], 0xF9))),
                       pos + 3, gce)
        at_block = tf.logical_and(tf.logical_not(in_blocks), tf.logical_not(is_ext))
        next_pos = tf.where(in_blocks, sub_pos, tf.where(is_ext, pos + 2, pos))
        next_in = tf.where(in_blocks, tf.not_equal(b[0], 0), is_ext)
        done = tf.logical_or(at_block, next_pos >= size)
        return next_pos, next_in, gce, done

    pos, _, gce, _ = tf.while_loop(lambda pos, in_blocks, gce, done: tf.logical_not(done), body,
                                   (start, tf.constant(False), tf.constant(-1, tf.int64), start >= size))
    desc = _raw_bytes(image_bytes, pos, 9)  # 0x2C, left, top, width, height (little-endian 16 bits)
    found = tf.equal(desc[0], 0x2C)
    field = lambda i: tf.where(found, _little_endian(desc[i:i + 2]), 0)  # noqa: E731
    return {"descriptor": tf.where(found, pos, -1), "gce": gce, "left": field(1), "top": field(3),
            "width": field(5), "height": field(7), "has_global": has_global,
            "screen": tf.stack([_little_endian(head[8:10]), _little_endian(head[6:8])])}


def _gif_size(image_bytes: tf.Tensor) -> tf.Tensor:
    """int64 [2]: the size PIL gives a GIF: its logical screen, enlarged to hold the first frame."""
    f = _gif_first_frame(image_bytes)
    return tf.maximum(f["screen"], tf.stack([f["top"] + f["height"], f["left"] + f["width"]]))


_BYTE_STRINGS = [bytes([i]) for i in range(256)]


def _replace_bytes(data: tf.Tensor, pos: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """data with the bytes at pos.. replaced by `values` (int64 [k], 0..255)."""
    new = tf.strings.reduce_join(tf.gather(tf.constant(_BYTE_STRINGS), values))
    size = tf.cast(tf.strings.length(data), tf.int64)
    return tf.strings.join([tf.strings.substr(data, tf.constant(0, tf.int64), pos), new,
                            tf.strings.substr(data, pos + tf.size(values, out_type=tf.int64), size)])


def _decode_gif(image_bytes: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, 3]: a GIF's first frame as PIL shows it (convert("RGB")).

    TF paints a transparent pixel black, sizes its canvas by the largest frame, ignoring the
    logical screen, and clips a first frame placed off (0, 0). PIL shows the palette colour of the
    transparent index, and sizes the image as the screen (enlarged to hold the frame), the frame at
    its place, the rest in the colour of the transparent index (of index 0 without transparency).
    So before TF decodes, the frame's transparency flag is cleared and its position zeroed in the
    bytes; then the frame is placed on a canvas of PIL's size and colour."""
    f = _gif_first_frame(image_bytes)
    gce = _raw_bytes(image_bytes, f["gce"], 4)  # packed fields, delay (2 bytes), transparent index
    transparent = tf.logical_and(f["gce"] >= 0, tf.equal(gce[0] % 2, 1))
    data = tf.cond(transparent, lambda: _replace_bytes(image_bytes, f["gce"], gce[:1] - 1), lambda: image_bytes)
    data = tf.cond(f["descriptor"] >= 0,
                   lambda: _replace_bytes(data, f["descriptor"] + 1, tf.zeros([4], tf.int64)), lambda: data)
    frame = tf.io.decode_gif(data)[0][:f["height"], :f["width"]]
    # the colour table: the frame's own (flag in the descriptor's packed byte), else the global one
    packed = _raw_bytes(image_bytes, f["descriptor"] + 9, 1)[0]
    table = tf.where(tf.logical_and(f["descriptor"] >= 0, packed >= 128), f["descriptor"] + 10,
                     tf.where(f["has_global"], tf.constant(13, tf.int64), -1))
    index = tf.where(transparent, gce[3], 0)
    colour = tf.cast(tf.where(table >= 0, _raw_bytes(image_bytes, table + 3 * index, 3), index), tf.uint8)
    height, width = tf.unstack(_gif_size(image_bytes))
    frame_shape = tf.shape(frame, out_type=tf.int64)
    pad = [[f["top"], height - f["top"] - frame_shape[0]], [f["left"], width - f["left"] - frame_shape[1]], [0, 0]]
    placed = tf.pad(frame, pad)
    inside = tf.pad(tf.ones(frame_shape[:2], tf.bool), pad[:2])
    return tf.where(inside[..., None], placed, colour)


def _is_gif(image_bytes: tf.Tensor) -> tf.Tensor:
    return tf.reduce_all(tf.equal(_raw_bytes(image_bytes, 0, 4), [71, 73, 70, 56]))  # "GIF8"


def decode_pixels(image_bytes: tf.Tensor, channels: int) -> tf.Tensor:
    """One encoded image (scalar tf.string) -> uint8 [H, W, channels]: the pixels the conversion
    (data_prep.image_prep.prep_image) gives the same file, before its resize.

    Raises InvalidArgumentError, before decoding anything, when the header says more than
    MAX_PIXELS pixels (the conversion's limit), and for bytes TF cannot decode. JPEGs decode
    with the accurate integer DCT (libjpeg's default, which PIL uses); TF's own default is the
    fast one, a few levels off.
    """
    size = image_header_size(image_bytes)
    pixels = size[0] * size[1]
    check = tf.debugging.Assert(
        pixels <= MAX_PIXELS,
        [f"{PIXEL_LIMIT_MESSAGE}: more than {MAX_PIXELS} pixels (the conversion's limit); its header says "
         "height, width, pixels:", size[0], size[1], pixels])
    with tf.control_dependencies([check]):
        image = tf.case([
            (tf.io.is_jpeg(image_bytes),
             lambda: tf.io.decode_jpeg(image_bytes, channels=0, dct_method="INTEGER_ACCURATE")),
            (_is_gif(image_bytes), lambda: _decode_gif(image_bytes)),
        ], default=lambda: tf.io.decode_image(image_bytes, channels=0, dtype=tf.uint8, expand_animations=False),
            exclusive=True)
    image = exif_transpose(to_channels(image, channels), exif_orientation(image_bytes))
    return tf.ensure_shape(image, (None, None, channels))


def preprocess_image_bytes(image_bytes: tf.Tensor, image_cfg: ImageConfig) -> tf.Tensor:
    """Decodes one encoded image (scalar tf.string) to float32 [H, W, C].

    PNG, JPEG, GIF (first frame) and BMP are accepted, decoded by `decode_pixels` (the
    conversion's pixels: EXIF orientation, palettes, alpha, CMYK, 16 bits, the pixel limit),
    resized to `image_cfg.size` only when its size differs (the data contract stores
    images already at that size, so training pixels are exact), then
    normalised as `image_cfg.normalization` says (`normalize`).
    """
    height, width = image_cfg.size
    channels = image_cfg.channels
    if image_cfg.normalization not in NORMALIZATIONS:  # fail at trace time, not on the first image
        raise ValueError(f"unknown image normalization {image_cfg.normalization!r}; "
                         f"valid: {', '.join(NORMALIZATIONS)}")
    image = decode_pixels(image_bytes, channels)
    shape = tf.shape(image)
    same_size = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    pixels = tf.cond(
        same_size,
        lambda: tf.cast(image, tf.float32),
        # Antialiased bilinear keeps downscaled faces smooth; the values stay in [0, 255].
        lambda: tf.image.resize(image, (height, width), method="bilinear", antialias=True),
    )
    pixels = tf.ensure_shape(pixels, (height, width, channels))
    return normalize(pixels, image_cfg.normalization)


def preprocess_image_batch(image_bytes: tf.Tensor, image_cfg: ImageConfig) -> tf.Tensor:
    """Batched `preprocess_image_bytes`: tf.string [N] (or [N, 1]) -> float32 [N, H, W, C]."""
    height, width = image_cfg.size
    flat = tf.reshape(image_bytes, [-1])
    return tf.map_fn(
        lambda b: preprocess_image_bytes(b, image_cfg),
        flat,
        fn_output_signature=tf.TensorSpec((height, width, image_cfg.channels), tf.float32),
    )
