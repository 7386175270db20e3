"""The pure parts of benchmarks/cheap_factors.py: round order, block sizes, the learning-rate
scaling, the child's output line and the summary of rounds (no TensorFlow is started)."""
import json

import pytest

from benchmarks import cheap_factors as cf


def test_rounds_alternate_order():
    names = ["baseline", "a", "b"]
    assert [cf.round_order(names, r) for r in range(3)] == [names, names[::-1], names]


@pytest.mark.parametrize("batch, steps", [(32, 10), (64, 5), (128, 3), (1000, 1)])
def test_block_steps_cover_the_images(batch, steps):
    assert cf.block_steps(batch) == steps
    assert steps * batch >= cf.IMAGES_PER_BLOCK or steps == 1


def test_learning_rate_scales_linearly():
    assert cf.scaled_learning_rate(5e-4, 32) == pytest.approx(5e-4)
    assert cf.scaled_learning_rate(5e-4, 128) == pytest.approx(2e-3)


def test_parse_child_takes_the_last_json_line():
    out = "W some TensorFlow log\n{\"old\": 1}\n" + json.dumps({"variant": "x", "images_per_s": 9.5}) + "\n"
    assert cf.parse_child(out) == {"variant": "x", "images_per_s": 9.5}
    with pytest.raises(ValueError):
        cf.parse_child("no json here\n")


def test_summarise_pairs_each_round_with_its_baseline():
    rates = {"baseline": [100.0, 50.0, 80.0], "fast": [150.0, 90.0, None], "slow": [50.0, 30.0, 20.0]}
    s = cf.summarise(rates)
    assert s["baseline"]["ratio"] == 1.0 and s["baseline"]["images_per_s"] == 80.0
    # ratios 1.5 and 1.8 (round 3 failed): median 1.65; images/s median of 150 and 90
    assert s["fast"] == {"images_per_s": 120.0, "per_round": [150.0, 90.0, None],
                         "ratio": 1.65, "ratio_min": 1.5, "ratio_max": 1.8}
    assert (s["slow"]["ratio"], s["slow"]["ratio_min"], s["slow"]["ratio_max"]) == (0.5, 0.25, 0.6)


def test_every_variant_differs_from_the_baseline_in_one_declared_way():
    base = cf.VARIANTS["baseline"]
    assert (base.policy, base.batch, base.env, base.jit) == ("float32", 32, (), False)
    for name, v in cf.VARIANTS.items():
        assert v.note, name
        assert all(k.startswith("TF_") for k, _ in v.env), name
    assert dict(cf.VARIANTS["onednn_off"].env) == {"TF_ENABLE_ONEDNN_OPTS": "0"}
