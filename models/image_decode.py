"""Encoded image bytes -> uint8 pixels, in-graph, as the conversion decodes them.

data_prep.image_prep.prep_image (PIL) is what the tf.Example holds; this is what serving
decodes from a client's file. Both: refuse more than MAX_PIXELS (from the header, before
decoding), apply the JPEG EXIF Orientation as PIL's ImageOps.exif_transpose, take a GIF's first
frame, drop alpha, map palettes, keep a 16-bit PNG's high byte, convert CMYK to RGB, and make
gray with PIL's integer formula. TF ops only (no py_function), so it lives in a SavedModel.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

from data_prep.image_prep import MAX_PIXELS  # the conversion's pixel limit

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
    k = b.shape[-1]
    return tf.reduce_sum(b * tf.constant([256 ** (k - 1 - i) for i in range(k)], tf.int64), axis=-1)


def _little_endian(b: tf.Tensor) -> tf.Tensor:
    """The unsigned integer in bytes b[..., k] (int64), least significant first."""
    k = b.shape[-1]
    return tf.reduce_sum(b * tf.constant([256 ** i for i in range(k)], tf.int64), axis=-1)


_PNG_MAGIC = (137, 80, 78, 71, 13, 10, 26, 10)
_OTHER, _JPEG, _PNG, _GIF = range(4)  # switch_case branch indices
_ZEROS = b"\x00" * 32


def _head(image_bytes: tf.Tensor) -> tf.Tensor:
    """int64 [..., 32]: the first 32 bytes of each string, zeros past the end."""
    first = tf.strings.substr(tf.strings.join([tf.strings.substr(image_bytes, 0, 32), _ZEROS]), 0, 32)
    return tf.cast(tf.io.decode_raw(first, tf.uint8, fixed_length=32), tf.int64)


def _format(head: tf.Tensor) -> tf.Tensor:
    """int32 [...]: _JPEG, _PNG, _GIF or _OTHER (BMP, or bytes decode_image refuses), by magic number."""
    def starts(magic):
        return tf.reduce_all(tf.equal(head[..., :len(magic)], magic), axis=-1)

    jpeg = starts([0xFF, 0xD8, 0xFF])  # what tf.io.is_jpeg checks
    return tf.where(jpeg, _JPEG, tf.where(starts(_PNG_MAGIC), _PNG, tf.where(starts([71, 73, 70, 56]), _GIF, _OTHER)))


def _png_size(head: tf.Tensor) -> tf.Tensor:
    """[..., 2] (height, width) from a PNG's IHDR (width, then height, big-endian)."""
    return tf.stack([_big_endian(head[..., 20:24]), _big_endian(head[..., 16:20])], axis=-1)


def _bmp_size(head: tf.Tensor) -> tf.Tensor:
    """[..., 2] (height, width) of a BMP's info header; (0, 0) for bytes that are not a BMP."""
    core = tf.equal(_little_endian(head[..., 14:18]), 12)  # BITMAPCOREHEADER: 16-bit sizes
    width = tf.where(core, _little_endian(head[..., 18:20]), _little_endian(head[..., 18:22]))
    height = tf.where(core, _little_endian(head[..., 20:22]), _little_endian(head[..., 22:26]))
    height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)  # negative: stored top-down
    is_bmp = tf.reduce_all(tf.equal(head[..., :2], [66, 77]), axis=-1)  # "BM"
    return tf.where(is_bmp[..., None], tf.stack([height, width], axis=-1), tf.zeros_like(head[..., :2]))


def _jpeg_size(image_bytes: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.image.extract_jpeg_shape(image_bytes)[:2], tf.int64)  # its SOF


def image_header_size(image_bytes: tf.Tensor) -> tf.Tensor:
    """int64 [2]: (height, width) as the file's header states them, without decoding pixels;
    (0, 0) for a format TF does not decode. JPEG: its SOF (tf.image.extract_jpeg_shape); PNG:
    IHDR; GIF: the logical screen, enlarged to hold the first frame (PIL's size); BMP: its info header."""
    head = _head(image_bytes)
    return tf.switch_case(_format(head), [lambda: _bmp_size(head), lambda: _jpeg_size(image_bytes),
                                          lambda: _png_size(head), lambda: _gif_size(image_bytes)])


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
    return tf.cond(tf.io.is_jpeg(image_bytes), lambda: _jpeg_orientation(image_bytes),
                   lambda: tf.constant(1, tf.int32))


def _jpeg_orientation(image_bytes: tf.Tensor) -> tf.Tensor:
    """exif_orientation of bytes known to be a JPEG. No branches: reads at a missing TIFF header
    (-1) give zeros, and the result is then 1."""
    tiff = _exif_tiff_offset(image_bytes)
    head = _raw_bytes(image_bytes, tiff, 8)
    order = _big_endian(head[:2])
    little = tf.equal(order, _TIFF_II)
    unsigned = lambda b: tf.where(little, _little_endian(b), _big_endian(b))  # noqa: E731
    ifd = tiff + unsigned(head[4:8])
    count = tf.where(tiff >= 0, tf.minimum(unsigned(_raw_bytes(image_bytes, ifd, 2)), 1024), 0)
    entries = tf.reshape(_raw_bytes(image_bytes, ifd + 2, count * 12), [-1, 12])
    tags, types = unsigned(entries[:, 0:2]), unsigned(entries[:, 2:4])
    counts = unsigned(entries[:, 4:8])
    value = tf.where(tf.equal(types, 3), unsigned(entries[:, 8:10]), unsigned(entries[:, 8:12]))
    match = tf.reduce_all(tf.stack([tf.equal(tags, _ORIENTATION_TAG), tf.equal(counts, 1),
                                    tf.logical_or(tf.equal(types, 3), tf.equal(types, 4))]), axis=0)
    # PIL reads every entry into a dict: a repeated tag keeps its last value
    last = tf.reduce_max(tf.concat([tf.where(match, tf.range(tf.size(match, out_type=tf.int64)), -1), [-1]], 0))
    known = tf.logical_and(last >= 0, tf.logical_or(little, tf.equal(order, _TIFF_MM)))
    orientation = tf.gather(tf.concat([value, [1]], 0), tf.where(known, last, tf.size(value, out_type=tf.int64)))
    return tf.cast(orientation, tf.int32)


# Orientation -> (transpose, then flip rows, flip columns), as PIL's exif_transpose: 2 mirror,
# 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
_ORIENTATION_OPS = ((0, 0, 0), (0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0), (1, 0, 0), (1, 0, 1), (1, 1, 1), (1, 1, 0))


def exif_transpose(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """[H, W, C] as PIL's ImageOps.exif_transpose shows it for EXIF `orientation` (1 and anything
    outside 2..8 unchanged). No branches: a transpose with a computed permutation, then a reverse
    over the computed axes."""
    index = tf.where(tf.logical_and(orientation >= 1, orientation <= 8), orientation, 0)
    ops = tf.gather(tf.constant(_ORIENTATION_OPS, tf.int32), index)
    image = tf.transpose(image, tf.where(tf.equal(ops[0], 1), [1, 0, 2], [0, 1, 2]))
    return tf.reverse(image, tf.boolean_mask(tf.constant([0, 1]), tf.equal(ops[1:], 1)))


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """uint8 [H, W, 1..4] (gray, gray + alpha, RGB, RGBA) -> [H, W, channels] as PIL's convert
    ("L" or "RGB"): alpha dropped (not composited), gray tiled to RGB, RGB to gray by PIL's
    integer formula (which gives a gray pixel back unchanged). An image that already has
    `channels` (a data-contract image) passes as it is."""
    if channels not in (1, 3):
        raise ValueError(f"image channels must be 1 or 3, received {channels}")
    n = tf.shape(image)[-1]

    def convert():
        rgb = tf.gather(image, tf.where(n >= 3, [0, 1, 2], [0, 0, 0]), axis=-1)
        if channels == 3:
            return rgb
        # exact in float32: the largest sum, 255 * 65536 + 32768, is below 2 ** 24
        weighted = tf.reduce_sum(tf.cast(rgb, tf.float32) * tf.constant(_GRAY_WEIGHTS, tf.float32),
                                 axis=-1, keepdims=True)
        return tf.cast(tf.floor((weighted + 0x8000) / 65536.0), tf.uint8)

    return tf.cond(tf.equal(n, channels), lambda: image, convert)


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


def _gif_size(image_bytes: tf.Tensor, f: dict | None = None) -> tf.Tensor:
    """int64 [2]: the size PIL gives a GIF: its logical screen, enlarged to hold the first frame
    (`f`: _gif_first_frame's result, when already walked)."""
    f = f or _gif_first_frame(image_bytes)
    return tf.maximum(f["screen"], tf.stack([f["top"] + f["height"], f["left"] + f["width"]]))


_BYTE_STRINGS = [bytes([i]) for i in range(256)]


def _replace_bytes(data: tf.Tensor, pos: tf.Tensor, values: tf.Tensor, apply: tf.Tensor) -> tf.Tensor:
    """data with the bytes at pos.. replaced by `values` (int64 [k], 0..255) if `apply`, else as it
    is (the same bytes written back at max(pos, 0): no branch)."""
    pos = tf.where(apply, pos, 0)
    values = tf.where(apply, values, _raw_bytes(data, pos, values.shape[0]))
    new = tf.strings.reduce_join(tf.gather(tf.constant(_BYTE_STRINGS), values))
    size = tf.cast(tf.strings.length(data), tf.int64)
    return tf.strings.join([tf.strings.substr(data, tf.constant(0, tf.int64), pos), new,
                            tf.strings.substr(data, pos + values.shape[0], size)])


def _decode_gif(image_bytes: tf.Tensor, f: dict) -> tf.Tensor:
    """uint8 [H, W, 3]: a GIF's first frame as PIL shows it (convert("RGB")).

    TF paints a transparent pixel black, sizes its canvas by the largest frame, ignoring the
    logical screen, and clips a first frame placed off (0, 0). PIL shows the palette colour of the
    transparent index, and sizes the image as the screen (enlarged to hold the frame), the frame at
    its place, the rest in the colour of the transparent index (of index 0 without transparency).
    So before TF decodes, the frame's transparency flag is cleared and its position zeroed in the
    bytes; then the frame is placed on a canvas of PIL's size and colour. `f`: _gif_first_frame."""
    gce = _raw_bytes(image_bytes, f["gce"], 4)  # packed fields, delay (2 bytes), transparent index
    transparent = tf.logical_and(f["gce"] >= 0, tf.equal(gce[0] % 2, 1))
    data = _replace_bytes(image_bytes, f["gce"], gce[:1] - 1, transparent)
    data = _replace_bytes(data, f["descriptor"] + 1, tf.zeros([4], tf.int64), f["descriptor"] >= 0)
    frame = tf.io.decode_gif(data)[0][:f["height"], :f["width"]]
    # the colour table: the frame's own (flag in the descriptor's packed byte), else the global one
    packed = _raw_bytes(image_bytes, f["descriptor"] + 9, 1)[0]
    table = tf.where(tf.logical_and(f["descriptor"] >= 0, packed >= 128), f["descriptor"] + 10,
                     tf.where(f["has_global"], tf.constant(13, tf.int64), -1))
    index = tf.where(transparent, gce[3], 0)
    colour = tf.cast(tf.where(table >= 0, _raw_bytes(image_bytes, table + 3 * index, 3), index), tf.uint8)
    height, width = tf.unstack(_gif_size(image_bytes, f))
    frame_shape = tf.shape(frame, out_type=tf.int64)
    pad = [[f["top"], height - f["top"] - frame_shape[0]], [f["left"], width - f["left"] - frame_shape[1]], [0, 0]]
    placed = tf.pad(frame, pad)
    inside = tf.pad(tf.ones(frame_shape[:2], tf.bool), pad[:2])
    return tf.where(inside[..., None], placed, colour)


def _check_pixels(size: tf.Tensor) -> tf.Operation:
    """An assertion that every (height, width) in size ([2] or [N, 2]) is within MAX_PIXELS."""
    pixels = tf.reshape(size[..., 0] * size[..., 1], [-1])
    worst = tf.argmax(tf.concat([pixels, [0]], 0))
    size = tf.reshape(size, [-1, 2])
    return tf.debugging.Assert(
        tf.reduce_all(pixels <= MAX_PIXELS),
        [f"{PIXEL_LIMIT_MESSAGE}: more than {MAX_PIXELS} pixels (the conversion's limit); its header says "
         "height, width, pixels:", tf.concat([size, [[0, 0]]], 0)[worst], tf.concat([pixels, [0]], 0)[worst]])


def _checked(size: tf.Tensor, decode: Callable[[], tf.Tensor]) -> tf.Tensor:
    """decode(), run only if size (height, width from the header) is within MAX_PIXELS."""
    with tf.control_dependencies([_check_pixels(size)]):
        return decode()


def _decode_jpeg(image_bytes: tf.Tensor) -> tf.Tensor:
    # the accurate integer DCT: libjpeg's default, which PIL uses (TF's default is the fast one)
    return _checked(_jpeg_size(image_bytes),
                    lambda: tf.io.decode_jpeg(image_bytes, channels=0, dct_method="INTEGER_ACCURATE"))


def _may_have_exif(image_bytes: tf.Tensor) -> tf.Tensor:
    """bool [N] for tf.string [N]: whether the bytes "Exif\\0\\0" occur at all (if not, a JPEG
    has no EXIF segment)."""
    return tf.strings.split(image_bytes, "Exif\x00\x00", maxsplit=1).row_lengths() > 1


def decode_pixels(image_bytes: tf.Tensor, channels: int) -> tf.Tensor:
    """One encoded image (scalar tf.string) -> uint8 [H, W, channels]: the pixels the conversion
    (data_prep.image_prep.prep_image) gives the same file, before its resize.

    Raises InvalidArgumentError, before decoding anything, when the header says more than
    MAX_PIXELS pixels (the conversion's limit), and for bytes TF cannot decode. JPEGs decode
    with the accurate integer DCT (libjpeg's default, which PIL uses); TF's own default is the
    fast one, a few levels off.
    """
    head = _head(image_bytes)

    def gif():
        f = _gif_first_frame(image_bytes)
        return _checked(_gif_size(image_bytes, f), lambda: _decode_gif(image_bytes, f))

    def jpeg():
        image = _decode_jpeg(image_bytes)
        return tf.cond(_may_have_exif(image_bytes[None])[0],
                       lambda: exif_transpose(image, _jpeg_orientation(image_bytes)), lambda: image)

    image = tf.switch_case(_format(head), [
        lambda: _checked(_bmp_size(head), lambda: tf.io.decode_image(image_bytes, channels=0, dtype=tf.uint8,
                                                                     expand_animations=False)),
        jpeg,
        lambda: _checked(_png_size(head), lambda: tf.io.decode_png(image_bytes, channels=0)),
        gif,
    ])
    return tf.ensure_shape(to_channels(image, channels), (None, None, channels))


def decode_plain(image_bytes: tf.Tensor, channels: int) -> tf.Tensor:
    """decode_pixels of a PNG, BMP or EXIF-less JPEG whose PNG / BMP size is already checked:
    a few ops, for the batches a model trains and evaluates on (data-contract images)."""
    image = tf.cond(tf.io.is_jpeg(image_bytes), lambda: _decode_jpeg(image_bytes),
                    lambda: tf.io.decode_image(image_bytes, channels=0, dtype=tf.uint8, expand_animations=False))
    return tf.ensure_shape(to_channels(image, channels), (None, None, channels))


def split_for_decode(flat: tf.Tensor) -> tuple[tf.Tensor, tf.Operation]:
    """For a batch tf.string [N]: (bool [N], op). True where an image needs `decode_pixels` (GIFs
    and JPEGs that may hold EXIF); the others can go through `decode_plain` once the op, which
    checks their PNG / BMP header sizes against the pixel limit, has run."""
    head = _head(flat)
    kind = _format(head)
    full = tf.logical_or(tf.equal(kind, _GIF), tf.logical_and(tf.equal(kind, _JPEG), _may_have_exif(flat)))
    size = tf.where(tf.equal(kind, _PNG)[:, None], _png_size(head), _bmp_size(head))
    return full, _check_pixels(size)
