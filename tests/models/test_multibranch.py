"""Multi-branch (seed 002): one tower per task from the input, shapes pinned by arithmetic."""
import numpy as np
import pytest

from config.registry import validate_params
from models import get_builder
from models.multibranch import build
from models.multibranch_params import resolve_params, tower

TASKS = [
    {"name": "age", "type": "regression"},
    {"name": "gender", "type": "binary", "classes": ["f", "m"]},
    {"name": "race", "type": "multiclass", "classes": ["a", "b", "c", "d", "e"]},
]


def test_registry_and_default_towers_are_seed_002s(make_config):
    assert get_builder("multibranch") is build
    cfg = make_config(model="multibranch", tasks=TASKS, size=(48, 48))
    model = build(cfg)
    assert model.input_names == ["image"] and sorted(model.output_names) == ["age", "gender", "race"]
    for task in ("age", "gender", "race"):
        convs = [(layer.filters, layer.kernel_size) for layer in model.layers if layer.name.startswith(f"{task}_block")
                 and "conv" in layer.name]
        assert convs == [(16, (3, 3)), (32, (3, 3)), (32, (3, 3))]
        assert model.get_layer(f"{task}_dense1").units == 128
        assert model.get_layer(f"{task}_block1_dropout").rate == 0.25
    assert {t: model.get_layer(t).activation.__name__ for t in ("age", "gender", "race")} == {
        "age": "linear", "gender": "softmax", "race": "softmax"}
    # Per tower, 48x48x1 input:
    #   conv 3*3*1*16+16 = 160, BN 4*16 = 64; conv 3*3*16*32+32 = 4,640, BN 128; conv 3*3*32*32+32 = 9,248, BN 128
    #   48 -> 24 -> 12 -> 6: flatten 6*6*32 = 1,152; dense 1152*128+128 = 147,584, BN 4*128 = 512
    #   tower body = 160+64+4,640+128+9,248+128+147,584+512 = 162,464
    # outputs: age 128*1+1 = 129, gender 128*2+2 = 258, race 128*5+5 = 645
    # total = 3 * 162,464 + 129 + 258 + 645 = 488,424
    assert model.count_params() == 488_424
    # nothing shared: every weight belongs to exactly one task's tower
    for w in model.weights:
        assert sum(w.name.startswith(f"{t}_") or w.name.startswith(f"{t}/") for t in ("age", "gender", "race")) == 1


def test_per_task_tower_overrides(make_config):
    params = {"filters": [8], "dense": [], "convs_per_block": 2, "dropout": 0.1, "l2": 1e-4,
              "towers": {"age": {"filters": [4, 8], "dense": [16, 8], "convs_per_block": 1}}}
    cfg = make_config(model="multibranch", tasks=TASKS, size=(16, 16), params=params)
    model = build(cfg)
    names = [layer.name for layer in model.layers]
    assert [n for n in names if n.startswith("age_block") and "conv" in n] == ["age_block1_conv1", "age_block2_conv1"]
    assert [n for n in names if n.startswith("gender_block") and "conv" in n] == ["gender_block1_conv1",
                                                                                   "gender_block1_conv2"]
    assert [model.get_layer(n).units for n in ("age_dense1", "age_dense2")] == [16, 8]
    assert not any(n.startswith("race_dense") for n in names)
    # L2 on every kernel: age 2 conv + 2 dense + output, gender / race 2 conv + output each = 5 + 3 + 3
    assert len(model.losses) == 11
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    out = model(x, training=False)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"age": (2, 1), "gender": (2, 2), "race": (2, 5)}
    p = resolve_params(params)
    assert tower(p, "age") == {"filters": [4, 8], "convs_per_block": 1, "dense": [16, 8]}
    assert tower(p, "race") == {"filters": [8], "convs_per_block": 2, "dense": []}


def test_params_fail_by_name_when_the_config_loads(make_config):
    from config import ConfigError

    with pytest.raises(ConfigError, match=r"'model.params.filter': unknown multibranch parameter; valid: "
                                          r"bn_momentum, convs_per_block, dense, dropout, filters, l2, stem, "
                                          r"stitch_lr_scale, towers"):
        make_config(model="multibranch", tasks=TASKS, params={"filter": [8]})
    with pytest.raises(ConfigError, match=r"'model.params.filters': expected a non-empty list of positive integers, "
                                          r"received \[\]"):
        make_config(model="multibranch", tasks=TASKS, params={"filters": []})
    with pytest.raises(ConfigError, match=r"'model.params.towers.smile': unknown task; tasks in this config: "
                                          r"age, gender, race"):
        make_config(model="multibranch", tasks=TASKS, params={"towers": {"smile": {"dense": [4]}}})
    with pytest.raises(ConfigError, match=r"'model.params.towers.age.depth': unknown tower setting; "
                                          r"valid: filters, convs_per_block, dense"):
        make_config(model="multibranch", tasks=TASKS, params={"towers": {"age": {"depth": 3}}})
    with pytest.raises(ConfigError, match=r"'model.params.dropout': must be in \[0, 1\), received 1"):
        make_config(model="multibranch", tasks=TASKS, params={"dropout": 1})
    # validation alone imports no TensorFlow (config loading stays light)
    assert validate_params("multibranch", {"dense": [4]}, task_names=["age"])["dense"] == [4]


def test_a_shared_stem_before_the_towers(make_config):
    cfg = make_config(model="multibranch", tasks=TASKS, size=(16, 16),
                      params={"stem": [8], "filters": [4], "dense": []})
    model = build(cfg)
    assert model.get_layer("stem_block1_conv1").filters == 8
    # stem: conv 3*3*1*8+8 = 80, BN 32; each tower: conv 3*3*8*4+4 = 292, BN 16; 16 -> 8 -> 4: flatten 4*4*4 = 64;
    # outputs age 64+1 = 65, gender 2*64+2 = 130, race 5*64+5 = 325. 112 + 3 * 308 + 520 = 1,556
    assert model.count_params() == 1_556
    shared = [w.name for w in model.weights if w.name.startswith("stem_")]
    assert len(shared) == 6  # conv kernel, bias, BN gamma, beta, moving mean, variance
    from config import ConfigError

    with pytest.raises(ConfigError, match=r"'model.params.stem': expected a list of positive integers"):
        make_config(model="multibranch", tasks=TASKS, params={"stem": [0]})
