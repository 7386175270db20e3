"""How the tasks share the trunk's features (`model.sharing`), between a family's trunk and its heads.

  hard   every task's head reads the trunk's features (hard parameter sharing)
  mmoe   Ma et al. 2018, "Modeling Task Relationships in Multi-task Learning with
         Multi-gate Mixture-of-Experts": `experts` shared experts (Dense + ReLU, `expert_units`
         wide) on the features; each task mixes them with its own softmax gate
  cgc    Tang et al. 2020, "Progressive Layered Extraction" (PLE), one level: `experts`
         shared experts plus `task_experts` experts of each task's own; a task's gate mixes
         its own and the shared ones
  ple    `levels` CGC levels stacked: every level but the last also mixes all experts
         with a shared gate into the next level's shared input

The experts sit after the family's shared trunk (BKNet's flattened blocks, a
backbone's pooled features), not K copies of the network. Each task's last gate is
a layer named `<task>_gate` (softmax over the experts it mixes), so the gradient
probe (components/trainer/gradient_probe.py) can log how much each task uses each
expert, and expert collapse shows. The saved model's inputs and outputs do not
change, so serving, TFMA and the report work as with `hard`.
"""
from __future__ import annotations

from typing import Sequence

import tf_keras as keras

from config import Config


def _experts(x, n: int, units: int, prefix: str, reg) -> list:
    return [keras.layers.Dense(units, activation="relu", kernel_initializer="he_normal", kernel_regularizer=reg,
                               name=f"{prefix}expert{k}")(x) for k in range(n)]


def _mix(x, experts: Sequence, name: str):
    """softmax gate on `x` over `experts` -> their weighted sum."""
    gate = keras.layers.Dense(len(experts), activation="softmax", name=name)(x)
    # [batch, experts, units] from built-in layers (no Lambda: the model saves and loads as config)
    rows = [keras.layers.Reshape((1, e.shape[-1]), name=f"{name}_row{k}")(e) for k, e in enumerate(experts)]
    stacked = keras.layers.Concatenate(axis=1, name=f"{name}_stack")(rows)
    return keras.layers.Dot(axes=(1, 1), name=f"{name}_mix")([gate, stacked])


def task_features(features, config: Config, reg=None) -> dict:
    """{task: the features its head reads} for `config.model.sharing`."""
    s = config.model.sharing
    names = config.task_names
    if s.type == "hard":
        return {t: features for t in names}
    if s.type == "mmoe":
        experts = _experts(features, s.experts, s.expert_units, "", reg)
        return {t: _mix(features, experts, f"{t}_gate") for t in names}
    levels = 1 if s.type == "cgc" else s.levels
    shared_in, task_in = features, {t: features for t in names}
    for level in range(1, levels + 1):
        last = level == levels
        prefix = "" if last else f"level{level}_"
        shared = _experts(shared_in, s.experts, s.expert_units, f"{prefix}shared_", reg)
        own = {t: _experts(task_in[t], s.task_experts, s.expert_units, f"{prefix}{t}_", reg) for t in names}
        task_in = {t: _mix(task_in[t], own[t] + shared, f"{t}_gate" if last else f"{prefix}{t}_gate")
                   for t in names}
        if not last:  # the shared gate of a PLE level mixes every expert into the next level's shared input
            everything = shared + [e for t in names for e in own[t]]
            shared_in = _mix(shared_in, everything, f"{prefix}shared_gate")
    return task_in


def gate_layers(model: keras.Model, task_names: Sequence[str]) -> dict:
    """{task: its last gate layer} where the model has them (mmoe, cgc, ple), else {}."""
    names = {layer.name for layer in model.layers}
    return {t: model.get_layer(f"{t}_gate") for t in task_names if f"{t}_gate" in names}
