"""kubeflow_runner.py submits to KFP: a stand-in of the KFP v2beta1 REST API on
127.0.0.1 records what kfp.Client sends; bad input exits 2 with one line.
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

import kubeflow_runner
from tests.kubeflow.helpers import (
    IMAGE,
    KFP_NAME,
    PIPELINE_ROOT,
    ROOT,
    TASKS,
    Guards,
    cluster_config,
    params,
    submit_args,
)


def test_submit_creates_experiment_and_run_with_spec_and_root(compiled, kfp_stub, tmp_path, capsys):
    host, requests = kfp_stub
    rc = kubeflow_runner.main(submit_args(tmp_path, host, "--experiment", "multitask-exp",
                                          "--run-name", "nightly 1"))
    assert rc == 0, capsys.readouterr().err
    assert "submitted run run-42" in capsys.readouterr().out
    assert [(m, p) for m, p, _, _ in requests] == [
        ("GET", "/apis/v2beta1/healthz"), ("GET", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/experiments"), ("POST", "/apis/v2beta1/runs")]
    flt = json.loads(requests[1][2]["filter"][0])
    assert flt["predicates"][0]["stringValue"] == "multitask-exp"
    assert requests[2][3]["display_name"] == "multitask-exp"
    run = requests[3][3]
    assert run["experiment_id"] == "exp-7" and run["display_name"] == "nightly 1"
    assert run["runtime_config"] == {"pipeline_root": PIPELINE_ROOT, "parameters": {}}
    spec = run["pipeline_spec"]
    assert spec["pipelineInfo"]["name"] == KFP_NAME
    assert sorted(spec["root"]["dag"]["tasks"]) == TASKS
    assert {t["cachingOptions"].get("enableCache") for t in spec["root"]["dag"]["tasks"].values()} == {True}
    # The submitted spec is the compiled one (same DAG and parameters as the module fixture).
    assert spec["components"] == compiled["job"]["pipelineSpec"]["components"]
    assert params({"pipelineSpec": spec}, "Trainer") == params(compiled["job"], "Trainer")


def test_submit_with_namespace_and_no_cache(kfp_stub, tmp_path, capsys):
    host, requests = kfp_stub
    rc = kubeflow_runner.main(submit_args(tmp_path, host, "--namespace", "team-a", "--no-cache"))
    assert rc == 0, capsys.readouterr().err
    # A namespace given: no healthz probe for multi-user mode; the namespace goes along.
    assert [(m, p) for m, p, _, _ in requests] == [
        ("GET", "/apis/v2beta1/experiments"), ("POST", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/runs")]
    assert requests[0][2]["namespace"] == ["team-a"]
    assert requests[1][3] == {"display_name": "multitask", "namespace": "team-a"}
    run = requests[2][3]
    assert run["display_name"].startswith(KFP_NAME + " ")
    tasks = run["pipeline_spec"]["root"]["dag"]["tasks"].values()
    assert {t.get("cachingOptions", {}).get("enableCache", False) for t in tasks} == {False}


def test_dry_run_prints_the_submission_and_contacts_nothing(kfp_stub, tmp_path, monkeypatch, capsys):
    host, requests = kfp_stub
    guards = Guards(monkeypatch, allow_loopback=False)
    rc = kubeflow_runner.main(submit_args(tmp_path, host, "--dry-run", "--experiment", "e1",
                                          "--run-name", "r1"))
    out = capsys.readouterr().out
    assert rc == 0
    assert requests == [] and guards.connections == [] and guards.gs_calls == []
    for line in (f"host: {host}", "experiment: e1", "run name: r1", f"pipeline root: {PIPELINE_ROOT}",
                 f"image: {IMAGE}", "components: " + ", ".join(TASKS)):
        assert f"  {line}\n" in out


# --- refusals ---------------------------------------------------------------

def test_bad_config_exits_2_with_one_line(tmp_path):
    bad = cluster_config(tmp_path, train={"steps": 0})
    proc = subprocess.run([sys.executable, "kubeflow_runner.py", "--config", bad, "--pipeline-root",
                           PIPELINE_ROOT, "--compile-only"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "error: config key 'train.steps': must be >= 1, received 0\n"


def test_missing_or_stale_schema_exits_2(tmp_path, capsys):
    base = ["--pipeline-root", PIPELINE_ROOT, "--compile-only", "--output", str(tmp_path / "p.json")]
    assert kubeflow_runner.main(["--config", cluster_config(tmp_path, name="other_name")] + base) == 2
    err = capsys.readouterr().err
    assert "schemas/other_name.pbtxt is missing" in err
    assert "python -m schemas --config CONFIG --output schemas/other_name.pbtxt" in err
    with open(os.path.join(ROOT, "configs", "default.yaml")) as f:
        raw = yaml.safe_load(f)
    # Same name, without smile and genki4k: another contract under the checked-in file's name.
    stale = cluster_config(tmp_path, tasks=raw["tasks"][1:],
                           sources=[{**raw["sources"][1], "path": "gs://bucket/data/wiki"}],
                           evaluation={"slices": [{"task": "age", "by": "gender"}]})  # no smile slice
    assert kubeflow_runner.main(["--config", stale] + base) == 2
    assert "schemas/bknet_smile_gender_age.pbtxt does not match config" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_local_paths_refused_for_a_submission_unless_allowed(tmp_path, capsys):
    default = os.path.join(ROOT, "configs", "default.yaml")
    base = ["--config", default, "--pipeline-root", PIPELINE_ROOT, "--output", str(tmp_path / "p.json")]
    assert kubeflow_runner.main(base + ["--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"sources[genki4k].path: {os.path.join(ROOT, 'data', 'sample', 'genki4k')}" in err
    assert f"sources[wiki].path: {os.path.join(ROOT, 'data', 'sample', 'wiki')}" in err
    assert not (tmp_path / "p.json").exists()
    # PVC and in-image paths are cluster paths for the data.
    assert kubeflow_runner.is_cluster_path("/mnt/pipeline") and kubeflow_runner.is_cluster_path("/pipeline/data")
    assert not kubeflow_runner.is_cluster_path("/mntx/data")
    # --allow-local-paths submits (here: a dry run), warning once per path; compiling alone only warns.
    assert kubeflow_runner.main(base + ["--dry-run", "--allow-local-paths"]) == 0
    assert capsys.readouterr().err.count("WARNING: local path") == 2
    assert kubeflow_runner.main(base + ["--compile-only"]) == 0
    assert capsys.readouterr().err.count("WARNING: local path") == 2


@pytest.mark.parametrize("root, says", [
    ("/mnt/pipeline", "is not an object store URL"),  # the launcher maps no volume path
    ("/tmp/root", "is not an object store URL"),
    ("gs://", "is not an object store URL"),
    ("s3://bucket/root", "tensorflow-io"),  # TF 2.16 reads s3:// only with tensorflow-io, not in the lock
    ("minio://bucket/root", "no minio:// file system"),
])
def test_pipeline_root_must_be_an_object_store_the_tasks_can_write(tmp_path, capsys, root, says):
    argv = ["--config", cluster_config(tmp_path), "--pipeline-root", root, "--compile-only",
            "--output", str(tmp_path / "p.json")]
    assert kubeflow_runner.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: --pipeline-root {root}") and says in err
    assert not (tmp_path / "p.json").exists()
    # --allow-local-paths is about data paths: it does not let a root through
    assert kubeflow_runner.main(argv + ["--allow-local-paths"]) == 2


def test_submission_needs_a_host(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    argv = ["--config", cluster_config(tmp_path), "--pipeline-root", PIPELINE_ROOT]
    assert kubeflow_runner.main(argv) == 2
    assert "give --host URL" in capsys.readouterr().err


def test_kfp_pipeline_name():
    assert kubeflow_runner.kfp_pipeline_name("bknet_smile_gender_age") == KFP_NAME
    assert kubeflow_runner.kfp_pipeline_name("Multi_Task2") == "multi-task2"
    for bad in ("_lead", "has space", "x" * 64):
        with pytest.raises(kubeflow_runner.RunnerError):
            kubeflow_runner.kfp_pipeline_name(bad)
