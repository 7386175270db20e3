"""run_fn end to end without TFX orchestration: raw GZIP TFRecords -> tft_beam
transform graph -> transformed GZIP TFRecords -> run_fn -> saved model, then
every signature is checked on the raw data."""
import os

import numpy as np
import pytest
import tensorflow as tf

from components.trainer.run_fn import epochs_for, patterns_by_source
from models.preprocess import preprocess_image_batch

# make_raw / write_transformed moved to helpers.py; importable from here as before.
from tests.components.trainer.helpers import TASKS, WIDTHS, make_raw, write_transformed  # noqa: F401

# The `trained` fixture (run_fn for 3 steps, the saved model loaded) is in tests/conftest.py.


def test_signatures_and_their_shapes(trained):
    _, _, loaded, rows = trained
    assert sorted(loaded.signatures) == ["serving_default", "serving_image", "transform_features"]
    examples = tf.constant([r[0] for r in rows])  # 8 raw eval examples
    out = loaded.signatures["serving_default"](examples=examples)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"smile": (8, 2), "gender": (8, 2), "age": (8, 5)}
    for v in out.values():  # softmax heads
        np.testing.assert_allclose(v.numpy().sum(axis=1), 1.0, rtol=1e-5)

    feats = loaded.signatures["transform_features"](examples=examples)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {  # no image: TFMA reads none (signatures.py)
        "task_index": (8,), "label_smile": (8, 2), "label_gender": (8, 2),
        "label_age": (8, 5), "weight_smile": (8,), "weight_gender": (8,), "weight_age": (8,)}
    tasks = np.array([r[1]["task_index"] for r in rows])
    np.testing.assert_array_equal(feats["task_index"].numpy(), tasks)
    np.testing.assert_array_equal(feats["weight_age"].numpy(), (tasks == 2).astype(np.float32))
    # the age task's label, zeroed on the other tasks' examples
    expected = np.stack([r[1]["label"] for r in rows]) * (tasks == 2)[:, None]
    np.testing.assert_array_equal(feats["label_age"].numpy(), expected)
    # (that the Transform graph's image is the shared preprocessing is pinned by
    # test_serving_default_equals_serving_image: raw example vs image bytes, same outputs)


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


def test_slice_only_features_change_no_signature_output(trained):
    """Examples that carry slice-only features (docs/data_contract.md) give the same predictions and
    transformed features: nothing downstream of parsing reads them, and nothing requires them."""
    _, _, loaded, rows = trained
    plain = [r[0] for r in rows]
    sliced = []
    for raw in plain:
        ex = tf.train.Example.FromString(raw)
        ex.features.feature["slice_gender"].bytes_list.value.append(b"female")
        ex.features.feature["slice_age"].bytes_list.value.append(b"55+")
        sliced.append(ex.SerializeToString())
    for name in ("serving_default", "transform_features"):
        a = loaded.signatures[name](examples=tf.constant(plain))
        b = loaded.signatures[name](examples=tf.constant(sliced))
        assert sorted(a) == sorted(b) and not [k for k in b if k.startswith("slice_")]
        for k in a:
            np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())


def test_run_leaves_logs_and_a_keras_model(trained):
    _, fn_args, _, rows = trained
    assert tf.io.gfile.glob(os.path.join(fn_args.model_run_dir, "train", "events.out.tfevents.*"))
    assert tf.io.gfile.glob(os.path.join(fn_args.model_run_dir, "validation", "events.out.tfevents.*"))
    import tf_keras as keras

    model = keras.models.load_model(fn_args.serving_model_dir)
    assert model.input_names == ["image"] and sorted(model.output_names) == ["age", "gender", "smile"]
    # the family's own functional model is saved, not the training wrapper with its loss weighting
    assert type(model).__name__ == "Functional" and model.name == "bknet"
    assert not any("loss_weighting" in w.name for w in model.weights)
    # TFMA's default metrics need a compiled loss, and TFMA loads the model without our code:
    # the saved compile config names only built-in losses and metrics
    assert {task: fn.__name__ for task, fn in model.loss.items()} == {
        "smile": "categorical_crossentropy", "gender": "categorical_crossentropy", "age": "categorical_crossentropy"}
    # the compiled per-task weighted metrics come back too
    feats = trained[2].signatures["transform_features"](examples=tf.constant([r[0] for r in rows]))
    images = preprocess_image_batch(tf.constant([r[1]["image"] for r in rows]), trained[0].image)
    result = model.evaluate(images, {t: feats[f"label_{t}"] for t in TASKS},
                            sample_weight={t: feats[f"weight_{t}"] for t in TASKS}, verbose=0, return_dict=True)
    assert {"smile_accuracy", "gender_accuracy", "age_accuracy", "smile_loss", "loss"} <= set(result)


def test_split_pairing_and_epochs(make_config):
    cfg = make_config()
    assert patterns_by_source(["a/*", "b/*"], cfg, "train") == {"genki4k": "a/*", "wiki": "b/*"}
    with pytest.raises(ValueError, match=r"expected one pattern per source \['genki4k', 'wiki'\]"):
        patterns_by_source(["a/*"], cfg, "train")
    # 300 = 10 epochs of 30; 3 steps: one epoch; 97 (prime): one epoch; 40 = 4 epochs of 10
    assert [epochs_for(s) for s in (300, 3, 97, 40)] == [10, 1, 1, 4]
