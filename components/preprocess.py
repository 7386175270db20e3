"""The one image preprocessing function: encoded bytes -> normalised float32 pixels.

Transform's `preprocessing_fn` (hence training and the `serving_default` /
`transform_features` signatures) and the `serving_image` signature all call
this module, so a model never sees pixels prepared two different ways.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

from pipeline.config import ImageConfig  # noqa: E402

NORMALIZATIONS = ("centered", "unit")


def _normalise(pixels: tf.Tensor, normalization: str) -> tf.Tensor:
    if normalization == "centered":
        # Seed 000 (BKNet): (x - 128) / 255, pixels land in [-0.502, 0.498].
        return (pixels - 128.0) / 255.0
    if normalization == "unit":
        return pixels / 255.0
    raise ValueError(f"unknown image normalization {normalization!r}; valid: {', '.join(NORMALIZATIONS)}")


def preprocess_image_bytes(image_bytes: tf.Tensor, image_cfg: ImageConfig) -> tf.Tensor:
    """Decodes one encoded image (scalar tf.string) to float32 [H, W, C].

    PNG, JPEG, GIF (first frame) and BMP are accepted. The image is converted
    to `image_cfg.channels` (RGB -> gray and back as TF decodes), resized to
    `image_cfg.size` only when its size differs (the data contract stores
    images already at that size, so training pixels are exact), then
    normalised as `image_cfg.normalization` says.
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
    return _normalise(pixels, image_cfg.normalization)


def preprocess_image_batch(image_bytes: tf.Tensor, image_cfg: ImageConfig) -> tf.Tensor:
    """Batched `preprocess_image_bytes`: tf.string [N] (or [N, 1]) -> float32 [N, H, W, C]."""
    height, width = image_cfg.size
    flat = tf.reshape(image_bytes, [-1])
    return tf.map_fn(
        lambda b: preprocess_image_bytes(b, image_cfg),
        flat,
        fn_output_signature=tf.TensorSpec((height, width, image_cfg.channels), tf.float32),
    )
