"""BKNet's structure and parameter count are pinned to seed 000's network."""
import numpy as np
import pytest

from config import parse
from models import get_builder
from models.bknet import build
from models.bknet_params import resolve_params
from tests.models.helpers import config_dict


def test_registry_resolves_bknet():
    assert get_builder("bknet") is build
    with pytest.raises(ValueError, match="unknown model 'resnet'; valid: backbone, bknet, multibranch"):
        get_builder("resnet")


def test_parameter_count_matches_the_arithmetic(make_config):
    model = build(make_config())
    # Trunk, conv = 3*3*in*out + out, batch norm = 4*out (gamma, beta, moving mean/var):
    #   block1: 3*3*1*32+32 = 320,      3*3*32*32+32 = 9,248,    BN 2*128  = 256
    #   block2: 3*3*32*64+64 = 18,496,  3*3*64*64+64 = 36,928,   BN 2*256  = 512
    #   block3: 3*3*64*128+128 = 73,856, 3*3*128*128+128 = 147,584, BN 2*512 = 1,024
    #   block4: 3*3*128*256+256 = 295,168, 2 * (3*3*256*256+256) = 1,180,160, BN 3*1024 = 3,072
    #   trunk = 1,761,760 conv + 4,864 BN = 1,766,624
    # 48 -> 24 -> 12 -> 6 -> 3 after four 2x2 pools: flatten = 3*3*256 = 2,304
    # branch: 2304*256+256 = 590,080, 256*256+256 = 65,792  -> 655,872 each, 3 branches = 1,967,616
    # outputs: smile 256*2+2 = 514, gender 514, age 256*5+5 = 1,285 -> 2,313
    # total = 1,766,624 + 1,967,616 + 2,313 = 3,736,553
    assert model.count_params() == 3_736_553
    trunk = sum(layer.count_params() for layer in model.layers if layer.name.startswith("block"))
    assert trunk == 1_766_624
    # non-trainable: BN moving mean + variance, 2 * (2*32 + 2*64 + 2*128 + 3*256) = 2 * 1,216 = 2,432
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 3_736_553 - 2_432


def test_layer_sequence_is_seed_000(make_config):
    model = build(make_config())
    names = [layer.name for layer in model.layers]
    assert names[0] == "image" and model.input_names == ["image"]
    convs = [(layer.name, layer.filters, layer.kernel_size) for layer in model.layers
             if layer.name.startswith("block") and "conv" in layer.name]
    assert convs == [
        ("block1_conv1", 32, (3, 3)), ("block1_conv2", 32, (3, 3)),
        ("block2_conv1", 64, (3, 3)), ("block2_conv2", 64, (3, 3)),
        ("block3_conv1", 128, (3, 3)), ("block3_conv2", 128, (3, 3)),
        ("block4_conv1", 256, (3, 3)), ("block4_conv2", 256, (3, 3)), ("block4_conv3", 256, (3, 3)),
    ]
    # each conv -> BN -> ReLU; each block ends with pool then dropout
    block1 = names[1:names.index("flatten")][:8]
    assert block1 == ["block1_conv1", "block1_bn1", "block1_relu1", "block1_conv2", "block1_bn2",
                      "block1_relu2", "block1_pool", "block1_dropout"]
    for task, width, activation in (("smile", 2, "softmax"), ("gender", 2, "softmax"), ("age", 5, "softmax")):
        assert model.get_layer(f"{task}_fc1").units == 256
        assert model.get_layer(f"{task}_fc2").units == 256
        out = model.get_layer(task)
        assert (out.units, out.activation.__name__) == (width, activation)
    assert sorted(model.output_names) == ["age", "gender", "smile"]
    # no L2 and no block dropout by default; with model.params.l2 every kernel gets it:
    # 9 conv + 3 * (2 FC + 1 output) = 18 regularisation terms
    assert model.losses == [] and model.get_layer("block1_dropout").rate == 0.0
    regularised = build(parse(config_dict(params={"l2": 5e-4, "conv_dropout": 0.2}), base_dir=None))
    assert len(regularised.losses) == 18 and regularised.get_layer("block1_dropout").rate == 0.2


def test_every_task_type_gets_its_head_and_outputs_are_valid(make_config):
    cfg = make_config(size=(16, 16), channels=3, tasks=[
        {"name": "race", "type": "multiclass", "classes": ["a", "b", "c"]},
        {"name": "attrs", "type": "multilabel", "classes": ["red", "blue", "shirt", "dress"]},
        {"name": "age", "type": "regression"},
        {"name": "gender", "type": "binary", "classes": ["f", "m"]},
    ])
    model = build(cfg)
    assert {n: model.get_layer(n).activation.__name__ for n in cfg.task_names} == {
        "race": "softmax", "attrs": "sigmoid", "age": "linear", "gender": "softmax"}
    x = np.random.default_rng(0).normal(size=(3, 16, 16, 3)).astype("float32")
    out = model(x, training=False)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "race": (3, 3), "attrs": (3, 4), "age": (3, 1), "gender": (3, 2)}
    np.testing.assert_allclose(out["race"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert ((out["attrs"].numpy() > 0) & (out["attrs"].numpy() < 1)).all()


def test_params_override_and_validation(make_config):
    model = build(make_config(size=(16, 16), params={"dropout": 0.3, "l2": 0.0, "conv_dropout": 0.1}))
    assert model.get_layer("smile_dropout1").rate == 0.3
    assert model.get_layer("block2_dropout").rate == 0.1
    assert model.losses == []  # l2 = 0: no regulariser at all
    assert resolve_params({})["dropout"] == 0.5
    with pytest.raises(ValueError, match=r"model.params.dropot': unknown BKNet parameter; "
                                         r"valid: bn_momentum, conv_dropout, dropout, l2"):
        resolve_params({"dropot": 0.1})
    with pytest.raises(ValueError, match=r"model.params.dropout': must be in \[0, 1\), received 1.5"):
        resolve_params({"dropout": 1.5})


def test_autograph_leaves_tf_keras_alone():
    # TF 2.16 lists `keras` but not `tf_keras` in AutoGraph's DoNotConvert rules; without the
    # rule every trace of BKNet re-transpiles tf_keras (20 s per trace here instead of 0.3 s).
    import tf_keras as keras
    from tensorflow.python.autograph.impl import conversion

    from models.tf_compat import skip_autograph_for_tf_keras

    skip_autograph_for_tf_keras()
    skip_autograph_for_tf_keras()  # idempotent: one rule, not two
    from tensorflow.python.autograph.core import config as ag_config

    assert sum(getattr(r, "_prefix", None) == "tf_keras" for r in ag_config.CONVERSION_RULES) == 1
    assert conversion.is_allowlisted(keras.layers.Dense.call)


def test_bad_params_fail_when_the_config_loads(make_config):
    from config import ConfigError

    with pytest.raises(ConfigError, match=r"config key 'model.params.l2': must be >= 0, received -1"):
        make_config(params={"l2": -1})
