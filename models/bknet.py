"""BKNet (seed 000): a shared 4-block VGG trunk and one small branch per task.

Trunk: blocks of 32, 64, 128, 256 filters with 2, 2, 2, 3 convolutions
(3x3, same padding), each convolution followed by batch norm and ReLU; each
block ends with a 2x2 max-pool and dropout (`conv_dropout`). Branch per
task, from the flattened trunk: FC 256 -> FC 256 (ReLU then dropout, no
batch norm, as the seed's `utils.FC`) -> an output layer named exactly the
task: softmax (binary, 2 slots / multiclass), sigmoid per label
(multilabel) or linear 1 (regression). With `l2` > 0 every kernel carries L2
weight decay (off by default: see models/bknet_params.py).
"""
from __future__ import annotations

import tf_keras as keras

from config import Config
from models.bknet_params import resolve_params
from models.heads import output_layer
from models.sharing import task_features
from models.tf_compat import skip_autograph_for_tf_keras

skip_autograph_for_tf_keras()  # tf_keras traces 20x faster (see models/tf_compat.py)

BLOCKS: tuple[tuple[int, int], ...] = ((32, 2), (64, 2), (128, 2), (256, 3))  # (filters, convolutions)
FC_UNITS = 256


def build(config: Config) -> keras.Model:
    """BKNet for `config`: input `image` [H, W, C] -> {task name: [width]}."""
    p = resolve_params(config.model.params)
    reg = keras.regularizers.L2(p["l2"]) if p["l2"] > 0 else None
    height, width = config.image.size
    image = keras.Input(shape=(height, width, config.image.channels), name="image")

    x = image
    for b, (filters, convs) in enumerate(BLOCKS, start=1):
        for c in range(1, convs + 1):
            x = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer="he_normal",
                                    kernel_regularizer=reg, name=f"block{b}_conv{c}")(x)
            x = keras.layers.BatchNormalization(momentum=p["bn_momentum"], epsilon=1e-3,
                                                name=f"block{b}_bn{c}")(x)
            x = keras.layers.ReLU(name=f"block{b}_relu{c}")(x)
        x = keras.layers.MaxPool2D(2, padding="same", name=f"block{b}_pool")(x)
        x = keras.layers.Dropout(p["conv_dropout"], name=f"block{b}_dropout")(x)
    features = keras.layers.Flatten(name="flatten")(x)
    per_task = task_features(features, config, reg)  # model.sharing (models/sharing.py)
    outputs = {}
    for task in config.tasks:
        y = per_task[task.name]
        for i in (1, 2):
            y = keras.layers.Dense(FC_UNITS, activation="relu", kernel_initializer="he_normal",
                                   kernel_regularizer=reg, name=f"{task.name}_fc{i}")(y)
            y = keras.layers.Dropout(p["dropout"], name=f"{task.name}_dropout{i}")(y)
        outputs[task.name] = output_layer(task, reg)(y)
    return keras.Model(inputs=image, outputs=outputs, name="bknet")
