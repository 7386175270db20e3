"""config/codec.py: the config as the components receive it (JSON, and Transform's and the
Trainer's custom_config), decoded by the same parse that reads the YAML."""
import os

import pytest

from config import config_from_custom_config, config_from_json, load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, "configs", "default.yaml")


def test_custom_config_round_trip():
    cfg = load(DEFAULT)
    assert config_from_custom_config({"config": cfg.to_json()}) == cfg == config_from_json(cfg.to_json())


@pytest.mark.parametrize("custom_config", [None, {}, {"cfg": "{}"}])
def test_custom_config_must_hold_the_config(custom_config):
    with pytest.raises(ValueError, match=r"received keys: "):
        config_from_custom_config(custom_config)
    if custom_config:
        with pytest.raises(ValueError, match=r"received keys: \['cfg'\]"):
            config_from_custom_config(custom_config)

