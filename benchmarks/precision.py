"""train_mfu and train_bf16_speedup: the Trainer's model against this machine's arithmetic peak,
and what train.precision mixed_bfloat16 buys over float32.

The default config's training model (BKNet on 48x48 gray, 3 tasks, batch 32, the Trainer's
masked losses and optimizer: `make_training_model`) steps on one fixed batch of random images
whose tasks are mixed as the default sources mix them (as benchmarks/mtl_overhead.py does), so
the figures are the model's and not the input pipeline's (that one is
`train_input_vs_in_memory`, benchmarks/training.py).

  FLOPs per image  counted from the model's layers (`macs_per_image`): each Conv2D's output
                   positions x filters x kernel area x input channels (per group), each
                   depthwise convolution's positions x channels x kernel area, each Dense's
                   input x units (x positions for a Dense on a sequence); x 2 (a multiply and
                   an add) x 3 (forward, and the backward pass's gradients of the inputs and of
                   the weights, each a product of the forward's size). Batch norm, activations,
                   pooling and the optimizer are left out (elementwise, a few % of the matmul
                   FLOPs). BKNet at 48x48x1 with 3 tasks: 140.65 M MACs, 0.844 GFLOP per
                   training image.
  matmul peak      `tf.matmul` of two MATMUL_N x MATMUL_N matrices in the policy's compute
                   dtype (float32, bfloat16, float16), 2 n^3 FLOPs each, on the device the
                   model trains on.
  train_mfu        training FLOP/s (images/s x FLOPs per image) over the matmul FLOP/s of the
                   same dtype, for the default config's train.precision (`auto`: the policy it
                   resolves to on this machine); the
                   other policy's is printed and kept in the figure's detail.
  train_bf16_speedup  images/s under mixed_bfloat16 over float32, same model, batch and
                   weights initialisation. Only where train.precision `auto` would choose
                   mixed_bfloat16 (a CPU with AVX512_BF16 or AMX-BF16, a GPU of compute
                   capability >= 8.0); elsewhere skipped, with the reason printed.

Each round times, for each policy in turn (A B, then B A), its matmul then STEPS training
steps, so a policy's images/s and its matmul peak are measured seconds apart; every figure is
the median of the rounds' ratios, so a burst of load from another job lands on one round, not
on the figure.

    python -m benchmarks --only precision
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import time

import numpy as np

from benchmarks.figures import Figure
from benchmarks.mtl_overhead import _batch as fixed_batch

STEPS, WARMUP, ROUNDS = 5, 2, 7
MATMUL_N, MATMUL_REPS = 2048, 3
MFU_GOAL = 0.5            # issue 28 measured ~0.7 for float32 BKNet on these 2 cores
BF16_SPEEDUP_GOAL = 1.4   # issue 28's bar
COMPUTE_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def _layers(model):
    """Every layer of `model`, those of nested models (a backbone) included."""
    import tf_keras as keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def macs_per_image(model) -> int:
    """Multiply-accumulates of one image's forward pass through the convolutions and dense
    layers of `model`, from each call's (node's) input and output shapes."""
    import tf_keras as keras

    L = keras.layers
    total = 0
    for layer in _layers(model):
        if not isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv1D, L.DepthwiseConv2D,
                                  L.SeparableConv1D, L.SeparableConv2D, L.Dense)):
            continue
        for node in layer._inbound_nodes:
            shape_in = [int(d) for d in node.input_shapes[1:]]
            out = [int(d) for d in node.output_shapes[1:]]
            positions, c_in, c_out = int(np.prod(out[:-1])), shape_in[-1], out[-1]
            if isinstance(layer, L.Dense):
                total += positions * c_in * layer.units
                continue
            area = int(np.prod(layer.kernel_size))
            if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
                # each input position's kernel is spread over the output
                total += int(np.prod(shape_in[:-1])) * area * c_in * c_out
            elif isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)):  # one filter per input channel
                total += positions * c_out * area
            elif isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):  # depthwise, then 1 x 1 pointwise
                total += positions * c_in * layer.depth_multiplier * (area + c_out)
            else:
                total += positions * c_out * area * c_in // layer.groups
    return total


def training_flops_per_image(model) -> int:
    """2 FLOPs per MAC, 3 passes' worth (forward; backward to inputs and to weights)."""
    return 2 * 3 * macs_per_image(model)


def matmul_flops(dtype: str, n: int = MATMUL_N, reps: int = MATMUL_REPS) -> float:
    """FLOP/s of `reps` n x n matmuls in `dtype` (after one untimed)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.cast(tf.constant(rng.normal(size=(n, n)), tf.float32), dtype)
    b = tf.cast(tf.constant(rng.normal(size=(n, n)), tf.float32), dtype)
    float(tf.matmul(a, b)[0, 0])
    start = time.perf_counter()
    for _ in range(reps):
        c = tf.matmul(a, b)
    float(c[0, 0])  # waits for the last one (a GPU runs them asynchronously)
    return reps * 2.0 * n ** 3 / (time.perf_counter() - start)


def train_step(config, policy: str):
    """The Trainer's training model of `config` built under `policy`, its compiled step and input
    iterator (the fixed batch, repeated), after WARMUP steps; and the family model."""
    import tensorflow as tf
    import tf_keras as keras

    from components.trainer.precision import policy_scope
    from components.trainer.training_model import make_training_model
    from models import get_builder

    config = dataclasses.replace(config, train=dataclasses.replace(config.train, precision=policy))
    keras.utils.set_random_seed(config.train.seed)  # the same initial weights under every policy
    with policy_scope(policy):
        model = get_builder(config.model.name)(config)
        training = make_training_model(model, config, total_steps=1000)
    iterator = iter(tf.data.Dataset.from_tensors(fixed_batch(config)).repeat())
    step = training.make_train_function()
    for _ in range(WARMUP):
        step(iterator)
    return step, iterator, model


def _seconds(step, iterator, steps: int = STEPS) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        out = step(iterator)
    float(out["loss"])  # waits for the last step
    return time.perf_counter() - start


def run(rounds: int = ROUNDS) -> list[Figure]:
    from components.trainer.precision import cpu_flags, detect, gpu_capabilities, resolve
    from config import load

    config = load("configs/default.yaml")
    batch = len(fixed_batch(config)[0]["image"])
    trainer = detect(config.train.precision).policy
    auto = resolve("auto", cpu_flags(), gpu_capabilities())
    bf16 = auto.policy == "mixed_bfloat16"
    policies = list(dict.fromkeys(["float32", trainer] + (["mixed_bfloat16"] if bf16 else [])))
    steps = {p: train_step(config, p) for p in policies}
    flops = training_flops_per_image(steps["float32"][2])
    print(f"  {config.model.name} {config.image.size[0]}x{config.image.size[1]}x{config.image.channels}, "
          f"{len(config.tasks)} tasks, batch {batch}: {macs_per_image(steps['float32'][2]) / 1e6:.2f} M MACs, "
          f"{flops / 1e9:.3f} GFLOP per training image", flush=True)

    seconds: dict[str, list[float]] = {p: [] for p in policies}
    peak: dict[str, list[float]] = {p: [] for p in policies}
    wall, cpu = time.perf_counter(), time.process_time()
    for r in range(rounds):
        for p in (policies if r % 2 == 0 else policies[::-1]):
            peak[p].append(matmul_flops(COMPUTE_DTYPES[p]))
            seconds[p].append(_seconds(*steps[p][:2]))
    # below 1, other jobs had part of the cores: the absolute rates are low, the paired ratios hold
    share = (time.process_time() - cpu) / (time.perf_counter() - wall) / (os.cpu_count() or 1)
    print(f"  this process had {share:.2f} of the machine's {os.cpu_count()} cores over the rounds", flush=True)
    images = STEPS * batch
    mfu = {p: statistics.median(images / s * flops / m for s, m in zip(seconds[p], peak[p])) for p in policies}
    detail = {p: {"images_per_s": round(images / statistics.median(seconds[p]), 1),
                  "train_gflops": round(images / statistics.median(seconds[p]) * flops / 1e9, 1),
                  "matmul_gflops": round(statistics.median(peak[p]) / 1e9, 1), "mfu": round(mfu[p], 3)}
              for p in policies}
    for p, d in detail.items():
        print(f"  {p}: {d['images_per_s']:,.1f} images/s = {d['train_gflops']:.1f} GFLOP/s training; "
              f"{COMPUTE_DTYPES[p]} matmul {MATMUL_N}^2 {d['matmul_gflops']:.1f} GFLOP/s; MFU {d['mfu']:.3f}",
              flush=True)
    shared = {"gflop_per_image": round(flops / 1e9, 4), "rounds": rounds, "steps_per_round": STEPS, "batch": batch,
              "cpu_share": round(share, 2)}
    figures = [Figure("train_mfu", round(mfu[trainer], 3), MFU_GOAL, "ratio", "higher",
                      detail={"policy": trainer, **shared, **detail})]
    if bf16:
        speedup = statistics.median(a / b for a, b in zip(seconds["float32"], seconds["mixed_bfloat16"]))
        print(f"  mixed_bfloat16 over float32: {speedup:.2f}x (median of {rounds} rounds' ratios; auto: {auto.reason})",
              flush=True)
        figures.append(Figure("train_bf16_speedup", round(speedup, 3), BF16_SPEEDUP_GOAL, "x", "higher",
                              detail={"auto": auto.reason, **shared}))
    else:
        print(f"  [skip] train_bf16_speedup: bfloat16 is not fast here ({auto.reason}); "
              f"train.precision auto chooses {auto.policy}", flush=True)
    return figures
