"""data_prep.example_proto: TensorFlow-free tf.train.Example bytes that TensorFlow reads as its own."""
import subprocess
import sys

from data_prep.records import make_example


def test_bytes_parse_as_tf_train_example_with_every_contract_feature():
    import tensorflow as tf

    data = make_example(b"\x89PNG\x00bytes", 2, [0.0, 1.0, 0.25, -3.5], "utk", "utk/a.jpg/gender")
    parsed = tf.train.Example.FromString(data).features.feature
    assert set(parsed) == {"image", "task_index", "label", "source", "example_id"}
    assert parsed["image"].bytes_list.value == [b"\x89PNG\x00bytes"]
    assert parsed["task_index"].int64_list.value == [2]
    assert parsed["label"].float_list.value == [0.0, 1.0, 0.25, -3.5]
    assert parsed["source"].bytes_list.value == [b"utk"]
    assert parsed["example_id"].bytes_list.value == [b"utk/a.jpg/gender"]
    # and TensorFlow's own serialization of the same features parses to the same message
    same = tf.train.Example()
    for key, feature in parsed.items():
        same.features.feature[key].CopyFrom(feature)
    assert tf.train.Example.FromString(same.SerializeToString()) == tf.train.Example.FromString(data)


def test_serializing_examples_does_not_import_tensorflow():
    code = ("import sys; from data_prep.records import make_example; "
            "make_example(b'x', 0, [1.0], 's', 'id'); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_same_example_serializes_to_the_same_bytes():
    made = {make_example(b"png", 1, [1.0, 0.0], "utk", "utk/a.jpg/gender") for _ in range(50)}
    assert len(made) == 1
