"""`evaluation.slices` across tasks and `evaluation.min_slice_size`: checked once, on load."""
import copy
import os
import subprocess
import sys

import pytest
import yaml

from config import ConfigError, SliceConfig, load, parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, "configs", "default.yaml")


def _raw(**evaluation):
    with open(DEFAULT) as f:
        raw = yaml.safe_load(f)
    raw["evaluation"] = evaluation
    raw["sources"][0]["path"] = raw["sources"][1]["path"] = "/nonexistent"
    return raw


def test_a_task_by_another_task_its_source_labels():
    cfg = parse(_raw(slices=[{"task": "age", "by": "gender"}, {"task": "gender", "by": "age"}, {"task": "smile"}],
                     min_slice_size=10), base_dir=None)
    assert cfg.evaluation.slices == (SliceConfig("age", "gender"), SliceConfig("gender", "age"), SliceConfig("smile"))
    assert cfg.evaluation.min_slice_size == 10
    assert parse(_raw(), base_dir=None).evaluation.min_slice_size == 30


@pytest.mark.parametrize("evaluation, message", [
    # genki4k labels smile alone, wiki gender and age: no example of smile knows a gender
    ({"slices": [{"task": "smile", "by": "gender"}]},
     "config key 'evaluation.slices[0].by': received task 'gender': no source labels both 'smile' and 'gender', "
     "so no smile example knows its gender class; valid: class"),
    ({"slices": [{"task": "age", "by": "age"}]},
     "config key 'evaluation.slices[0].by': received 'age', the sliced task itself (use class); valid: class, gender"),
    ({"slices": [{"task": "age", "by": "race"}]},
     "config key 'evaluation.slices[0].by': received 'race'; valid: class, gender"),
    ({"min_slice_size": 0}, "config key 'evaluation.min_slice_size': must be >= 1, received 0"),
    ({"min_slice_size": 2.5}, "config key 'evaluation.min_slice_size': expected an integer, received 2.5"),
])
def test_errors_say_what_was_received_and_what_is_valid(evaluation, message):
    with pytest.raises(ConfigError) as err:
        parse(_raw(**evaluation), base_dir=None)
    assert str(err.value) == message


def test_by_a_regression_task_is_refused():
    raw = _raw(slices=[{"task": "gender", "by": "years"}])
    raw["tasks"].append({"name": "years", "type": "regression"})
    raw["sources"][1]["tasks"].append("years")
    with pytest.raises(ConfigError, match=r"received task 'years', a regression task: only binary and multiclass "
                                          r"tasks have classes to slice by; valid: class, age"):
        parse(raw, base_dir=None)


def test_a_regression_task_may_be_sliced_by_another_task():
    cfg = load(os.path.join(ROOT, "configs", "002_utkface_multibranch.yaml"))
    assert SliceConfig("age", "gender") in cfg.evaluation.slices  # age (regression) MAE per gender


def test_exit_2_and_one_line(tmp_path):
    raw = copy.deepcopy(_raw(slices=[{"task": "smile", "by": "age"}]))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    res = subprocess.run([sys.executable, "-m", "schemas", "--config", str(bad)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert (res.returncode, res.stderr.strip().splitlines()) == (2, [
        "error: config key 'evaluation.slices[0].by': received task 'age': no source labels both 'smile' and "
        "'age', so no smile example knows its age class; valid: class"])
