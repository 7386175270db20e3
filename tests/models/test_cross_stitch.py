"""model.sharing cross_stitch (models/cross_stitch.py) on the multi-branch family."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import yaml

from components.trainer.gradient_probe import GradientConflictProbe
from components.trainer.training_model import make_training_model
from config import ConfigError, parse
from models import get_builder
from models.cross_stitch import CrossStitch, mixing, stitch_layers
from tests.models.helpers import config_dict

TASKS = [
    {"name": "age", "type": "regression"},
    {"name": "gender", "type": "binary", "classes": ["f", "m"]},
    {"name": "race", "type": "multiclass", "classes": ["a", "b", "c", "d", "e"]},
]
NAMES = ["age", "gender", "race"]


def stitched_config(size=(48, 48), params=None, model="multibranch", **train):
    raw = config_dict(model=model, tasks=TASKS, size=size, params=params)
    raw["model"]["sharing"] = {"type": "cross_stitch"}
    if train:
        raw["train"] = train
    return parse(raw, base_dir=None)


def test_units_after_every_stage_and_shapes():
    model = get_builder("multibranch")(stitched_config(size=(16, 16), params={"filters": [4, 8], "dense": [6]}))
    units = stitch_layers(model)
    assert [u.name for u in units] == ["cross_stitch_block1", "cross_stitch_block2", "cross_stitch_dense1"]
    assert [tuple(u.alpha.shape) for u in units] == [(3, 3, 4), (3, 3, 8), (3, 3, 6)]  # one T x T per channel
    out = model(tf.zeros((2, 16, 16, 1)), training=False)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"age": (2, 1), "gender": (2, 2), "race": (2, 5)}
    # the paper's start: 0.9 on the own column, 0.1 split over the other two
    assert mixing(units[0], NAMES)["age"] == pytest.approx({"age": 0.9, "gender": 0.05, "race": 0.05})
    np.testing.assert_allclose(units[1].alpha.numpy()[:, :, 5], [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05],
                                                                 [0.05, 0.05, 0.9]], rtol=1e-6)


def test_parameter_count():
    # the plain multibranch model (488,424, tests/models/test_multibranch.py) plus one 3 x 3 matrix per
    # channel of every stage: 9 * (16 + 32 + 32 + 128) = 1,872
    model = get_builder("multibranch")(stitched_config())
    assert model.count_params() == 488_424 + 1_872


def _grads_of_age_loss(model, x):
    branch = {t: [v for v in model.trainable_variables if v.name.startswith(f"{t}_")] for t in NAMES}
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=False)["age"] ** 2)
    grads = tape.gradient(loss, branch, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return {t: max(float(tf.reduce_max(tf.abs(g))) for g in gs) for t, gs in grads.items()}


def test_identity_units_keep_the_columns_independent():
    model = get_builder("multibranch")(stitched_config(size=(16, 16), params={"filters": [4, 8], "dense": [6]}))
    x = tf.random.stateless_normal((4, 16, 16, 1), seed=[1, 2])
    mixed = _grads_of_age_loss(model, x)  # near-identity start: age's loss reaches every column
    assert mixed["age"] > 0 and mixed["gender"] > 0 and mixed["race"] > 0
    for unit in stitch_layers(model):
        eye = np.repeat(np.eye(3, dtype=np.float32)[:, :, None], unit.alpha.shape[-1], axis=2)
        unit.scaled_alpha.assign(eye / unit.lr_scale)  # the variable holds alpha / stitch_lr_scale
        np.testing.assert_array_equal(unit.alpha.numpy(), eye)
    alone = _grads_of_age_loss(model, x)
    assert alone["age"] > 0 and alone["gender"] == 0.0 and alone["race"] == 0.0


def test_saves_and_loads_as_plain_keras_with_identical_outputs(tmp_path):
    import tf_keras as keras

    model = get_builder("multibranch")(stitched_config(size=(16, 16), params={"filters": [4], "dense": [6]}))
    for unit in stitch_layers(model):  # weights away from the initial values, so loading must restore them
        unit.scaled_alpha.assign(tf.random.stateless_uniform(unit.alpha.shape, seed=[3, 4]))
    model.save(str(tmp_path / "m"), save_format="tf")
    again = keras.models.load_model(str(tmp_path / "m"))
    assert [type(u) for u in stitch_layers(again)] == [CrossStitch, CrossStitch]
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in again.layers)
    x = tf.random.stateless_normal((3, 16, 16, 1), seed=[5, 6])
    a, b = model(x, training=False), again(x, training=False)
    for task in a:
        np.testing.assert_array_equal(a[task].numpy(), b[task].numpy())


def test_the_probe_records_the_mixing_weights():
    config = stitched_config(size=(16, 16), params={"filters": [4], "dense": []})
    model = get_builder("multibranch")(config)
    training = make_training_model(model, config, total_steps=10)
    n = 6
    features = {"image": tf.random.stateless_normal((n, 16, 16, 1), seed=[3, 4])}
    labels = {"age": tf.ones((n, 1)), "gender": tf.one_hot([1, 0] * 3, 2), "race": tf.one_hot([0] * n, 5)}
    weights = {"age": tf.constant([1.0, 1, 0, 0, 0, 0]), "gender": tf.constant([0.0, 0, 1, 1, 0, 0]),
               "race": tf.constant([0.0, 0, 0, 0, 1, 1])}
    stats = GradientConflictProbe(model, training, (features, labels, weights), NAMES, None, None).probe(step=0)
    assert list(stats["cross_stitch"]) == ["cross_stitch_block1"]
    assert stats["cross_stitch"]["cross_stitch_block1"]["gender"] == pytest.approx(
        {"age": 0.05, "gender": 0.9, "race": 0.05})
    assert set(stats["cosine"]) == {"age/gender", "age/race", "gender/race"}  # every column is shared now


def test_only_for_the_multibranch_family_and_towers_of_one_shape():
    with pytest.raises(ConfigError, match=r"'model.sharing.type': received 'cross_stitch' for model 'bknet'.*"
                                          r"valid for bknet: hard, mmoe, cgc, ple$"):
        stitched_config(model="bknet")
    with pytest.raises(ConfigError, match=r"'model.params.towers': cross_stitch .* same filters and dense"):
        stitched_config(params={"towers": {"age": {"filters": [8, 16]}}})
    stitched_config(params={"towers": {"age": {"convs_per_block": 2}}})  # convolutions per block may differ


def test_a_bad_sharing_is_exit_2_and_one_line(tmp_path):
    with open("configs/default.yaml") as f:
        raw = yaml.safe_load(f)
    raw.setdefault("model", {})["sharing"] = {"type": "cross_stitch"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    res = subprocess.run([sys.executable, "-m", "schemas", "--config", str(path)], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: config key 'model.sharing.type': received 'cross_stitch' for model 'bknet', which has one shared "
        "trunk, not a column per task to cross-stitch; valid for bknet: hard, mmoe, cgc, ple"]


def test_the_report_page_shows_the_units():
    from components.report.page import _cross_stitch

    units = {"cross_stitch_block1": {"a": {"a": 0.8, "b": 0.2}, "b": {"a": 0.1, "b": 0.9}}}
    html = _cross_stitch(units)
    assert "from a</th><th>from b" in html and html.count("<tr><td class=l>cross_stitch_block1") == 2
    assert _cross_stitch({}) == ""


def test_columns_after_a_shared_stem():
    params = {"stem": [4], "filters": [4], "dense": []}
    model = get_builder("multibranch")(stitched_config(size=(16, 16), params=params))
    assert [u.name for u in stitch_layers(model)] == ["cross_stitch_block1"]  # units between tower stages only
    plain = get_builder("multibranch")(parse(config_dict(model="multibranch", tasks=TASKS, size=(16, 16),
                                                         params=params), base_dir=None))
    assert model.count_params() == plain.count_params() + 9 * 4


def test_stitch_lr_scale_moves_alpha_that_many_times_faster():
    import tf_keras as keras

    moved = {}
    for scale in (1.0, 100.0):
        config = stitched_config(size=(16, 16), params={"filters": [4], "dense": [], "stitch_lr_scale": scale})
        keras.utils.set_random_seed(7)
        model = get_builder("multibranch")(config)
        unit = stitch_layers(model)[0]
        assert unit.lr_scale == scale and unit.get_config()["lr_scale"] == scale
        start = unit.alpha.numpy()
        np.testing.assert_allclose(start[:, :, 0], [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]],
                                   rtol=1e-6)  # the same start whatever the scale
        x = tf.random.stateless_normal((4, 16, 16, 1), seed=[1, 2])
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=False)["age"] ** 2)
        var = unit.scaled_alpha
        keras.optimizers.Adam(1e-3).apply_gradients([(tape.gradient(loss, var), var)])
        moved[scale] = unit.alpha.numpy() - start
    # Adam's first step is lr * g / (|g| + eps), about lr whatever the gradient's size: lr on the
    # variable alpha / s, so s * lr on alpha
    steady = np.abs(moved[1.0]) > 0.9e-3  # entries whose gradient is far above Adam's epsilon
    assert steady[0].all()  # the loss is age's: every entry of the row mixing into the age column moved
    np.testing.assert_allclose(moved[100.0][steady], moved[1.0][steady] * 100.0, rtol=1e-3)


def test_stitch_lr_scale_is_checked_on_load():
    with pytest.raises(ConfigError, match=r"'model.params.stitch_lr_scale': must be in \(0, 10000\], received 0"):
        stitched_config(params={"stitch_lr_scale": 0})
    with pytest.raises(ConfigError, match=r"'model.params.stitch_lr_scale': expected a finite number"):
        stitched_config(params={"stitch_lr_scale": "fast"})
