"""Masked per-task losses against hand-computed values: sum(w*l) / max(sum(w), 1)."""
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from models.losses import MaskedTaskLoss, per_example_loss


def value(loss, y, p, w=None):
    return float(loss(tf.constant(y, tf.float32), tf.constant(p, tf.float32),
                      None if w is None else tf.constant(w, tf.float32)))


def test_binary_is_two_slot_categorical_cross_entropy_over_the_tasks_examples():
    y = [[1, 0], [0, 1], [1, 0]]
    p = [[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]]
    # per example: -ln 0.8 = 0.223144, -ln 0.6 = 0.510826, -ln 0.5 = 0.693147
    np.testing.assert_allclose(per_example_loss("binary", tf.constant(y, tf.float32), tf.constant(p)).numpy(),
                               [0.223144, 0.510826, 0.693147], rtol=1e-5)
    # third example belongs to another task: (0.223144 + 0.510826) / 2 = 0.366985
    assert value(MaskedTaskLoss("binary"), y, p, [1, 1, 0]) == pytest.approx(0.366985, rel=1e-5)
    # no weights: a plain mean, (0.223144 + 0.510826 + 0.693147) / 3 = 0.475706
    assert value(MaskedTaskLoss("binary"), y, p) == pytest.approx(0.475706, rel=1e-5)


def test_multiclass_mean_is_over_the_tasks_examples_not_the_batch():
    y = [[0, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 1, 0, 0, 0]]
    p = [[0.1, 0.1, 0.5, 0.2, 0.1], [0.2] * 5, [0.1, 0.1, 0.1, 0.1, 0.6], [0.3, 0.3, 0.2, 0.1, 0.1]]
    # only example 0 is this task's: -ln 0.5 = 0.693147 (the seed's batch mean would give 0.693147 / 4)
    assert value(MaskedTaskLoss("multiclass"), y, p, [1, 0, 0, 0]) == pytest.approx(math.log(2), rel=1e-5)
    # examples 1 and 2: (-ln 0.2 - ln 0.6) / 2 = (1.609438 + 0.510826) / 2 = 1.060132
    assert value(MaskedTaskLoss("multiclass"), y, p, [0, 1, 1, 0]) == pytest.approx(1.060132, rel=1e-5)


def test_batch_without_the_task_gives_exactly_zero():
    y = [[1, 0], [0, 1]]
    p = [[0.01, 0.99], [0.99, 0.01]]  # badly wrong, yet not this task's examples
    assert value(MaskedTaskLoss("binary"), y, p, [0, 0]) == 0.0
    assert value(MaskedTaskLoss("regression"), [[3.0], [4.0]], [[0.0], [0.0]], [0, 0]) == 0.0


def test_multilabel_is_binary_cross_entropy_averaged_over_labels():
    y = [[1, 0, 1], [0, 0, 1]]
    p = [[0.9, 0.2, 0.7], [0.1, 0.4, 0.5]]
    # example 1 only: (-ln(1-0.1) - ln(1-0.4) - ln 0.5) / 3 = (0.105361 + 0.510826 + 0.693147) / 3 = 0.436445
    assert value(MaskedTaskLoss("multilabel"), y, p, [0, 1]) == pytest.approx(0.436445, rel=1e-5)
    # numpy reference over both examples
    y_, p_ = np.array(y, float), np.array(p, float)
    ref = (-(y_ * np.log(p_) + (1 - y_) * np.log(1 - p_))).mean(axis=1).mean()
    assert value(MaskedTaskLoss("multilabel"), y, p, [1, 1]) == pytest.approx(ref, rel=1e-5)


def test_regression_is_mean_squared_error():
    y, p = [[30.0], [50.0], [20.0]], [[28.0], [55.0], [20.0]]
    # (2^2 + 5^2 + 0^2) / 3 = 29 / 3; masked to examples 0 and 2: (4 + 0) / 2 = 2
    assert value(MaskedTaskLoss("regression"), y, p, [1, 1, 1]) == pytest.approx(29 / 3, rel=1e-6)
    assert value(MaskedTaskLoss("regression"), y, p, [1, 0, 1]) == pytest.approx(2.0, rel=1e-6)


def test_regression_can_use_mean_absolute_error():
    y, p = [[30.0], [50.0], [20.0]], [[28.0], [55.0], [20.0]]
    # (|2| + |-5| + 0) / 3 = 7 / 3; masked to examples 0 and 2: (2 + 0) / 2 = 1
    assert value(MaskedTaskLoss("regression", "mae"), y, p, [1, 1, 1]) == pytest.approx(7 / 3, rel=1e-6)
    assert value(MaskedTaskLoss("regression", "mae"), y, p, [1, 0, 1]) == pytest.approx(1.0, rel=1e-6)
    assert MaskedTaskLoss("regression").loss == "mse"  # the default
    # the task's `loss` key reaches the loss object
    from config import TaskConfig
    from models.losses import task_loss

    assert task_loss(TaskConfig(name="age", type="regression", loss="mae")).loss == "mae"
    assert task_loss(TaskConfig(name="age", type="regression")).loss == "mse"


def test_unknown_type_or_loss_names_the_valid_ones():
    with pytest.raises(ValueError,
                       match="unknown task type 'ordinal'; valid: multiclass, binary, multilabel, regression"):
        MaskedTaskLoss("ordinal")
    with pytest.raises(ValueError, match="unknown loss 'mae' for a binary task; valid: crossentropy"):
        MaskedTaskLoss("binary", "mae")
    with pytest.raises(ValueError, match="unknown loss 'huber' for a regression task; valid: mse, mae"):
        MaskedTaskLoss("regression", "huber")


def test_task_loss_key_is_validated_when_the_config_loads(make_config):
    from config import ConfigError

    cfg = make_config(tasks=[{"name": "age", "type": "regression", "loss": "mae"},
                             {"name": "smile", "type": "binary", "classes": ["no", "yes"]}])
    assert [t.loss for t in cfg.tasks] == ["mae", "crossentropy"]
    with pytest.raises(ConfigError, match=r"config key 'tasks\[0\].loss': received 'huber'; valid for a regression "
                                          r"task: mse, mae"):
        make_config(tasks=[{"name": "age", "type": "regression", "loss": "huber"}])
    with pytest.raises(ConfigError, match=r"'tasks\[0\].loss': received 'mse'; valid for a binary task: crossentropy"):
        make_config(tasks=[{"name": "s", "type": "binary", "classes": ["a", "b"], "loss": "mse"}])


def test_keras_passes_each_outputs_weights_to_its_loss():
    # Two outputs on one input; identity-like Dense layers make the predictions known.
    x = keras.Input((2,), name="image")
    a = keras.layers.Dense(2, activation="softmax", name="a", kernel_initializer="zeros", use_bias=False)(x)
    b = keras.layers.Dense(1, name="b", kernel_initializer="zeros", bias_initializer="ones")(x)
    model = keras.Model(x, {"a": a, "b": b})
    model.compile(loss={"a": MaskedTaskLoss("binary"), "b": MaskedTaskLoss("regression")},
                  loss_weights={"a": 1.0, "b": 0.5})
    inputs = np.zeros((4, 2), "float32")
    labels = {"a": np.array([[1, 0], [0, 1], [1, 0], [0, 1]], "float32"),
              "b": np.array([[3], [0], [0], [1]], "float32")}
    weights = {"a": np.array([1, 1, 0, 0], "float32"), "b": np.array([0, 0, 1, 1], "float32")}
    result = model.evaluate(inputs, labels, sample_weight=weights, batch_size=4, return_dict=True, verbose=0)
    # a: predictions are [0.5, 0.5] -> -ln 0.5 = 0.693147 on its 2 examples
    # b: prediction is 1 -> (1-0)^2 and (1-1)^2 on its 2 examples = (1 + 0) / 2 = 0.5
    # total = 0.693147 + 0.5 * 0.5 = 0.943147
    assert result["a_loss"] == pytest.approx(0.693147, rel=1e-5)
    assert result["b_loss"] == pytest.approx(0.5, rel=1e-5)
    assert result["loss"] == pytest.approx(0.943147, rel=1e-5)
