"""The TF model's weights, a fixed input and its outputs, for checking the PyTorch port.

Runs in the project's venv (TensorFlow), on the CPU:

    .venv/bin/python -m benchmarks.gpu.export_tf_reference /tmp/bknet_ref.npz

writes `<layer>/<weight index>` arrays (Keras layout), `input` (8 images, NHWC), the model's
outputs `out/<task>` (inference mode: moving batch-norm statistics, no dropout), the default
sources' task masks and random labels, and `loss`: the sum over tasks of the project's masked
losses (models/losses.py MaskedTaskLoss) of those outputs, as the Trainer adds them with the
default `train.mtl` / weighting (a plain sum). Also `params_total`, `params_trainable` and
`macs` (benchmarks/precision.macs_per_image), the figures benchmarks/gpu/bknet_torch.py
hard-codes. Then `bknet_torch.py --check /tmp/bknet_ref.npz` (any Python with torch) loads
the weights into the port and compares.
"""
from __future__ import annotations

import sys

import numpy as np


def main(path: str) -> None:
    import tensorflow as tf
    import tf_keras as keras

    from benchmarks.precision import macs_per_image
    from config import load
    from models import get_builder
    from models.losses import task_loss

    config = load("configs/default.yaml")
    keras.utils.set_random_seed(0)
    model = get_builder(config.model.name)(config)
    # Moving statistics away from 0 / 1 so the check covers them too
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            rng = np.random.default_rng(len(layer.name))
            layer.set_weights([gamma + rng.normal(0, 0.1, gamma.shape).astype("float32"),
                               rng.normal(0, 0.1, beta.shape).astype("float32"),
                               rng.normal(0, 0.5, mean.shape).astype("float32"),
                               rng.uniform(0.5, 2.0, var.shape).astype("float32")])
    rng = np.random.default_rng(0)
    batch = 8
    x = rng.normal(size=(batch, *config.image.size, config.image.channels)).astype("float32")
    on_first = np.arange(batch) % 3 == 0
    out = model(x, training=False)
    arrays = {"input": x}
    loss = 0.0
    for i, task in enumerate(config.tasks):
        labels = rng.integers(0, task.width, batch)
        mask = (on_first if i == 0 else ~on_first).astype("float32")
        onehot = np.eye(task.width, dtype="float32")[labels]
        loss += float(task_loss(task)(tf.constant(onehot), out[task.name], tf.constant(mask)))
        arrays[f"out/{task.name}"] = out[task.name].numpy()
        arrays[f"labels/{task.name}"] = labels
        arrays[f"mask/{task.name}"] = mask
    for layer in model.layers:
        for k, w in enumerate(layer.get_weights()):
            arrays[f"{layer.name}/{k}"] = w
    arrays["loss"] = np.float64(loss)
    arrays["params_total"] = np.int64(model.count_params())
    arrays["params_trainable"] = np.int64(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    arrays["macs"] = np.int64(macs_per_image(model))
    np.savez(path, **arrays)
    print(f"{path}: params {int(arrays['params_total']):,} (trainable {int(arrays['params_trainable']):,}), "
          f"{int(arrays['macs']):,} MACs per image, loss {loss:.6f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bknet_ref.npz")
