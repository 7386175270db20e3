"""The continuous demo's data: its config with the data under an output dir, and its spans
(runners/demo_continuous.py, benchmarks/warm_start_steps.py; docs/continuous.md)."""
from __future__ import annotations

import dataclasses
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "continuous.yaml")
SHIFTED_SMILE_SHARE = 0.85  # GENKI-4K's own share is 0.54
SPAN2_SEED_OFFSET = 100
QUICK = {"counts": {"genki4k": 150, "wiki": 200}, "steps": 60}


def write_config(out: str, quick: bool) -> str:
    """configs/continuous.yaml with its data under `out`/data (and smaller with `quick`)."""
    with open(CONFIG) as f:
        raw = yaml.safe_load(f)
    for src in raw["sources"]:
        src["path"] = os.path.join(out, "data", src["name"], "span-{SPAN}")
        if quick:
            src["sample"]["count"] = QUICK["counts"][src["name"]]
    if quick:  # a model of 60 steps: thresholds that any model passes, so the rollback is still shown
        raw["train"]["steps"] = QUICK["steps"]
        for task in raw["tasks"]:
            task["thresholds"] = {"accuracy": 0.0}
        raw.setdefault("evaluation", {})["max_regression"] = 0.99
    path = os.path.join(out, "continuous.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    return path


def write_span(config, span: int) -> None:
    """Span `span` of every source, by its sample generator; genki4k's smile share shifted."""
    from data_prep.generators import get_generator

    for source in config.sources:
        target = source.path.replace("{SPAN}", str(span))
        if os.path.exists(target):
            continue
        args = {**source.sample, "seed": source.sample.get("seed", 0) + SPAN2_SEED_OFFSET * (span - 1)}
        if source.format == "genki4k" and span > 1:
            args["smile_share"] = SHIFTED_SMILE_SHARE
        partial = target + ".partial"
        get_generator(source.format)(dataclasses.replace(source, path=partial), config, **args)
        os.replace(partial, target)
        print(f"demo: wrote span {span} of {source.name} at {target}", flush=True)
