"""The one image preprocessing function: encoded bytes -> normalised float32 pixels.

Transform's `preprocessing_fn` (hence training and the `serving_default` /
`transform_features` signatures) and the `serving_image` signature all call
this module, so a model never sees pixels prepared two different ways.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

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


def preprocess_image_bytes(image_bytes: tf.Tensor, image_cfg: ImageConfig) -> tf.Tensor:
    """Decodes one encoded image (scalar tf.string) to float32 [H, W, C].

    PNG, JPEG, GIF (first frame) and BMP are accepted. The image is converted
    to `image_cfg.channels` (RGB -> gray and back as TF decodes), resized to
    `image_cfg.size` only when its size differs (the data contract stores
    images already at that size, so training pixels are exact), then
    normalised as `image_cfg.normalization` says (`normalize`).
    """
    height, width = image_cfg.size
    channels = image_cfg.channels
    if image_cfg.normalization not in NORMALIZATIONS:  # fail at trace time, not on the first image
        raise ValueError(f"unknown image normalization {image_cfg.normalization!r}; "
                         f"valid: {', '.join(NORMALIZATIONS)}")
    image = tf.io.decode_image(image_bytes, channels=channels, dtype=tf.uint8, expand_animations=False)
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
