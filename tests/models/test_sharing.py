"""model.sharing (models/sharing.py): hard, mmoe, cgc, ple on BKNet, and the gate-use probe."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from components.trainer.gradient_probe import GradientConflictProbe
from components.trainer.mtl_step import representation_layer
from components.trainer.training_model import make_training_model
from config import ConfigError, SharingConfig, load, parse
from models import get_builder
from models.sharing import gate_layers


def default_with(kind: str, **kw):
    config = load("configs/default.yaml")
    return dataclasses.replace(config, model=dataclasses.replace(config.model, sharing=SharingConfig(type=kind, **kw)))


def test_hard_is_the_plain_family():
    model = get_builder("bknet")(default_with("hard"))
    assert model.count_params() == 3_736_553 and gate_layers(model, ["smile"]) == {}


def test_mmoe_parameter_count():
    # 48x48 -> 4 pools -> 3x3x256 = 2304 features. 4 experts of 128: 4 (2304 * 128 + 128) = 1,180,160;
    # 3 gates: 3 (2304 * 4 + 4) = 27,660; each task's fc1 reads 128 instead of 2304 features:
    # 3 (2304 - 128) * 256 = 1,671,168 fewer. 3,736,553 - 1,671,168 + 1,180,160 + 27,660 = 3,273,205
    model = get_builder("bknet")(default_with("mmoe"))
    assert model.count_params() == 3_273_205
    gates = gate_layers(model, ["smile", "gender", "age"])
    assert {t: g.units for t, g in gates.items()} == {"smile": 4, "gender": 4, "age": 4}
    assert representation_layer(model) == "flatten"


def test_cgc_and_ple_gates_mix_own_and_shared_experts():
    cgc = get_builder("bknet")(default_with("cgc", experts=2, task_experts=3))
    assert {t: g.units for t, g in gate_layers(cgc, ["smile", "age"]).items()} == {"smile": 5, "age": 5}
    ple = get_builder("bknet")(default_with("ple", experts=2, task_experts=1, levels=3))
    names = {layer.name for layer in ple.layers}
    # levels 1 and 2 have task gates and a shared gate over all 2 + 3 x 1 experts; level 3 only task gates
    assert {"level1_shared_gate", "level2_shared_gate", "level1_smile_gate", "smile_gate"} <= names
    assert "level3_shared_gate" not in names
    assert ple.get_layer("level1_shared_gate").units == 5
    assert representation_layer(ple) == "flatten"


def test_a_gate_picks_its_expert():
    model = get_builder("bknet")(default_with("mmoe", experts=3))
    gate = model.get_layer("smile_gate")
    gate.kernel.assign(tf.zeros_like(gate.kernel))
    gate.bias.assign([0.0, 50.0, 0.0])  # softmax ~ one-hot on expert 1
    x = tf.random.stateless_normal((2, 48, 48, 1), seed=[1, 2])
    probe = tf_keras_model(model, ["flatten", "expert1", "smile_gate_mix"])
    _, expert1, mixed = probe(x)
    np.testing.assert_allclose(mixed.numpy(), expert1.numpy(), rtol=1e-5, atol=1e-6)


def tf_keras_model(model, names):
    import tf_keras as keras

    return keras.Model(model.inputs, [model.get_layer(n).output for n in names])


def test_sharing_needs_a_shared_trunk():
    raw = {"name": "t", "tasks": [{"name": "a", "type": "regression"}, {"name": "b", "type": "regression"}],
           "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": ["a", "b"]}],
           "model": {"name": "multibranch", "sharing": {"type": "mmoe"}}}
    with pytest.raises(ConfigError, match=r"'model.sharing.type': received 'mmoe' for model 'multibranch'"):
        parse(raw, base_dir=None)
    raw["model"] = {"name": "bknet", "sharing": {"type": "mmoe", "experts": 0}}
    with pytest.raises(ConfigError, match=r"'model.sharing.experts'"):
        parse(raw, base_dir=None)


def test_the_probe_records_gate_use():
    config = default_with("mmoe", experts=3)
    config = dataclasses.replace(config, image=dataclasses.replace(config.image, size=(16, 16)))
    model = get_builder("bknet")(config)
    training = make_training_model(model, config, total_steps=10)
    n = 6
    features = {"image": tf.random.stateless_normal((n, 16, 16, 1), seed=[3, 4])}
    labels = {"smile": tf.one_hot([0, 1] * 3, 2), "gender": tf.one_hot([1, 0] * 3, 2), "age": tf.one_hot([0] * n, 5)}
    weights = {"smile": tf.constant([1.0, 1, 0, 0, 0, 0]), "gender": tf.constant([0.0, 0, 1, 1, 1, 1]),
               "age": tf.constant([0.0, 0, 1, 1, 0, 0])}
    probe = GradientConflictProbe(model, training, (features, labels, weights), config.task_names, None, None)
    stats = probe.probe(step=0)
    assert set(stats["gate_use"]) == {"smile", "gender", "age"}
    for shares in stats["gate_use"].values():
        assert len(shares) == 3 and sum(shares) == pytest.approx(1.0, abs=1e-5)


def test_a_moe_model_saves_and_loads_with_plain_keras(tmp_path):
    import tf_keras as keras

    model = get_builder("bknet")(default_with("ple", experts=2))
    model.save(str(tmp_path / "m"), save_format="tf")
    again = keras.models.load_model(str(tmp_path / "m"))
    x = tf.random.stateless_normal((2, 48, 48, 1), seed=[5, 6])
    a, b = model(x, training=False), again(x, training=False)
    for task in a:
        np.testing.assert_array_equal(a[task].numpy(), b[task].numpy())
