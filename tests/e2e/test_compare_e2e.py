"""`python -m runners.compare` on tiny generated data: the multitask run and
one single-task run per task through the real DAG, then the comparison.

Two tasks from one source (wiki labels gender and age), so each single-task
variant drops a task from a multi-task source and its format option.
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASKS = ["gender", "age"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # three DAG runs: `make test-all`


def write_config(path, data_dir):
    with open(os.path.join(ROOT, "configs", "default.yaml")) as f:
        raw = yaml.safe_load(f)
    raw["name"] = "tiny_compare"
    raw["tasks"] = [t for t in raw["tasks"] if t["name"] in TASKS]
    # the default's slices name smile too; a slice of a task the config lacks is a config error
    raw["evaluation"]["slices"] = [s for s in raw["evaluation"]["slices"]
                                   if s["task"] in TASKS and s.get("by", "class") in ("class", *TASKS)]
    for task in raw["tasks"]:
        task["thresholds"] = {"accuracy": 0.0}  # tiny data: blessing is not the point here
    (wiki,) = [s for s in raw["sources"] if s["name"] == "wiki"]
    wiki["path"] = str(data_dir / "wiki")
    wiki["sample"]["count"] = 90
    raw["sources"] = [wiki]
    raw["train"].update(steps=20, batch_size=16, eval_steps=2)
    path.write_text(yaml.safe_dump(raw))
    return path


def test_compare_writes_single_vs_multitask_per_task_and_delta_m(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tmp_path / "data")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "runners.compare", "--config", str(config),
                           "--output-dir", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "delta_m (mean relative gain of multitask):" in proc.stdout

    report = json.loads((out / "report" / "report.json").read_text())
    comparison = report["comparison"]
    assert json.loads((out / "report" / "comparison.json").read_text()) == comparison
    assert sorted(comparison["tasks"]) == sorted(TASKS) and comparison["warnings"] == []
    gains = []
    for task in TASKS:
        single = json.loads((out / "compare" / task / "report" / "report.json").read_text())
        assert single["config_name"] == f"tiny_compare_single_{task}"
        assert list(single["tasks"]) == [task]  # a one-task model, evaluated on its own
        row = comparison["tasks"][task]
        assert row["metric"] == "accuracy" and row["lower_is_better"] is False
        assert row["single_task"] == single["tasks"][task]["metrics"]["accuracy"]
        assert row["multitask"] == report["tasks"][task]["metrics"]["accuracy"]
        # the same eval examples in both runs: the split hashes the person, not the task
        assert single["tasks"][task]["eval_examples"] == report["tasks"][task]["eval_examples"] > 0
        assert single["tasks"][task]["eval_examples_in_data"] == report["tasks"][task]["eval_examples_in_data"]
        gains.append((row["multitask"] - row["single_task"]) / row["single_task"])
        assert row["gain"] == pytest.approx(gains[-1])
        # every eval example of the task is matched by id in both runs' per_example.json: a paired bootstrap
        assert row["paired"] is True and row["examples_matched"] == single["tasks"][task]["eval_examples_in_data"]
    assert comparison["delta_m"] == pytest.approx(sum(gains) / len(gains))
    assert len(comparison["delta_m_ci95"]) == 2 and comparison["delta_m_ci95"][0] <= comparison["delta_m_ci95"][1]
    assert "95% interval [" in proc.stdout

    variant = yaml.safe_load((out / "compare" / "age" / "config.yaml").read_text())
    assert [s["tasks"] for s in variant["sources"]] == [["age"]]
    assert "gender_task" not in variant["sources"][0]["options"]
    page = (out / "report" / "index.html").read_text()
    assert page.count('<section id="comparison">') == 1 and page.rstrip().endswith("</html>")
