"""One validation path: each class of bad input of issue 15 fails on `load` or `validate` with
one ConfigError line `config key '<path>': ...` naming a key that is in the file."""
from __future__ import annotations

import copy
import dataclasses
import os

import pytest
import yaml

from config import (
    PRIMARY_METRIC,
    THRESHOLD_METRICS,
    Config,
    ConfigError,
    EvaluationConfig,
    ImageConfig,
    PrepConfig,
    SplitsConfig,
    TrainConfig,
    config_from_json,
    load,
    parse,
    validate,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, "configs", "default.yaml")
NAN, INF = float("nan"), float("inf")


def raw_default() -> dict:
    with open(DEFAULT) as f:
        return yaml.safe_load(f)


def load_raw(tmp_path, raw, text: str | None = None) -> Config:
    """`raw` written as YAML next to a copy of the default's data paths, loaded and validated."""
    path = tmp_path / "configs" / "c.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text if text is not None else yaml.safe_dump(raw, allow_unicode=True))
    config = load(str(path))
    validate(config)
    return config


def error(tmp_path, mutate=None, raw=None, text=None) -> str:
    raw = raw if raw is not None else raw_default()
    if mutate:
        mutate(raw)
    with pytest.raises(ConfigError) as e:
        load_raw(tmp_path, raw, text)
    message = str(e.value)
    assert message.startswith("config key '") and "\n" not in message, message
    return message


def set_in(*path_value):
    *path, value = path_value

    def mutate(raw):
        node = raw
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return mutate


# ------------------------------------------------------------ tracebacks at load
@pytest.mark.parametrize("mutate, key", [
    (set_in("sources", 0, "format", ["genki4k"]), "sources[0].format"),
    (set_in("model", "name", ["bknet"]), "model.name"),
    (set_in("tasks", 0, "type", {"binary": 1}), "tasks[0].type"),
    (set_in("evaluation", {"slices": [{"task": ["smile"]}]}), "evaluation.slices[0].task"),
    (set_in("evaluation", {"slices": [{"task": "smile", "by": ["class"]}]}), "evaluation.slices[0].by"),
    (set_in("train", "sampling", "type", ["natural"]), "train.sampling.type"),
    (set_in("sources", 0, "tasks", [["smile"]]), "sources[0].tasks"),
    (set_in("tasks", 0, "loss", ["crossentropy"]), "tasks[0].loss"),
])
def test_a_list_where_a_name_goes(tmp_path, mutate, key):
    assert error(tmp_path, mutate).startswith(f"config key '{key}': received ")


def test_mixed_int_and_str_unknown_keys(tmp_path):
    assert error(tmp_path, set_in("train", 1, 2)) == (
        "config key 'train.1': a key must be a name (a string), received int 1")
    msg = error(tmp_path, lambda r: r.update({7: "x", "zzz": 1}))
    assert msg.startswith("config key '7': a key must be a name")
    assert error(tmp_path, set_in("sources", 1, "options", 3, "x")).startswith(
        "config key 'sources[1].options.3': a key must be a name")
    assert error(tmp_path, set_in("model", "params", {1: 0.5, "dropout": 0.5})).startswith(
        "config key 'model.params.1': a key must be a name")


def test_a_list_as_a_key(tmp_path):
    assert error(tmp_path, text="name: x\n? [a, b]\n: 1\n").endswith(
        "is not valid YAML at line 2, column 3: found unhashable key")


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "configs" / "c.yaml"
    path.parent.mkdir()
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError) as e:
        load(str(path))
    assert str(e.value) == f"config key '': config file {path} is not UTF-8 text: byte 0xe9 at offset 9"


def test_yaml_errors_are_one_line(tmp_path):
    msg = error(tmp_path, text="name: a\ntasks: [\n  - x: : y\n")
    assert msg.startswith("config key '': config file ") and "is not valid YAML at line" in msg


def test_a_document_that_is_not_a_mapping(tmp_path):
    assert error(tmp_path, text="- a\n- b\n") == "config key '': expected a mapping, received list ['a', 'b']"


# ------------------------------------------------------------ deep checks (validate)
def test_unknown_format_option_names_its_key(tmp_path):
    assert error(tmp_path, set_in("sources", 0, "options", {"smile": 1})) == (
        "config key 'sources[0].options.smile': unknown option; valid options for format genki4k: smile_task "
        "(source 'genki4k', format genki4k)")


def test_option_paths_are_spelled_as_in_the_file(tmp_path):
    # was `sources[0].options.options.smile_task`
    assert error(tmp_path, set_in("sources", 0, "options", {"smile_task": "nope"})) == (
        "config key 'sources[0].options.smile_task': expected one of this source's tasks (smile), "
        "received 'nope' (source 'genki4k', format genki4k)")


@pytest.mark.parametrize("option, value, hint", [
    ("age_bins", [20, 10, 40, 55], "strictly increasing"),
    ("age_bins", [20, 30], "2 edges make 3 age groups"),
    ("age_bins", "20,30", "strictly increasing"),
    ("age_task", "smile", "expected one of this source's tasks"),
    ("age_task", ["age"], "expected one of this source's tasks"),
    ("mat_file", "../wiki.mat", "expected a file name like wiki.mat"),
    ("mat_file", 3, "expected a file name like wiki.mat"),
    ("min_face_score", "high", "expected a number or null"),
])
def test_bad_imdb_wiki_options(tmp_path, option, value, hint):
    msg = error(tmp_path, set_in("sources", 1, "options", option, value))
    assert msg.startswith(f"config key 'sources[1].options.{option}': ") and hint in msg, msg


def test_nan_inside_format_options(tmp_path):
    assert error(tmp_path, set_in("sources", 1, "options", "age_bins", [20, NAN, 40, 55])) == (
        "config key 'sources[1].options.age_bins[1]': expected a finite number, received nan")


def test_face_crop_needs_a_format_with_face_boxes(tmp_path):
    assert error(tmp_path, set_in("sources", 0, "prep", {"face_crop": True})).startswith(
        "config key 'sources[0].prep.face_crop': received true, but format genki4k gives no face boxes")
    # imdb_wiki has them
    raw = raw_default()
    raw["sources"][1]["prep"] = {"face_crop": True}
    load_raw(tmp_path, raw)


def test_a_missing_source_path_without_sample(tmp_path):
    raw = raw_default()
    del raw["sources"][0]["sample"]
    raw["sources"][0]["path"] = str(tmp_path / "nowhere")
    assert error(tmp_path, raw=raw) == (
        f"config key 'sources[0].path': {tmp_path}/nowhere does not exist; point it at the genki4k data, or add "
        f"`sample: {{count: 500}}` to the source to generate sample data there")


def test_a_source_path_with_the_wrong_layout(tmp_path):
    (tmp_path / "genki" / "files").mkdir(parents=True)
    raw = raw_default()
    del raw["sources"][0]["sample"]
    raw["sources"][0]["path"] = str(tmp_path / "genki")
    assert error(tmp_path, raw=raw) == (
        f"config key 'sources[0].path': {tmp_path}/genki has no labels.txt (file); format genki4k reads "
        f"<path>/files/, <path>/labels.txt")
    (tmp_path / "genki" / "labels.txt").write_text("1 0 0 0\n")
    load_raw(tmp_path, raw)


def test_paths_are_not_checked_where_they_are_not_this_machines():
    raw = raw_default()
    for s in raw["sources"]:
        del s["sample"]
        s["path"] = "/mnt/cluster/" + s["name"]
    config = parse(raw, base_dir=None)
    validate(config, check_paths=False)  # kubeflow_runner: the pods read them
    with pytest.raises(ConfigError, match=r"'sources\[0\]\.path': /mnt/cluster/genki4k does not exist"):
        validate(config)
    # components re-parse the config from JSON without looking at the disk
    assert config_from_json(config.to_json()) == config


def test_unknown_sample_setting(tmp_path):
    assert error(tmp_path, set_in("sources", 0, "sample", {"count": 5, "colour": "red"})) == (
        "config key 'sources[0].sample.colour': unknown sample setting for format genki4k; "
        "valid: count, seed, size, label_noise, smile_share")


def test_label_noise_out_of_range(tmp_path):
    assert error(tmp_path, set_in("sources", 0, "sample", {"count": 5, "label_noise": 0.5})) == (
        "config key 'sources[0].sample.label_noise': expected a share of ambiguous images in [0, 0.5), "
        "received 0.5")


# ------------------------------------------------------------ numbers
@pytest.mark.parametrize("mutate, expected", [
    (set_in("splits", "eval", NAN), "config key 'splits.eval': expected a finite number, received nan"),
    (set_in("train", "learning_rate", NAN), "config key 'train.learning_rate': expected a finite number, "
                                            "received nan"),
    (set_in("train", "learning_rate", INF), "config key 'train.learning_rate': expected a finite number, "
                                            "received inf"),
    (set_in("tasks", 0, "loss_weight", NAN), "config key 'tasks[0].loss_weight': expected a finite number, "
                                             "received nan"),
    (set_in("train", "sampling", {"type": "temperature", "temperature": NAN}),
     "config key 'train.sampling.temperature': expected a finite number, received nan"),
    (set_in("train", "sampling", {"type": "weights", "weights": {"genki4k": 0, "wiki": 0}}),
     "config key 'train.sampling.weights': sampling type 'weights' needs a weight > 0 for at least one source, "
     "received {'genki4k': 0.0, 'wiki': 0.0}; sources: genki4k, wiki"),
    (set_in("train", "steps", 10**12), "config key 'train.steps': must be <= 10000000, received 1000000000000"),
    (set_in("train", "seed", -1), "config key 'train.seed': must be >= 0, received -1"),
    (set_in("tasks", 0, "thresholds", {"accuracy": -0.5}), "config key 'tasks[0].thresholds.accuracy': "
                                                           "must be >= 0, received -0.5"),
    (set_in("tasks", 0, "thresholds", {"accuracy": NAN}), "config key 'tasks[0].thresholds.accuracy': "
                                                          "expected a finite number, received nan"),
    (set_in("image", "size", [48, -INF]), "config key 'image.size': expected [height, width], integers 1-4096, "
                                          "received [48, -inf]"),
    (set_in("model", "params", {"l2": INF}), "config key 'model.params.l2': expected a finite number, "
                                             "received inf"),
    (set_in("model", "params", {"dropout": NAN}), "config key 'model.params.dropout': expected a finite number, "
                                                  "received nan"),
    (set_in("sources", 0, "sample", "count", 10**9), "config key 'sources[0].sample.count': expected a positive "
                                                     "integer, received 1000000000 (at most 1000000)"),
])
def test_numbers_are_finite_and_in_range(tmp_path, mutate, expected):
    assert error(tmp_path, mutate) == expected


def test_all_loss_weights_zero(tmp_path):
    def mutate(raw):
        for t in raw["tasks"]:
            t["loss_weight"] = 0
    assert error(tmp_path, mutate).startswith("config key 'tasks[0].loss_weight': every task has loss_weight 0")


# ------------------------------------------------------------ wrong types are not defaults
@pytest.mark.parametrize("mutate, expected", [
    (set_in("image", []), "config key 'image': expected a mapping, received list []"),
    (set_in("tasks", 0, "thresholds", []), "config key 'tasks[0].thresholds': expected a mapping, received list []"),
    (set_in("sources", 1, "options", ""), "config key 'sources[1].options': expected a mapping, received str ''"),
    (set_in("beam", {"args": 0}), "config key 'beam.args': expected a list of strings (e.g. "
                                  "[--direct_num_workers=2]), received 0"),
    (set_in("train", "sampling", ""), "config key 'train.sampling': expected a mapping, received str ''"),
    (set_in("splits", "salt", []), "config key 'splits.salt': expected a string, received []"),
    (set_in("model", "params", 0), "config key 'model.params': expected a mapping, received int 0"),
    (set_in("sources", 0, "prep", False), "config key 'sources[0].prep': expected a mapping, received bool False"),
])
def test_a_wrong_type_is_not_a_default(tmp_path, mutate, expected):
    assert error(tmp_path, mutate) == expected


def test_an_empty_section_is_its_defaults(tmp_path):
    raw = raw_default()
    raw.update(splits=None, beam=None, evaluation=None, tfrecords=None)
    config = load_raw(tmp_path, raw)
    assert config.splits == SplitsConfig() and config.evaluation == EvaluationConfig()


def test_defaults_come_from_the_dataclasses():
    raw = {"name": "n", "tasks": [{"name": "t", "type": "binary", "classes": ["a", "b"]}],
           "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": ["t"]}]}
    config = parse(raw, base_dir=None)
    assert (config.image, config.splits, config.train) == (ImageConfig(), SplitsConfig(), TrainConfig())
    assert config.sources[0].prep == PrepConfig() and config.sources[0].options == {}
    assert config.sources[0].sample is None and config.tasks[0].loss == "crossentropy"


# ------------------------------------------------------------ names
@pytest.mark.parametrize("mutate, key", [
    (set_in("sources", 0, "name", "génki"), "sources[0].name"),
    (set_in("tasks", 0, "name", "sourire"), None),  # ASCII: fine as a name (fails on the sources' task list)
    (set_in("tasks", 0, "name", "微笑"), "tasks[0].name"),
    (set_in("name", "../../x"), "name"),
    (set_in("name", "a/b"), "name"),
    (set_in("name", "x" * 300), "name"),
    (set_in("tasks", 0, "name", "t" * 64), "tasks[0].name"),
    (set_in("sources", 0, "name", "1st"), "sources[0].name"),
    (set_in("name", ""), "name"),
    (set_in("name", 5), "name"),
])
def test_names_are_safe(tmp_path, mutate, key):
    msg = error(tmp_path, mutate)
    if key is not None:
        assert msg.startswith(f"config key '{key}': expected a name of at most 63 ASCII characters"), msg


def test_name_messages(tmp_path):
    assert error(tmp_path, set_in("name", "../../x")) == (
        "config key 'name': expected a name of at most 63 ASCII characters (letters, digits, _ and -, starting "
        "with a letter and ending with a letter or digit), received '../../x'")
    assert error(tmp_path, set_in("sources", 0, "name", "x" * 300)) == (
        "config key 'sources[0].name': expected a name of at most 63 ASCII characters (letters, digits and _, not "
        "starting with a digit), received '" + "x" * 74 + "...'")


def test_a_kubeflow_name_parses_again():
    raw = raw_default()
    raw["name"] = "bknet-smile"  # kubeflow_runner renames the pipeline so; pods re-parse it
    assert parse(raw, base_dir=ROOT).name == "bknet-smile"


# ------------------------------------------------------------ thresholds
def test_unknown_threshold_metric_fails_on_load(tmp_path):
    assert error(tmp_path, set_in("tasks", 0, "thresholds", {"acc": 0.5})) == (
        "config key 'tasks[0].thresholds.acc': no such gateable metric for a binary task; "
        "valid: accuracy, auc, f1, precision, recall")


def test_within_tolerance_needs_a_tolerance(tmp_path):
    raw = {"name": "n", "tasks": [{"name": "age", "type": "regression", "thresholds": {"within_tolerance": 0.5}}],
           "sources": [{"name": "s", "format": "csv", "path": "/x", "tasks": ["age"]}]}
    with pytest.raises(ConfigError, match=r"^config key 'tasks\[0\]\.thresholds\.within_tolerance': "
                                          r"within_tolerance needs tasks\[0\]\.tolerance$"):
        parse(raw, base_dir=None)
    raw["tasks"][0]["tolerance"] = 5
    assert parse(raw, base_dir=None).tasks[0].thresholds == {"within_tolerance": 0.5}


def test_threshold_metrics_agree_with_the_eval_config():
    pytest.importorskip("tensorflow_model_analysis")
    from components.common import eval_config

    for ttype, metrics in THRESHOLD_METRICS.items():
        gateable = {m.name: m.direction for m in eval_config.METRICS[ttype] if m.direction is not None}
        assert set(metrics) == set(gateable), ttype
        for name, direction in metrics.items():
            assert (gateable[name] == eval_config.HIGHER) == (direction == "higher"), (ttype, name)
        assert PRIMARY_METRIC[ttype] in metrics
    assert eval_config.PRIMARY_METRIC is PRIMARY_METRIC


# ------------------------------------------------------------ one round trip
def test_every_error_names_an_existing_key_for_a_few_deep_cases(tmp_path):
    raw = raw_default()
    raw["sources"][1] = copy.deepcopy(raw["sources"][1])
    del raw["sources"][1]["options"]
    msg = error(tmp_path, raw=raw)  # no options at all: the key to add is `options`
    assert msg.startswith("config key 'sources[1].options': set age_task and/or gender_task"), msg


def test_config_values_survive_json(tmp_path):
    config = load_raw(tmp_path, raw_default())
    assert config_from_json(config.to_json()) == config
    assert dataclasses.asdict(config)["train"]["seed"] == 42
