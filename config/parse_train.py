"""Parsing the `train` section (config/parse.py parses the rest): steps and batch, the
sampling shares, the loss weighting, the gradient method (`train.mtl`), augmentation."""
from __future__ import annotations

import math
from typing import Any

from config.checks import (
    MAX_BATCH_SIZE,
    MAX_LEARNING_RATE,
    MAX_SEED,
    MAX_STEPS,
    MAX_TEMPERATURE,
    as_mapping,
    boolean,
    choice,
    number,
    plain,
    section,
)
from config.errors import fail, show
from config.types import (
    KEEPS,
    LOSS_WEIGHTINGS,
    LR_DECAYS,
    MTL_GRAD_ON,
    MTL_METHODS,
    MTL_PARAMS,
    PRECISIONS,
    SAMPLERS,
    STRATEGIES,
    AugmentConfig,
    ImageConfig,
    LossWeightingConfig,
    MtlConfig,
    SamplingConfig,
    TrainConfig,
)


def _parse_sampling(raw: Any, source_names: list[str]) -> SamplingConfig:
    d = section("train.sampling", raw, SamplingConfig)
    stype = choice("train.sampling.type", d["type"], SAMPLERS)
    weights = {k: number(f"train.sampling.weights.{k}", v, lo=0, hi=1e6)
               for k, v in as_mapping("train.sampling.weights", d["weights"], source_names).items()}
    if stype == "weights" and not any(w > 0 for w in weights.values()):
        fail("train.sampling.weights", f"sampling type 'weights' needs a weight > 0 for at least one source, "
                                       f"received {show(weights)}; sources: {', '.join(source_names)}")
    return SamplingConfig(type=stype, weights=weights,
                          temperature=number("train.sampling.temperature", d["temperature"], lo=0,
                                           hi=MAX_TEMPERATURE, lo_open=True),
                          min_per_task=number("train.sampling.min_per_task", d["min_per_task"], int, lo=0,
                                              hi=MAX_BATCH_SIZE))


def _parse_loss_weighting(raw: Any) -> LossWeightingConfig:
    d = section("train.loss_weighting", raw, LossWeightingConfig)
    return LossWeightingConfig(
        type=choice("train.loss_weighting.type", d["type"], LOSS_WEIGHTINGS),
        temperature=number("train.loss_weighting.temperature", d["temperature"], lo=0, hi=MAX_TEMPERATURE,
                         lo_open=True))


def _parse_mtl(raw: Any, loss_weighting: LossWeightingConfig) -> MtlConfig:
    d = section("train.mtl", raw, MtlConfig)
    method = choice("train.mtl.method", d["method"], MTL_METHODS)
    if method != "none" and loss_weighting.type != "static":
        fail("train.mtl.method", f"received {method!r} with train.loss_weighting.type "
                                 f"{loss_weighting.type!r}: a gradient method weighs the tasks itself; "
                                 "use loss_weighting type 'static' (tasks[i].loss_weight still applies)")
    valid = MTL_PARAMS.get(method, {})
    user = plain("train.mtl.params", as_mapping("train.mtl.params", d["params"], set(valid)))
    params = {name: number(f"train.mtl.params.{name}", user.get(name, default), lo=lo, hi=hi)
              for name, (default, lo, hi) in sorted(valid.items())}
    return MtlConfig(method=method, grad_on=choice("train.mtl.grad_on", d["grad_on"], MTL_GRAD_ON),
                     params=params)


def _parse_augment(raw: Any, size: tuple[int, int]) -> AugmentConfig:
    d = section("train.augment", raw, AugmentConfig)
    crop = d["crop"]
    if isinstance(crop, int) and not isinstance(crop, bool):
        # whole pixels cut off each side length; at least 1 x 1 must remain
        crop = number("train.augment.crop", crop, int, lo=0, hi=min(size) - 1)
    else:
        if isinstance(crop, float) and math.isfinite(crop) and crop >= 1:
            fail("train.augment.crop", f"a fraction must be in [0, 1), received {crop!r}; "
                                       "write an integer for pixels (crop: 4)")
        crop = number("train.augment.crop", crop, lo=0, hi=1, hi_open=True)
    return AugmentConfig(flip=boolean("train.augment.flip", d["flip"]), crop=crop,
                         brightness=number("train.augment.brightness", d["brightness"], lo=0, hi=1))


def parse_train(raw: Any, image: ImageConfig, source_names: list[str]) -> TrainConfig:
    d = section("train", raw, TrainConfig)
    loss_weighting = _parse_loss_weighting(d["loss_weighting"])
    return TrainConfig(
        steps=number("train.steps", d["steps"], int, lo=1, hi=MAX_STEPS),
        batch_size=number("train.batch_size", d["batch_size"], int, lo=1, hi=MAX_BATCH_SIZE),
        eval_steps=number("train.eval_steps", d["eval_steps"], int, lo=1, hi=MAX_STEPS),
        learning_rate=number("train.learning_rate", d["learning_rate"], lo=0, hi=MAX_LEARNING_RATE, lo_open=True),
        seed=number("train.seed", d["seed"], int, lo=0, hi=MAX_SEED),
        sampling=_parse_sampling(d["sampling"], source_names),
        loss_weighting=loss_weighting,
        mtl=_parse_mtl(d["mtl"], loss_weighting),
        augment=_parse_augment(d["augment"], image.size),
        strategy=choice("train.strategy", d["strategy"], STRATEGIES),
        warmup=number("train.warmup", d["warmup"], lo=0, hi=0.5),
        lr_decay=choice("train.lr_decay", d["lr_decay"], LR_DECAYS),
        keep=choice("train.keep", d["keep"], KEEPS),
        precision=choice("train.precision", d["precision"], PRECISIONS),
        warm_start=boolean("train.warm_start", d["warm_start"]),
    )
