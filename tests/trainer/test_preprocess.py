"""The shared image preprocessing, eagerly and inside tf.data.map, with exact pixels."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from components.preprocess import preprocess_image_batch, preprocess_image_bytes
from pipeline.config import ImageConfig

from trainer_testdata import png_bytes

PIXELS = np.array([[0, 128, 255], [1, 64, 200]], np.uint8)  # 2 x 3 gray
CENTERED = ImageConfig(size=(2, 3), channels=1, normalization="centered")
# (x - 128) / 255: 0 -> -0.501961, 128 -> 0, 255 -> 0.498039, 1 -> -0.498039, 64 -> -0.250980, 200 -> 0.282353
EXPECTED_CENTERED = np.array([[-0.501961, 0.0, 0.498039], [-0.498039, -0.250980, 0.282353]], np.float32)[..., None]


def test_centered_eager_exact_pixels():
    out = preprocess_image_bytes(tf.constant(png_bytes(PIXELS)), CENTERED)
    assert out.dtype == tf.float32 and out.shape == (2, 3, 1)
    np.testing.assert_allclose(out.numpy(), EXPECTED_CENTERED, atol=1e-6)


def test_unit_normalisation():
    cfg = dataclasses.replace(CENTERED, normalization="unit")
    out = preprocess_image_bytes(tf.constant(png_bytes(PIXELS)), cfg)
    # x / 255: 255 -> 1.0, 128 -> 0.501961, 64 -> 0.250980
    np.testing.assert_allclose(out.numpy()[..., 0], PIXELS / 255.0, atol=1e-6)
    assert out.numpy()[0, 2, 0] == 1.0


def test_inside_tf_data_map_equals_eager():
    images = [png_bytes(PIXELS), png_bytes(255 - PIXELS)]
    eager = np.stack([preprocess_image_bytes(tf.constant(b), CENTERED).numpy() for b in images])
    per_example = tf.data.Dataset.from_tensor_slices(images).map(lambda b: preprocess_image_bytes(b, CENTERED))
    batched = tf.data.Dataset.from_tensor_slices(images).batch(2).map(lambda b: preprocess_image_batch(b, CENTERED))
    assert per_example.element_spec.shape == (2, 3, 1)  # static shape survives graph mode
    np.testing.assert_array_equal(np.stack(list(per_example.as_numpy_iterator())), eager)
    np.testing.assert_array_equal(next(batched.as_numpy_iterator()), eager)
    # 255 - 0 = 255 -> 0.498039 at [1][0, 0]
    assert eager[1, 0, 0, 0] == pytest.approx(0.498039, abs=1e-6)


def test_resizes_only_when_the_size_differs():
    const = np.full((4, 6), 100, np.uint8)
    out = preprocess_image_bytes(tf.constant(png_bytes(const)), CENTERED)  # 4x6 -> 2x3
    # bilinear resize of a constant image keeps it: (100 - 128) / 255 = -0.109804
    np.testing.assert_allclose(out.numpy(), np.full((2, 3, 1), -0.109804, np.float32), atol=1e-6)


def test_channel_conversion_both_ways():
    gray_rgb = np.stack([PIXELS] * 3, axis=-1)  # R = G = B
    to_gray = preprocess_image_bytes(tf.constant(png_bytes(gray_rgb)), CENTERED)
    np.testing.assert_allclose(to_gray.numpy(), EXPECTED_CENTERED, atol=1e-6)
    rgb_cfg = dataclasses.replace(CENTERED, channels=3)
    to_rgb = preprocess_image_bytes(tf.constant(png_bytes(PIXELS)), rgb_cfg)
    assert to_rgb.shape == (2, 3, 3)
    np.testing.assert_allclose(to_rgb.numpy(), np.repeat(EXPECTED_CENTERED, 3, axis=-1), atol=1e-6)


def test_batch_accepts_n_by_1_and_empty_batches():
    images = tf.constant([[png_bytes(PIXELS)]])  # [1, 1], as a raw spec of shape [1] would give
    np.testing.assert_allclose(preprocess_image_batch(images, CENTERED).numpy()[0], EXPECTED_CENTERED, atol=1e-6)
    assert preprocess_image_batch(tf.constant([], tf.string), CENTERED).shape == (0, 2, 3, 1)


def test_bad_normalisation_and_bad_bytes_fail():
    with pytest.raises(ValueError, match="unknown image normalization 'zscore'; valid: centered, unit"):
        preprocess_image_bytes(tf.constant(png_bytes(PIXELS)), dataclasses.replace(CENTERED, normalization="zscore"))
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocess_image_bytes(tf.constant(b"not an image"), CENTERED)
