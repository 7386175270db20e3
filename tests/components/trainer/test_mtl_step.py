"""The gradient methods' training step (components/trainer/mtl_step.py) on a model with a known answer.

The model: image x -> trunk h = w x (one shared weight, w = 0) -> a = k_a h, b = k_b h (heads,
k = 1). With x = 1, two examples of a (label 2) and two of b (label -1), mean squared errors:
dL_a/dw = 2 (w - 2) = -4 and dL_b/dw = 2 (w + 1) = 2: the tasks conflict on w, and on h, where
each task's per-example gradients, nonzero on its own examples only, are summed over the batch.
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


def test_pcgrad_on_the_representation_cancels_the_conflict_as_on_params():
    # per-example gradients on h: a's [-2, -2, 0, 0], b's [0, 0, 1, 1]; summed over the batch (LibMTL's
    # rep-grad) g_a = -4, g_b = 2: opposite, each projected onto the other's normal plane becomes 0
    _, _, training = tiny("pcgrad", "representation")
    assert training.mtl_step.trunk.output.name.startswith("trunk")
    assert one_step(training) == pytest.approx(0.0, abs=1e-6)


def constant(kernel):
    return keras.initializers.Constant(np.array(kernel, "float32")[:, None])


def two_unit_trunk(method: str, grad_on: str):
    """x -> h = x W (W: 1 x 2, zeros) -> a = h . (1, 0), b = h . (1, 1); labels a = 2, b = -1;
    examples 0, 1 carry a, 2, 3 carry b. SGD with rate 1."""
    config, _, _ = tiny(method, grad_on)
    x = keras.Input((1,), name="image")
    h = keras.layers.Dense(2, use_bias=False, kernel_initializer="zeros", name="trunk")(x)
    heads = {t: keras.layers.Dense(1, use_bias=False, kernel_initializer=constant(k), name=t)(h)
             for t, k in (("a", [1, 0]), ("b", [1, 1]))}
    training = make_training_model(keras.Model(x, heads), config, total_steps=10)
    training.compile(optimizer=keras.optimizers.SGD(1.0), weighted_metrics={"a": [], "b": []})
    return training


@pytest.mark.parametrize("grad_on", ["representation", "params"])
def test_pcgrad_projects_summed_representation_gradients_that_conflict(grad_on):
    """At h = 0 each of a's examples has dL_a/dh = 2 (0 - 2) (1, 0) / 2 = (-2, 0), each of b's
    dL_b/dh = 2 (0 + 1) (1, 1) / 2 = (1, 1). Summed over the batch: g_a = (-4, 0), g_b = (2, 2),
    g_a . g_b = -8 < 0: a conflict (per example, flattened over the batch, the rows would not
    overlap and the dot product would be 0). PCGrad: g_a' = g_a - (-8 / 8) g_b = (-2, 2),
    g_b' = g_b - (-8 / 16) g_a = (0, 2); d = (-2, 4), i.e. 1.5 g_a + 2 g_b. With x = 1 on every
    example, dW = d: W = (2, -4), where the plain sum gives -(g_a + g_b) = (2, -2). On the
    parameters (W's gradients are the same numbers here) the result is the same."""
    training = two_unit_trunk("pcgrad", grad_on)
    one_step(training)
    np.testing.assert_allclose(training.get_layer("trunk").kernel.numpy(), [[2.0, -4.0]], atol=1e-6)
    np.testing.assert_allclose(training.mtl_state.last_weights.numpy(), [1.5, 2.0], atol=1e-6)


def test_representation_mode_weights_each_example_by_its_tasks_coefficient():
    """Inputs x = (1, 1, 2, 2): at h = 0 the gradients on h do not depend on x, so G and the
    coefficients (1.5, 2) are as above, and the coefficients weight the per-example gradients
    before they go through the trunk: dW = sum_n x_n (1.5 g_a,n + 2 g_b,n) = 1 * 1.5 * 2 (-2, 0)
    + 2 * 2 * 2 (1, 1) = (2, 8), W = (-2, -8)."""
    training = two_unit_trunk("pcgrad", "representation")
    x = np.array([[1], [1], [2], [2]], "float32")
    training.fit(x, Y, sample_weight=W, batch_size=4, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(training.get_layer("trunk").kernel.numpy(), [[-2.0, -8.0]], atol=1e-6)


@pytest.mark.parametrize("method", ["pcgrad", "cagrad", "imtl"])
@pytest.mark.parametrize("grad_on", ["params", "representation"])
def test_heads_get_their_own_task_gradient(method, grad_on):
    # the reference code of all three gives each task's own layers its own loss gradient (in
    # representation mode, the heads once got no gradient at all)
    _, _, training = tiny(method, grad_on)
    training.get_layer("trunk").kernel.assign([[1.0]])  # h = 1: dL_a/dk_a = 2 (k_a - 2) = -2
    one_step(training)
    assert float(training.get_layer("a").kernel.numpy()[0, 0]) == pytest.approx(3.0)
    assert float(training.get_layer("b").kernel.numpy()[0, 0]) == pytest.approx(-3.0)  # 2 (1 + 1) = 4


@pytest.mark.parametrize("grad_on, heads", [("params", np.sqrt(20) * np.array([0.5, 0.25])),
                                             ("representation", np.array([1.0, 1.0]))])
def test_nash_heads_take_alpha_on_params_and_their_own_gradient_on_the_representation(grad_on, heads):
    """h = 1: g_a = -2, g_b = 4 on w (and, summed, on h): opposite, so the step keeps the starting
    solution, alpha = sqrt(n) (1/2, 1/4), n = |G G^T|_F = 20. On the parameters the heads take
    alpha, as the reference's sum_i alpha_i L_i: k_a = 1 + 2 alpha_a, k_b = 1 - 4 alpha_b. On the
    representation alpha comes from gradients summed over the batch, which say nothing of the
    heads' (a linear head's bias drives its task's summed gradient, 2 k mean(residual), to 0 long
    before the task is learned, and 1 / |g| then blew the heads up in
    test_every_method_trains_and_logs_its_weights): each head takes its own gradient, as with
    LibMTL's rep-grad."""
    _, _, training = tiny("nash_mtl", grad_on)
    training.get_layer("trunk").kernel.assign([[1.0]])
    one_step(training)
    assert float(training.get_layer("a").kernel.numpy()[0, 0]) == pytest.approx(1 + 2 * heads[0], rel=1e-5)
    assert float(training.get_layer("b").kernel.numpy()[0, 0]) == pytest.approx(1 - 4 * heads[1], rel=1e-5)


def three_correlated_tasks(method: str):
    """x = 1 -> h = x W (W: 1 x 3, ones) -> task t = h . k_t, k = (1, 0, 0), (0.5, 0.5, 0.25),
    (0, 1, 0); labels k_t . h - 1 = (0, 0.25, 0), so every residual is 1: on W, g_t = 2 k_t, and
    on each head, dL_t/dk_t = 2 h = (2, 2, 2)."""
    names = ("a", "b", "c")
    config = parse({
        "name": "t", "tasks": [{"name": t, "type": "regression"} for t in names],
        "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": list(names)}],
        "train": {"mtl": {"method": method}},
    }, base_dir=None)
    x = keras.Input((1,), name="image")
    h = keras.layers.Dense(3, use_bias=False, kernel_initializer="ones", name="trunk")(x)
    ks = {"a": [1, 0, 0], "b": [0.5, 0.5, 0.25], "c": [0, 1, 0]}
    model = keras.Model(x, {t: keras.layers.Dense(1, use_bias=False, name=t, kernel_initializer=constant(k))(h)
                            for t, k in ks.items()})
    training = make_training_model(model, config, total_steps=10)
    training.compile(optimizer=keras.optimizers.SGD(1.0), weighted_metrics={t: [] for t in names})
    y = {t: np.full((3, 1), v, "float32") for t, v in zip(names, (0.0, 0.25, 0.0))}
    sw = {t: np.eye(3, dtype="float32")[i] for i, t in enumerate(names)}
    training.fit(np.ones((3, 1), "float32"), y, sample_weight=sw, batch_size=3, epochs=1, verbose=0, shuffle=False)
    return training, ks


def test_imtl_three_correlated_tasks_heads_descend_their_own_loss():
    """G = [[2, 0, 0], [1, 1, 0.5], [0, 2, 0]]: IMTL-G's alpha = (1.5, -2, 1.5) (equal projections
    on the unit gradients, sum 1), so the shared W moves by -K G^T alpha = -(3, 3, -3) -> (-2, -2, 4).
    Task b's alpha is negative: the old code scaled b's head by K alpha_b = -6 (ascent: k_b + 12).
    Its head now takes its own gradient, as every head: k_t - 2 h."""
    training, ks = three_correlated_tasks("imtl")
    np.testing.assert_allclose(training.get_layer("trunk").kernel.numpy(), [[-2, -2, 4]], rtol=1e-5)
    np.testing.assert_allclose(training.mtl_state.last_weights.numpy(), [4.5, -6, 4.5], rtol=1e-5)
    for t, k in ks.items():
        np.testing.assert_allclose(training.get_layer(t).kernel.numpy()[:, 0], np.array(k) - 2, rtol=1e-5)


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
    assert set(history) >= {"mtl_weight/a", "mtl_weight/b", "mtl_fallbacks", "mtl_fallback_share"}
    assert float(training.mtl_state.steps.numpy()) == 30


def test_nash_failures_keep_the_previous_solution_and_are_counted():
    # g_a = -4, g_b = 2 on the one shared weight: opposite, no bargaining solution. Every step
    # keeps the previous (here the starting) solution beta = (1, 1): alpha = sqrt(n) beta / |g|
    # = sqrt(20) (1/4, 1/2) (n = |G G^T|_F = 20), d = 0 (equal weights would have moved w); each
    # step counts as a fallback
    _, _, training = tiny("nash_mtl")
    logger = LogMtl(training.mtl_state, ["a", "b"], "nash_mtl")
    history = training.fit(X, Y, sample_weight=W, batch_size=4, epochs=2, verbose=0, callbacks=[logger]).history
    assert history["mtl_fallbacks"] == [1.0, 2.0]
    assert history["mtl_fallback_share"] == [1.0, 1.0]
    assert training.mtl_state.fallback_share() == 1.0
    np.testing.assert_allclose(training.mtl_state.last_weights.numpy(), np.sqrt(20) * np.array([0.25, 0.5]),
                               rtol=1e-5)
    assert float(training.get_layer("trunk").kernel.numpy()[0, 0]) == pytest.approx(0.0, abs=1e-5)


def test_nash_a_task_with_no_shared_gradient_has_converged():
    # b's head is 0, so b's gradient on w is 0: no failure; a alone has alpha = sqrt(|g_a|^2) /
    # |g_a| = 1, d = -4 -> w = 4, and b takes a's weight
    _, _, training = tiny("nash_mtl")
    training.get_layer("b").kernel.assign([[0.0]])
    logger = LogMtl(training.mtl_state, ["a", "b"], "nash_mtl")
    history = training.fit(X, Y, sample_weight=W, batch_size=4, epochs=1, verbose=0, callbacks=[logger]).history
    assert history["mtl_fallbacks"] == [0.0] and history["mtl_fallback_share"] == [0.0]
    assert float(training.get_layer("trunk").kernel.numpy()[0, 0]) == pytest.approx(4.0)
    np.testing.assert_allclose(training.mtl_state.last_weights.numpy(), [1.0, 1.0])


def test_famo_updates_its_logits_from_the_same_batch_after_the_step():
    """Before: L_a = (0 - 2)^2 = 4, L_b = 1; weights c ~ softmax(0) / L = (0.4, 1.6); d = 0.4 (-4)
    + 1.6 (2) = 1.6 -> w = -1.6. After, on the same batch: L_a = 3.6^2 = 12.96, L_b = 0.36;
    delta = log(before / after) = (-1.176, +1.022): a got worse, so its logit rises. The gradient
    (diag(z) - z z^T) delta = (-0.549, +0.549); Adam's first step is lr times its sign:
    logits = (0.025, -0.025). (From consecutive batches, the first step had no update.)"""
    _, _, training = tiny("famo")
    assert one_step(training) == pytest.approx(-1.6, rel=1e-5)
    np.testing.assert_allclose(training.mtl_state.famo_logits.numpy(), [0.025, -0.025], rtol=1e-4)


def test_famos_second_pass_leaves_batch_norm_statistics_alone():
    """FAMO's forward pass after the step runs in training mode, as the paper's code; the moving
    statistics it would update a second time are put back: they end as with any other method."""
    moving = {}
    for method in ("famo", "rlw"):
        keras.utils.set_random_seed(0)
        config, _, _ = tiny(method)
        x = keras.Input((3,), name="image")
        h = keras.layers.BatchNormalization(momentum=0.5, name="bn")(keras.layers.Dense(4, name="trunk")(x))
        model = keras.Model(x, {t: keras.layers.Dense(1, name=t)(h) for t in ("a", "b")})
        training = make_training_model(model, config, total_steps=10)
        training.compile(optimizer=keras.optimizers.SGD(0.1), weighted_metrics={"a": [], "b": []})
        inputs = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        training.fit(inputs, Y, sample_weight=W, batch_size=4, epochs=1, verbose=0, shuffle=False)
        moving[method] = [v.numpy() for v in training.get_layer("bn").non_trainable_weights]
        assert np.abs(moving[method][0]).max() > 0  # it did update once
    for f, r in zip(moving["famo"], moving["rlw"]):
        np.testing.assert_allclose(f, r, rtol=1e-6)


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
