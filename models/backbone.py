"""Backbone (seeds 001, 004): a keras.applications network without its top,
shared by every task, and one head per task.

    image [H, W, C] -> (gray: tiled to 3 channels) -> backbone (nested model
    named `backbone`) -> pooled features -> per task: dropout, hidden dense
    layers, the output layer named the task (models/heads.py)

Weights never come from the internet: the backbone is built with
weights=None and, when `model.params.weights` names a file, loaded from it
(`load_weights`: the `*_notop.h5` files keras.applications publishes, or
any file saved with `save_weights` from the same backbone). Pixels arrive
already normalised the backbone's way (image.normalization `caffe` or `tf`,
models/preprocess.py), so training and serving share one preprocessing.

With pretrained weights the backbone runs in inference mode (training=False:
batch norm keeps its ImageNet statistics, the Keras transfer-learning
recipe), frozen or fine-tuned alike; from random weights it trains normally.
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from config import Config
from models.backbone_params import BACKBONES, resolve_params
from models.heads import output_layer
from models.preprocess import caffe_gray_offsets
from models.sharing import task_features
from models.tf_compat import skip_autograph_for_tf_keras

skip_autograph_for_tf_keras()  # tf_keras traces 20x faster (see models/tf_compat.py)

BACKBONE_LAYER = "backbone"


def make_backbone(name: str, height: int, width: int, pooling: str | None) -> keras.Model:
    """The keras.applications network `name` without its top, random weights,
    3-channel input, renamed `backbone`."""
    constructor, _, min_side = BACKBONES[name]
    if min(height, width) < min_side:
        raise ValueError(f"config key 'image.size': {name} needs at least {min_side}x{min_side} pixels, "
                         f"received {[height, width]}")
    base = getattr(keras.applications, constructor)(
        include_top=False, weights=None, input_shape=(height, width, 3),
        pooling=None if pooling == "flatten" else pooling)
    base._name = BACKBONE_LAYER  # one name for every family member (get_layer, weight files)
    return base


def load_backbone_weights(base: keras.Model, path: str, backbone: str) -> None:
    """Loads a local weights file into `base`; a missing or mismatched file fails naming it."""
    if not (tf.io.gfile.exists(path) or tf.io.gfile.exists(path + ".index")):
        raise ValueError(f"config key 'model.params.weights': no such file {path!r}")
    try:
        base.load_weights(path)
    except (ValueError, OSError, tf.errors.OpError) as e:
        raise ValueError(f"config key 'model.params.weights': {path!r} does not fit {backbone} without its top "
                         f"(include_top=False): {e}") from e


def set_trainable(base: keras.Model, trainable: bool, fine_tune_last: int) -> None:
    """Frozen, fully trainable, or only the last `fine_tune_last` layers of `base.layers` trainable."""
    base.trainable = trainable
    if trainable and fine_tune_last:
        for layer in base.layers[:-fine_tune_last]:
            layer.trainable = False


def build(config: Config) -> keras.Model:
    """Backbone + one head per task: input `image` [H, W, C] -> {task name: [width]}."""
    p = resolve_params(config.model.params, task_names=config.task_names,
                       normalization=config.image.normalization)
    height, width = config.image.size
    image = keras.Input(shape=(height, width, config.image.channels), name="image")
    x = image
    if config.image.channels == 1:
        # ImageNet backbones take RGB: gray -> (g, g, g).
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
        if config.image.normalization == "caffe":
            # caffe gray is g - mean(means); add each channel's remainder (see models/preprocess.py)
            x = keras.layers.Rescaling(1.0, offset=list(caffe_gray_offsets()), name="gray_to_caffe_bgr")(x)

    base = make_backbone(p["backbone"], height, width, p["pooling"])
    pretrained = p["weights"] is not None
    if pretrained:
        load_backbone_weights(base, p["weights"], p["backbone"])
    set_trainable(base, p["trainable"], p["fine_tune_last"])
    if p["bn_momentum"] is not None:
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(p["bn_momentum"])
    features = base(x, training=False) if pretrained else base(x)
    if p["pooling"] == "flatten":
        features = keras.layers.Flatten(name="flatten")(features)

    per_task = task_features(features, config)  # model.sharing (models/sharing.py)
    outputs = {}
    for task in config.tasks:
        y = keras.layers.Dropout(p["dropout"], name=f"{task.name}_dropout")(per_task[task.name])
        for i, units in enumerate(p["dense"], start=1):
            y = keras.layers.Dense(units, activation="relu", name=f"{task.name}_dense{i}")(y)
        outputs[task.name] = output_layer(task)(y)
    return keras.Model(inputs=image, outputs=outputs, name=f"backbone_{p['backbone']}")
