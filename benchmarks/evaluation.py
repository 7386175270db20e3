"""tfma_vs_numpy: what evaluating with TFMA costs against the plain way.

Same saved model (the config's model, default BKNet, freshly built: weights
do not change the cost), same data: N eval examples as the Evaluator reads
them (the data contract's PNG `image`, `task_index`, `label`, `source`) plus
the transformed `label_<task>` / `weight_<task>`, written as GZIP TFRecords,
spread over the config's tasks and sources. The model's serving_default
decodes and normalises the PNGs with models.preprocess (as the Trainer's
export does); its transform_features returns labels and weights, no image
(as components/trainer/signatures.py).

- TFMA: `tfma.run_model_analysis` with `build_eval_config(config)` (every
  metric, plot and slice the Evaluator computes: overall, source,
  task_index, class slices), DirectRunner with Beam's defaults (in-process
  FnApiRunner, one worker), output written and read back.
- numpy: load the same saved model, parse the same files with tf.data and
  the same models.preprocess, `model.predict` in batches of 256, then
  the same metrics and slices in numpy (`numpy_metrics`).

Both times include loading the model. The ratio is measured in one run; the
agreement of the two on every metric is reported too (AUC: TFMA's
10,000-threshold approximation against the exact rank statistic).

    python -m benchmarks --only evaluation
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np
from scipy.stats import rankdata

from benchmarks.figures import Figure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_EXAMPLES = 5000
BATCH = 256
RATIO_GOAL = 3.0
TIME_LIMIT_S = 600.0

# (slice items, task, metric, class_id) -> value, as components.report.tfma_reader.load_tfma_metrics
Metrics = dict


# --- numpy reference ---------------------------------------------------------

def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def exact_auc(y: np.ndarray, p: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties 1/2 (Mann-Whitney U)."""
    pos = y > 0.5
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(p)
    return (r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _confusion(y: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    cm = np.zeros((k, k))
    np.add.at(cm, (y.argmax(1), p.argmax(1)), 1)
    return cm


def task_metrics(task, y: np.ndarray, p: np.ndarray, edges=None) -> dict[tuple[str, int | None], float]:
    """{(metric, class_id): value} of one task on its own examples (y, p: [n, width])."""
    n = len(y)
    out: dict = {("example_count", None): float(n), ("weighted_example_count", None): float(n)}
    if task.type in ("binary", "multiclass"):
        cm = _confusion(y, p, task.width)
        out[("accuracy", None)] = _ratio(np.trace(cm), n)
        if task.type == "multiclass":
            for c in range(task.width):
                tp, fp, fn = cm[c, c], cm[:, c].sum() - cm[c, c], cm[c, :].sum() - cm[c, c]
                out[("precision", c)] = _ratio(tp, tp + fp)
                out[("recall", c)] = _ratio(tp, tp + fn)
                out[("f1", c)] = _ratio(2 * tp, 2 * tp + fp + fn)
            return out
        classes = [1]
    elif task.type == "multilabel":
        classes = list(range(task.width))
        out[("subset_accuracy", None)] = _ratio(np.all((p > 0.5) == (y > 0.5), axis=1).sum(), n)
    else:
        err = p[:, 0] - y[:, 0]
        out[("mean_absolute_error", None)] = _ratio(np.abs(err).sum(), n)
        out[("mean_squared_error", None)] = _ratio((err ** 2).sum(), n)
        out[("root_mean_squared_error", None)] = np.sqrt(out[("mean_squared_error", None)])
        if task.tolerance is not None:
            out[("within_tolerance", None)] = _ratio((np.abs(err) <= task.tolerance).sum(), n)
        return out
    for c in classes:
        yc, pc = y[:, c] > 0.5, p[:, c]
        hit = pc > 0.5
        tp, fp, fn = np.sum(hit & yc), np.sum(hit & ~yc), np.sum(~hit & yc)
        out[("auc", c)] = exact_auc(yc, pc)
        out[("f1", c)] = _ratio(2 * tp, 2 * tp + fp + fn)
        if task.type == "binary":
            out[("precision", c)] = _ratio(tp, tp + fp)
            out[("recall", c)] = _ratio(tp, tp + fn)
            out[("calibration", c)] = _ratio(pc.sum(), yc.sum())
        else:
            out[("binary_accuracy", c)] = _ratio(np.sum(hit == yc), n)
    return out


def slice_masks(config, label: np.ndarray, task_index: np.ndarray, source: np.ndarray) -> dict[tuple, np.ndarray]:
    """The EvalConfig's slices as row masks: overall, source, task_index, class slices."""
    from components.common.eval_config import class_slice_column, class_slice_tasks

    out = {(): np.ones(len(label), bool)}
    for s in sorted(set(source)):
        out[(("source", s),)] = source == s
    for i in sorted(set(task_index.tolist())):
        out[(("task_index", i),)] = task_index == i
    for t in class_slice_tasks(config):
        own = task_index == config.task_index(t.name)
        for c, name in enumerate(t.classes):
            out[((class_slice_column(t), name),)] = own & (label[:, c] > 0.5)
    return out


def numpy_metrics(config, label: np.ndarray, task_index: np.ndarray, source: np.ndarray,
                  predictions: dict[str, np.ndarray]) -> Metrics:
    """Every scalar metric of build_eval_config, per slice, for slices holding the task's examples."""
    out = {}
    for items, mask in slice_masks(config, label, task_index, source).items():
        for i, t in enumerate(config.tasks):
            rows = mask & (task_index == i)
            if not rows.any():
                continue
            for (name, cid), v in task_metrics(t, label[rows, :t.width], predictions[t.name][rows]).items():
                out[(items, t.name, name, cid)] = float(v)
    return out


def compare(reference: Metrics, tfma_values: Metrics) -> dict[str, float]:
    """Largest difference TFMA - numpy per metric name over every key numpy computed:
    absolute, relative to the value above 1 (errors of ~30 in float32); NaN = NaN."""
    # keys numpy skipped (slices without the task's examples) are not compared
    worst: dict[str, float] = {}
    for key, v in reference.items():
        got = tfma_values.get(key)
        if got is None:
            raise KeyError(f"TFMA has no metric {key}")
        if np.isnan(v) and (np.isnan(got) or (key[2] == "auc" and got == 0.0)):
            d = 0.0  # undefined both ways (TFMA writes AUC 0.0 in a slice of one class)
        else:
            d = abs(got - v) / max(1.0, abs(v))
        if np.isnan(d):
            d = float("inf")
        worst[key[2]] = max(worst.get(key[2], 0.0), d)
    return worst


# --- data and model ------------------------------------------------------------

def _png(rng, h: int, w: int, channels: int) -> bytes:
    import io

    from PIL import Image

    pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels).save(out, format="PNG")
    return out.getvalue()


def write_eval_examples(config, path: str, n: int, seed: int = 0) -> None:
    """n eval examples as the Evaluator reads them: the data contract as data_prep writes it
    (`make_example`: PNG `image`, `task_index`, `label`, `source`, `example_id`) plus the
    transformed `label_<task>` / `weight_<task>`; tasks in turn, each from a source that labels it."""
    import tensorflow as tf

    from config import label_key, weight_key
    from data_prep.example_proto import Example
    from data_prep.records import make_example

    rng = np.random.default_rng(seed)
    h, w = config.image.size  # PNGs at the contract size, as the conversion writes them
    sources_of = {t.name: [s.name for s in config.sources if t.name in s.tasks] for t in config.tasks}
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for j in range(n):
            i = j % len(config.tasks)
            task = config.tasks[i]
            label = np.zeros(config.label_width, np.float32)
            if task.type == "regression":
                label[0] = rng.normal(30, 10)
            elif task.type == "multilabel":
                label[:task.width] = rng.integers(0, 2, task.width)
            else:
                label[rng.integers(task.width)] = 1
            image = _png(rng, h, w, config.image.channels)
            source = str(rng.choice(sources_of[task.name]))
            example = Example.FromString(make_example(image, i, label.tolist(), source,
                                                      f"{source}/bench-{j}/{task.name}"))
            feats = example.features.feature
            for k, t in enumerate(config.tasks):
                feats[label_key(t.name)].float_list.value.extend(
                    label[:t.width].tolist() if k == i else [0.0] * t.width)
                feats[weight_key(t.name)].float_list.value.append(float(k == i))
            writer.write(example.SerializeToString())


def feature_spec(config) -> dict:
    import tensorflow as tf

    from config import label_key, weight_key

    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "task_index": tf.io.FixedLenFeature([], tf.int64),
            "source": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([config.label_width], tf.float32)}
    for t in config.tasks:
        spec[label_key(t.name)] = tf.io.FixedLenFeature([t.width], tf.float32)
        spec[weight_key(t.name)] = tf.io.FixedLenFeature([], tf.float32)
    return spec


def save_model(config, path: str, build=None) -> None:
    """The config's model, untrained, with the EvalConfig's two signatures over serialized eval
    examples: serving_default (PNG image -> models.preprocess -> model) and
    transform_features (labels and weights, no image), as the Trainer exports them."""
    import tensorflow as tf

    from config import label_key, weight_key
    from models import get_builder
    from models.preprocess import preprocess_image_batch

    model = (build or get_builder(config.model.name))(config)
    spec = feature_spec(config)
    keys = [label_key(t.name) for t in config.tasks] + [weight_key(t.name) for t in config.tasks]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        images = tf.io.parse_example(examples, {"image": spec["image"]})["image"]
        return model({"image": preprocess_image_batch(images, config.image)}, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform(examples):
        return tf.io.parse_example(examples, {k: spec[k] for k in keys})

    model.compile(loss="mse")  # TFMA loads it as a Keras model
    model.save(path, save_format="tf", signatures={"serving_default": serve, "transform_features": transform})


# --- the two evaluations ---------------------------------------------------------

def run_tfma(config, model_dir: str, data: str, out: str) -> Metrics:
    import tensorflow_model_analysis as tfma

    from components.common.eval_config import build_eval_config
    from components.report.tfma_reader import load_tfma_metrics

    eval_config = build_eval_config(config)
    # rubber_stamp: a first run (no baseline), as TFX runs it; value thresholds still apply.
    shared = tfma.default_eval_shared_model(model_dir, eval_config=eval_config, rubber_stamp=True)
    tfma.run_model_analysis(shared, eval_config, data_location=data, file_format="tfrecords", output_path=out)
    return load_tfma_metrics(out)["candidate"]


def run_numpy(config, model_dir: str, data: str) -> Metrics:
    import tensorflow as tf
    import tf_keras as keras

    from models.preprocess import preprocess_image_batch

    model = keras.models.load_model(model_dir, compile=False)
    spec = feature_spec(config)

    def parse(x):
        batch = tf.io.parse_example(x, spec)
        return {**batch, "image": preprocess_image_batch(batch["image"], config.image)}

    ds = tf.data.TFRecordDataset([data], compression_type="GZIP").batch(BATCH).map(
        parse, num_parallel_calls=tf.data.AUTOTUNE)
    cols: dict[str, list] = {"image": [], "task_index": [], "source": [], "label": []}
    for batch in ds.as_numpy_iterator():
        for k in cols:
            cols[k].append(batch[k])
    images = np.concatenate(cols["image"])  # [N, H, W, C] floats from models.preprocess
    preds = model.predict({"image": images}, batch_size=BATCH, verbose=0)
    return numpy_metrics(config, np.concatenate(cols["label"]).astype(np.float64),
                         np.concatenate(cols["task_index"]),
                         np.array([s.decode() for s in np.concatenate(cols["source"])]),
                         {k: np.asarray(v, np.float64) for k, v in preds.items()})


def measure(config, n: int, workdir: str, build=None) -> dict:
    """Times both evaluations on one model and one data set; returns times and agreement."""
    data, model_dir = os.path.join(workdir, "eval.tfrecord.gz"), os.path.join(workdir, "model")
    write_eval_examples(config, data, n)
    save_model(config, model_dir, build)
    start = time.perf_counter()
    reference = run_numpy(config, model_dir, data)
    numpy_s = time.perf_counter() - start
    start = time.perf_counter()
    got = run_tfma(config, model_dir, data, os.path.join(workdir, "tfma"))
    tfma_s = time.perf_counter() - start
    return {"tfma_s": tfma_s, "numpy_s": numpy_s, "max_abs_diff": compare(reference, got),
            "metrics_compared": len(reference)}


def run(n: int = N_EXAMPLES, config_path: str = os.path.join(ROOT, "configs", "default.yaml")) -> list[Figure]:
    from config import load

    config = load(config_path)
    with tempfile.TemporaryDirectory() as tmp:
        r = measure(config, n, tmp)
    diffs = r["max_abs_diff"]
    auc = diffs.pop("auc", 0.0)
    print(f"  {n} examples, {config.model.name}, {r['metrics_compared']} metric values compared; "
          f"largest |TFMA - numpy|: AUC {auc:.2e}, others {max(diffs.values()):.2e} "
          f"({max(diffs, key=diffs.get)})", flush=True)
    return [
        # The goal is the ratio; the times' goal only catches a stuck run.
        Figure("tfma_eval_s", round(r["tfma_s"], 1), TIME_LIMIT_S, "s", "lower"),
        Figure("numpy_eval_s", round(r["numpy_s"], 1), TIME_LIMIT_S, "s", "lower"),
        Figure("tfma_vs_numpy_ratio", round(r["tfma_s"] / r["numpy_s"], 2), RATIO_GOAL, "x", "lower"),
        Figure("tfma_auc_max_abs_diff", auc, 1e-3, "", "lower"),
        Figure("tfma_other_max_abs_diff", max(diffs.values()), 1e-6, "", "lower"),
    ]
