"""The shared image preprocessing, eagerly and inside tf.data.map, with exact pixels."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from config import ImageConfig
from models.preprocess import preprocess_image_batch, preprocess_image_bytes
from tests.components.trainer.helpers import png_bytes

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
    with pytest.raises(ValueError, match="unknown image normalization 'zscore'; valid: centered, unit, caffe, tf"):
        preprocess_image_bytes(tf.constant(png_bytes(PIXELS)), dataclasses.replace(CENTERED, normalization="zscore"))
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocess_image_bytes(tf.constant(b"not an image"), CENTERED)


RGB = np.array([[[0, 128, 255], [10, 20, 30]], [[255, 255, 255], [1, 2, 3]]], np.uint8)  # 2 x 2 RGB


def test_backbone_modes_equal_keras_applications_preprocess_input():
    import tf_keras as keras

    # caffe (VGG16, ResNet50): RGB -> BGR minus the ImageNet means (103.939, 116.779, 123.68)
    caffe = preprocess_image_bytes(tf.constant(png_bytes(RGB)), ImageConfig(size=(2, 2), channels=3,
                                                                           normalization="caffe"))
    np.testing.assert_allclose(caffe.numpy(), keras.applications.vgg16.preprocess_input(RGB.astype("float32")),
                               atol=1e-4)
    # pixel (0, 0) = RGB (0, 128, 255) -> BGR (255 - 103.939, 128 - 116.779, 0 - 123.68)
    np.testing.assert_allclose(caffe.numpy()[0, 0], [151.061, 11.221, -123.68], atol=1e-4)
    # tf (MobileNetV2, InceptionResNetV2): x / 127.5 - 1
    tf_mode = preprocess_image_bytes(tf.constant(png_bytes(RGB)), ImageConfig(size=(2, 2), channels=3,
                                                                             normalization="tf"))
    np.testing.assert_allclose(tf_mode.numpy(), keras.applications.mobilenet_v2.preprocess_input(
        RGB.astype("float32")), atol=1e-6)
    # the same inside tf.data.map (graph mode)
    ds = tf.data.Dataset.from_tensors(png_bytes(RGB)).map(
        lambda b: preprocess_image_bytes(b, ImageConfig(size=(2, 2), channels=3, normalization="caffe")))
    np.testing.assert_array_equal(next(ds.as_numpy_iterator()), caffe.numpy())


def test_gray_caffe_centres_on_the_mean_of_the_means_and_ranges_are_exact():
    from models.preprocess import CAFFE_GRAY_MEAN, caffe_gray_offsets, pixel_range

    # (103.939 + 116.779 + 123.68) / 3 = 114.799333
    assert CAFFE_GRAY_MEAN == pytest.approx(114.799333, abs=1e-6)
    gray = preprocess_image_bytes(tf.constant(png_bytes(PIXELS)), ImageConfig(size=(2, 3), normalization="caffe"))
    np.testing.assert_allclose(gray.numpy()[..., 0], PIXELS - 114.799333, atol=1e-4)
    # adding the offsets to the tiled gray gives caffe's per-channel centring: 114.799333 - 103.939 = 10.860333, ...
    np.testing.assert_allclose(caffe_gray_offsets(), [10.860333, -1.979667, -8.880667], atol=1e-6)
    # what pixels 0 and 255 become, per channel
    low, high = pixel_range("centered", 1)
    np.testing.assert_allclose([low.numpy()[0], high.numpy()[0]], [-128 / 255, 127 / 255], atol=1e-7)
    low, high = pixel_range("caffe", 3)  # BGR order
    np.testing.assert_allclose(low.numpy(), [-103.939, -116.779, -123.68], atol=1e-4)
    np.testing.assert_allclose(high.numpy(), [151.061, 138.221, 131.32], atol=1e-4)
    low, high = pixel_range("tf", 1)
    assert (low.numpy()[0], high.numpy()[0]) == (-1.0, 1.0)


def test_config_accepts_exactly_the_normalisations_preprocess_knows(make_config):
    from config import NORMALIZATIONS, ConfigError

    assert NORMALIZATIONS == ("centered", "unit", "caffe", "tf")
    for name in NORMALIZATIONS:  # each one preprocesses
        cfg = make_config(size=(2, 3), normalization=name)
        assert preprocess_image_bytes(tf.constant(png_bytes(PIXELS)), cfg.image).shape == (2, 3, 1)
    with pytest.raises(ConfigError, match=r"'image.normalization': received 'torch'; valid: centered, unit, caffe, tf"):
        make_config(normalization="torch")
