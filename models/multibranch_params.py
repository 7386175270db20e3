"""Multi-branch's `model.params`: names, defaults and validation, free of
TensorFlow so config loading can check them (config.parse calls
models.validate_params).

Defaults are seed 002's gender / race tower: three blocks of one 3x3
convolution (16, 32, 32 filters), then one hidden dense layer of 128.
`towers` overrides the tower shape per task, e.g. a deeper tower for age:
    towers: {age: {filters: [32, 64, 128, 256], dense: [256]}}
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from config.errors import fail

KEY = "model.params."  # the params' key path in the config, for error messages

TOWER_KEYS = ("filters", "convs_per_block", "dense")
MAX_WIDTH = 8192  # filters / units of one layer
MAX_CONVS_PER_BLOCK = 16

DEFAULT_PARAMS: dict[str, Any] = {
    "filters": [16, 32, 32],   # one block per entry: conv(s) -> BN -> 2x2 max-pool -> dropout
    "convs_per_block": 1,      # 3x3 convolutions per block (seed 002: 1)
    "dense": [128],            # hidden dense layers of each tower (ReLU -> BN), before the output
    "dropout": 0.25,           # after each block's pool (seed 002: 0.25)
    "l2": 0.0,                 # L2 factor on every kernel; seed 002 has none
    "bn_momentum": 0.9,        # as BKNet: settles within a few hundred steps
    "towers": {},              # task name -> {filters, convs_per_block, dense} overrides
    "stem": [],                # shared blocks (their filters) before the towers split; [] = none (seed 002)
    "stitch_lr_scale": 10.0,   # cross_stitch only: the units' learning rate over the model's (docs/mtl.md: 10 vs 1)
}
MAX_STITCH_LR_SCALE = 1e4



def _int_list(key: str, value: Any, allow_empty: bool) -> list[int]:
    if (not isinstance(value, list) or (not value and not allow_empty)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        fail(KEY + key, f"expected a {'' if allow_empty else 'non-empty '}list of positive integers, "
                        f"received {value!r}")
    if any(v > MAX_WIDTH for v in value):
        fail(KEY + key, f"each entry must be <= {MAX_WIDTH}, received {value!r}")
    return list(value)


def _tower(where: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validated tower settings; `where` is "" (the shared ones) or "towers.<task>"."""
    out = {}
    for key, value in raw.items():
        name = f"{where}.{key}" if where else key
        if key == "filters":
            out[key] = _int_list(name, value, allow_empty=False)
        elif key == "dense":
            out[key] = _int_list(name, value, allow_empty=True)
        elif key == "convs_per_block":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONVS_PER_BLOCK:
                fail(KEY + name, f"expected an integer 1-{MAX_CONVS_PER_BLOCK}, received {value!r}")
            out[key] = value
    return out


# Every task has its own tower from the input: no shared trunk for model.sharing's experts.
SHARED_TRUNK = False
# model.sharing types this family builds: its towers as they are, or cross-stitched (models/cross_stitch.py).
SHARINGS = ("hard", "cross_stitch")


def check_sharing(kind: str, params: Mapping[str, Any], task_names=()) -> None:
    """Cross-stitch units mix the towers stage by stage, so every tower needs the same
    blocks (`filters`) and hidden layers (`dense`); `convs_per_block` may differ."""
    if kind != "cross_stitch":
        return
    p = resolve_params(params, task_names=task_names)
    shapes = {t: (tower(p, t)["filters"], tower(p, t)["dense"]) for t in task_names}
    if len({repr(s) for s in shapes.values()}) > 1:
        fail(KEY + "towers", "cross_stitch mixes the towers stage by stage, so every task's tower needs the "
                             "same filters and dense; received " + "; ".join(
                                 f"{t}: filters {f}, dense {d}" for t, (f, d) in shapes.items()))


def resolve_params(params: Mapping[str, Any], task_names=(), normalization=None) -> dict[str, Any]:
    """Defaults overlaid with config.model.params, plus `tower(task)` shapes in
    `towers_resolved`; unknown or bad values fail by name."""
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        fail(KEY + unknown[0], f"unknown multibranch parameter; valid: {', '.join(sorted(DEFAULT_PARAMS))}")
    out = {**DEFAULT_PARAMS, **_tower("", {k: v for k, v in params.items() if k in TOWER_KEYS})}
    for key in ("dropout", "l2", "bn_momentum", "stitch_lr_scale"):
        if key not in params:
            continue
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail(KEY + key, f"expected a finite number, received {value!r}")
        if key in ("dropout", "bn_momentum") and not 0 <= value < 1:
            fail(KEY + key, f"must be in [0, 1), received {value!r}")
        if key == "stitch_lr_scale" and not 0 < value <= MAX_STITCH_LR_SCALE:
            fail(KEY + key, f"must be in (0, {MAX_STITCH_LR_SCALE:g}], received {value!r}")
        if key == "l2" and value < 0:
            fail(KEY + key, f"must be >= 0, received {value!r}")
        if key == "l2" and value > 1:
            fail(KEY + key, f"must be <= 1, received {value!r}")
        out[key] = float(value)
    towers = params.get("towers", {})
    if towers is None:  # `towers:` with nothing under it
        towers = {}
    if not isinstance(towers, Mapping):
        fail(KEY + "towers", f"expected a mapping of task name -> tower settings, received {towers!r}")
    if "stem" in params:
        out["stem"] = [] if params["stem"] is None else _int_list("stem", params["stem"], allow_empty=True)
        if out["stem"] and "stem" in task_names:
            fail(KEY + "stem", "a task is named 'stem', like the shared stem's layers (stem_block<b>_...); "
                               "rename the task or use no stem")
    out["towers"] = {}
    for task, raw in towers.items():
        if task_names and task not in task_names:
            fail(KEY + f"towers.{task}", f"unknown task; tasks in this config: {', '.join(task_names)}")
        if not isinstance(raw, Mapping):
            fail(KEY + f"towers.{task}", f"expected a mapping with keys {', '.join(TOWER_KEYS)}, received {raw!r}")
        bad = sorted(set(raw) - set(TOWER_KEYS))
        if bad:
            fail(KEY + f"towers.{task}.{bad[0]}", f"unknown tower setting; valid: {', '.join(TOWER_KEYS)}")
        out["towers"][task] = _tower(f"towers.{task}", raw)
    return out


def tower(p: Mapping[str, Any], task: str) -> dict[str, Any]:
    """The tower shape of `task`: the shared settings with the task's overrides."""
    return {**{k: p[k] for k in TOWER_KEYS}, **p["towers"].get(task, {})}
