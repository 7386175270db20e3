"""The whole DAG on tiny generated data, through run_local.py as a user runs it.

One tiny run (module fixture) is checked for its report and pushed model,
then rerun to check caching, determinism and recovery from a killed run.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.e2e.helpers import ROOT, TASKS, figures, mlmd_executions, states, write_config

pytestmark = pytest.mark.e2e


def run_local(config, out, **popen):
    cmd = [sys.executable, "run_local.py", "--config", str(config), "--output-dir", str(out)]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def eval_counts(paths):
    """Per task_index count of eval examples, read back from the TFRecords."""
    counts = {}
    for path in paths:
        for rec in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            ex = tf.train.Example.FromString(rec.numpy())
            t = ex.features.feature["task_index"].int64_list.value[0]
            counts[t] = counts.get(t, 0) + 1
    return counts


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    config = write_config(tmp / "tiny.yaml", tmp / "data")
    out = tmp / "out"
    proc = run_local(config, out)
    return tmp, config, out, proc


def test_run_writes_report_and_pushes_a_serving_model(first_run):
    tmp, _, out, proc = first_run
    assert str(out / "report" / "index.html") in proc.stdout

    report = json.loads((out / "report" / "report.json").read_text())
    assert report["blessed"] is True
    assert os.path.isdir(report["model_dir"])
    assert report["eval_data"] and all(p.endswith(".gz") for p in report["eval_data"])
    counted = eval_counts(report["eval_data"])
    for i, name in enumerate(TASKS):
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
    image = open(sorted(glob.glob(str(tmp / "data" / "genki4k" / "files" / "*.jpg")))[0], "rb").read()
    preds = model.signatures["serving_image"](image_bytes=tf.constant([image]))
    assert sorted(preds) == ["age", "gender", "smile"]
    np.testing.assert_allclose(preds["age"].numpy().sum(axis=1), [1.0], rtol=1e-5)

    # ...and ReportGen recorded the push in the serving history (docs/versions.md)
    from serving.versions import list_versions

    (row,) = list_versions(str(out / "serving_model"))
    assert row["version"] == os.path.basename(os.path.dirname(pushed[0])) and row["serving"]
    assert (row["source"], row["blessed"], row["blessed_against"]) == ("push", True, None)  # nothing served before
    assert row["config"]["name"] == report["config_name"]
    assert row["metrics"] == {t: {"metric": e["primary_metric"], "value": e["metrics"].get(e["primary_metric"])}
                              for t, e in report["tasks"].items()}


def test_killed_run_recovers_with_the_same_figures(first_run, tmp_path):
    # Runs before test_reruns_reuse_what_did_not_change, which edits the config and data.
    # The run starts from an empty output dir: its conversion and (resumed) training are
    # fresh, so equal figures also show that two runs with the same seed agree.
    _, config, first_out, _ = first_run
    out = tmp_path / "killed"
    proc = run_local(config, out, start_new_session=True)
    trainer_dir = out / "tfx" / "tiny_e2e" / "Trainer"
    deadline = time.time() + 600
    while not trainer_dir.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert proc.poll() is None, "the run ended before the Trainer started"
    time.sleep(3)  # inside the Trainer
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "report" / "report.json").exists()

    killed_folders = {k: sorted(os.listdir(trainer_dir / k)) for k in ("model", "model_run")
                      if (trainer_dir / k).exists()}
    rerun = run_local(config, out)
    ran = states(out)
    assert ran["DataPrepExampleGen"] == "CACHED", ran  # finished before the kill: reused
    assert ran["Trainer"] == "COMPLETE", ran
    assert figures(out) == figures(first_out)
    # The killed Trainer's execution is no longer RUNNING in MLMD and its partial folders are gone.
    assert "cleaned up Trainer (execution " in rerun.stdout, rerun.stdout
    left = [e for e in mlmd_executions(out / "tfx" / "tiny_e2e" / "metadata.sqlite")
            if e.last_known_state in (1, 2)]  # NEW, RUNNING
    assert left == []
    for key, killed in killed_folders.items():
        now = sorted(os.listdir(trainer_dir / key))
        assert len(now) == 1 and not set(now) & set(killed), (key, killed, now)
    assert not list((trainer_dir / ".system" / "stateful_working_dir").glob("*"))


def test_reruns_reuse_what_did_not_change(first_run):
    tmp, config, out, _ = first_run
    before = figures(out)

    run_local(config, out)  # nothing changed
    ran = {c: s for c, s in states(out).items() if c != "Resolver"}
    assert set(ran.values()) == {"CACHED"}, ran
    assert figures(out) == before

    write_config(config, tmp / "data", steps=21)  # a training setting only
    run_local(config, out)
    ran = states(out)
    for component in ("DataPrepExampleGen", "StatisticsGen", "Transform"):
        assert ran[component] == "CACHED", ran
    for component in ("Trainer", "Evaluator", "ReportGen"):
        assert ran[component] == "COMPLETE", ran

    genki = sorted(glob.glob(str(tmp / "data" / "genki4k" / "files" / "*.jpg")))
    os.remove(genki[-1])  # a source changed: one image fewer
    run_local(config, out)
    ran = states(out)
    assert ran["DataPrepExampleGen"] == "COMPLETE", ran
    assert ran["Transform"] == "COMPLETE", ran
