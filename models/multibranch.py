"""Multi-branch (seed 002): a separate convolutional tower per task, all from
the same input image, nothing shared but the input.

Each tower: blocks of `convs_per_block` 3x3 convolutions (ReLU, then batch
norm, as the seed orders them), a 2x2 max-pool and dropout per block; then
flatten, hidden dense layers (ReLU, then batch norm) and the task's output
layer (models/heads.py). Layers are prefixed with the task name
(`age_block1_conv1`, `age_dense1`, ...); the output is named the task.
The seed's age tower opens with a depthwise convolution and pools 3x3 first;
here every tower has one shape, overridable per task (`towers`).
"""
from __future__ import annotations

import tf_keras as keras

from config import Config
from models.heads import output_layer
from models.multibranch_params import resolve_params, tower
from models.tf_compat import skip_autograph_for_tf_keras

skip_autograph_for_tf_keras()  # tf_keras traces 20x faster (see models/tf_compat.py)


def build(config: Config) -> keras.Model:
    """One tower per task: input `image` [H, W, C] -> {task name: [width]}."""
    p = resolve_params(config.model.params, task_names=config.task_names)
    reg = keras.regularizers.L2(p["l2"]) if p["l2"] > 0 else None
    height, width = config.image.size
    image = keras.Input(shape=(height, width, config.image.channels), name="image")

    outputs = {}
    for task in config.tasks:
        shape, name = tower(p, task.name), task.name
        x = image
        for b, filters in enumerate(shape["filters"], start=1):
            for c in range(1, shape["convs_per_block"] + 1):
                x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_regularizer=reg,
                                        name=f"{name}_block{b}_conv{c}")(x)
                x = keras.layers.BatchNormalization(momentum=p["bn_momentum"], name=f"{name}_block{b}_bn{c}")(x)
            x = keras.layers.MaxPool2D(2, padding="same", name=f"{name}_block{b}_pool")(x)
            x = keras.layers.Dropout(p["dropout"], name=f"{name}_block{b}_dropout")(x)
        x = keras.layers.Flatten(name=f"{name}_flatten")(x)
        for d, units in enumerate(shape["dense"], start=1):
            x = keras.layers.Dense(units, activation="relu", kernel_regularizer=reg, name=f"{name}_dense{d}")(x)
            x = keras.layers.BatchNormalization(momentum=p["bn_momentum"], name=f"{name}_dense{d}_bn")(x)
        outputs[name] = output_layer(task, reg)(x)
    return keras.Model(inputs=image, outputs=outputs, name="multibranch")
