"""Configs and tiny data for the Trainer-side tests (preprocess, Transform, input, run_fn, serving);
tests/conftest.py builds the shared `transformed_data` and `trained` fixtures from them."""
import io
import os

import numpy as np
from PIL import Image

from benchmarks.training_data import transformed_example  # noqa: F401  (re-exported for the tests)
from config import parse
from data_prep.records import make_example  # (the raw examples data_prep writes)


def config_dict(size=(48, 48), channels=1, normalization="centered", sampling=None, batch_size=8):
    """The default config's tasks and sources (smile on genki4k; gender, age on wiki)."""
    return {
        "name": "test",
        "image": {"size": list(size), "channels": channels, "normalization": normalization},
        "tasks": [
            {"name": "smile", "type": "binary", "classes": ["no_smile", "smile"]},
            {"name": "gender", "type": "binary", "classes": ["female", "male"]},
            {"name": "age", "type": "multiclass", "classes": ["0-19", "20-29", "30-39", "40-54", "55+"]},
        ],
        "sources": [
            {"name": "genki4k", "format": "genki4k", "path": "/nonexistent/genki4k", "tasks": ["smile"]},
            {"name": "wiki", "format": "imdb_wiki", "path": "/nonexistent/wiki", "tasks": ["gender", "age"]},
        ],
        # float32, not the default `auto`: these tests' numbers must not depend on whether the CPU
        # they run on has bfloat16 (the e2e tests run the default; test_precision.py compares both).
        "train": {"batch_size": batch_size, "seed": 7, "sampling": sampling or {"type": "natural"},
                  "precision": "float32"},
        "model": {"name": "bknet"},
    }


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG of a uint8 [H, W] (gray) or [H, W, 3] (RGB) array."""
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def make_config(**kw):
    return parse(config_dict(**kw), base_dir=None)


def raw_feature_spec(config):
    """The raw spec Transform gets: from the contract's schema (schemas.contract)."""
    from tensorflow_transform.tf_metadata import schema_utils

    from schemas.contract import build_schema

    return schema_utils.schema_as_feature_spec(build_schema(config)).feature_spec


def analyze_and_transform(instances: list, config, temp_dir: str, transform_fn_dir: str | None = None):
    """Runs the real preprocessing_fn through tft_beam on in-memory raw instances.

    Without transform_fn_dir: returns the transformed instances (a list of
    dicts). With it: writes the transform graph there, as Transform does,
    and returns None.
    """
    import functools

    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from components.transform.preprocessing import preprocessing_fn

    spec = raw_feature_spec(config)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    # Instance dicts name every feature of the spec: an optional slice-only feature
    # (docs/data_contract.md) an instance lacks is an empty list, as TFXIO reads a record without it.
    import tensorflow as tf

    optional = [k for k, f in spec.items() if isinstance(f, tf.io.VarLenFeature)]
    instances = [{**{k: [] for k in optional}, **i} for i in instances]
    fn = functools.partial(preprocessing_fn, custom_config={"config": config.to_json()})
    if transform_fn_dir is None:
        with tft_beam.Context(temp_dir=temp_dir, force_tf_compat_v1=False):
            (transformed, _), _ = (instances, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
        return transformed
    with beam.Pipeline(options=PipelineOptions([])) as pipeline:
        with tft_beam.Context(temp_dir=temp_dir, force_tf_compat_v1=False):
            raw = pipeline | beam.Create(instances, reshuffle=False)
            transform_fn = (raw, metadata) | tft_beam.AnalyzeDataset(fn)
            _ = transform_fn | tft_beam.WriteTransformFn(transform_fn_dir)
            # Transform's executor also writes the raw metadata (raw_feature_spec() reads it).
            _ = metadata | "WriteRawMetadata" >> tft_beam.WriteMetadata(
                os.path.join(transform_fn_dir, "metadata"), pipeline)
    return None


def write_gzip_tfrecords(path: str, records: list) -> str:
    import tensorflow as tf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path, options="GZIP") as w:
        for r in records:
            w.write(r)
    return path


# --- a tiny transformed dataset and run_fn arguments (test_run_fn, serving, training options) ---

TASKS = ("smile", "gender", "age")
WIDTHS = {"smile": 2, "gender": 2, "age": 5}


def make_raw(rng, n_per_source=20):
    """{split: [(serialized raw example, instance dict)]}: 16 train + 4 eval per source;
    genki4k labels smile (task 0), wiki alternates gender (1) and age (2)."""
    splits = {}
    for source, task_of in (("genki4k", lambda i: 0), ("wiki", lambda i: 1 + i % 2)):
        for i in range(n_per_source):
            task = task_of(i)
            label = np.zeros(5, np.float32)
            label[rng.integers(WIDTHS[TASKS[task]])] = 1.0
            image = png_bytes(rng.integers(0, 256, size=(48, 48), dtype=np.uint8))
            serialized = make_example(image, task, label.tolist(), source, f"{source}-{i}")
            instance = {"image": image, "task_index": task, "label": label, "source": source.encode(),
                        "example_id": f"{source}-{i}".encode()}
            split = f"{'train' if i < 16 else 'eval'}_{source}"
            splits.setdefault(split, []).append((serialized, instance))
    return splits


def write_transformed(tft_output, split_dir, serialized):
    """Applies the saved transform graph and writes what Transform would (GZIP tf.Examples)."""
    import tensorflow as tf

    raw = tf.io.parse_example(tf.constant(serialized), tft_output.raw_feature_spec())
    out = {k: v.numpy() for k, v in tft_output.transform_raw_features(raw).items()}
    records = [transformed_example({k: v[i] for k, v in out.items()}) for i in range(len(serialized))]
    write_gzip_tfrecords(os.path.join(split_dir, "transformed_examples-00000-of-00001.gz"), records)


def prepare_transformed(root, config) -> dict:
    """Raw GZIP TFRecords -> tft_beam transform graph -> transformed GZIP TFRecords under `root`
    (a pathlib.Path). Any config with the same data_view (image, tasks) can train on it."""
    import tensorflow_transform as tft

    splits = make_raw(np.random.default_rng(0))
    for split, rows in splits.items():
        write_gzip_tfrecords(str(root / "raw" / f"Split-{split}" / "data_tfrecord-00000.gz"), [r[0] for r in rows])
    graph_dir = str(root / "transform_graph")
    # No analyzers in preprocessing_fn, so a few instances make the full graph.
    analyze_and_transform([rows[0][1] for rows in splits.values()], config, str(root / "tft_tmp"), graph_dir)
    tft_output = tft.TFTransformOutput(graph_dir)
    for split, rows in splits.items():
        write_transformed(tft_output, str(root / "transformed" / f"Split-{split}"), [r[0] for r in rows])
    return {"root": root, "graph_dir": graph_dir, "splits": splits}


def fn_args_for(prepared: dict, config, out_dir, train_steps: int, eval_steps: int = 2):
    """TFX FnArgs for run_fn on `prepared`, writing under `out_dir` (a pathlib.Path)."""
    from tfx.components.trainer.fn_args_utils import FnArgs

    root = prepared["root"]
    pattern = lambda split: str(root / "transformed" / f"Split-{split}" / "*")  # noqa: E731
    return FnArgs(
        train_files=[pattern("train_genki4k"), pattern("train_wiki")],
        eval_files=[pattern("eval_genki4k"), pattern("eval_wiki")],
        train_steps=train_steps, eval_steps=eval_steps, transform_output=prepared["graph_dir"],
        serving_model_dir=str(out_dir / "serving_model"), model_run_dir=str(out_dir / "model_run"),
        custom_config={"config": config.to_json()})
