"""run_fn end to end without TFX orchestration: raw GZIP TFRecords -> tft_beam
transform graph -> transformed GZIP TFRecords -> run_fn -> saved model, then
every signature is checked on the raw data."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from components.preprocess import preprocess_image_batch
from components.trainer import epochs_for, patterns_by_source, run_fn
from trainer_testdata import (analyze_and_transform, make_config, png_bytes, raw_example,
                              transformed_example, write_gzip_tfrecords)

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
            serialized = raw_example(image, task, label.tolist(), source, f"{source}-{i}")
            instance = {"image": image, "task_index": task, "label": label, "source": source.encode(),
                        "example_id": f"{source}-{i}".encode()}
            split = f"{'train' if i < 16 else 'eval'}_{source}"
            splits.setdefault(split, []).append((serialized, instance))
    return splits


def write_transformed(tft_output, split_dir, serialized):
    """Applies the saved transform graph and writes what Transform would (GZIP tf.Examples)."""
    raw = tf.io.parse_example(tf.constant(serialized), tft_output.raw_feature_spec())
    out = {k: v.numpy() for k, v in tft_output.transform_raw_features(raw).items()}
    records = [transformed_example({k: v[i] for k, v in out.items()}) for i in range(len(serialized))]
    write_gzip_tfrecords(os.path.join(split_dir, "transformed_examples-00000-of-00001.gz"), records)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_fn")
    config = make_config(size=(48, 48), batch_size=8)
    splits = make_raw(np.random.default_rng(0))
    for split, rows in splits.items():
        write_gzip_tfrecords(str(root / "raw" / f"Split-{split}" / "data_tfrecord-00000.gz"), [r[0] for r in rows])
    graph_dir = str(root / "transform_graph")
    # No analyzers in preprocessing_fn, so a few instances make the full graph.
    analyze_and_transform([rows[0][1] for rows in splits.values()], config, str(root / "tft_tmp"), graph_dir)
    tft_output = tft.TFTransformOutput(graph_dir)
    for split, rows in splits.items():
        write_transformed(tft_output, str(root / "transformed" / f"Split-{split}"), [r[0] for r in rows])

    pattern = lambda split: str(root / "transformed" / f"Split-{split}" / "*")  # noqa: E731
    fn_args = FnArgs(
        train_files=[pattern("train_genki4k"), pattern("train_wiki")],
        eval_files=[pattern("eval_genki4k"), pattern("eval_wiki")],
        train_steps=3, eval_steps=2, transform_output=graph_dir,
        serving_model_dir=str(root / "serving_model"), model_run_dir=str(root / "model_run"),
        custom_config={"config": config.to_json()})
    run_fn(fn_args)
    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    eval_rows = splits["eval_genki4k"] + splits["eval_wiki"]
    return config, fn_args, loaded, eval_rows


def test_signatures_and_their_shapes(trained):
    config, fn_args, loaded, rows = trained
    assert sorted(loaded.signatures) == ["serving_default", "serving_image", "transform_features"]
    examples = tf.constant([r[0] for r in rows])  # 8 raw eval examples
    out = loaded.signatures["serving_default"](examples=examples)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"smile": (8, 2), "gender": (8, 2), "age": (8, 5)}
    for v in out.values():  # softmax heads
        np.testing.assert_allclose(v.numpy().sum(axis=1), 1.0, rtol=1e-5)

    feats = loaded.signatures["transform_features"](examples=examples)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "image": (8, 48, 48, 1), "task_index": (8,), "label_smile": (8, 2), "label_gender": (8, 2),
        "label_age": (8, 5), "weight_smile": (8,), "weight_gender": (8,), "weight_age": (8,)}
    tasks = np.array([r[1]["task_index"] for r in rows])
    np.testing.assert_array_equal(feats["task_index"].numpy(), tasks)
    np.testing.assert_array_equal(feats["weight_age"].numpy(), (tasks == 2).astype(np.float32))
    # the age task's label, zeroed on the other tasks' examples
    expected = np.stack([r[1]["label"] for r in rows]) * (tasks == 2)[:, None]
    np.testing.assert_array_equal(feats["label_age"].numpy(), expected)
    # the image is the shared preprocessing of the raw bytes (float rounding of the two graphs
    # may differ in the last bit: 3e-8 seen; one grey level is 1 / 255 = 0.0039)
    images = tf.constant([r[1]["image"] for r in rows])
    np.testing.assert_allclose(feats["image"].numpy(), preprocess_image_batch(images, config.image).numpy(),
                               atol=1e-6)


def test_serving_default_equals_serving_image(trained):
    _, _, loaded, rows = trained
    by_example = loaded.signatures["serving_default"](examples=tf.constant([r[0] for r in rows]))
    by_image = loaded.signatures["serving_image"](image_bytes=tf.constant([r[1]["image"] for r in rows]))
    for task in TASKS:
        np.testing.assert_allclose(by_example[task].numpy(), by_image[task].numpy(), atol=1e-6)
    # a client sends only the image: label / task_index default to zeros, predictions unchanged
    only_image = [tf.train.Example(features=tf.train.Features(feature={"image": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[r[1]["image"]]))})).SerializeToString() for r in rows]
    by_image_only_example = loaded.signatures["serving_default"](examples=tf.constant(only_image))
    for task in TASKS:
        np.testing.assert_allclose(by_image_only_example[task].numpy(), by_image[task].numpy(), atol=1e-6)


def test_run_leaves_logs_and_a_keras_model(trained):
    _, fn_args, _, rows = trained
    assert tf.io.gfile.glob(os.path.join(fn_args.model_run_dir, "train", "events.out.tfevents.*"))
    assert tf.io.gfile.glob(os.path.join(fn_args.model_run_dir, "validation", "events.out.tfevents.*"))
    import tf_keras as keras

    model = keras.models.load_model(fn_args.serving_model_dir)
    assert model.input_names == ["image"] and sorted(model.output_names) == ["age", "gender", "smile"]
    # TFMA's default metrics need a compiled loss, and TFMA loads the model without our code:
    # the saved compile config names only built-in losses and metrics
    assert {task: fn.__name__ for task, fn in model.loss.items()} == {
        "smile": "categorical_crossentropy", "gender": "categorical_crossentropy", "age": "categorical_crossentropy"}
    # the compiled per-task weighted metrics come back too
    feats = trained[2].signatures["transform_features"](examples=tf.constant([r[0] for r in rows]))
    result = model.evaluate(feats["image"], {t: feats[f"label_{t}"] for t in TASKS},
                            sample_weight={t: feats[f"weight_{t}"] for t in TASKS}, verbose=0, return_dict=True)
    assert {"smile_accuracy", "gender_accuracy", "age_accuracy", "smile_loss", "loss"} <= set(result)


def test_split_pairing_and_epochs(make_config):
    cfg = make_config()
    assert patterns_by_source(["a/*", "b/*"], cfg, "train") == {"genki4k": "a/*", "wiki": "b/*"}
    with pytest.raises(ValueError, match=r"expected one pattern per source \['genki4k', 'wiki'\]"):
        patterns_by_source(["a/*"], cfg, "train")
    # 300 = 10 epochs of 30; 3 steps: one epoch; 97 (prime): one epoch; 40 = 4 epochs of 10
    assert [epochs_for(s) for s in (300, 3, 97, 40)] == [10, 1, 1, 4]
