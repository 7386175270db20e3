"""Config loading: valid configs parse; each wrong key fails naming the key."""
import copy
import os
import subprocess
import sys

import pytest
import yaml

from config import ConfigError, config_from_json, load, parse, split_names

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, "configs", "default.yaml")


def raw_default():
    with open(DEFAULT) as f:
        return yaml.safe_load(f)


def test_default_config_loads_with_expected_shape():
    cfg = load(DEFAULT)
    assert cfg.task_names == ("smile", "gender", "age")
    # widest task: age with 5 groups; smile and gender use 2 slots each
    assert cfg.label_width == 5
    assert [t.width for t in cfg.tasks] == [2, 2, 5]
    assert cfg.task_index("age") == 2
    assert cfg.image.size == (48, 48) and cfg.image.channels == 1
    # relative paths are resolved against the config file's directory
    assert cfg.sources[0].path == os.path.join(ROOT, "data", "sample", "genki4k")
    assert split_names(cfg, "train") == ["train_genki4k", "train_wiki"]


def test_json_round_trip_is_identity():
    cfg = load(DEFAULT)
    assert config_from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("mutate, key, hint", [
    (lambda r: r["tasks"][0].update(type="multi"), "tasks[0].type", "valid: multiclass, binary"),
    (lambda r: r["tasks"][1].update(classes=["a", "b", "c"]), "tasks[1].classes", "exactly 2"),
    (lambda r: r["tasks"].append(dict(r["tasks"][0])), "tasks", "duplicate task names: smile"),
    (lambda r: r["sources"][0].update(format="zip"), "sources[0].format", "valid: "),
    (lambda r: r["sources"][0].update(tasks=["smiles"]), "sources[0].tasks", "unknown task 'smiles'"),
    (lambda r: r["image"].update(channels=2), "image.channels", "valid: 1, 3"),
    (lambda r: r["image"].update(size=[48]), "image.size", "[height, width]"),
    (lambda r: r["splits"].update(eval=1.5), "splits.eval", "<= 0.9"),
    (lambda r: r["train"].update(steps=0), "train.steps", ">= 1"),
    (lambda r: r["train"].update(batch_size="32"), "train.batch_size", "an integer"),
    (lambda r: r["train"].update(stepz=3), "train.stepz", "unknown key"),
    (lambda r: r["model"].update(name="resnet9000"), "model.name", "valid: backbone, bknet, multibranch"),
    (lambda r: r["train"]["sampling"].update(type="random"), "train.sampling.type", "valid: natural"),
    (lambda r: r.pop("tasks"), "tasks", "required key is missing"),
    (lambda r: r.update(tfrecords={"gzip_level": 10}), "tfrecords.gzip_level", 'valid: "auto" or an integer 0-9'),
    (lambda r: r.update(tfrecords={"gzip_level": "fast"}), "tfrecords.gzip_level", "received 'fast'"),
    (lambda r: r.update(tfrecords={"level": 1}), "tfrecords.level", "unknown key"),
])
def test_bad_key_is_named(mutate, key, hint):
    raw = copy.deepcopy(raw_default())
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse(raw, base_dir=None)
    assert f"config key '{key}'" in str(err.value)
    assert hint in str(err.value)


def test_gzip_level_auto_deflates_only_sources_labelling_several_tasks():
    cfg = load(DEFAULT)  # genki4k labels smile; wiki labels gender and age (each image twice)
    assert cfg.tfrecords.gzip_level == "auto"
    assert [cfg.tfrecords.level_for(s) for s in cfg.sources] == [0, 6]
    raw = copy.deepcopy(raw_default())
    raw["tfrecords"] = {"gzip_level": 1}
    cfg = parse(raw, base_dir=None)
    assert [cfg.tfrecords.level_for(s) for s in cfg.sources] == [1, 1]
    assert config_from_json(cfg.to_json()) == cfg


def test_task_without_source_is_rejected():
    raw = raw_default()
    raw["tasks"].append({"name": "race", "type": "multiclass", "classes": ["a", "b", "c"]})
    with pytest.raises(ConfigError, match="race have no source"):
        parse(raw, base_dir=None)


def test_run_local_exits_2_on_bad_config_before_heavy_work(tmp_path):
    raw = raw_default()
    raw["tasks"][0]["type"] = "multi"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "run_local.py"), "--config", str(bad),
                           "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "config key 'tasks[0].type'" in proc.stderr
    assert not (tmp_path / "out").exists()
