"""The training-parity benchmark's pieces: real-data readers, scoring, the gap, the reference loop."""
import gzip
import os
import statistics

import numpy as np
import pytest
from PIL import Image

from benchmarks import real_data
from benchmarks import train_parity as tp
from config import parse
from tests.components.trainer.helpers import config_dict


def test_read_idx_reads_mnist_layout(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    path = str(tmp_path / "x-idx3-ubyte.gz")
    with gzip.open(path, "wb") as f:
        f.write(header + data.tobytes())
    assert np.array_equal(real_data.read_idx(path), data)


def test_digit_sheet_cells_and_labels(tmp_path, monkeypatch):
    # OpenCV's digits.png: 50 rows x 100 columns of 20x20 cells, 5 rows per digit
    sheet = np.zeros((1000, 2000), np.uint8)
    for r in range(50):
        for c in range(100):
            sheet[r * 20:(r + 1) * 20, c * 20:(c + 1) * 20] = (r * 100 + c) % 256
    path = str(tmp_path / "digits.png")
    Image.fromarray(sheet).save(path)
    monkeypatch.setattr(real_data, "package_file", lambda package, member, cache: path)
    images, labels = real_data.load_images(real_data.DATASETS["opencv_digits"], str(tmp_path))
    assert images.shape == (5000, 20, 20) and labels.shape == (5000,)
    assert images[101, 0, 0] == 101 and images[5 * 100, 0, 0] == 500 % 256
    assert labels[499] == 0 and labels[500] == 1 and labels[4999] == 9


def test_write_sources_makes_two_disjoint_class_folder_sources(tmp_path, monkeypatch):
    images = np.stack([np.full((4, 4), i % 256, np.uint8) for i in range(600)])
    labels = np.arange(600) % 10
    monkeypatch.setattr(real_data, "load_images", lambda dataset, cache: (images, labels))
    dataset = real_data.RealDataset("toy", "none", "digit", tuple(f"c{i}" for i in range(10)), "four_or_nine",
                                    (4, 9), multiclass_images=300, binary_images=40)
    paths = real_data.write_sources(dataset, str(tmp_path / "toy"), str(tmp_path / "cache"))
    multi = {f for _, _, fs in os.walk(paths["digit"]) for f in fs}
    binary = {f for _, _, fs in os.walk(paths["four_or_nine"]) for f in fs}
    assert len(multi) == 300 and len(binary) == 40 and not multi & binary
    assert sorted(os.listdir(paths["four_or_nine"])) == ["c4", "c9"]
    # kept while the subset is the same; rewritten when it changes
    assert real_data.write_sources(dataset, str(tmp_path / "toy"), "") == paths
    smaller = real_data.RealDataset(**{**dataset.__dict__, "binary_images": 20})
    real_data.write_sources(smaller, str(tmp_path / "toy"), "")
    assert sum(len(fs) for _, _, fs in os.walk(paths["four_or_nine"])) == 20
    config = parse(real_data.config_dict(dataset, paths, steps=600), None)
    assert [t.name for t in config.tasks] == ["digit", "four_or_nine"] and config.train.steps == 600
    assert config.image.size == (32, 32) and config.model.params == {} and config.splits.eval == 0.5


def test_scores_count_only_each_tasks_examples():
    config = parse(config_dict(), None)
    onehot = lambda k, n: np.eye(n)[k]  # noqa: E731
    labels = {"smile": np.stack([onehot(1, 2), onehot(0, 2), onehot(0, 2)]),
              "gender": np.stack([onehot(0, 2)] * 3), "age": np.stack([onehot(2, 5)] * 3)}
    weights = {"smile": np.array([1.0, 1.0, 0.0]), "gender": np.array([0.0, 0.0, 1.0]), "age": np.zeros(3)}
    weights["age"][2] = 1.0
    out = {"smile": np.stack([onehot(1, 2), onehot(1, 2), onehot(0, 2)]),  # right, wrong, (not smile's)
           "gender": np.stack([onehot(1, 2)] * 2 + [onehot(0, 2)]), "age": np.stack([onehot(2, 5)] * 3)}
    got = tp.scores(config, lambda images: out, (np.zeros((3, 1)), labels, weights))
    assert got == {"smile": 0.5, "gender": 1.0, "age": 1.0}


def test_gap_is_in_accuracy_points_or_relative_mae():
    config = parse(config_dict(), None)
    smile = config.task("smile")
    assert tp.gap(smile, [0.80, 0.90], [0.90, 0.90]) == pytest.approx(-0.05)
    regression = parse({**config_dict(), "tasks": [{"name": "smile", "type": "regression"},
                                                   {"name": "gender", "type": "binary", "classes": ["f", "m"]},
                                                   {"name": "age", "type": "regression"}]}, None).task("age")
    assert tp.gap(regression, [6.0, 6.0], [5.0, 5.0]) == pytest.approx(-0.2)  # 20% worse MAE


def test_reference_loop_learns_a_separable_task_and_repeats_with_its_seed():
    d = config_dict(size=(8, 8), batch_size=16)
    d["train"].update(steps=40, seed=3, warmup=0.0, lr_decay="constant", learning_rate=1e-3)
    d["model"] = {"name": "multibranch", "params": {"filters": [4], "dense": [8]}}
    config = parse(d, None)
    rng = np.random.default_rng(0)
    n = 96
    task = np.arange(n) % 3
    classes = rng.integers(0, 2, n)
    images = (classes[:, None, None, None] * 2.0 - 1.0) * np.ones((n, 8, 8, 1), np.float32)
    images += rng.normal(0, 0.3, images.shape).astype(np.float32)
    labels = {"smile": np.eye(2)[classes].astype(np.float32), "gender": np.eye(2)[classes].astype(np.float32),
              "age": np.eye(5)[classes].astype(np.float32)}
    weights = {t: (task == i).astype(np.float32) for i, t in enumerate(("smile", "gender", "age"))}
    data = (images, labels, weights)
    first = tp.scores(config, tp._predictor(tp.train_reference(config, data)), data)
    again = tp.scores(config, tp._predictor(tp.train_reference(config, data)), data)
    assert first == again
    assert statistics.mean(first.values()) > 0.9


def test_paired_interval_of_the_per_seed_gaps():
    config = parse(config_dict(), None)
    smile = config.task("smile")
    low, high = tp.paired_interval(smile, [0.80, 0.90, 0.85], [0.81, 0.88, 0.86])
    # differences -0.01, +0.02, -0.01: mean 0, sd 0.01732, t(2) = 4.303
    assert (low, high) == (pytest.approx(-0.04303, abs=1e-5), pytest.approx(0.04303, abs=1e-5))
    assert all(np.isnan(tp.paired_interval(smile, [0.8], [0.9])))


def test_raw_instances_keep_the_optional_slice_features():
    """The benchmark feeds raw examples to tft_beam itself: a VarLen slice_<task> column (present
    on a multi-task source's examples, absent on the others) must come out as one array per
    example, and the fixed-length columns as scalars."""
    import tensorflow as tf

    from benchmarks.training_data import _raw_instances

    def example(task_index, slice_value=None):
        feature = {"task_index": tf.train.Feature(int64_list=tf.train.Int64List(value=[task_index]))}
        if slice_value is not None:
            feature["slice_gender"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[slice_value]))
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    spec = {"task_index": tf.io.FixedLenFeature([], tf.int64), "slice_gender": tf.io.VarLenFeature(tf.string)}
    rows = _raw_instances([example(2, b"female"), example(0)], spec)
    assert [r["task_index"] for r in rows] == [2, 0]
    assert [list(r["slice_gender"]) for r in rows] == [[b"female"], []]


def _separable(precision: str):
    d = config_dict(size=(8, 8), batch_size=16)
    d["train"].update(steps=40, seed=3, warmup=0.0, lr_decay="constant", learning_rate=1e-3, precision=precision)
    d["model"] = {"name": "multibranch", "params": {"filters": [4], "dense": [8]}}
    config = parse(d, None)
    rng = np.random.default_rng(0)
    n = 96
    task = np.arange(n) % 3
    classes = rng.integers(0, 2, n)
    images = (classes[:, None, None, None] * 2.0 - 1.0) * np.ones((n, 8, 8, 1), np.float32)
    images += rng.normal(0, 0.3, images.shape).astype(np.float32)
    labels = {"smile": np.eye(2)[classes].astype(np.float32), "gender": np.eye(2)[classes].astype(np.float32),
              "age": np.eye(5)[classes].astype(np.float32)}
    weights = {t: (task == i).astype(np.float32) for i, t in enumerate(("smile", "gender", "age"))}
    return config, (images, labels, weights)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_reference_loop_trains_under_the_configured_policy_with_float32_outputs(precision):
    """BENCH_PARITY_PRECISION: the reference model is built under the dtype policy (as run_fn
    builds the Trainer's), its task outputs stay float32, it still learns, and the global
    policy is float32 again afterwards."""
    import tf_keras as keras

    config, data = _separable(precision)
    model = tp.train_reference(config, data)
    assert keras.mixed_precision.global_policy().name == "float32"
    computes = {layer.dtype_policy.compute_dtype for layer in model.layers if layer.weights}
    assert {"bfloat16" if precision == "mixed_bfloat16" else "float16", "float32"} <= computes
    assert all(model.get_layer(t).dtype_policy.name == "float32" for t in config.task_names)
    assert all(v.dtype == "float32" for v in model.weights)
    outputs = model.predict(data[0], verbose=0)
    assert all(np.asarray(outputs[t]).dtype == np.float32 for t in config.task_names)
    assert statistics.mean(tp.scores(config, tp._predictor(model), data).values()) > 0.9


def test_precision_setting_names_the_figure_and_is_checked(monkeypatch):
    config = parse(config_dict(), None)
    assert tp.with_precision(config, "mixed_bfloat16").train.precision == "mixed_bfloat16"
    assert tp.with_precision(config, config.train.precision) == config
    with pytest.raises(ValueError, match="BENCH_PARITY_PRECISION"):
        tp.with_precision(config, "bfloat16")
    assert tp.figure_name("auto") == "train_parity"
    assert tp.figure_name("float32") == "train_parity_float32"
    assert tp.figure_name("mixed_bfloat16") == "train_parity_mixed_bfloat16"
    monkeypatch.setenv("BENCH_PARITY_PRECISION", "half")
    with pytest.raises(ValueError, match="BENCH_PARITY_PRECISION"):
        tp.run()


def test_seeds_are_a_count_or_a_range():
    assert tp.parse_seeds("3") == (1, 2, 3)
    assert tp.parse_seeds("4-8") == (4, 5, 6, 7, 8)
    assert tp.parse_seeds("5-5") == (5,)
    for bad in ("0", "8-4", "0-3", "x", "-3", "2-"):
        with pytest.raises(ValueError, match=f"received {bad!r}"):
            tp.parse_seeds(bad)
