"""The whole DAG on tiny generated data, through run_local.py as a user runs it."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_config(tmp_path, steps=20):
    with open(os.path.join(ROOT, "configs", "default.yaml")) as f:
        raw = yaml.safe_load(f)
    raw["name"] = "tiny_e2e"
    counts = {"genki4k": 60, "wiki": 90}
    for src in raw["sources"]:
        src["path"] = str(tmp_path / "data" / src["name"])
        src["sample"]["count"] = counts[src["name"]]
    raw["train"].update(steps=steps, batch_size=16, eval_steps=2)
    for task in raw["tasks"]:
        task["thresholds"] = {"accuracy": 0.0}  # tiny data: blessing is not the point here
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def eval_counts(paths):
    """Per task_index count of eval examples, read back from the TFRecords."""
    counts = {}
    for path in paths:
        for rec in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            ex = tf.train.Example.FromString(rec.numpy())
            t = ex.features.feature["task_index"].int64_list.value[0]
            counts[t] = counts.get(t, 0) + 1
    return counts


@pytest.mark.e2e
def test_run_local_runs_whole_dag_and_writes_report(tmp_path):
    config = tiny_config(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "run_local.py", "--config", str(config), "--output-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert str(out / "report" / "index.html") in proc.stdout

    report = json.loads((out / "report" / "report.json").read_text())
    assert report["blessed"] is True
    assert os.path.isdir(report["model_dir"])
    assert report["eval_data"] and all(p.endswith(".gz") for p in report["eval_data"])
    counted = eval_counts(report["eval_data"])
    for i, name in enumerate(["smile", "gender", "age"]):
        task = report["tasks"][name]
        # TFMA's per-task example count is that task's own eval examples only
        assert task["eval_examples"] == counted[i]
        assert 0.0 <= task["metrics"]["accuracy"] <= 1.0
        assert 0.0 < task["chance"] <= 1.0
    assert "smile" in (out / "report" / "index.html").read_text()

    # The Pusher pushed the blessed model: it serves every task from image bytes.
    pushed = glob.glob(str(out / "serving_model" / "*" / "saved_model.pb"))
    assert len(pushed) == 1
    model = tf.saved_model.load(os.path.dirname(pushed[0]))
    image = open(sorted(glob.glob(str(tmp_path / "data" / "genki4k" / "files" / "*.jpg")))[0], "rb").read()
    preds = model.signatures["serving_image"](image_bytes=tf.constant([image]))
    assert sorted(preds) == ["age", "gender", "smile"]
    np.testing.assert_allclose(preds["age"].numpy().sum(axis=1), [1.0], rtol=1e-5)
