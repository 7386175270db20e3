"""`train.precision`: the Keras dtype policy the Trainer builds and trains the model under.

  float32         every layer computes and stores in float32
  mixed_bfloat16  layers compute in bfloat16, variables stay float32; bfloat16 has
                  float32's exponent range, so no loss scaling is needed
  mixed_float16   layers compute in float16, variables stay float32; Keras wraps the
                  optimizer in a LossScaleOptimizer (float16 gradients underflow without it)
  auto            (the default) chosen from the hardware the Trainer runs on (`resolve`):
                  - any GPU: mixed_bfloat16 when every GPU has compute capability >= 8.0
                    (Ampere and later run bfloat16 on their tensor cores); mixed_float16
                    from 7.0 (Volta, Turing: float16 tensor cores only); float32 below
                    7.0, where TF's own mixed-precision check warns that float16 runs slowly
                  - no GPU: mixed_bfloat16 on a CPU with AVX512_BF16 or AMX-BF16 (oneDNN's
                    bfloat16 kernels), else float32

Whatever the policy, every task's output layer computes in float32 (models/heads.py) and
the losses, the gradient methods' Gram matrices and solvers and the serving signatures
work in float32, so the saved model takes and returns the dtypes a float32 model does.
The choice is logged and written into the model's metadata (serving.METADATA_FILE), from
where the report and the model card show it.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterable, Iterator, NamedTuple, Sequence

from config import PRECISIONS

POLICIES = tuple(p for p in PRECISIONS if p != "auto")
# /proc/cpuinfo flag names of the CPU features oneDNN runs bfloat16 matmuls and convolutions on.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
BF16_GPU_CAPABILITY = (8, 0)
FP16_GPU_CAPABILITY = (7, 0)


class Precision(NamedTuple):
    setting: str  # train.precision as configured
    policy: str   # the Keras policy used: one of POLICIES
    reason: str   # why `auto` chose it (or "set in the config")

    def as_json(self) -> dict:
        return self._asdict()


def resolve(setting: str, cpu_flags: Iterable[str] = (),
            gpu_capabilities: Sequence[tuple[int, int]] = ()) -> Precision:
    """The policy for `setting` on a machine with these /proc/cpuinfo flags and these GPUs'
    compute capabilities (major, minor); pure, so `auto` is testable for any machine."""
    if setting not in PRECISIONS:
        raise ValueError(f"unknown train.precision {setting!r}; valid: {', '.join(PRECISIONS)}")
    if setting != "auto":
        return Precision(setting, setting, "set in the config")
    if gpu_capabilities:
        # a strategy may use every GPU: the slowest decides
        lowest = min(tuple(c) for c in gpu_capabilities)
        shown = f"{len(gpu_capabilities)} GPU(s), lowest compute capability {lowest[0]}.{lowest[1]}"
        if lowest >= BF16_GPU_CAPABILITY:
            return Precision(setting, "mixed_bfloat16", f"{shown} >= 8.0")
        if lowest >= FP16_GPU_CAPABILITY:
            return Precision(setting, "mixed_float16", f"{shown}: float16 tensor cores, no bfloat16")
        return Precision(setting, "float32", f"{shown} < 7.0: no float16 tensor cores")
    flags = set(cpu_flags)
    found = [f for f in CPU_BF16_FLAGS if f in flags]
    if found:
        return Precision(setting, "mixed_bfloat16", f"no GPU; the CPU has {', '.join(found)}")
    return Precision(setting, "float32", f"no GPU; the CPU has none of {', '.join(CPU_BF16_FLAGS)}")


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty where there is no such file (TF has
    no public check of the bfloat16 features: its cpu_feature_guard only logs)."""
    if not os.path.exists(path):
        return frozenset()
    flags: set[str] = set()
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                flags.update(value.split())
    return frozenset(flags)


def gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capability of each GPU TensorFlow sees ((0, 0) where TF does not say)."""
    import tensorflow as tf

    out = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        out.append(tuple(capability) if capability else (0, 0))
    return out


def detect(setting: str) -> Precision:
    """`resolve` on this machine (auto looks at the hardware; any other setting is kept)."""
    if setting != "auto":
        return resolve(setting)
    return resolve(setting, cpu_flags(), gpu_capabilities())


@contextlib.contextmanager
def policy_scope(policy: str) -> Iterator[None]:
    """Keras' global dtype policy set to `policy` inside, and put back as it was on leaving
    (also on an error), so code after the Trainer in the same process builds float32 layers."""
    import tf_keras as keras

    if policy not in POLICIES:
        raise ValueError(f"unknown dtype policy {policy!r}; valid: {', '.join(POLICIES)}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
