"""The learning-rate schedule (train.warmup, train.lr_decay) and train.keep's best-epoch checkpoint."""
import json
import math

import numpy as np
import pytest
import tf_keras as keras

from components.trainer.keep import KeepBest, validation_loss
from components.trainer.optimizer import WarmupDecay, learning_rate
from config import ConfigError, TrainConfig, parse
from tests.components.trainer.helpers import config_dict


def rates(schedule, updates):
    # Keras calls the schedule with the count of updates already applied
    return [float(schedule(k - 1)) for k in updates]


def test_warmup_then_constant():
    s = WarmupDecay(0.01, total_steps=100, warmup_steps=4, decay="constant")
    assert rates(s, [1, 2, 3, 4, 5, 100]) == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])


def test_warmup_then_cosine_to_just_above_zero():
    s = WarmupDecay(1.0, total_steps=12, warmup_steps=2, decay="cosine")
    # update k > 2 runs at (1 + cos(pi * (k - 3) / 10)) / 2
    assert rates(s, [1, 2, 3, 8, 12]) == pytest.approx(
        [0.5, 1.0, 1.0, 0.5, (1 + math.cos(math.pi * 0.9)) / 2], abs=1e-6)
    assert float(s(1000)) == pytest.approx(0.0, abs=1e-7)


def test_no_warmup_and_config_resolution():
    assert rates(WarmupDecay(0.1, 10), [1, 10]) == pytest.approx([0.1, 0.1])
    s = learning_rate(TrainConfig(learning_rate=0.002, warmup=0.1, lr_decay="cosine"), 300)
    assert (s.peak, s.total_steps, s.warmup_steps, s.decay) == (0.002, 300, 30, "cosine")
    with pytest.raises(ValueError, match="unknown lr_decay 'linear'; valid: constant, cosine"):
        WarmupDecay(0.1, 10, decay="linear")


@pytest.mark.parametrize("key,value,message", [
    ("warmup", 0.6, "config key 'train.warmup': must be <= 0.5, received 0.6"),
    ("warmup", float("nan"), "config key 'train.warmup': expected a finite number, received nan"),
    ("lr_decay", "step", "config key 'train.lr_decay': received 'step'; valid: constant, cosine"),
    ("keep", ["best"], r"config key 'train.keep': received \['best'\]; valid: last, best"),
])
def test_schedule_and_keep_keys_are_validated(key, value, message):
    d = config_dict()
    d["train"][key] = value
    with pytest.raises(ConfigError, match=message):
        parse(d, base_dir=None)


def _tiny_model():
    x = keras.Input((2,))
    return keras.Model(x, keras.layers.Dense(1, name="out")(x))


def test_keep_best_checkpoints_the_lowest_validation_loss_and_survives_a_restart(tmp_path):
    model = _tiny_model()
    keep = KeepBest(model, ["a", "b"], str(tmp_path / "best"))
    keep.set_model(model)
    keep.on_train_begin()
    kernels = []
    for epoch, (a, b) in enumerate([(2.0, 1.0), (0.5, 1.0), (1.0, 1.0)]):
        model.get_layer("out").kernel.assign(np.full((2, 1), float(epoch), np.float32))
        kernels.append(epoch)
        keep.on_epoch_end(epoch, {"val_a_loss": a, "val_b_loss": b, "val_loss": 99.0})
    assert json.load(open(tmp_path / "best" / "state.json")) == {"val_loss": 1.5, "epoch": 1}
    assert keep.restore() == 1
    assert model.get_layer("out").kernel.numpy().tolist() == [[1.0], [1.0]]
    # a restarted Trainer compares with the best before the kill
    again = KeepBest(model, ["a", "b"], str(tmp_path / "best"))
    again.on_train_begin()
    again.on_epoch_end(3, {"val_a_loss": 1.0, "val_b_loss": 0.6})  # 1.6: not better
    assert (again.best, again.best_epoch) == (1.5, 1)


def test_keep_best_without_validation_keeps_the_last_weights(tmp_path):
    model = _tiny_model()
    keep = KeepBest(model, ["a"], str(tmp_path / "best"))
    keep.on_train_begin()
    keep.on_epoch_end(0, {"val_a_loss": float("nan")})
    keep.on_epoch_end(1, {"loss": 1.0})
    assert keep.restore() is None and not (tmp_path / "best").exists()
    assert validation_loss({"val_a_loss": 1.0, "val_b_loss": 2.0}, ["a", "b"]) == 3.0
    assert validation_loss({"val_a_loss": 1.0}, ["a", "b"]) is None
