"""How the training defaults were chosen: variants of BKNet's regularisation and the
learning-rate schedule, on the training-parity datasets, over seeds.

  python -m benchmarks.defaults_sweep [--side reference|pipeline] [--seeds 3]
      [--datasets sample,fashion_mnist,opencv_digits] [--variants old,no_reg,...]

Each variant overrides `model.params` and `train` keys of every dataset's
config; each (variant, dataset, seed) trains one model (by default the
benchmark's plain reference loop, which the Trainer matches once parity holds,
at a fraction of its cost) and prints per task mean ± sd over the seeds, and
each variant's mean accuracy over all tasks. Figures in docs/results.md.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse
import dataclasses
import statistics
import tempfile

from benchmarks import train_parity as tp

# name -> (model.params overrides, train overrides)
VARIANTS = {
    "old": ({"l2": 5e-4, "conv_dropout": 0.2}, {"warmup": 0.0, "lr_decay": "constant"}),
    "no_reg": ({"l2": 0.0, "conv_dropout": 0.0}, {"warmup": 0.0, "lr_decay": "constant"}),
    "no_reg_sched": ({"l2": 0.0, "conv_dropout": 0.0}, {"warmup": 0.05, "lr_decay": "cosine"}),
    "l2_small_sched": ({"l2": 1e-5, "conv_dropout": 0.0}, {"warmup": 0.05, "lr_decay": "cosine"}),
    "old_sched": ({"l2": 5e-4, "conv_dropout": 0.2}, {"warmup": 0.05, "lr_decay": "cosine"}),
    "cd_sched": ({"l2": 0.0, "conv_dropout": 0.1}, {"warmup": 0.05, "lr_decay": "cosine"}),
    "sched_lr2": ({"l2": 0.0, "conv_dropout": 0.0}, {"warmup": 0.05, "lr_decay": "cosine", "learning_rate": 2e-3}),
    "sched_lr3": ({"l2": 0.0, "conv_dropout": 0.0}, {"warmup": 0.05, "lr_decay": "cosine", "learning_rate": 3e-3}),
    "warm10_lr2": ({"l2": 0.0, "conv_dropout": 0.0}, {"warmup": 0.1, "lr_decay": "cosine", "learning_rate": 2e-3}),
    "sched_lr05": ({"l2": 0.0, "conv_dropout": 0.0}, {"warmup": 0.05, "lr_decay": "cosine", "learning_rate": 5e-4}),
    "warm10": ({"l2": 0.0, "conv_dropout": 0.0}, {"warmup": 0.1, "lr_decay": "cosine"}),
    "warm10_lr05": ({"l2": 0.0, "conv_dropout": 0.0}, {"warmup": 0.1, "lr_decay": "cosine", "learning_rate": 5e-4}),
    "bn99": ({"l2": 0.0, "conv_dropout": 0.0, "bn_momentum": 0.99},
             {"warmup": 0.1, "lr_decay": "cosine", "learning_rate": 5e-4}),
}


def variant_config(config, name: str):
    params, train = VARIANTS[name]
    model = dataclasses.replace(config.model, params={**config.model.params, **params})
    return dataclasses.replace(config, model=model, train=dataclasses.replace(config.train, **train))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.defaults_sweep", description=__doc__.splitlines()[0])
    ap.add_argument("--side", choices=("reference", "pipeline"), default="reference")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--datasets", default=",".join(tp.DATASETS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args(argv)
    from benchmarks.training_data import prepare

    data_dir = os.environ.get("BENCH_DATA_DIR", os.path.join(tp.ROOT, ".bench-data"))
    variants = args.variants.split(",")
    means = {v: [] for v in variants}
    for name in args.datasets.split(","):
        config = tp.dataset_config(name, data_dir)
        with tempfile.TemporaryDirectory() as tmp:
            prepared = prepare(config, os.path.join(tmp, "data"))
            train_data, eval_data = tp.arrays(prepared, "train"), tp.arrays(prepared, "eval")
            for v in variants:
                by_task = {t.name: [] for t in config.tasks}
                for seed in range(1, args.seeds + 1):
                    cfg = tp.with_seed(variant_config(config, v), seed)
                    if args.side == "reference":
                        model = tp.train_reference(cfg, train_data)
                    else:
                        model = tp.train_pipeline(prepared, cfg, os.path.join(tmp, f"{v}_{seed}"))
                    for t, value in tp.scores(cfg, tp._predictor(model), eval_data).items():
                        by_task[t].append(value)
                for t, values in by_task.items():
                    means[v].append(statistics.mean(values))
                    print(f"{name:14s} {v:16s} {t:16s} {tp._summary(values)}", flush=True)
    for v in variants:
        print(f"variant {v:16s} mean over datasets and tasks {statistics.mean(means[v]):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
