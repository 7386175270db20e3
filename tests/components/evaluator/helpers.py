"""Tiny data and a tiny saved model that follow the project's contracts.

The model follows the saved-model contract of docs/models.md (serving signatures)
(input `image`, one output per task named by the task, `serving_default` and
`transform_features` over serialized raw tf.Examples) without TFT, so the
evaluation code is tested in seconds instead of through a whole TFX run.
"""
from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
import tensorflow as tf
import tf_keras as keras
from PIL import Image

from config import Config, label_key, parse, weight_key

SIZE = 8

# Default-like tasks plus a regression and a multilabel task; 5-class age.
RAW_CONFIG = {
    "name": "eval_test",
    "image": {"size": [SIZE, SIZE], "channels": 1, "normalization": "unit"},
    "tasks": [
        {"name": "smile", "type": "binary", "classes": ["no_smile", "smile"],
         "thresholds": {"accuracy": 0.0}},
        {"name": "gender", "type": "binary", "classes": ["female", "male"]},
        {"name": "age", "type": "multiclass", "classes": ["0-19", "20-29", "30-39", "40-54", "55+"],
         "thresholds": {"accuracy": 1.01}},  # impossible: validation must fail on age/accuracy
        {"name": "score", "type": "regression", "tolerance": 5.0},
        {"name": "attrs", "type": "multilabel", "classes": ["red", "coat", "long"]},
    ],
    "sources": [
        {"name": "genki4k", "format": "genki4k", "path": "/nonexistent", "tasks": ["smile"]},
        {"name": "wiki", "format": "imdb_wiki", "path": "/nonexistent", "tasks": ["gender", "age"]},
        {"name": "extra", "format": "folder", "path": "/nonexistent", "tasks": ["smile", "score", "attrs"]},
    ],
    # The default (every binary/multiclass task by class) plus the multilabel task.
    "evaluation": {"max_regression": 0.05,
                   "slices": [{"task": "smile"}, {"task": "gender"}, {"task": "age", "by": "class"},
                              {"task": "attrs"}]},
}

# Examples per task in the eval data: 16 + 14 + 20 + 12 + 10 = 72. smile comes
# from two sources (even j: genki4k, odd j: extra, 8 each) so that a source
# slice differs from the task's overall numbers.
COUNTS = {"smile": 16, "gender": 14, "age": 20, "score": 12, "attrs": 10}
SOURCES_OF = {"smile": ("genki4k", "extra"), "gender": ("wiki",), "age": ("wiki",),
              "score": ("extra",), "attrs": ("extra",)}


def make_config(**overrides) -> Config:
    raw = dict(RAW_CONFIG, **overrides)
    return parse(raw, base_dir=None)


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.reshape(SIZE, SIZE), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def make_examples(config: Config, seed: int = 0) -> list[dict]:
    """Raw examples as dicts: image bytes, task_index, label, source, example_id."""
    rng = np.random.default_rng(seed)
    out = []
    for task in config.tasks:
        for j in range(COUNTS[task.name]):
            label = np.zeros(config.label_width, np.float32)
            if task.type == "regression":
                label[0] = round(float(rng.normal(30.0, 10.0)), 2)
            elif task.type == "multilabel":
                label[:task.width] = rng.integers(0, 2, task.width)
            else:
                label[int(rng.integers(0, task.width))] = 1.0
            out.append({
                "image": _png(rng.integers(0, 256, SIZE * SIZE, dtype=np.uint8)),
                "task_index": config.task_index(task.name),
                "label": label,
                "source": SOURCES_OF[task.name][j % len(SOURCES_OF[task.name])],
                "example_id": f"{task.name}-{j}",
            })
    return out


def serialize(ex: dict) -> bytes:
    f = tf.train.Feature
    return tf.train.Example(features=tf.train.Features(feature={
        "image": f(bytes_list=tf.train.BytesList(value=[ex["image"]])),
        "task_index": f(int64_list=tf.train.Int64List(value=[ex["task_index"]])),
        "label": f(float_list=tf.train.FloatList(value=list(ex["label"]))),
        "source": f(bytes_list=tf.train.BytesList(value=[ex["source"].encode()])),
        "example_id": f(bytes_list=tf.train.BytesList(value=[ex["example_id"].encode()])),
        # slice-only features (docs/data_contract.md), on the examples that carry them
        **{k: f(bytes_list=tf.train.BytesList(value=[v.encode()])) for k, v in ex.get("slices", {}).items()},
    })).SerializeToString()


def write_examples_artifact(root: str, examples: list[dict]) -> list[str]:
    """Writes ExampleGen-like `Split-eval_<source>/data_tfrecord-*.gz`; returns the files."""
    files = []
    for source in sorted({e["source"] for e in examples}):
        d = os.path.join(root, f"Split-eval_{source}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as w:
            for e in examples:
                if e["source"] == source:
                    w.write(serialize(e))
        files.append(path)
    return files


def _model(config: Config) -> keras.Model:
    image = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Flatten()(image)
    x = keras.layers.Dense(8, activation="tanh")(x)
    outputs = {}
    for t in config.tasks:
        act = {"binary": "softmax", "multiclass": "softmax", "multilabel": "sigmoid", "regression": None}[t.type]
        # Regression bias near the label mean so errors are of a sensible size.
        # Wide random heads so argmax predictions spread over the classes.
        init = keras.initializers.Constant(30.0) if t.type == "regression" else "zeros"
        outputs[t.name] = keras.layers.Dense(t.width, activation=act, name=t.name, bias_initializer=init,
                                             kernel_initializer=keras.initializers.RandomNormal(stddev=1.5))(x)
    return keras.Model(image, outputs)


def write_training_events(config: Config, log_dir: str, epochs: int = 3, seed: int = 0) -> None:
    """Real TensorBoard events as the Trainer writes them (keras TensorBoard
    callback, update_freq="epoch", per-output losses and weighted metrics):
    a copy of the fixture model fitted a few epochs on random images."""
    keras.utils.set_random_seed(seed)
    model = _model(config)
    # 64 examples / 16 a batch = 4 updates an epoch; the Trainer's schedule (warm-up, cosine)
    from components.trainer.optimizer import WarmupDecay

    schedule = WarmupDecay(0.01, total_steps=4 * epochs, warmup_steps=1, decay="cosine")
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss={t.name: "mse" for t in config.tasks},
                  weighted_metrics={t.name: ["mae" if t.type == "regression" else "accuracy"] for t in config.tasks})
    rng = np.random.default_rng(seed)
    n = 64
    x = rng.normal(size=(n, SIZE, SIZE, 1)).astype(np.float32)
    y = {t.name: rng.random((n, t.width)).astype(np.float32) for t in config.tasks}
    w = {t.name: (np.arange(n) % len(config.tasks) == i).astype(np.float32) for i, t in enumerate(config.tasks)}
    model.fit(x, y, sample_weight=w, epochs=epochs, batch_size=16, validation_data=(x, y, w), verbose=0,
              callbacks=[keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch")])


def save_model(config: Config, path: str, seed: int = 0) -> None:
    """A random multi-output model with the project's two signatures."""
    keras.utils.set_random_seed(seed)
    model = _model(config)
    # Compiled with unmasked metrics on purpose: EvalConfig must not use them.
    model.compile(optimizer="sgd", loss={t.name: "mse" for t in config.tasks}, metrics=["accuracy"])

    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "task_index": tf.io.FixedLenFeature([], tf.int64),
        "label": tf.io.FixedLenFeature([config.label_width], tf.float32),
    }

    def decode(images):
        imgs = tf.map_fn(lambda b: tf.io.decode_png(b, channels=1), images, fn_output_signature=tf.uint8)
        # Centred and stretched so that random weights give image-dependent argmaxes.
        return tf.reshape((tf.cast(imgs, tf.float32) / 255.0 - 0.5) * 4.0, [-1, SIZE, SIZE, 1])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        parsed = tf.io.parse_example(examples, spec)
        return model(decode(parsed["image"]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform(examples):
        parsed = tf.io.parse_example(examples, spec)
        out = {"image": decode(parsed["image"]), "task_index": parsed["task_index"]}
        for i, t in enumerate(config.tasks):
            weight = tf.cast(tf.equal(parsed["task_index"], i), tf.float32)
            # Zeroed off-task: another task's label (a regression value of 37.7)
            # in this task's slots makes TFMA's AUC/calibration raise
            # "label must be within [0, 1]" even at weight 0.
            out[label_key(t.name)] = parsed["label"][:, :t.width] * weight[:, None]
            out[weight_key(t.name)] = weight
        return out

    model.save(path, save_format="tf", signatures={"serving_default": serve, "transform_features": transform})


# --- one TFMA run over these data (~15 s), shared by the evaluator, report and benchmark tests ---

@dataclasses.dataclass
class Run:
    config: object
    root: str
    model_dir: str
    eval_output: str
    model_run_dir: str      # TensorBoard events like the Trainer's ModelRun
    eval_files: list
    examples: list          # raw example dicts, in file order per source
    task_index: np.ndarray  # [N]
    label: np.ndarray       # [N, label_width]
    source: np.ndarray      # [N] str
    predictions: dict       # task -> [N, width], from the saved serving_default

    def rows(self, task: str, source: str | None = None) -> np.ndarray:
        """Indices of this task's own examples (optionally of one source)."""
        keep = self.task_index == self.config.task_index(task)
        if source is not None:
            keep &= self.source == source
        return np.flatnonzero(keep)


def evaluate(tmp_path_factory, config, add_slices=None) -> Run:
    """The tiny examples and saved model of `config` through tfma.run_model_analysis with
    build_eval_config (the `run` / `run_ci` fixtures in tests/conftest.py). `add_slices(examples)`
    may set slice-only features (`ex["slices"] = {"slice_<task>": class}`) before they are written."""
    import tensorflow_model_analysis as tfma

    from components.common.eval_config import build_eval_config

    root = str(tmp_path_factory.mktemp("eval"))
    examples = make_examples(config)
    if add_slices is not None:
        add_slices(examples)
    files = write_examples_artifact(os.path.join(root, "examples"), examples)
    model_dir = os.path.join(root, "model")
    save_model(config, model_dir)
    model_run_dir = os.path.join(root, "model_run")
    write_training_events(config, model_run_dir)

    eval_config = build_eval_config(config)
    # rubber_stamp=True is what TFX does on a first run (no baseline yet):
    # change thresholds are dropped, value thresholds still apply.
    shared = tfma.default_eval_shared_model(model_dir, eval_config=eval_config, rubber_stamp=True)
    eval_output = os.path.join(root, "evaluation")
    tfma.run_model_analysis(shared, eval_config, data_location=os.path.join(root, "examples", "Split-eval_*", "*"),
                            file_format="tfrecords", output_path=eval_output)

    # Same order as the files: per source (sorted), in example order.
    ordered = [e for s in sorted({e["source"] for e in examples}) for e in examples if e["source"] == s]
    serving = tf.saved_model.load(model_dir).signatures["serving_default"]
    preds = serving(examples=tf.constant([serialize(e) for e in ordered]))
    return Run(
        config=config, root=root, model_dir=model_dir, eval_output=eval_output, model_run_dir=model_run_dir,
        eval_files=files,
        examples=ordered,
        task_index=np.array([e["task_index"] for e in ordered]),
        label=np.stack([e["label"] for e in ordered]),
        source=np.array([e["source"] for e in ordered]),
        predictions={k: v.numpy().astype(np.float64) for k, v in preds.items()},
    )


# --- the pipeline's own Evaluator executor over these data (~10 s a model) ---

@dataclasses.dataclass
class EvaluatorRun:
    config: object
    examples: object    # Examples artifact (Split-eval_<source>/)
    model: object       # Model artifact (Format-Serving/)
    evaluation: object  # ModelEvaluation artifact: TFMA's metrics, plots and validation result
    blessing: object    # ModelBlessing artifact as TFX's Evaluator left it


def run_evaluator(root: str, config, examples: list[dict] | None = None, sources: tuple[str, ...] = (),
                  baseline_seed: int | None = None, seed: int = 0) -> EvaluatorRun:
    """`config`'s tiny examples (or `examples`; `sources` adds eval splits even when empty) and a
    model of `seed` through the pipeline's Evaluator executor (components/evaluator/executor.py,
    TFX's with build_eval_config): as `make run` evaluates, blessing included. No baseline
    (`baseline_seed` None) is what PushedModelBaseline hands over before the first push: an
    empty artifact with `found` 0; else a model of `baseline_seed` is the served one."""
    import json

    from google.protobuf import json_format
    from tfx.types import standard_artifacts

    from components.baseline import FOUND
    from components.common.eval_config import build_eval_config
    from components.evaluator.executor import BaselineAwareExecutor

    def artifact(kind, name):
        a = kind()
        a.uri = os.path.join(root, name)
        os.makedirs(a.uri, exist_ok=True)
        return a

    examples = make_examples(config) if examples is None else examples
    write_examples_artifact(os.path.join(root, "examples"), examples)
    splits = [f"eval_{s}" for s in sorted({e["source"] for e in examples} | set(sources))]
    for split in splits:  # an eval split with no examples: one empty file, as ExampleGen writes it
        path = os.path.join(root, "examples", f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tf.io.TFRecordWriter(path, options="GZIP").close()
    ex = artifact(standard_artifacts.Examples, "examples")
    ex.split_names = json.dumps(splits)
    model = artifact(standard_artifacts.Model, "model")
    save_model(config, os.path.join(model.uri, "Format-Serving"), seed=seed)
    baseline = artifact(standard_artifacts.Model, "baseline")
    if baseline_seed is None:
        baseline.set_int_custom_property(FOUND, 0)
    else:
        save_model(config, os.path.join(baseline.uri, "Format-Serving"), seed=baseline_seed)
        baseline.set_int_custom_property(FOUND, 1)
    evaluation = artifact(standard_artifacts.ModelEvaluation, "evaluation")
    blessing = artifact(standard_artifacts.ModelBlessing, "blessing")
    BaselineAwareExecutor().Do(
        {"examples": [ex], "model": [model], "baseline_model": [baseline]},
        {"evaluation": [evaluation], "blessing": [blessing]},
        {"eval_config": json_format.MessageToJson(build_eval_config(config)), "example_splits": json.dumps(splits)})
    return EvaluatorRun(config, ex, model, evaluation, blessing)
