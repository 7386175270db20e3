"""The other cheap factors of training speed: thread settings, oneDNN, a larger batch, bfloat16,
XLA, each against the default (float32, batch 32, TensorFlow's defaults).

The model and the timing are benchmarks/precision.py's (`train_step`, `_seconds`): the default
config's training model (BKNet 48x48x1, 3 tasks, the Trainer's masked losses and optimizer)
stepping on one fixed batch, so these are the model's rates and not the input pipeline's.

Thread counts and oneDNN are read when TensorFlow starts, so each variant runs in a process of
its own (`--variant NAME`, which prints one JSON line). The parent runs every variant once per
round, in order in odd rounds and reversed in even ones (A B C ..., then ... C B A), and reports
per variant the median images/s over the rounds and the median of the rounds' ratios to the
baseline of the same round (the spread is the rounds' lowest and highest ratio).

What is not a variant here, and why:
  tf.data options   the step reads one batch from `Dataset.from_tensors(...).repeat()`, and the
                    real input pipeline already feeds the model as fast as memory does
                    (`train_input_vs_in_memory` ~0.99, docs/results.md): no option can buy more.
  fused BatchNorm   tf_keras' BatchNormalization (`fused=None`) picks the fused kernel by itself
                    for 4D inputs on axis 3 (BKNet's every one); each child reports how many of
                    the model's BatchNormalization layers are fused.
  channels-first    BKNet's layers are channels-last (the input, and BatchNormalization's axis
                    -1), so `image_data_format` cannot flip it; a separate check is in
                    docs/results.md.

A larger batch is measured with the learning rate scaled linearly (learning_rate x batch / 32),
as it would be configured; images/s do not depend on the rate, and what the larger batch does to
the trained model's quality is not measured here (that is `train_parity`'s job).

    python -m benchmarks.cheap_factors [--rounds 3] [--output cheap_factors.json] [--variants a,b]
    python -m benchmarks.cheap_factors --variant batch64     # one child: one JSON line
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time

BASE_BATCH = 32
IMAGES_PER_BLOCK, BLOCKS = 320, 3  # each child times 3 blocks of >= 320 images; the median block
CHILD_TIMEOUT_S = 900


@dataclasses.dataclass(frozen=True)
class Variant:
    policy: str = "float32"
    batch: int = BASE_BATCH
    env: tuple[tuple[str, str], ...] = ()  # set before TensorFlow is imported
    jit: bool = False                       # the training model compiled with jit_compile=True
    note: str = ""


VARIANTS: dict[str, Variant] = {
    "baseline": Variant(note="float32, batch 32, TF defaults (threads = cores, oneDNN on)"),
    "mixed_bfloat16": Variant(policy="mixed_bfloat16", note="train.precision mixed_bfloat16"),
    "threads_2_1": Variant(env=(("TF_NUM_INTRAOP_THREADS", "2"), ("TF_NUM_INTEROP_THREADS", "1")),
                           note="TF_NUM_INTRAOP_THREADS=2 TF_NUM_INTEROP_THREADS=1"),
    "threads_1_1": Variant(env=(("TF_NUM_INTRAOP_THREADS", "1"), ("TF_NUM_INTEROP_THREADS", "1")),
                           note="TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1"),
    "onednn_off": Variant(env=(("TF_ENABLE_ONEDNN_OPTS", "0"),), note="TF_ENABLE_ONEDNN_OPTS=0"),
    "batch64": Variant(batch=64, note="float32, batch 64, learning rate x2"),
    "batch128": Variant(batch=128, note="float32, batch 128, learning rate x4"),
    "batch64_bf16": Variant(policy="mixed_bfloat16", batch=64, note="mixed_bfloat16, batch 64, learning rate x2"),
    "xla": Variant(jit=True, note="float32, batch 32, jit_compile=True"),
}


def round_order(names: list[str], r: int) -> list[str]:
    """Round r's order (0-based): as listed in even rounds, reversed in odd ones."""
    return list(names) if r % 2 == 0 else list(names)[::-1]


def block_steps(batch: int, images: int = IMAGES_PER_BLOCK) -> int:
    """Steps of a timed block: enough for at least `images` images (at least 1)."""
    return max(1, math.ceil(images / batch))


def scaled_learning_rate(learning_rate: float, batch: int, base: int = BASE_BATCH) -> float:
    """The linear scaling rule: the rate grows with the batch."""
    return learning_rate * batch / base


def parse_child(stdout: str) -> dict:
    """The last JSON object line a child printed (TensorFlow may print before it)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in the child's output: {stdout[-500:]!r}")


def summarise(rates: dict[str, list[float | None]], baseline: str = "baseline") -> dict[str, dict]:
    """Per variant, from its images/s per round (None where a round failed): the median images/s,
    and the median, lowest and highest of its ratios to the baseline of the same round."""
    out = {}
    for name, per_round in rates.items():
        ok = [x for x in per_round if x is not None]
        ratios = [x / b for x, b in zip(per_round, rates[baseline]) if x is not None and b]
        out[name] = {
            "images_per_s": round(statistics.median(ok), 1) if ok else None,
            "per_round": [None if x is None else round(x, 1) for x in per_round],
            "ratio": round(statistics.median(ratios), 3) if ratios else None,
            "ratio_min": round(min(ratios), 3) if ratios else None,
            "ratio_max": round(max(ratios), 3) if ratios else None,
        }
    return out


def child(name: str) -> dict:
    """Times variant `name` in this process; TensorFlow must not have started yet."""
    v = VARIANTS[name]
    os.environ.update(dict(v.env))
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if "tensorflow" in sys.modules:
        raise RuntimeError("TensorFlow is already imported: thread and oneDNN settings would not apply")

    import tf_keras as keras

    from benchmarks import mtl_overhead
    from benchmarks.precision import _layers, _seconds, train_step
    from config import load

    mtl_overhead.BATCH = v.batch  # the fixed batch's size (benchmarks.mtl_overhead._batch reads it)
    config = load("configs/default.yaml")
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, batch_size=v.batch,
        learning_rate=scaled_learning_rate(config.train.learning_rate, v.batch)))
    if v.jit:  # train_step builds and compiles the model itself: switch XLA on as it is made
        from components.trainer import training_model

        make = training_model.make_training_model

        def with_xla(*args, **kwargs):
            training = make(*args, **kwargs)
            training.jit_compile = True
            return training

        training_model.make_training_model = with_xla

    start = time.perf_counter()
    step, iterator, model = train_step(config, v.policy)
    setup_s = time.perf_counter() - start
    steps = block_steps(v.batch)
    rates = [steps * v.batch / _seconds(step, iterator, steps) for _ in range(BLOCKS)]

    from tensorflow.python.util import _pywrap_util_port

    bn = [layer for layer in _layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    return {"variant": name, "images_per_s": round(statistics.median(rates), 2),
            "blocks": [round(r, 2) for r in rates], "steps_per_block": steps, "batch": v.batch,
            "policy": v.policy, "env": dict(v.env), "jit": v.jit, "setup_s": round(setup_s, 1),
            "onednn": bool(_pywrap_util_port.IsMklEnabled()),
            "os_threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None,
            "batchnorm_fused": f"{sum(bool(layer.fused) for layer in bn)}/{len(bn)}"}


def run_child(name: str) -> dict:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cheap_factors", "--variant", name],
                          capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited {proc.returncode}: {proc.stderr[-800:]}")
    return parse_child(proc.stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cheap_factors", description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=sorted(VARIANTS), help="time this one variant here (a child)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; baseline is always run")
    ap.add_argument("--output", default=None, help="write the summary and every child's line as JSON")
    args = ap.parse_args(argv)
    if args.variant:
        print(json.dumps(child(args.variant)), flush=True)
        return 0

    names = ["baseline"] + [n for n in args.variants.split(",") if n and n != "baseline"]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; valid: {', '.join(VARIANTS)}")
    rates: dict[str, list[float | None]] = {n: [None] * args.rounds for n in names}
    lines, errors = [], []
    wall = time.perf_counter()
    for r in range(args.rounds):
        for name in round_order(names, r):
            try:
                line = run_child(name)
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                errors.append({"round": r + 1, "variant": name, "error": str(e)[-800:]})
                print(f"  round {r + 1} {name}: FAILED {str(e)[-300:]}", flush=True)
                continue
            rates[name][r] = line["images_per_s"]
            lines.append({"round": r + 1, **line})
            print(f"  round {r + 1} {name:15s} {line['images_per_s']:8.1f} images/s  blocks {line['blocks']} "
                  f"(onednn {line['onednn']}, bn fused {line['batchnorm_fused']}, "
                  f"{line['os_threads']} threads, setup {line['setup_s']} s)", flush=True)
    summary = summarise(rates)
    print(f"\n{args.rounds} rounds in {time.perf_counter() - wall:.0f} s; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'variant':15s} {'images/s':>9s} {'x baseline':>10s}  rounds' ratios   what")
    for name in names:
        s = summary[name]
        ips = f"{s['images_per_s']:9.1f}" if s["images_per_s"] is not None else f"{'-':>9s}"
        ratio = (f"{s['ratio']:10.2f}  {s['ratio_min']:.2f}-{s['ratio_max']:.2f}"
                 if s["ratio"] is not None else f"{'-':>10s}")
        print(f"{name:15s} {ips} {ratio:20s} {VARIANTS[name].note}")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"rounds": args.rounds, "summary": summary,
                       "variants": {n: dataclasses.asdict(VARIANTS[n]) for n in names},
                       "children": lines, "errors": errors}, f, indent=2)
        print(f"wrote {args.output}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
