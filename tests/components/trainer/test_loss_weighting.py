"""Loss weighting (static, uncertainty, dwa) against hand-computed numbers, and the
training model that applies it."""
import math

import numpy as np
import pytest
import tf_keras as keras

from components.trainer.loss_weighting import LogLossWeights, LossWeighting, dwa_weights
from components.trainer.training_model import make_training_model
from config import ConfigError, parse


def two_task_config(weighting=None, b_weight=1.0):
    return parse({
        "name": "t",
        "tasks": [{"name": "a", "type": "binary", "classes": ["n", "y"]},
                  {"name": "b", "type": "regression", "loss_weight": b_weight}],
        "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": ["a", "b"]}],
        "train": {"loss_weighting": weighting or {"type": "static"}},
    }, base_dir=None)


def test_dwa_weights_formula():
    # r = L(t-1) / L(t-2) = [0.5 / 1.0, 2.4 / 2.0, 3.0 / 3.0] = [0.5, 1.2, 1.0], T = 2:
    # exp(r / T) = [1.284025, 1.822119, 1.648721], sum 4.754865
    # w = 3 * exp(r / T) / sum = [0.810134, 1.149634, 1.040232] (sums to K = 3)
    w = dwa_weights([0.5, 2.4, 3.0], [1.0, 2.0, 3.0], temperature=2.0)
    np.testing.assert_allclose(w, [0.810134, 1.149634, 1.040232], atol=1e-6)
    assert w.sum() == pytest.approx(3.0)
    # a high temperature flattens towards 1 each; a task without loss before counts as r = 1
    np.testing.assert_allclose(dwa_weights([0.5, 2.4], [1.0, 2.0], 1e6), [1.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(dwa_weights([0.7, 0.0], [0.0, 0.0], 2.0), [1.0, 1.0])


def test_dwa_keeps_one_for_two_epochs_then_follows_the_loss_ratios():
    weighting = LossWeighting(two_task_config({"type": "dwa", "temperature": 2.0}))
    callback = LogLossWeights(weighting)
    logged = []
    for epoch, losses in enumerate([(1.0, 2.0), (0.5, 2.4), (0.45, 2.4)]):
        logs = {"a_loss": losses[0], "b_loss": losses[1]}
        callback.on_epoch_end(epoch, logs)
        logged.append((logs["loss_weight_a"], logs["loss_weight_b"]))
    # epochs 1 and 2: w = 1; epoch 3: r = [0.5 / 1.0, 2.4 / 2.0] = [0.5, 1.2], T = 2:
    # exp(r / 2) = [1.284025, 1.822119], w = 2 * [1.284025, 1.822119] / 3.106144 = [0.826765, 1.173235]
    np.testing.assert_allclose(logged, [(1.0, 1.0), (1.0, 1.0), (0.826765, 1.173235)], atol=1e-6)
    # and for epoch 4: r = [0.45 / 0.5, 2.4 / 2.4] = [0.9, 1.0]
    np.testing.assert_allclose(weighting.weights_in_use().numpy(), dwa_weights([0.45, 2.4], [0.5, 2.4], 2.0),
                               atol=1e-6)


def test_weighting_state_is_in_the_training_checkpoint(tmp_path):
    """BackupAndRestore checkpoints the training model: a resumed run keeps dwa's weights and history."""
    import tensorflow as tf

    config = two_task_config({"type": "dwa"})
    model = make_training_model(known_outputs_model(), config)
    model.weighting.dwa.assign([0.5, 1.5])
    model.weighting.history.assign([[0.4, 2.0], [0.8, 1.0]])
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    again = make_training_model(known_outputs_model(), config)
    tf.train.Checkpoint(model=again).restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(again.weighting.weights_in_use().numpy(), np.float32([0.5, 1.5]))
    np.testing.assert_array_equal(again.weighting.history.numpy(), np.float32([[0.4, 2.0], [0.8, 1.0]]))


def known_outputs_model():
    """Input zeros -> a = softmax([0, 0]) = [0.5, 0.5], b = 1.0."""
    x = keras.Input((2,), name="image")
    a = keras.layers.Dense(2, activation="softmax", name="a", kernel_initializer="zeros", use_bias=False)(x)
    b = keras.layers.Dense(1, name="b", kernel_initializer="zeros", bias_initializer="ones")(x)
    return keras.Model(x, {"a": a, "b": b})


INPUTS = np.zeros((4, 2), "float32")
LABELS = {"a": np.array([[1, 0], [0, 1], [1, 0], [0, 1]], "float32"), "b": np.array([[3], [0], [0], [1]], "float32")}
WEIGHTS = {"a": np.array([1, 1, 0, 0], "float32"), "b": np.array([0, 0, 1, 1], "float32")}
# L_a = -ln 0.5 = 0.693147 on a's 2 examples; L_b = ((1 - 0)^2 + (1 - 1)^2) / 2 = 0.5 on b's


def evaluate(model, weights=WEIGHTS):
    return model.evaluate(INPUTS, LABELS, sample_weight=weights, batch_size=4, return_dict=True, verbose=0)


def test_static_weights_multiply_the_task_losses():
    config = two_task_config(b_weight=0.5)
    result = evaluate(make_training_model(known_outputs_model(), config))
    # logged task losses are unweighted; total = 0.693147 + 0.5 * 0.5 = 0.943147
    assert result["a_loss"] == pytest.approx(math.log(2), rel=1e-5)
    assert result["b_loss"] == pytest.approx(0.5, rel=1e-5)
    assert result["loss"] == pytest.approx(0.943147, rel=1e-5)


def test_uncertainty_loss_is_kendalls_per_task_type():
    model = make_training_model(known_outputs_model(), two_task_config({"type": "uncertainty"}))
    # s = 0 at the start: a: 1 * e^0 * 0.693147 + 0, b: 1/2 * e^0 * 0.5 + 0 -> 0.943147
    assert evaluate(model)["loss"] == pytest.approx(0.943147, rel=1e-5)
    model.weighting.log_variance.assign([0.5, -1.0])
    # a (classification): e^-0.5 * 0.693147 + 0.5 / 2 = 0.420415 + 0.25 = 0.670415
    # b (regression):     1/2 * e^1 * 0.5 + (-1.0) / 2 = 0.679570 - 0.5 = 0.179570
    # total 0.849985
    result = evaluate(model)
    assert result["loss"] == pytest.approx(0.849985, rel=1e-5)
    assert result["a_loss"] == pytest.approx(math.log(2), rel=1e-5)  # still unweighted
    np.testing.assert_allclose(model.weighting.weights_in_use().numpy(), [math.exp(-0.5), 0.5 * math.e], rtol=1e-6)
    # a batch without b's examples: L_b = 0 and its s / 2 term is dropped too -> 0.670415
    assert evaluate(model, {"a": WEIGHTS["a"], "b": np.zeros(4, "float32")})["loss"] == pytest.approx(
        0.670415, rel=1e-5)


def test_uncertainty_log_variances_are_learned_and_logged():
    family = known_outputs_model()
    model = make_training_model(family, two_task_config({"type": "uncertainty"}))
    assert [v.name for v in model.trainable_variables if "log_variance" in v.name] == [
        "loss_weighting_log_variance:0"]
    history = model.fit(INPUTS, LABELS, sample_weight=WEIGHTS, batch_size=4, epochs=2, verbose=0,
                        callbacks=[LogLossWeights(model.weighting)])
    s = model.weighting.log_variance.numpy()
    # d/ds_b [1/2 e^-s 0.5 + s / 2] = -0.25 + 0.5 > 0 at s = 0: Adam moves s_b down by ~lr per step;
    # d/ds_a [e^-s 0.693 + s / 2] = -0.693 + 0.5 < 0: s_a goes up
    assert s[0] > 0 > s[1]
    assert set(history.history) >= {"loss", "a_loss", "b_loss", "loss_weight_a", "loss_weight_b",
                                    "log_variance_a", "log_variance_b"}
    assert history.history["log_variance_b"][-1] == pytest.approx(float(s[1]))
    # the family model shares the trained layers but carries no weighting state
    assert not any("loss_weighting" in w.name for w in family.weights)
    assert family.get_layer("b") is model.get_layer("b")


def test_loss_weighting_keys_are_validated():
    assert two_task_config({"type": "dwa"}).train.loss_weighting.temperature == 2.0
    with pytest.raises(ConfigError, match=r"'train.loss_weighting.type': received 'gradnorm'; valid: static, "
                                          r"uncertainty, dwa"):
        two_task_config({"type": "gradnorm"})
    with pytest.raises(ConfigError, match=r"'train.loss_weighting.temperature': must be > 0, received 0"):
        two_task_config({"type": "dwa", "temperature": 0})
