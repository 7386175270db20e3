"""Drift noise: the drift distances between deliveries of one distribution, and to a shifted one.

    python -m benchmarks.drift_noise [--pairs 3] [--shift 0.85] [--redraws 200] [--output drift-noise.json]

(from the repo root, with `TF_USE_LEGACY_KERAS=1 PYTHONPATH=.` and the project
venv.) With configs/default.yaml's sources and sample settings (genki4k 600
records, wiki 800), delivery k writes sample data with every source's seed
plus 100 k (delivery 0 is the default run's data) into a temporary folder and
converts it with data_prep.beam_job.run_conversion, as a span would be:
  - noise: delivery 2i against delivery 2i + 1, i < pairs (other seeds, the
    same distribution);
  - shifted: delivery 2i against delivery 2i + 1 written with genki4k's
    `smile_share` = shift (default 0.85; the default is 0.54) instead;
each measured by components.drift.measure.measure_drift with both
comparators. The sample generators fix the record layout (image size and
format, the invalid wiki rows, the examples per task) whatever the seed, so
only the label features vary between deliveries; `redraws` adds a sampling
model for the rest: pairs of multinomial redraws of every feature's counts of
delivery 0 (each count vector redrawn with its own total and shares), their
distances' 95th percentile and maximum. Prints a table per comparator and
writes everything to --output.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time

from components.drift.measure import COMPARATORS, THRESHOLD_KEYS, feature_counts, measure_drift

CONFIG = "configs/default.yaml"
SEED_STEP = 100
LOOSE = dict.fromkeys(THRESHOLD_KEYS, 1.0)  # the distances do not depend on the thresholds


def deliver(config, root: str, k: int, smile_share: float | None = None) -> dict:
    """Delivery k's prep_stats `sources`: sample data with seeds + SEED_STEP * k, converted."""
    from data_prep.beam_job import run_conversion
    from data_prep.generators import get_generator

    sources = []
    for source in config.sources:
        args = dict(source.sample)
        args["seed"] = args.get("seed", 0) + SEED_STEP * k
        if smile_share is not None and source.format == "genki4k":
            args["smile_share"] = smile_share
        source = dataclasses.replace(source, path=os.path.join(root, source.name), sample=args)
        get_generator(source.format)(source, config, **args)
        sources.append(source)
    out = os.path.join(root, "prep")
    stats = run_conversion(dataclasses.replace(config, sources=tuple(sources)), os.path.join(out, "examples"),
                           os.path.join(out, "dead_letter"), os.path.join(out, "prep_stats.json"))
    return stats["sources"]


def redraw(sources: dict, rng) -> dict:
    """A prep_stats `sources` whose every count vector is redrawn Multinomial(total, shares)."""
    def draw(counts: dict) -> dict:
        keys = sorted(counts)
        total = sum(counts[k] for k in keys)
        if not total:
            return dict(counts)
        return dict(zip(keys, (int(n) for n in rng.multinomial(total, [counts[k] / total for k in keys]))))

    out = {}
    for name, st in sources.items():
        rejection = draw({"written": st["written"], "rejected": st["rejected"]})
        out[name] = dict(st, written=rejection["written"], rejected=rejection["rejected"],
                         examples_by_task=draw(st["examples_by_task"]),
                         labels_by_task={t: draw(c) for t, c in st["labels_by_task"].items()},
                         image_formats=draw(st["image_formats"]), image_sizes=draw(st["image_sizes"]))
    return out


def _range(values: list[float]) -> dict:
    return {"min": min(values), "max": max(values), "values": values}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.drift_noise", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=CONFIG)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--shift", type=float, default=0.85, help="genki4k smile_share of the shifted delivery")
    ap.add_argument("--redraws", type=int, default=200, help="multinomial redraw pairs (0: none)")
    ap.add_argument("--output", default="drift-noise.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import numpy as np

    from config import load

    config = load(args.config)
    start = time.time()
    deliveries, shifted = {}, {}
    with tempfile.TemporaryDirectory(prefix="drift_noise_") as tmp:
        for k in range(2 * args.pairs):
            deliveries[k] = deliver(config, os.path.join(tmp, f"d{k}"), k)
            print(f"delivery {k}: {json.dumps(feature_counts(deliveries[k]), sort_keys=True)}", flush=True)
        for i in range(args.pairs):
            k = 2 * i + 1
            shifted[k] = deliver(config, os.path.join(tmp, f"s{k}"), k, smile_share=args.shift)
            print(f"delivery {k}, smile_share {args.shift}: {json.dumps(feature_counts(shifted[k])['label/smile'])}",
                  flush=True)
    rng = np.random.default_rng(0)
    draws = [(redraw(deliveries[0], rng), redraw(deliveries[0], rng)) for _ in range(args.redraws)]
    result = {"config": args.config, "pairs": args.pairs, "shift": args.shift, "redraws": args.redraws,
              "seconds": None, "comparators": {}}
    for comparator in COMPARATORS:
        noise = [measure_drift(deliveries[2 * i], deliveries[2 * i + 1], LOOSE, comparator) for i in range(args.pairs)]
        shift = [measure_drift(deliveries[2 * i], shifted[2 * i + 1], LOOSE, comparator) for i in range(args.pairs)]
        model = [measure_drift(a, b, LOOSE, comparator) for a, b in draws]
        rows = {}
        for feature in sorted(noise[0]):
            row = {"noise": _range([r[feature]["distance"] for r in noise]),
                   "shifted": _range([r[feature]["distance"] for r in shift])}
            if model:
                values = np.array([r[feature]["distance"] for r in model])
                row["redraw"] = {"p95": float(np.quantile(values, 0.95)), "max": float(values.max())}
            rows[feature] = row
        result["comparators"][comparator] = rows
        print(f"\n{comparator}: noise over {args.pairs} pairs (min-max), shifted (smile_share {args.shift}; "
              f"min-max), multinomial redraws of delivery 0 ({args.redraws} pairs: p95, max)")
        for feature, row in rows.items():
            red = f"   redraw p95 {row['redraw']['p95']:.4f} max {row['redraw']['max']:.4f}" if model else ""
            print(f"  {feature:24s} noise {row['noise']['min']:.4f}-{row['noise']['max']:.4f}"
                  f"   shifted {row['shifted']['min']:.4f}-{row['shifted']['max']:.4f}{red}")
    result["seconds"] = round(time.time() - start, 1)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    print(f"\nwrote {args.output} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
