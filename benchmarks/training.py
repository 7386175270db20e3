"""Training throughput on the default config (BKNet, 48x48x1, batch 32).

Three ratios, every side measured in this one run on the same data:
  train_input_vs_in_memory  model.fit fed by the real input pipeline (transformed
                            GZIP TFRecords -> components.trainer.input_pipeline.make_dataset)
                            / the same model fitted on the same examples held in
                            memory; the input pipeline should cost the model nothing.
  input_vs_model_rate       make_dataset iterated alone / the model's in-memory rate:
                            the headroom the input has over the model.
  input_vs_python_loop      make_dataset alone / a seed-style Python loop (PIL open ->
                            grayscale -> resize -> (x - 128) / 255, batches built in Python).
The two fit sides alternate in short rounds (A B, then B A), each timed from
the end of its warm-up steps; the figure is the median of the rounds' ratios,
so a burst of load from another process does not decide it. Besides the
figures it prints each side's images/s, the process CPU time per image of each
fit side (what the input pipeline adds to a step, whatever the machine's
load) and where the time goes.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

from benchmarks.figures import Figure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "default.yaml")

ROUNDS = 8           # rounds of the two fit sides, in A B / B A order: short rounds pair them closely
FIT_STEPS = 8        # timed steps per side per round (~0.6 s each on 2 cores)
FIT_WARMUP = 2       # untimed steps per fit call: first-batch latency, shuffle buffers
INPUT_BATCHES = 500  # timed batches of the input pipeline alone, per repeat
INPUT_WARMUP = 10
LOOP_IMAGES = 3000   # images through the Python loop, per repeat (the sources' files, cycled)
REPEATS = 3          # input pipeline and Python loop: the median of this many timings


def _step_end_times():
    import tf_keras as keras

    class StepEnds(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append((time.perf_counter(), time.process_time()))

    return StepEnds()


def timed_fit(model, dataset, warmup: int, steps: int) -> tuple[float, float]:
    """(wall, process CPU) seconds of `steps` training steps after `warmup` untimed
    ones, in one fit call. CPU time shows what the input pipeline adds to a step
    even when other processes load the machine."""
    ends = _step_end_times()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, callbacks=[ends], verbose=0)
    (wall0, cpu0), (wall1, cpu1) = ends.ends[warmup - 1], ends.ends[-1]
    return wall1 - wall0, cpu1 - cpu0


def timed_iteration(dataset, warmup: int, batches: int) -> tuple[float, int]:
    """(seconds, images) for `batches` batches of a dataset after `warmup` untimed ones."""
    it = iter(dataset)
    for _ in range(warmup):
        next(it)
    images = 0
    start = time.perf_counter()
    for _ in range(batches):
        features = next(it)
        images += int((features[0]["image"] if isinstance(features, tuple) else features).shape[0])
    return time.perf_counter() - start, images


def in_memory_arrays(prepared, split: str = "train"):
    """The split's transformed examples as numpy arrays (features, labels, weights), as Keras takes them."""
    import tensorflow as tf
    import tensorflow_transform as tft

    from config import label_key, weight_key

    spec = tft.TFTransformOutput(prepared.transform_dir).transformed_feature_spec()
    files = [f for p in prepared.transformed_patterns[split].values() for f in sorted(tf.io.gfile.glob(p))]
    batch = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1_000_000)))
    f = {k: v.numpy() for k, v in tf.io.parse_example(batch, spec).items()}
    tasks = prepared.config.task_names
    return ({"image": f["image"]}, {t: f[label_key(t)] for t in tasks}, {t: f[weight_key(t)] for t in tasks})


def python_loop(paths: list[str], size: tuple[int, int], batch_size: int) -> tuple[float, int, dict[str, float]]:
    """Seed 000's way: each image opened, decoded, grayscaled, resized and normalised
    in Python, batches stacked in Python. (seconds, images, seconds per stage)."""
    from PIL import Image

    stages = dict.fromkeys(("open_decode", "grayscale", "resize", "normalise", "batch"), 0.0)
    height, width = size
    batch, images = [], 0
    start = time.perf_counter()
    for path in paths:
        t0 = time.perf_counter()
        im = Image.open(path)
        im.load()
        t1 = time.perf_counter()
        im = im.convert("L")
        t2 = time.perf_counter()
        im = im.resize((width, height), Image.BILINEAR)
        t3 = time.perf_counter()
        batch.append((np.asarray(im, np.float32)[:, :, None] - 128.0) / 255.0)
        t4 = time.perf_counter()
        if len(batch) == batch_size:
            x = np.stack(batch)
            images += len(x)
            batch = []
        t5 = time.perf_counter()
        for name, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            stages[name] += dt
    return time.perf_counter() - start, images, stages


def source_image_paths(config) -> list[str]:
    """Every raw record's image file of every source, in source order."""
    from data_prep.convert import list_source_records

    return [r.path for s in config.sources for r in list_source_records(s, config)]


def _median_rate(timings) -> float:
    """Images/s of the median of (seconds, images) timings."""
    return statistics.median(n / sec for sec, n in timings)


def run() -> list[Figure]:
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras as keras

    from benchmarks.training_data import prepare
    from components.trainer.input_pipeline import count_records, make_dataset
    from components.trainer.training_model import make_training_model
    from config import load
    from models import get_builder

    config = load(CONFIG)
    batch_size = config.train.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(config, tmp)
        print("  data: " + ", ".join(f"{k} {v:.1f}s" for k, v in prepared.seconds.items()), flush=True)
        spec = tft.TFTransformOutput(prepared.transform_dir).transformed_feature_spec()
        patterns = prepared.transformed_patterns["train"]
        counts = {s: count_records(p, s) for s, p in patterns.items()}

        # The input pipeline alone, and its raw read (gunzip, no parse) for the breakdown.
        raw = tf.data.TFRecordDataset(list(patterns.values()), compression_type="GZIP").repeat().batch(batch_size)
        input_t, read_t, loop_t = [], [], []
        paths = source_image_paths(config)
        cycled = [paths[i % len(paths)] for i in range(LOOP_IMAGES)]
        for _ in range(REPEATS):
            input_t.append(timed_iteration(make_dataset(patterns, spec, config, batch_size, counts, training=True),
                                           INPUT_WARMUP, INPUT_BATCHES))
            read_t.append(timed_iteration(raw, INPUT_WARMUP, INPUT_BATCHES))
            # The seed-style Python loop over the same sources' image files.
            sec, n, stages = python_loop(cycled, config.image.size, batch_size)
            loop_t.append((sec, n))

        # Two identical models: one fed by make_dataset, one by the examples in memory.
        features, labels, weights = in_memory_arrays(prepared)
        n_train = len(features["image"])
        sides = {
            "in_memory": (tf.data.Dataset.from_tensor_slices((features, labels, weights))
                          .shuffle(n_train, seed=config.train.seed).repeat().batch(batch_size)
                          .prefetch(tf.data.AUTOTUNE)),
            "input_pipeline": make_dataset(patterns, spec, config, batch_size, counts, training=True),
        }
        models = {}
        for side in sides:
            keras.utils.set_random_seed(config.train.seed)
            models[side] = make_training_model(get_builder(config.model.name)(config), config)
        fit_t = {side: [] for side in sides}
        for r in range(ROUNDS):
            for side in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                fit_t[side].append(timed_fit(models[side], sides[side], FIT_WARMUP, FIT_STEPS))

    images_per_side = ROUNDS * FIT_STEPS * batch_size
    rate = {
        "fit_in_memory": images_per_side / sum(w for w, _ in fit_t["in_memory"]),
        "fit_input_pipeline": images_per_side / sum(w for w, _ in fit_t["input_pipeline"]),
        "input_pipeline": _median_rate(input_t),
        "raw_read": _median_rate(read_t),
        "python_loop": _median_rate(loop_t),
    }
    cpu_ms = {side: 1e3 * sum(c for _, c in t) / images_per_side for side, t in fit_t.items()}
    # Each round's two sides ran back to back: the median of their ratios keeps a burst of
    # load from another process (which lands on one side of one round) out of the figure.
    paired = statistics.median(m[0] / p[0] for m, p in zip(fit_t["in_memory"], fit_t["input_pipeline"]))
    print("  images/s: " + ", ".join(f"{k} {v:,.1f}" for k, v in rate.items()), flush=True)
    print(f"  fit wall s per round ({FIT_STEPS} steps of {batch_size}): "
          + "; ".join(f"{side} {[round(w, 2) for w, _ in t]}" for side, t in fit_t.items()), flush=True)
    print("  fit CPU ms per image (both cores): " + ", ".join(f"{side} {v:.2f}" for side, v in cpu_ms.items())
          + f"; ratio of totals {rate['fit_input_pipeline'] / rate['fit_in_memory']:.3f}, "
          f"median of the rounds' ratios {paired:.3f}", flush=True)
    us = lambda r: 1e6 / r  # noqa: E731  (microseconds per image)
    print(f"  per image: model train step {us(rate['fit_in_memory']):,.0f} us; input pipeline "
          f"{us(rate['input_pipeline']):,.1f} us, of which GZIP read {us(rate['raw_read']):,.1f} us "
          f"(rest: parse_example, mix, shuffle, batch); Python loop {us(rate['python_loop']):,.0f} us = "
          + ", ".join(f"{k} {1e6 * v / len(cycled):,.0f}" for k, v in stages.items()), flush=True)
    return [
        Figure("train_input_vs_in_memory", round(paired, 3), 0.95, "ratio", "higher"),
        Figure("input_vs_model_rate", round(rate["input_pipeline"] / rate["fit_in_memory"], 1), 20.0,
               "ratio", "higher"),
        Figure("input_vs_python_loop", round(rate["input_pipeline"] / rate["python_loop"], 1), 10.0,
               "ratio", "higher"),
    ]
