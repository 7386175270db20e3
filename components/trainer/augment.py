"""Training-only image augmentation (`train.augment`), on batches of already
normalised pixels inside the tf.data pipeline (components/trainer/input_pipeline.py).

Never applied to evaluation or serving: only `make_dataset(training=True)`
calls it, and the serving signatures call models/preprocess.py alone.

Every random draw is a stateless op seeded by (train.seed, batch number), so
the same seed gives the same augmented batches, whatever the parallelism.

  flip        mirror left-right with probability 1/2
  crop        cut a random window, `crop` smaller than the image (a fraction
              of each side length, or whole pixels), and resize it back to
              the image size (bilinear)
  brightness  add one delta per image, uniform in [-b, b] times the full
              pixel range (b = 0.1: up to 25.5 grey levels), then clip to
              the range pixels 0..255 normalise to
"""
from __future__ import annotations

import tensorflow as tf

from config import AugmentConfig, ImageConfig
from models.preprocess import pixel_range


def is_enabled(cfg: AugmentConfig) -> bool:
    return bool(cfg.flip or cfg.crop or cfg.brightness)


def window(size: int, crop: float) -> int:
    """Side length of the crop window: `crop` pixels less (int) or `crop` of the side less (float)."""
    if isinstance(crop, int):
        return max(size - crop, 1)
    return max(int(round(size * (1.0 - crop))), 1)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig, image_cfg: ImageConfig) -> tf.Tensor:
    """images [N, H, W, C] normalised as image_cfg says; seed: int64 [2]."""
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    n = tf.shape(images)[0]
    height, width = image_cfg.size
    if cfg.flip:
        flip = tf.random.stateless_uniform([n], seeds[0]) < 0.5
        images = tf.where(flip[:, None, None, None], tf.image.flip_left_right(images), images)
    if cfg.crop:
        h, w = window(height, cfg.crop), window(width, cfg.crop)
        # top-left corner, whole pixels, uniform over the places the window fits
        top = tf.random.stateless_uniform([n], seeds[1], 0, height - h + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform([n], tf.reverse(seeds[1], [0]), 0, width - w + 1, dtype=tf.int32)
        # crop_and_resize's box corners are pixel centres as fractions of (side - 1)
        y0 = tf.cast(top, tf.float32) / max(height - 1, 1)
        x0 = tf.cast(left, tf.float32) / max(width - 1, 1)
        boxes = tf.stack([y0, x0, y0 + (h - 1) / max(height - 1, 1), x0 + (w - 1) / max(width - 1, 1)], axis=1)
        images = tf.image.crop_and_resize(images, boxes, tf.range(n), (height, width), method="bilinear")
    if cfg.brightness:
        low, high = pixel_range(image_cfg.normalization, image_cfg.channels)
        delta = tf.random.stateless_uniform([n], seeds[2], -cfg.brightness, cfg.brightness)
        images = tf.clip_by_value(images + delta[:, None, None, None] * (high - low), low, high)
    return images
