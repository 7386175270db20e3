"""Multi-branch (seed 002): a separate convolutional tower per task, all from
the same input image, nothing shared but the input.

Each tower: blocks of `convs_per_block` 3x3 convolutions (ReLU, then batch
norm, as the seed orders them), a 2x2 max-pool and dropout per block; then
flatten, hidden dense layers (ReLU, then batch norm) and the task's output
layer (models/heads.py). Layers are prefixed with the task name
(`age_block1_conv1`, `age_dense1`, ...); the output is named the task.
The seed's age tower opens with a depthwise convolution and pools 3x3 first;
here every tower has one shape, overridable per task (`towers`).

`stem` (default none) puts shared blocks (`stem_block<b>_...`) between the input and
the towers, so the towers split after a shared stem.

`model.sharing: {type: cross_stitch}` (Misra et al. 2016, models/cross_stitch.py):
the towers are the paper's columns, and after every block and every hidden dense
layer a cross-stitch unit (`cross_stitch_block<b>`, `cross_stitch_dense<d>`) mixes
the columns' activations with a learned T x T matrix per channel.
"""
from __future__ import annotations

import tf_keras as keras

from config import Config
from models.cross_stitch import CrossStitch
from models.heads import output_layer
from models.multibranch_params import resolve_params, tower
from models.tf_compat import skip_autograph_for_tf_keras

skip_autograph_for_tf_keras()  # tf_keras traces 20x faster (see models/tf_compat.py)


def _block(x, name: str, b: int, filters: int, convs: int, p: dict, reg):
    for c in range(1, convs + 1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_regularizer=reg,
                                name=f"{name}_block{b}_conv{c}")(x)
        x = keras.layers.BatchNormalization(momentum=p["bn_momentum"], name=f"{name}_block{b}_bn{c}")(x)
    x = keras.layers.MaxPool2D(2, padding="same", name=f"{name}_block{b}_pool")(x)
    return keras.layers.Dropout(p["dropout"], name=f"{name}_block{b}_dropout")(x)


def _dense(x, name: str, d: int, units: int, p: dict, reg):
    x = keras.layers.Dense(units, activation="relu", kernel_regularizer=reg, name=f"{name}_dense{d}")(x)
    return keras.layers.BatchNormalization(momentum=p["bn_momentum"], name=f"{name}_dense{d}_bn")(x)


def _stitched(stem, config: Config, p: dict, reg) -> dict:
    """The columns with a cross-stitch unit after every stage; towers have one shape
    (checked when the config loads, multibranch_params.check_sharing)."""
    names = config.task_names
    shape = tower(p, names[0])
    xs = {t: stem for t in names}
    stages = ([("block", b, f) for b, f in enumerate(shape["filters"], start=1)] + [("flatten", 0, 0)]
              + [("dense", d, u) for d, u in enumerate(shape["dense"], start=1)])
    for kind, i, width in stages:
        if kind == "flatten":
            xs = {t: keras.layers.Flatten(name=f"{t}_flatten")(xs[t]) for t in names}
            continue
        if kind == "block":
            xs = {t: _block(xs[t], t, i, width, tower(p, t)["convs_per_block"], p, reg) for t in names}
        else:
            xs = {t: _dense(xs[t], t, i, width, p, reg) for t in names}
        mixed = CrossStitch(lr_scale=p["stitch_lr_scale"], name=f"cross_stitch_{kind}{i}")([xs[t] for t in names])
        xs = dict(zip(names, mixed))
    return xs


def build(config: Config) -> keras.Model:
    """One tower per task: input `image` [H, W, C] -> {task name: [width]}."""
    p = resolve_params(config.model.params, task_names=config.task_names)
    reg = keras.regularizers.L2(p["l2"]) if p["l2"] > 0 else None
    height, width = config.image.size
    image = keras.Input(shape=(height, width, config.image.channels), name="image")
    stem = image
    for b, filters in enumerate(p["stem"], start=1):  # shared by every tower
        stem = _block(stem, "stem", b, filters, p["convs_per_block"], p, reg)

    if config.model.sharing.type == "cross_stitch":
        features = _stitched(stem, config, p, reg)
        outputs = {t.name: output_layer(t, reg)(features[t.name]) for t in config.tasks}
        return keras.Model(inputs=image, outputs=outputs, name="multibranch")
    outputs = {}
    for task in config.tasks:
        shape, name = tower(p, task.name), task.name
        x = stem
        for b, filters in enumerate(shape["filters"], start=1):
            x = _block(x, name, b, filters, shape["convs_per_block"], p, reg)
        x = keras.layers.Flatten(name=f"{name}_flatten")(x)
        for d, units in enumerate(shape["dense"], start=1):
            x = _dense(x, name, d, units, p, reg)
        outputs[name] = output_layer(task, reg)(x)
    return keras.Model(inputs=image, outputs=outputs, name="multibranch")
