"""The Trainer's tf.data input: one stream per source, mixed by the sampling shares.

Each source's transformed examples (GZIP TFRecords of tf.Example, one file
pattern per `train_<source>` / `eval_<source>` split) are read as their own
dataset; training draws from them with `choose_from_datasets` and a seeded
source index drawn with the shares of `components.trainer.samplers.sampling_weights`,
so the mix is chosen by the config, not by how many records each source
happens to have. (`sample_from_datasets` draws one index per example through
a Python-level call and cost 3x the whole rest of the pipeline; indices here
are drawn 1,024 at a time.) Training streams are cached in memory after the
first pass when they fit CACHE_BUDGET_BYTES, so later epochs skip GZIP reads, and a
cached stream is shuffled in full (each pass a new permutation), not through a
window: a window over files written in some sorted order would give batches of
few classes. Training
batches are then augmented as `train.augment` says (components/trainer/augment.py);
evaluation batches never are.

`train.sampling.min_per_task: k` builds every training batch from k examples of each
task, each drawn from its own endless stream (the sampled sources labelling the task,
mixed by their shares, kept to the task's records), then the rest of the batch from the
mixed stream above, concatenated in that order. Every stream is seeded, so a seed gives
the same batches. Finding the tasks' records costs one pass over the training files.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf
from absl import logging

from components.trainer.augment import augment_batch, is_enabled
from components.trainer.samplers import sampling_weights
from config import Config, label_key, weight_key

SHUFFLE_BUFFER = 1024  # per source; a transformed 48x48x1 example is ~9 KB
CACHE_BUDGET_BYTES = 512 << 20  # all training sources together
_INDEX_BLOCK = 1024


def _files(source: str, pattern: str) -> list[str]:
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"source {source!r}: no file matches {pattern!r}")
    return files


def count_records(file_pattern: str, source: str = "?") -> int:
    """Records in the GZIP TFRecords matching `file_pattern` (one pass, no parsing)."""
    ds = tf.data.TFRecordDataset(_files(source, file_pattern), compression_type="GZIP",
                                 num_parallel_reads=tf.data.AUTOTUNE)
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())


def _source_dataset(source: str, pattern: str, training: bool, seed: int, cache_records: int = 0,
                    keep=None) -> tf.data.Dataset:
    """One source's records (only those `keep` accepts, when given). Training: endless and
    shuffled; with `cache_records` (the kept record count, when the stream is cached in
    memory) a full shuffle, each pass a new permutation, else a window of SHUFFLE_BUFFER over
    files the conversion wrote in hash order (data_prep.convert.stream_order)."""
    files = tf.data.Dataset.from_tensor_slices(_files(source, pattern))
    if training:
        files = files.shuffle(len(files), seed=seed)
    ds = files.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
                          cycle_length=tf.data.AUTOTUNE, num_parallel_calls=tf.data.AUTOTUNE)
    if keep is not None:
        ds = ds.filter(keep)
    if training:
        if cache_records:
            ds = ds.cache()
        ds = ds.shuffle(max(cache_records, SHUFFLE_BUFFER), seed=seed).repeat()
    return ds


def _is_task(task: str, feature_spec: Mapping[str, tf.io.FixedLenFeature]):
    """A predicate on serialized records: labelled for `task` (its weight > 0)."""
    spec = {weight_key(task): feature_spec[weight_key(task)]}
    return lambda x: tf.reduce_max(tf.io.parse_single_example(x, spec)[weight_key(task)]) > 0


def task_record_counts(pattern: str, source: str, tasks, feature_spec) -> dict[str, int]:
    """{task: records labelled for it} in the GZIP TFRecords matching `pattern` (one pass)."""
    spec = {weight_key(t): feature_spec[weight_key(t)] for t in tasks}
    ds = tf.data.TFRecordDataset(_files(source, pattern), compression_type="GZIP",
                                 num_parallel_reads=tf.data.AUTOTUNE).batch(1024)
    labelled = lambda w: tf.reduce_max(tf.reshape(w, [tf.shape(w)[0], -1]), axis=1) > 0  # noqa: E731
    per_task = lambda f: [tf.reduce_sum(tf.cast(labelled(f[weight_key(t)]), tf.int64)) for t in tasks]  # noqa: E731
    ds = ds.map(lambda x: tf.stack(per_task(tf.io.parse_example(x, spec))))
    total = ds.reduce(tf.zeros([len(spec)], tf.int64), lambda a, b: a + b).numpy()
    return {t: int(n) for t, n in zip(tasks, total)}


def _quota_streams(patterns: Mapping[str, str], feature_spec, config: Config, weights: Mapping[str, float],
                   cache: bool) -> list[tf.data.Dataset]:
    """Per task, an endless stream of its training records from the sampled sources labelling it,
    mixed by their shares (train.sampling.min_per_task)."""
    sources = [s for s in patterns if s in weights]
    counts = {s: task_record_counts(patterns[s], s, config.task_names, feature_spec) for s in sources}
    logging.info("training records per source and task: %s", counts)
    streams = []
    for ti, task in enumerate(config.task_names):
        having = [s for s in sources if counts[s][task] > 0]
        if not having:
            raise ValueError(f"train.sampling.min_per_task: task {task!r} has no training example in the sampled "
                             f"sources {sources}; per source and task: {counts}")
        seed = config.train.seed + 7919 * (ti + 1)  # apart from the mixed stream's seeds
        parts = [_source_dataset(s, patterns[s], True, seed + i, counts[s][task] if cache else 0,
                                 keep=_is_task(task, feature_spec)) for i, s in enumerate(having)]
        streams.append(parts[0] if len(parts) == 1 else tf.data.Dataset.choose_from_datasets(
            parts, source_selector([weights[s] for s in having], seed), stop_on_empty_dataset=False))
    return streams


def example_bytes(feature_spec: Mapping[str, tf.io.FixedLenFeature]) -> int:
    """Upper estimate of one serialized transformed example (4 bytes per value, plus
    a little per feature), for the cache budget."""
    total = 0
    for spec in feature_spec.values():
        n = 1
        for d in getattr(spec, "shape", ()) or ():
            n *= int(d)
        total += 4 * n + 32
    return total


def source_selector(weights: list[float], seed: int) -> tf.data.Dataset:
    """An endless, seeded stream of source indices, index i with share weights[i] / sum."""
    cum = [sum(weights[:i + 1]) / sum(weights) for i in range(len(weights) - 1)]
    edges = tf.constant(cum, tf.float32)
    scale = float(1 << 24)

    def pick(r):
        u = tf.cast(r % (1 << 24), tf.float32) / scale  # uniform in [0, 1) from 24 random bits
        return tf.searchsorted(edges, u, side="right", out_type=tf.int64)

    return tf.data.Dataset.random(seed=seed).batch(_INDEX_BLOCK).map(pick).unbatch()


def mixing_weights(config: Config, sources: list[str], counts: Mapping[str, int] | None,
                   training: bool) -> dict[str, float]:
    """Training: the config's sampling. Evaluation: the natural mix of the eval data
    (proportional to counts when known, else equal), so eval metrics are not
    reweighted by the training sampler."""
    if training:
        return sampling_weights(config, counts)
    if counts is not None:
        total = sum(counts[s] for s in sources)
        if total > 0:
            return {s: counts[s] / total for s in sources if counts[s] > 0}
    return {s: 1.0 / len(sources) for s in sources}


def make_dataset(file_patterns_by_source: Mapping[str, str], feature_spec: Mapping[str, tf.io.FixedLenFeature],
                 config: Config, batch_size: int, counts: Mapping[str, int] | None = None,
                 training: bool = True) -> tf.data.Dataset:
    """Batches of (features {'image'}, labels {task}, sample_weights {task}).

    `feature_spec` is the transformed feature spec (TFTransformOutput.
    transformed_feature_spec()). Training streams repeat forever (Keras stops
    at steps_per_epoch) and are augmented when `train.augment` asks;
    evaluation streams read each record once, as stored.
    """
    sources = [s.name for s in config.sources]
    if sorted(file_patterns_by_source) != sorted(sources):
        raise ValueError(f"file patterns must name exactly the config's sources {sources}; "
                         f"received {sorted(file_patterns_by_source)}")
    needed = ["image"] + [k for t in config.task_names for k in (label_key(t), weight_key(t))]
    missing = [k for k in needed if k not in feature_spec]
    if missing:
        raise ValueError(f"transformed feature spec lacks {missing}; received keys {sorted(feature_spec)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, received {batch_size}")

    weights = mixing_weights(config, sources, counts, training)
    logging.info("%s mix of sources: %s", "training" if training else "eval",
                 ", ".join(f"{s}={w:.4f}" for s, w in weights.items()))
    seed = config.train.seed
    quota = config.train.sampling.min_per_task if training else 0
    # A cached stream holds its records twice: in the cache and in the full shuffle buffer;
    # with a quota, the tasks' streams hold them once more.
    cache = (training and counts is not None
             and 2 * (2 if quota else 1) * sum(counts.values()) * example_bytes(feature_spec) <= CACHE_BUDGET_BYTES)
    streams = [_source_dataset(s, file_patterns_by_source[s], training, seed + i, counts[s] if cache else 0)
               for i, s in enumerate(sources) if s in weights]
    if len(streams) == 1:
        ds = streams[0]
    else:
        ds = tf.data.Dataset.choose_from_datasets(
            streams, source_selector([weights[s] for s in sources if s in weights], seed),
            stop_on_empty_dataset=False)

    tasks = config.task_names
    parse_spec = {k: feature_spec[k] for k in needed}

    def to_keras(serialized):
        f = tf.io.parse_example(serialized, parse_spec)
        return ({"image": f["image"]},
                {t: f[label_key(t)] for t in tasks},
                {t: f[weight_key(t)] for t in tasks})

    if quota:  # k of each task, then the rest of the batch from the mixed stream
        rest = batch_size - quota * len(tasks)
        if rest < 0:
            raise ValueError(f"train.sampling.min_per_task {quota} x {len(tasks)} tasks exceeds batch_size "
                             f"{batch_size}")
        parts = [s.batch(quota) for s in _quota_streams(file_patterns_by_source, feature_spec, config, weights, cache)]
        ds = tf.data.Dataset.zip(tuple(parts + ([ds.batch(rest)] if rest else [])))
        ds = ds.map(lambda *xs: tf.concat(xs, axis=0))
    else:
        ds = ds.batch(batch_size, drop_remainder=False)
    ds = ds.map(to_keras, num_parallel_calls=tf.data.AUTOTUNE)
    if training and is_enabled(config.train.augment):
        augment, image_cfg = config.train.augment, config.image
        logging.info("training augmentation: %s", augment)

        def augmented(batch_number, batch):
            features, labels, weights = batch
            seed = tf.stack([tf.constant(seed_base, tf.int64), batch_number])
            return {"image": augment_batch(features["image"], seed, augment, image_cfg)}, labels, weights

        seed_base = config.train.seed
        # (seed, batch number) seeds each batch's draws: reproducible at any parallelism
        ds = ds.enumerate().map(augmented, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
