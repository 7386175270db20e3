"""`train.warm_start`: start training from the weights of the model that serves now (docs/warm_start.md).

"The model that serves now" is the newest numbered version under the push destination,
by the one rule the project has for it (`serving.predict.pushed_versions`, also the
Evaluator's baseline and `serving.predict`): a rollback that re-publishes an old version
as the newest number is what the next warm start starts from.

Why not TFX's `Trainer(base_model=...)`: its channel comes from a Resolver (latest blessed
model), which open-source Kubeflow Pipelines does not execute, or from an Importer whose URI
is fixed when the spec is compiled; and MLMD's latest blessed model is not what the push
destination serves after a rollback. The Trainer reads the push destination itself, through
tf.io.gfile, so the same code runs locally and from the compiled spec with no MLMD query.

The served model must have the architecture this config builds: the parts of its config
recorded in `assets.extra/multitask.json` (serving.write_metadata) are compared first, so a
mismatch is named in config terms; then every variable's name, shape and dtype. Weights are
copied into the freshly built model (not the served graph), all or none. What is not carried
over: the optimizer's state (Adam's moments), the learning-rate schedule (it restarts at
step 0, warm-up included) and learned loss weights: they start fresh.

Cache key: the Trainer's custom_config (an exec property, so part of TFX's cache key) holds the
push destination and, for local runs, the version serving when the pipeline was built; a
new push therefore reruns the Trainer instead of reusing a model trained from the old one.
A compiled Kubeflow spec is built once and run many times, so it pins no version and the
Trainer resolves it when it runs (docs/warm_start.md says what that means for caching).
"""
from __future__ import annotations

import json
import posixpath
from typing import Any, Mapping

from config import Config, ConfigError
from serving import read_metadata
from serving.predict import pushed_versions

CUSTOM_CONFIG_KEY = "warm_start"
OFF_REASON = "train.warm_start is off"
MAX_LISTED = 5  # variable mismatches named in the error line; the rest are counted


def trainer_custom_config(config: Config, push_destination: str, pin_version: bool) -> dict[str, Any]:
    """The Trainer's custom_config entry for `train.warm_start` ({} when off).

    `pin_version` (local runs) resolves the served version now, so that it is in the cache key;
    "" pins "nothing served". Unpinned (None, a compiled Kubeflow spec) the Trainer resolves it.
    A pinned version's recorded config is checked here too (ConfigError): a mismatch then stops
    the run before its first component instead of after the data stages.
    """
    if not config.train.warm_start:
        return {}
    version = None
    if pin_version:
        versions = pushed_versions(push_destination)
        version = versions[-1] if versions else ""
        if version:
            _check_config(posixpath.join(push_destination, version), config)
    return {CUSTOM_CONFIG_KEY: {"push_destination": push_destination, "served_version": version}}


def architecture(config: Mapping[str, Any]) -> dict[str, Any]:
    """What decides the model's variables, from a config as JSON (Config.to_json(), or the
    `config` a served model's multitask.json records), keyed by the config path a user edits."""
    model, image = config["model"], config["image"]
    sharing = dict(model.get("sharing") or {})
    if sharing.get("type", "hard") == "hard":
        sharing = {"type": "hard"}  # the expert settings build nothing under hard sharing
    arch = {"model.name": model["name"], "model.params": dict(model.get("params") or {}),
            "model.sharing": sharing, "image.size": list(image["size"]), "image.channels": image["channels"],
            "tasks": [t["name"] for t in config["tasks"]]}
    for t in config["tasks"]:
        arch[f"tasks.{t['name']}.type"] = t["type"]
        arch[f"tasks.{t['name']}.width"] = 1 if t["type"] == "regression" else len(t["classes"])
    return arch


def differences(served: Mapping[str, Any], ours: Mapping[str, Any]) -> list[str]:
    """`key: served X, this config Y` for every key whose values differ (or that one side lacks)."""
    missing = "(none)"
    return [f"{key}: served {json.dumps(served.get(key, missing))}, this config {json.dumps(ours.get(key, missing))}"
            for key in list(ours) + [k for k in served if k not in ours]
            if served.get(key, missing) != ours.get(key, missing)]


def served_version(settings: Mapping[str, Any]) -> str:
    """The version to start from: the pinned one, else the newest pushed now; "" for none."""
    if settings.get("served_version") is not None:
        return settings["served_version"]
    versions = pushed_versions(settings["push_destination"])
    return versions[-1] if versions else ""


def apply(model, config: Config, custom_config: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """Copies the served model's weights into `model` (built, not yet trained) when
    `train.warm_start` is on; returns (the served version's path or None, why).

    Raises ConfigError (one line) when the served model does not match what `config` builds;
    nothing has been assigned then.
    """
    if not config.train.warm_start:
        return None, OFF_REASON
    settings = (custom_config or {}).get(CUSTOM_CONFIG_KEY)
    if not settings:  # pipeline.create_components adds it; a Trainer without it is wired wrong
        raise ValueError("train.warm_start is on but the Trainer's custom_config has no 'warm_start' entry "
                         "(components.trainer.warm_start.trainer_custom_config)")
    destination = settings["push_destination"]
    version = served_version(settings)
    if not version:
        reason = f"nothing served under {destination} yet: trained from scratch"
        print(f"warm start: {reason}")  # information, not an error: the first run of a pipeline
        return None, reason
    path = posixpath.join(destination, version)
    _check_config(path, config)
    count = _copy_weights(path, model)
    reason = (f"served version {version} has this config's architecture: its {count} variables copied; "
              "optimizer state, learning-rate schedule and loss weights start fresh")
    print(f"warm start: from {path}: {reason}")
    return path, reason


def _fail(path: str, what: str) -> None:
    raise ConfigError(f"config key 'train.warm_start': cannot warm-start from the served model {path}: {what}; "
                      "set train.warm_start: false to train from scratch")


def _check_config(path: str, config: Config) -> None:
    import tensorflow as tf

    if not tf.io.gfile.exists(posixpath.join(path, "saved_model.pb")):
        _fail(path, "it holds no saved_model.pb (removed since the pipeline was built?)")
    try:
        served = read_metadata(path)["config"]
    except (FileNotFoundError, KeyError):
        _fail(path, "it has no assets.extra/multitask.json with its config, so its architecture is unknown")
    diffs = differences(architecture(served), architecture(json.loads(config.to_json())))
    if diffs:
        _fail(path, "its architecture differs from this config's: " + "; ".join(diffs))


def _copy_weights(path: str, model) -> int:
    """Every variable of `model` from the served SavedModel's variable of the same name, after
    checking that both sides hold the same names, shapes and dtypes (so all or none is copied)."""
    import tensorflow as tf

    served = {}
    for v in tf.saved_model.load(path).variables:
        served[v.name] = v
    ours = {w.name: w for w in model.weights}
    if len(ours) != len(model.weights) or len(served) == 0:
        _fail(path, "variable names are not unique, so they cannot be matched")  # never seen: layers are named
    problems = [f"{name}: served {list(served[name].shape)} {served[name].dtype.name}, "
                f"this config {list(w.shape)} {w.dtype.name}"
                for name, w in ours.items() if name in served
                and (served[name].shape != w.shape or served[name].dtype.base_dtype != w.dtype.base_dtype)]
    problems += [f"{name}: not in the served model" for name in ours if name not in served]
    problems += [f"{name}: served, not in this config's model" for name in served if name not in ours]
    if problems:
        more = f" and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        _fail(path, f"{len(problems)} variable(s) differ: " + "; ".join(problems[:MAX_LISTED]) + more)
    for name, w in ours.items():
        w.assign(served[name].read_value())
    return len(ours)
