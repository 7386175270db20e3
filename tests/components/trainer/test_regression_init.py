"""Regression outputs start at the mean training label of their own examples."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.trainer.run_fn import init_regression_biases
from config import parse


def test_regression_bias_is_the_weighted_mean_label_of_the_task():
    config = parse({"name": "r", "tasks": [{"name": "age", "type": "regression"},
                                             {"name": "g", "type": "binary", "classes": ["a", "b"]}],
                    "sources": [{"name": "s", "format": "utkface", "path": "/nonexistent",
                                 "tasks": ["age", "g"], "options": {"age_task": "age", "gender_task": "g"}}]},
                   base_dir=None)
    inp = keras.Input((4,), name="image")
    model = keras.Model(inp, {"age": keras.layers.Dense(1, name="age")(inp),
                              "g": keras.layers.Dense(2, activation="softmax", name="g")(inp)})
    ages = np.array([[10.0], [30.0], [99.0], [50.0]], np.float32)
    w_age = np.array([1.0, 1.0, 0.0, 1.0], np.float32)  # the 99 is another task's example
    ds = tf.data.Dataset.from_tensor_slices(
        ({"image": np.zeros((4, 4), np.float32)},
         {"age": ages, "g": np.zeros((4, 2), np.float32)},
         {"age": w_age, "g": 1 - w_age})).batch(2)
    assert init_regression_biases(model, config, ds) == {"age": pytest.approx(30.0)}
    assert model.get_layer("age").bias.numpy().tolist() == [30.0]
    assert model.get_layer("g").bias.numpy().tolist() == [0.0, 0.0]
