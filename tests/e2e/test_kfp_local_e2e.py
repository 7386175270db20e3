"""The compiled Kubeflow spec run whole, task by task, through TFX's Kubeflow v2 entrypoint.

`python -m runners.kfp_local --runtime process` on tiny data: every task of the spec, fed only
what a KFP v2 launcher feeds it, in this Python instead of the image (`make kfp-local` is the
same run in the image, docs/kubeflow.md). Its figures equal run_local.py's on the same config
and data. A second run on the same output dir (`slow`: make test-all) takes the first run's pushed
model as its baseline.
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.e2e.helpers import ROOT, TASKS, write_config

# `slow` (make test-all): ~7 min on 2 cores, a run_local.py and a whole-spec run; make test keeps
# tests/kubeflow/test_kfp_local.py (a real TFX task from the spec through the entrypoint).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def kfp_local(config, out, run_id, *extra):
    cmd = [sys.executable, "-m", "runners.kfp_local", "--runtime", "process", "--config", str(config),
           "--output-dir", str(out), "--run-id", run_id, *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """run_local.py, then the compiled spec on the same config and data, checked against its report."""
    tmp = tmp_path_factory.mktemp("kfp")
    config = write_config(tmp / "tiny.yaml", tmp / "data")
    raw = yaml.safe_load(config.read_text())
    raw["name"] = "bknet_smile_gender_age"  # the contract schema checked into schemas/ (same tasks and sources)
    config.write_text(yaml.safe_dump(raw))
    local = tmp / "local"
    proc = subprocess.run([sys.executable, "run_local.py", "--config", str(config), "--output-dir", str(local)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp / "out"
    first = kfp_local(config, out, "run-1", "--expect-figures-of", str(local / "report" / "report.json"))
    report1 = json.loads((out / "report" / "report.json").read_text())
    return tmp, config, out, first, report1


def test_every_task_runs_from_the_spec_and_the_model_is_pushed(first_run):
    _, _, out, first, report1 = first_run
    spec = json.loads((out / "pipeline.json").read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    timed = json.loads((out / "last_kfp_run.json").read_text())["tasks"]
    assert sorted(t["task"] for t in timed) == sorted(tasks)
    assert "baseline: none pushed yet" in first.stdout
    assert report1["blessed"] is True
    assert report1["config_name"] == "bknet-smile-gender-age"  # the KFP name the spec carries
    # every task's artifacts under the stand-in root, as the launcher provisions them
    for name in tasks:
        assert (out / "root" / "bknet-smile-gender-age" / "run-1" / name / "executor_input.json").is_file()
    assert len(os.listdir(out / "serving_model")) == 1


def test_the_figures_equal_run_local(first_run):
    """--expect-figures-of compared every per-task number with run_local.py's report, exactly."""
    _, _, _, first, _ = first_run
    line = [ln for ln in first.stdout.splitlines() if ln.startswith("per-task figures equal those of")]
    assert len(line) == 1 and line[0].endswith("numbers, exactly"), first.stdout[-2000:]
    assert int(line[0].split(": ")[1].split()[0]) > 100


@pytest.mark.slow
def test_the_second_run_compares_with_the_first_runs_pushed_model(first_run):
    _, config, out, _, report1 = first_run
    second = kfp_local(config, out, "run-2")
    first_version = sorted(os.listdir(out / "serving_model"))[0]
    assert f"baseline: the pushed model {first_version}" in second.stdout
    written = json.loads((out / "pods" / "run-2" / "PushedModelBaseline" / "kfp_outputs" /
                          "output_metadata.json").read_text())
    assert written["artifacts"]["baseline"]["artifacts"][0]["metadata"]["pushed_version"] == first_version
    report2 = json.loads((out / "report" / "report.json").read_text())
    assert report2["validation"]["rubber_stamp"] is False  # a baseline was compared
    # the Evaluator evaluated the baseline too: the report shows its figures beside the candidate's
    for task in TASKS:
        assert "baseline_metrics" not in report1["tasks"][task]
        assert report2["tasks"][task]["baseline_metrics"]["accuracy"] == report1["tasks"][task]["metrics"]["accuracy"]
    # same data, same seeds: the second model scores as the first
    assert {t: report2["tasks"][t]["metrics"] for t in TASKS} == {t: report1["tasks"][t]["metrics"] for t in TASKS}
    assert len(os.listdir(out / "serving_model")) == 2  # both blessed, both pushed
