"""train.warm_start (components/trainer/warm_start.py): the served model is the `trained` fixture's
SavedModel (run_fn, 3 steps) copied into a push destination as a numbered version, as the Pusher
leaves it; the weights go into a freshly built model, or the config's differences are named."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from components.common.warm_start_file import read_warm_start
from components.trainer.warm_start import OFF_REASON, apply, architecture, differences, trainer_custom_config
from config import ConfigError, parse
from models import get_builder
from serving import METADATA_FILE, write_metadata
from tests.components.trainer import helpers

VERSION = "1700000000"


def warm_config(**kw):
    d = helpers.config_dict(size=kw.pop("size", (48, 48)), batch_size=8)
    d["train"]["warm_start"] = True
    for task in d["tasks"]:
        if task["name"] in kw:
            task["classes"] = kw[task["name"]]
    return parse(d, base_dir=None)


def push(trained, root) -> str:
    """The trained model as the newest push under `root` (what serves now); returns `root`."""
    shutil.copytree(trained[1].serving_model_dir, os.path.join(root, VERSION))
    os.makedirs(os.path.join(root, "1600000000"))  # an older, unfinished push (no saved_model.pb): never picked
    return str(root)


def settings(push_dir: str, config) -> dict:
    return trainer_custom_config(config, push_dir, pin_version=False)


def served_values(path: str) -> dict:
    return {v.name: v.numpy() for v in tf.saved_model.load(path).variables}


def test_warm_start_key_validated():
    d = helpers.config_dict()
    assert parse(d, base_dir=None).train.warm_start is False  # the default
    assert warm_config().train.warm_start is True
    d["train"]["warm_start"] = "yes"
    with pytest.raises(ConfigError, match=r"config key 'train.warm_start': expected true or false, received 'yes'"):
        parse(d, base_dir=None)


def test_custom_config_pins_the_served_version_for_the_cache_key(tmp_path):
    config = warm_config()
    dest = str(tmp_path / "serving_model")
    assert trainer_custom_config(helpers.make_config(), dest, pin_version=True) == {}  # off: no key change
    assert trainer_custom_config(config, dest, pin_version=True)["warm_start"]["served_version"] == ""
    for version in ("9", "10"):  # numbered folders holding a SavedModel; 10 is newer than 9
        os.makedirs(os.path.join(dest, version))
        open(os.path.join(dest, version, "saved_model.pb"), "wb").close()
        write_metadata(os.path.join(dest, version), config)  # its architecture: checked when pinned
    assert trainer_custom_config(config, dest, pin_version=True) == {
        "warm_start": {"push_destination": dest, "served_version": "10"}}
    # a compiled Kubeflow spec pins nothing: the Trainer resolves it when it runs
    assert trainer_custom_config(config, dest, pin_version=False)["warm_start"]["served_version"] is None


def test_architecture_differences_are_named():
    ours = architecture(json.loads(warm_config().to_json()))
    served = architecture(json.loads(warm_config(size=(32, 32), age=["young", "old"]).to_json()))
    assert differences(served, ours) == ["image.size: served [32, 32], this config [48, 48]",
                                         "tasks.age.width: served 2, this config 5"]
    # class names, loss weights, training settings: no architecture change
    renamed = json.loads(warm_config(smile=["a", "b"]).to_json())
    renamed["train"]["learning_rate"] = 0.1
    assert differences(architecture(renamed), ours) == []


def test_copies_the_served_weights_before_training(trained, tmp_path):
    dest = push(trained, tmp_path / "serving_model")
    config = warm_config()
    model = get_builder(config.model.name)(config)  # as run_fn builds it
    served = served_values(os.path.join(dest, VERSION))
    assert any(not np.array_equal(w.numpy(), served[w.name]) for w in model.weights)  # fresh: not the served ones
    source, reason = apply(model, config, settings(dest, config))
    assert source == os.path.join(dest, VERSION) and "optimizer state" in reason
    assert sorted(w.name for w in model.weights) == sorted(served)
    for w in model.weights:
        np.testing.assert_array_equal(w.numpy(), served[w.name], err_msg=w.name)


@pytest.mark.parametrize("kw, named", [
    ({"age": ["young", "old", "senior"]}, "tasks.age.width: served 5, this config 3"),
    ({"size": (32, 32)}, "image.size: served [48, 48], this config [32, 32]"),
])
def test_incompatible_served_model_is_one_line_naming_the_difference(trained, tmp_path, kw, named):
    dest = push(trained, tmp_path / "serving_model")
    config = warm_config(**kw)
    model = get_builder(config.model.name)(config)
    before = [w.numpy() for w in model.weights]
    with pytest.raises(ConfigError) as e:
        apply(model, config, settings(dest, config))
    line = str(e.value)
    assert "\n" not in line and line.startswith("config key 'train.warm_start': cannot warm-start from the served "
                                                f"model {os.path.join(dest, VERSION)}")
    assert named in line and line.count("served ") == 2  # only the one difference (and the model's path)
    for b, w in zip(before, model.weights):  # nothing copied
        np.testing.assert_array_equal(b, w.numpy())


def test_local_build_refuses_an_incompatible_served_model_before_any_component(trained, tmp_path):
    dest = push(trained, tmp_path / "serving_model")
    with pytest.raises(ConfigError, match=r"image.size: served \[48, 48\], this config \[32, 32\]"):
        trainer_custom_config(warm_config(size=(32, 32)), dest, pin_version=True)
    assert trainer_custom_config(warm_config(), dest, pin_version=True)["warm_start"]["served_version"] == VERSION


def test_variables_are_checked_all_or_nothing(trained, tmp_path):
    """A served model whose multitask.json claims this config's architecture but whose variables
    differ (trained by other model code): named by variable, nothing copied."""
    dest = push(trained, tmp_path / "serving_model")
    meta_path = os.path.join(dest, VERSION, METADATA_FILE)
    with open(meta_path) as f:
        meta = json.load(f)
    meta["config"]["image"]["size"] = [32, 32]
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    config = warm_config(size=(32, 32))
    model = get_builder(config.model.name)(config)
    before = [w.numpy() for w in model.weights]
    with pytest.raises(ConfigError, match=r"variable\(s\) differ: .*kernel:0: served \[\d+, \d+\] float32, "
                                          r"this config \[\d+, \d+\] float32"):
        apply(model, config, settings(dest, config))
    for b, w in zip(before, model.weights):
        np.testing.assert_array_equal(b, w.numpy())


def test_nothing_served_trains_from_scratch_with_one_info_line(tmp_path, capsys):
    config = warm_config()
    model = get_builder(config.model.name)(config)
    before = [w.numpy() for w in model.weights]
    dest = str(tmp_path / "serving_model")  # no such folder yet: the pipeline's first run
    source, reason = apply(model, config, settings(dest, config))
    assert source is None and reason == f"nothing served under {dest} yet: trained from scratch"
    assert capsys.readouterr().out == f"warm start: {reason}\n"
    for b, w in zip(before, model.weights):
        np.testing.assert_array_equal(b, w.numpy())
    assert apply(model, helpers.make_config(), {}) == (None, OFF_REASON)  # off: nothing looked up


def test_run_fn_starts_from_the_served_model(trained, transformed_data, tmp_path):
    """The real run_fn, one step: every trainable weight it exports is within one Adam step
    (<= the learning rate per weight) of the served one, so training started from them."""
    from components.trainer.run_fn import run_fn

    dest = push(trained, tmp_path / "serving_model")
    config = warm_config()
    fn_args = helpers.fn_args_for(transformed_data, config, tmp_path / "run", 1)
    fn_args.custom_config.update(settings(dest, config))
    run_fn(fn_args)
    served_path = os.path.join(dest, VERSION)
    assert read_warm_start(fn_args.model_run_dir)["from"] == served_path
    served = served_values(served_path)
    exported = {v.name: v.numpy() for v in tf.saved_model.load(fn_args.serving_model_dir).trainable_variables}
    assert exported and set(exported) <= set(served)
    worst = max(float(np.abs(exported[n] - served[n]).max()) for n in exported)
    assert worst <= 1.5 * config.train.learning_rate, worst
