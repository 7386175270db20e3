"""The one image preprocessing function: encoded bytes -> normalised float32 pixels.

Transform's `preprocessing_fn` (hence training and the `serving_default` /
`transform_features` signatures) and the `serving_image` signature all call
this module, so a model never sees pixels prepared two different ways.
"""
from __future__ import annotations

import tensorflow as tf

from config import NORMALIZATIONS, ImageConfig
from models.image_decode import decode_pixels, decode_plain, split_for_decode

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


def _to_model_input(image: tf.Tensor, image_cfg: ImageConfig) -> tf.Tensor:
    height, width = image_cfg.size
    shape = tf.shape(image)
    same_size = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    pixels = tf.cond(
        same_size,
        lambda: tf.cast(image, tf.float32),
        # Antialiased bilinear keeps downscaled faces smooth; the values stay in [0, 255].
        lambda: tf.image.resize(image, (height, width), method="bilinear", antialias=True),
    )
    pixels = tf.ensure_shape(pixels, (height, width, image_cfg.channels))
    return normalize(pixels, image_cfg.normalization)


def _check_normalization(image_cfg: ImageConfig) -> None:
    if image_cfg.normalization not in NORMALIZATIONS:  # fail at trace time, not on the first image
        raise ValueError(f"unknown image normalization {image_cfg.normalization!r}; "
                         f"valid: {', '.join(NORMALIZATIONS)}")


def preprocess_image_bytes(image_bytes: tf.Tensor, image_cfg: ImageConfig) -> tf.Tensor:
    """Decodes one encoded image (scalar tf.string) to float32 [H, W, C].

    PNG, JPEG, GIF (first frame) and BMP are accepted, decoded by `decode_pixels` (the
    conversion's pixels: EXIF orientation, palettes, alpha, CMYK, 16 bits, the pixel limit),
    resized to `image_cfg.size` only when its size differs (the data contract stores
    images already at that size, so training pixels are exact), then
    normalised as `image_cfg.normalization` says (`normalize`).
    """
    _check_normalization(image_cfg)
    return _to_model_input(decode_pixels(image_bytes, image_cfg.channels), image_cfg)


def preprocess_image_batch(image_bytes: tf.Tensor, image_cfg: ImageConfig) -> tf.Tensor:
    """Batched `preprocess_image_bytes`: tf.string [N] (or [N, 1]) -> float32 [N, H, W, C].

    The same pixels, faster: PNG, BMP and EXIF-less JPEG files (every data-contract image) have
    their PNG / BMP sizes checked at once and decode through a short path; GIFs and JPEGs holding
    EXIF go through `decode_pixels`. The batch is split between the two and put back in order.
    """
    _check_normalization(image_cfg)
    height, width = image_cfg.size
    channels = image_cfg.channels
    flat = tf.reshape(image_bytes, [-1])
    full, check_pixels = split_for_decode(flat)
    part = tf.cast(full, tf.int32)
    plain_bytes, full_bytes = tf.dynamic_partition(flat, part, 2)
    plain_at, full_at = tf.dynamic_partition(tf.range(tf.size(flat)), part, 2)
    spec = tf.TensorSpec((height, width, channels), tf.float32)
    with tf.control_dependencies([check_pixels]):
        plain = tf.map_fn(lambda b: _to_model_input(decode_plain(b, channels), image_cfg), plain_bytes,
                          fn_output_signature=spec)
    every = tf.map_fn(lambda b: preprocess_image_bytes(b, image_cfg), full_bytes, fn_output_signature=spec)
    return tf.ensure_shape(tf.dynamic_stitch([plain_at, full_at], [plain, every]), (None, height, width, channels))
