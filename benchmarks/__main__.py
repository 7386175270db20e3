"""python -m benchmarks [--only NAME ...] [--output bench-results.json]

Runs each benchmark module, prints every figure beside its goal and merges
them into the JSON file as {figure: {value, goal, unit, better}}.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse
import importlib
import json
import sys

# module name -> what it measures; each exposes run() -> list[Figure]
BENCHMARKS = {
    "pipeline_run": "wall time of the default local run, and of a cached rerun",
    "evaluation": "tfma_vs_numpy: TFMA evaluation time vs batched predict + numpy metrics, same model and data",
    "training": "training images/s: input pipeline vs in-memory fit, vs the model, vs a Python loop",
    "train_parity": ("train_parity: the Trainer's model vs a plain loop's, same model, data, steps; "
                     "3 datasets x 8 seeds"),
    "mtl_overhead": "mtl_step_overhead_<method>: a gradient method's training step over the plain weighted sum",
    "prep": "prep_vs_pil_loop: Beam conversion images/s vs a PIL loop, 1 and 2 workers; UTKFace per-task cost",
    "precision": ("train_mfu: the Trainer's model's training FLOP/s over matmul FLOP/s in the same dtype; "
                  "train_bf16_speedup: images/s under mixed_bfloat16 over float32 (skipped without fast bfloat16)"),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these")
    ap.add_argument("--output", default="bench-results.json")
    args = ap.parse_args(argv)

    results = {}
    if os.path.exists(args.output):
        with open(args.output) as f:
            results = json.load(f)
    missed = []
    for name in args.only or BENCHMARKS:
        print(f"== {name}: {BENCHMARKS[name]}", flush=True)
        for fig in importlib.import_module(f"benchmarks.{name}").run():
            mark = "ok " if fig.met else "MISS"
            sign = ">=" if fig.better == "higher" else "<="
            print(f"  [{mark}] {fig.name:32s} {fig.value:12.3f} {fig.unit:10s} goal {sign} {fig.goal}", flush=True)
            results[fig.name] = fig.as_json()
            if not fig.met:
                missed.append(fig.name)
            with open(args.output, "w") as f:
                json.dump(results, f, indent=2, sort_keys=True)
    print(f"wrote {args.output}; goals missed: {', '.join(missed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
