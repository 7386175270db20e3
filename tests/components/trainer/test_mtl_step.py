"""The gradient methods' training step (components/trainer/mtl_step.py) on a model with a known answer.

The model: image x -> trunk h = w x (one shared weight, w = 0) -> a = k_a h, b = k_b h (heads,
k = 1). With x = 1, two examples of a (label 2) and two of b (label -1), mean squared errors:
dL_a/dw = 2 (w - 2) = -4 and dL_b/dw = 2 (w + 1) = 2: the tasks conflict on w. On h, per
example, a's gradient is nonzero on a's examples only and b's on b's: no conflict there.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.trainer.mtl_step import LogMtl, representation_layer
from components.trainer.training_model import make_training_model
from config import parse
from models import get_builder


def tiny(method: str, grad_on: str = "params", **params):
    config = parse({
        "name": "t",
        "tasks": [{"name": "a", "type": "regression"}, {"name": "b", "type": "regression"}],
        "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": ["a", "b"]}],
        "train": {"mtl": {"method": method, "grad_on": grad_on, "params": params}},
    }, base_dir=None)
    x = keras.Input((1,), name="image")
    h = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", name="trunk")(x)
    heads = {t: keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name=t)(h) for t in ("a", "b")}
    model = keras.Model(x, heads)
    training = make_training_model(model, config, total_steps=10)
    # plain SGD with rate 1: one step moves each weight by exactly minus its gradient
    training.compile(optimizer=keras.optimizers.SGD(1.0), weighted_metrics={"a": [], "b": []})
    return config, model, training


X = np.ones((4, 1), "float32")
Y = {"a": np.full((4, 1), 2.0, "float32"), "b": np.full((4, 1), -1.0, "float32")}
W = {"a": np.array([1, 1, 0, 0], "float32"), "b": np.array([0, 0, 1, 1], "float32")}


def one_step(training, weights=W):
    training.fit(X, Y, sample_weight=weights, batch_size=4, epochs=1, verbose=0, shuffle=False)
    return float(training.get_layer("trunk").kernel.numpy()[0, 0])


def test_static_sum_moves_the_shared_weight_by_the_summed_gradient():
    _, _, training = tiny("none")
    assert one_step(training) == pytest.approx(2.0)  # w = 0 - (-4 + 2)


def test_pcgrad_on_params_cancels_the_conflict():
    # 1-D opposite gradients: each projected on the other's normal plane becomes 0
    _, _, training = tiny("pcgrad")
    assert one_step(training) == pytest.approx(0.0, abs=1e-6)


def test_pcgrad_on_the_representation_sees_no_conflict():
    # per-example gradients on h: a's [-2, -2, 0, 0], b's [0, 0, 1, 1]: orthogonal, left alone;
    # backpropagated through h = w x: dw = -2 - 2 + 1 + 1 = -2, as the plain sum
    _, _, training = tiny("pcgrad", "representation")
    assert training.mtl_step.trunk.output.name.startswith("trunk")
    assert one_step(training) == pytest.approx(2.0)


def test_heads_get_their_own_task_gradient_only():
    _, _, training = tiny("pcgrad")
    training.get_layer("trunk").kernel.assign([[1.0]])  # h = 1: dL_a/dk_a = 2 (k_a - 2) = -2
    one_step(training)
    assert float(training.get_layer("a").kernel.numpy()[0, 0]) == pytest.approx(3.0)
    assert float(training.get_layer("b").kernel.numpy()[0, 0]) == pytest.approx(-3.0)  # 2 (1 + 1) = 4


def test_an_absent_task_takes_no_part():
    _, _, training = tiny("imtl")
    only_a = {"a": np.array([1, 1, 1, 1], "float32"), "b": np.zeros(4, "float32")}
    # IMTL with one present task: its own gradient, weight K_present = 1
    assert one_step(training, only_a) == pytest.approx(4.0)
    np.testing.assert_allclose(training.mtl_state.last_weights.numpy(), [1.0, 0.0])


@pytest.mark.parametrize("method", ["pcgrad", "cagrad", "imtl", "nash_mtl", "rlw", "gradnorm", "famo"])
@pytest.mark.parametrize("grad_on", ["params", "representation"])
def test_every_method_trains_and_logs_its_weights(method, grad_on):
    """A learnable two-task problem (a = x0 + x1 + x2, b = x0 - x1 on a shared 8-unit trunk): every
    method lowers both losses in 30 steps and logs its weights."""
    keras.utils.set_random_seed(0)
    config, _, _ = tiny(method, grad_on)
    x = keras.Input((3,), name="image")
    h = keras.layers.Dense(8, name="trunk")(x)
    model = keras.Model(x, {t: keras.layers.Dense(1, name=t)(h) for t in ("a", "b")})
    training = make_training_model(model, config, total_steps=30)
    training.compile(optimizer=keras.optimizers.SGD(0.02), weighted_metrics={"a": [], "b": []})
    inputs = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    labels = {"a": inputs.sum(1, keepdims=True), "b": inputs[:, :1] - inputs[:, 1:2]}
    weights = {"a": (np.arange(64) % 2 == 0).astype("float32"), "b": (np.arange(64) % 2 == 1).astype("float32")}
    logger = LogMtl(training.mtl_state, ["a", "b"], method)
    history = training.fit(inputs, labels, sample_weight=weights, batch_size=64, epochs=30, verbose=0,
                           callbacks=[logger], shuffle=False).history
    assert all(np.isfinite(history["loss"]))
    for task in ("a", "b"):
        assert history[f"{task}_loss"][-1] < 0.5 * history[f"{task}_loss"][0], (task, history[f"{task}_loss"])
    assert set(history) >= {"mtl_weight/a", "mtl_weight/b", "mtl_fallbacks"}
    assert float(training.mtl_state.steps.numpy()) == 30


def test_nash_fallbacks_are_counted_and_logged():
    # a task with a zero gradient on the shared weight (its head's kernel is 0) has no
    # bargaining solution: every step falls back to equal weights
    _, _, training = tiny("nash_mtl")
    training.get_layer("b").kernel.assign([[0.0]])
    logger = LogMtl(training.mtl_state, ["a", "b"], "nash_mtl")
    history = training.fit(X, Y, sample_weight=W, batch_size=4, epochs=2, verbose=0, callbacks=[logger])
    assert history.history["mtl_fallbacks"] == [1.0, 2.0]


def test_state_is_in_the_training_checkpoint(tmp_path):
    _, _, training = tiny("gradnorm")
    one_step(training)
    path = tf.train.Checkpoint(model=training).save(str(tmp_path / "ckpt"))
    _, _, again = tiny("gradnorm")
    tf.train.Checkpoint(model=again).restore(path).assert_existing_objects_matched()
    np.testing.assert_allclose(again.mtl_state.gradnorm_weights.numpy(), training.mtl_state.gradnorm_weights.numpy())
    assert float(again.mtl_state.steps.numpy()) == 1


def test_representation_layer_of_the_families():
    config = parse({
        "name": "t", "image": {"size": [32, 32]},
        "tasks": [{"name": "a", "type": "binary", "classes": ["n", "y"]}, {"name": "b", "type": "regression"}],
        "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": ["a", "b"]}],
    }, base_dir=None)
    assert representation_layer(get_builder("bknet")(config)) == "flatten"
    with pytest.raises(ValueError, match="no layer shared by every task"):
        representation_layer(get_builder("multibranch")(config))


def test_towers_without_shared_parameters_train_on_their_own_gradients():
    """Two towers from the input (as multibranch): no shared parameter, each head its own task."""
    config, _, _ = tiny("imtl")
    x = keras.Input((1,), name="image")
    model = keras.Model(x, {t: keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", name=t)(x)
                            for t in ("a", "b")})
    training = make_training_model(model, config, total_steps=10)
    training.compile(optimizer=keras.optimizers.SGD(1.0), weighted_metrics={"a": [], "b": []})
    training.fit(X, Y, sample_weight=W, batch_size=4, epochs=1, verbose=0)
    # dL_a/dk_a = 2 (0 - 2) = -4 -> 4; dL_b/dk_b = 2 (0 + 1) = 2 -> -2
    assert float(training.get_layer("a").kernel.numpy()[0, 0]) == pytest.approx(4.0)
    assert float(training.get_layer("b").kernel.numpy()[0, 0]) == pytest.approx(-2.0)


def test_representation_needs_a_family_with_shared_layers():
    from config import ConfigError

    raw = {"name": "t", "tasks": [{"name": "a", "type": "regression"}, {"name": "b", "type": "regression"}],
           "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": ["a", "b"]}],
           "model": {"name": "multibranch"}, "train": {"mtl": {"method": "pcgrad", "grad_on": "representation"}}}
    with pytest.raises(ConfigError, match=r"'train.mtl.grad_on': received 'representation' for model "
                                          r"'multibranch', whose tasks share no layer"):
        parse(raw, base_dir=None)
    raw["train"]["mtl"]["grad_on"] = "params"
    assert parse(raw, base_dir=None).train.mtl.method == "pcgrad"
