"""The run config as the components receive it: the JSON `Config.to_json()`
writes, decoded again (`config_from_json`) by the same `parse` that reads the
user's YAML, so a component sees exactly the config the user's file gives.

Above both `config.types` (the dataclasses) and `config.parse` (which builds
them): the decoder needs the parser, and the parser needs the types, so the
decoder lives here rather than on `Config` itself.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from config.parse import parse
from config.types import Config


def config_from_json(text: str) -> Config:
    """The Config from `Config.to_json()`'s text (checked again, as on load)."""
    return parse(json.loads(text), base_dir=None)


def config_from_custom_config(custom_config: Mapping[str, Any] | None) -> Config:
    """The run's Config from a component's custom_config ({'config': <json>}): Transform's
    `preprocessing_fn` and the Trainer's `run_fn` both receive it this way."""
    if not custom_config or "config" not in custom_config:
        raise ValueError("custom_config must hold the run's config as {'config': Config.to_json()}; "
                         f"received keys: {sorted(custom_config or {})}")
    return config_from_json(custom_config["config"])
