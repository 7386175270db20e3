"""Transformed training data for the training benchmarks, without TFX orchestration.

The cheapest honest route to what the Trainer reads: the real conversion
(`data_prep.beam_job.run_conversion`, sample data generated where missing, as
`make run` does), the real `preprocessing_fn` written as a transform graph by
tft_beam, and that graph applied to every raw example, written as Transform
writes its output (GZIP TFRecords of tf.Example, one file per split). The
preprocessing_fn has no analyzers, so analysing a few instances gives the
same graph as analysing all of them.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from config import Config, split_dir, split_name

RAW_BATCH = 256  # raw examples transformed per call of the graph


@dataclass(frozen=True)
class Prepared:
    config: Config
    transform_dir: str
    raw_patterns: dict[str, dict[str, str]]          # split -> source -> raw GZIP TFRecord pattern
    transformed_patterns: dict[str, dict[str, str]]  # split -> source -> transformed pattern
    seconds: dict[str, float]                        # how long each preparation step took


def _raw_instances(serialized: list[bytes], raw_spec) -> list[dict]:
    """Raw examples as the instance dicts tft_beam takes (scalars and numpy arrays)."""
    parsed = tf.io.parse_example(tf.constant(serialized), raw_spec)
    # VarLen features (the optional slice_<task> columns) parse as SparseTensors: one
    # array of values per example, possibly empty.
    varlen = {k: [np.asarray(row, dtype=object) for row in tf.RaggedTensor.from_sparse(v).to_list()]
              for k, v in parsed.items() if isinstance(v, tf.SparseTensor)}
    arrays = {k: v.numpy() for k, v in parsed.items() if k not in varlen}
    # tft_beam wants Python scalars for scalar features, bytes for strings, arrays for vectors.
    return [{**{k: (v[i] if v.ndim > 1 or v.dtype == object else v[i].item()) for k, v in arrays.items()},
             **{k: rows[i] for k, rows in varlen.items()}}
            for i in range(len(serialized))]


def write_transform_graph(config: Config, raw_spec, instances: list[dict], out_dir: str, temp_dir: str) -> None:
    """Writes the transform graph of the real preprocessing_fn (and the raw metadata) to out_dir."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from components.transform.preprocessing import preprocessing_fn

    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(raw_spec))
    fn = functools.partial(preprocessing_fn, custom_config={"config": config.to_json()})
    with beam.Pipeline(options=PipelineOptions([])) as pipeline:
        with tft_beam.Context(temp_dir=temp_dir, force_tf_compat_v1=False):
            raw = pipeline | beam.Create(instances, reshuffle=False)
            transform_fn = (raw, metadata) | tft_beam.AnalyzeDataset(fn)
            _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
            _ = metadata | "WriteRawMetadata" >> tft_beam.WriteMetadata(os.path.join(out_dir, "metadata"), pipeline)


def transformed_example(features: dict) -> bytes:
    """A serialized tf.Example of transformed features, as Transform writes them (floats
    flattened, ints as int64); also the trainer tests' writer."""
    feature = {}
    for name, value in features.items():
        arr = np.asarray(value).reshape(-1)
        if arr.dtype.kind in "iu":
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=arr))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=arr.astype(np.float32)))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def transform_records(tft_output, raw_pattern: str, out_path: str) -> int:
    """Applies the transform graph to every raw example of one split; returns how many."""
    raw_spec = tft_output.raw_feature_spec()
    ds = tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(raw_pattern)), compression_type="GZIP").batch(RAW_BATCH)
    n = 0
    tf.io.gfile.makedirs(os.path.dirname(out_path))
    with tf.io.TFRecordWriter(out_path, options="GZIP") as writer:
        for batch in ds:
            out = {k: v.numpy() for k, v in tft_output.transform_raw_features(
                tf.io.parse_example(batch, raw_spec)).items()}
            for i in range(len(batch)):
                writer.write(transformed_example({k: v[i] for k, v in out.items()}))
            n += len(batch)
    return n


def prepare(config: Config, work_dir: str) -> Prepared:
    """Raw and transformed examples of `config`'s sources under work_dir."""
    import tensorflow_transform as tft
    from tensorflow_transform.tf_metadata import schema_utils

    from data_prep.beam_job import run_conversion
    from data_prep.generate import generate_missing
    from data_prep.splits import SPLITS
    from schemas.contract import build_schema

    seconds = {}
    start = time.perf_counter()
    generate_missing(config)
    examples = os.path.join(work_dir, "examples")
    run_conversion(config, examples, os.path.join(work_dir, "dead_letter"), os.path.join(work_dir, "prep_stats.json"))
    seconds["conversion"] = time.perf_counter() - start

    start = time.perf_counter()
    raw_patterns = {split: {s.name: os.path.join(split_dir(examples, split_name(split, s.name)), "*.gz")
                            for s in config.sources} for split in SPLITS}
    raw_spec = schema_utils.schema_as_feature_spec(build_schema(config)).feature_spec
    first = [next(iter(tf.data.TFRecordDataset(tf.io.gfile.glob(p), compression_type="GZIP"))).numpy()
             for p in raw_patterns[SPLITS[0]].values()]
    transform_dir = os.path.join(work_dir, "transform_graph")
    write_transform_graph(config, raw_spec, _raw_instances(first, raw_spec), transform_dir,
                          os.path.join(work_dir, "tft_tmp"))
    seconds["transform_graph"] = time.perf_counter() - start

    start = time.perf_counter()
    tft_output = tft.TFTransformOutput(transform_dir)
    transformed = {}
    for split, by_source in raw_patterns.items():
        transformed[split] = {}
        for source, pattern in by_source.items():
            out = os.path.join(split_dir(os.path.join(work_dir, "transformed"), split_name(split, source)),
                               "transformed_examples-00000-of-00001.gz")
            transform_records(tft_output, pattern, out)
            transformed[split][source] = out
    seconds["transform"] = time.perf_counter() - start
    return Prepared(config, transform_dir, raw_patterns, transformed, seconds)
