"""Transform's preprocessing_fn through tft_beam, with exact output values."""
import numpy as np
import pytest

from components.transform.preprocessing import transform_features
from tests.components.trainer.helpers import analyze_and_transform, png_bytes

# 4x4 gray images, constant per example so the expected pixels are one number each.
VALUES = {"a": 0, "b": 128, "c": 255}


def instance(key, task_index, label):
    return {"image": png_bytes(np.full((4, 4), VALUES[key], np.uint8)), "task_index": task_index,
            "label": np.array(label, np.float32), "source": b"genki4k" if task_index == 0 else b"wiki",
            "example_id": key.encode()}


def test_preprocessing_fn_in_tft_beam(make_config, tmp_path):
    config = make_config(size=(4, 4))
    raw = [
        instance("a", 0, [0, 1, 0, 0, 0]),  # smile: class 1 (smile)
        # gender: class 0 (female); age: class 3 (40-54); each carries the wiki record's other
        # label as a slice-only feature, which changes nothing below (docs/data_contract.md)
        {**instance("b", 1, [1, 0, 0, 0, 0]), "slice_age": [b"40-54"]},
        {**instance("c", 2, [0, 0, 0, 1, 0]), "slice_gender": [b"female"]},
    ]
    out = analyze_and_transform(raw, config, str(tmp_path))
    out = sorted(out, key=lambda d: int(d["task_index"]))
    assert sorted(out[0]) == ["image", "label_age", "label_gender", "label_smile", "task_index",
                              "weight_age", "weight_gender", "weight_smile"]
    # pixels (x - 128) / 255: 0 -> -0.501961, 128 -> 0.0, 255 -> 0.498039, every one of 4*4*1
    for d, expected in zip(out, (-0.501961, 0.0, 0.498039)):
        image = np.asarray(d["image"], np.float32).reshape(4, 4, 1)
        np.testing.assert_allclose(image, np.full((4, 4, 1), expected), atol=1e-6)
    # labels: each task's slice starts at slot 0 of the padded label (widths 2, 2, 5)
    np.testing.assert_array_equal(out[0]["label_smile"], [0, 1])
    np.testing.assert_array_equal(out[1]["label_gender"], [1, 0])
    np.testing.assert_array_equal(out[2]["label_age"], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(out[2]["label_smile"], [0, 0])  # not its task: zeroed
    # weights: 1.0 exactly where task_index == the task's position (smile 0, gender 1, age 2)
    weights = [[float(d[f"weight_{t}"]) for t in ("smile", "gender", "age")] for d in out]
    assert weights == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert [int(d["task_index"]) for d in out] == [0, 1, 2]


def test_missing_raw_feature_is_named(make_config):
    import tensorflow as tf

    with pytest.raises(ValueError, match=r"raw features \['task_index'\] are missing"):
        transform_features({"image": tf.constant([b""]), "label": tf.zeros([1, 5])}, make_config())


def test_sparse_and_n_by_1_raw_features_are_accepted(make_config):
    # A schema without fixed shapes gives VarLen (sparse) features; shape [1] gives [N, 1].
    import tensorflow as tf

    cfg = make_config(size=(4, 4))
    image = png_bytes(np.full((4, 4), 255, np.uint8))
    inputs = {
        "image": tf.constant([[image], [image]]),
        "label": tf.sparse.from_dense(tf.constant([[0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])),
        "task_index": tf.SparseTensor(indices=[[0, 0], [1, 0]], values=tf.constant([0, 2], tf.int64),
                                      dense_shape=[2, 1]),
    }
    out = transform_features(inputs, cfg)
    assert out["image"].shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(out["label_smile"].numpy(), [[0, 1], [0, 0]])
    # row 0 is a smile example: age's label is zeroed there, not smile's one-hot
    np.testing.assert_array_equal(out["label_age"].numpy(), [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1]])
    np.testing.assert_array_equal(out["weight_age"].numpy(), [0.0, 1.0])
    np.testing.assert_array_equal(out["task_index"].numpy(), [0, 2])
