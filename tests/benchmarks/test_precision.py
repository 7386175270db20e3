"""The FLOPs train_mfu divides by (benchmarks/precision.py), counted from the layers: exact
multiply-accumulates of small models worked by hand, and of the default BKNet."""
import pytest
import tf_keras as keras

from benchmarks.precision import macs_per_image, training_flops_per_image
from config import load
from models import get_builder

L = keras.layers


def _model(shape, *layers):
    x = inputs = keras.Input(shape)
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("shape, layers, macs", [
    # 4x4 positions x 2 filters x 3x3 x 1 channel
    ((4, 4, 1), [L.Conv2D(2, 3, padding="same")], 16 * 2 * 9 * 1),
    # 1x1 convolution in 2 groups: each filter sees 4 / 2 channels
    ((4, 4, 4), [L.Conv2D(6, 1, groups=2)], 16 * 6 * 1 * 2),
    # valid 3x3 on 4x4: 2x2 positions, 2 channels x 2 filters each, one channel per filter
    ((4, 4, 2), [L.DepthwiseConv2D(3, depth_multiplier=2)], 4 * 4 * 9),
    # depthwise 3x3 on 3 channels, then 1x1 from 3 to 5 channels, at 16 positions
    ((4, 4, 3), [L.SeparableConv2D(5, 3, padding="same")], 16 * 3 * 9 + 16 * 3 * 5),
    # each of the 2x2 input positions spreads a 3x3 kernel, 3 channels in, 4 out
    ((2, 2, 3), [L.Conv2DTranspose(4, 3, strides=2, padding="same")], 4 * 9 * 3 * 4),
    # a Dense on 5 positions of 8 features; pooling, batch norm and activations count nothing
    ((5, 8), [L.Dense(4), L.BatchNormalization(), L.ReLU()], 5 * 8 * 4),
    ((4, 4, 1), [L.Conv2D(2, 3, padding="same"), L.MaxPool2D(2), L.Flatten(), L.Dense(3)],
     16 * 2 * 9 + 8 * 3),
])
def test_macs_of_small_models(shape, layers, macs):
    model = _model(shape, *layers)
    assert macs_per_image(model) == macs
    assert training_flops_per_image(model) == 6 * macs


def test_a_nested_model_is_counted_through():
    inner = _model((4, 4, 1), L.Conv2D(2, 3, padding="same"))
    assert macs_per_image(_model((4, 4, 1), inner, L.Flatten(), L.Dense(3))) == 16 * 2 * 9 + 32 * 3


def test_the_default_bknet():
    # convolutions (positions x filters x 3x3 x channels in): 48^2 x 32 x 9 x (1 + 32), 24^2 x 64 x 9 x
    # (32 + 64), 12^2 x 128 x 9 x (64 + 128), 6^2 x 256 x 9 x (128 + 2 x 256); heads: per task
    # 2304 x 256 + 256 x 256, then 256 x (2 + 2 + 5) for smile, gender, age
    config = load("configs/default.yaml")
    model = get_builder(config.model.name)(config)
    convs = (2304 * 32 * 9 * 33 + 576 * 64 * 9 * 96 + 144 * 128 * 9 * 192 + 36 * 256 * 9 * 640)
    heads = 3 * (2304 * 256 + 256 * 256) + 256 * 9
    assert convs + heads == 140_650_752
    assert macs_per_image(model) == 140_650_752
