"""Every entry point: a bad config is exit status 2 and one stderr line `error: config key '...`,
before any heavy work (no traceback, nothing written to the output dir)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ENTRY_POINTS = {
    "run_local": lambda cfg, out: [sys.executable, "run_local.py", "--config", cfg, "--output-dir", out],
    "compare": lambda cfg, out: [sys.executable, "-m", "runners.compare", "--config", cfg, "--output-dir", out],
    "data_prep": lambda cfg, out: [sys.executable, "-m", "data_prep", "--config", cfg, "--output-dir", out],
    "kubeflow": lambda cfg, out: [sys.executable, "kubeflow_runner.py", "--config", cfg, "--pipeline-root",
                                  "gs://bucket/tfx", "--compile-only", "--output", os.path.join(out, "p.json")],
    "schemas": lambda cfg, out: [sys.executable, "-m", "schemas", "--config", cfg],  # the schema on stdout
}
# (mutation of the default config, the stderr line); each used to end in a traceback or exit 1
BAD = {
    "threshold": (lambda r: r["tasks"][0].update(thresholds={"acc": 0.5}),
                  "error: config key 'tasks[0].thresholds.acc': no such gateable metric for a binary task; "
                  "valid: accuracy, auc, f1, precision, recall"),
    "option": (lambda r: r["sources"][1]["options"].update(age_bins=[20, 30]),
               "error: config key 'sources[1].options.age_bins': 2 edges make 3 age groups but task 'age' has 5 "
               "classes ['0-19', '20-29', '30-39', '40-54', '55+']; give 4 edges (source 'wiki', format imdb_wiki)"),
}


def _run(tmp_path, entry, bad):
    with open(os.path.join(ROOT, "configs", "default.yaml")) as f:
        raw = yaml.safe_load(f)
    BAD[bad][0](raw)
    (tmp_path / "configs").mkdir()
    cfg = tmp_path / "configs" / "bad.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    res = subprocess.run(ENTRY_POINTS[entry](str(cfg), str(out)), cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    return res, out


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_bad_format_option_is_exit_2_and_one_line(tmp_path, entry):
    res, out = _run(tmp_path, entry, "option")
    if entry == "schemas":  # the schema is the tasks' and image's: format options are not its concern
        assert res.returncode == 0, res.stderr
        return
    assert (res.returncode, res.stderr.strip().splitlines()) == (2, [BAD["option"][1]])
    assert not out.exists()


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_an_unknown_threshold_metric_is_exit_2_and_one_line(tmp_path, entry):
    res, out = _run(tmp_path, entry, "threshold")
    assert (res.returncode, res.stderr.strip().splitlines()) == (2, [BAD["threshold"][1]])
    assert not out.exists()
