"""runners/kfp_local.py: the compiled spec read and run as a KFP v2 backend would.

The whole default pipeline through the image is `make kfp-local` (docs/kubeflow.md); here the
spec reading, the wiring, the ExecutorInput, failures, and one real TFX task (the baseline
picker, through TFX's own Kubeflow v2 entrypoint) run in this Python ("process" runtime).
"""
import copy
import json
import os
import sys

import pytest

from runners import kfp_local
from tests.kubeflow.helpers import TASKS

PY = [sys.executable, "-c"]


def test_reads_every_task_of_the_compiled_spec_in_dependency_order(compiled):
    tasks = kfp_local.read_tasks(compiled["job"]["pipelineSpec"])
    assert sorted(tasks) == TASKS
    order = kfp_local.topological_order(tasks)
    assert order[0] in ("DataPrepExampleGen", "ImportSchemaGen")
    pos = {n: i for i, n in enumerate(order)}
    for before, after in [("DataPrepExampleGen", "StatisticsGen"), ("AnomalyGate", "Transform"),
                          ("DataPrepExampleGen", "DriftGate"), ("DriftGate", "Transform"), ("Transform", "Trainer"),
                          ("Trainer", "PushedModelBaseline"),
                          ("PushedModelBaseline", "Evaluator"), ("Evaluator", "Pusher"), ("Pusher", "ReportGen")]:
        assert pos[before] < pos[after], (before, after, order)
    assert kfp_local.topological_order(tasks) == order  # the same order every time
    evaluator = tasks["Evaluator"]
    assert evaluator.inputs["baseline_model"] == ("PushedModelBaseline", "baseline")
    assert evaluator.command[-1] == "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


def test_executor_input_is_what_the_launcher_builds(compiled):
    tasks = kfp_local.read_tasks(compiled["job"]["pipelineSpec"])
    evaluator = tasks["Evaluator"]
    produced = {
        ("Trainer", "model"): [{"name": "r/Trainer/model", "uri": "/root/r/Trainer/model",
                                "metadata": {"tfx_version": "1.16.0"}, "type": {"x": 1}}],
        ("PushedModelBaseline", "baseline"): [{"name": "r/P/baseline", "uri": "/root/r/P/baseline",
                                               "metadata": {"found": 0.0}, "type": {"x": 1}}],
        ("DataPrepExampleGen", "examples"): [{"name": "r/D/examples", "uri": "/root/r/D/examples",
                                              "metadata": {"split_names": "[\"eval_wiki\"]"}, "type": {"x": 1}}],
    }
    ex = kfp_local.executor_input(evaluator, produced, "/root/p/r/Evaluator", "/pods/out.json", "r")
    assert sorted(ex["inputs"]["artifacts"]) == ["baseline_model", "examples", "model"]
    base = ex["inputs"]["artifacts"]["baseline_model"]["artifacts"][0]
    assert base["uri"] == "/root/r/P/baseline" and base["metadata"] == {"found": 0.0}
    assert "instanceSchema" in base["type"]  # the consumer's declared type, from the spec
    # parameters: only parameterValues, the spec's constants, as the open-source driver sends them
    assert sorted(ex["inputs"]) == ["artifacts", "parameterValues"]
    assert ex["inputs"]["parameterValues"] == tasks["Evaluator"].parameters
    assert json.loads(ex["inputs"]["parameterValues"]["example_splits"]) == ["eval_genki4k", "eval_wiki"]
    outs = ex["outputs"]["artifacts"]
    assert {k: v["artifacts"][0]["uri"] for k, v in outs.items()} == {
        "blessing": "/root/p/r/Evaluator/blessing", "evaluation": "/root/p/r/Evaluator/evaluation"}
    assert ex["outputs"]["outputFile"] == "/pods/out.json"
    with pytest.raises(kfp_local.KfpLocalError, match="needs PushedModelBaseline.baseline, which was not produced"):
        kfp_local.executor_input(evaluator, {}, "/r", "/o.json", "r")


def test_refuses_what_an_open_source_backend_refuses(compiled):
    spec = compiled["job"]["pipelineSpec"]
    resolver = copy.deepcopy(spec)
    label = resolver["components"]["PushedModelBaseline"]["executorLabel"]
    resolver["deploymentSpec"]["executors"][label] = {"resolver": {"outputArtifactQueries": {}}}
    with pytest.raises(kfp_local.KfpLocalError, match="'resolver' executor; open-source KFP v2 runs only"):
        kfp_local.read_tasks(resolver)
    old = copy.deepcopy(spec)  # spec 2.0.0's form of a constant
    old["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["run_fn"] = {
        "runtimeValue": {"constantValue": {"stringValue": "components.trainer.run_fn.run_fn"}}}
    with pytest.raises(kfp_local.KfpLocalError, match="parameter 'run_fn' is not a spec 2.1"):
        kfp_local.read_tasks(old)
    with pytest.raises(kfp_local.KfpLocalError, match="only \\{\\{\\$\\}\\} is filled"):
        kfp_local.render_args(["{{$.inputs.parameters['x']}}"], {})


def test_a_cycle_is_refused():
    def task(name, deps):
        return kfp_local.Task(name, [], [], "", {}, {}, {}, {}, set(deps))
    with pytest.raises(kfp_local.KfpLocalError, match="cycle"):
        kfp_local.topological_order({"a": task("a", ["b"]), "b": task("b", ["a"]), "c": task("c", [])})


def mini_job(spec, tasks):
    """A PipelineJob of `tasks`: {name: (container, inputs {key: (producer, out key)}, outputs, params)}."""
    job = {"runtimeConfig": {"gcsOutputDirectory": "gs://kfp-local/root"},
           "pipelineSpec": {"schemaVersion": "2.1.0", "pipelineInfo": {"name": "mini"}, "components": {},
                            "deploymentSpec": {"executors": {}}, "root": {"dag": {"tasks": {}}}}}
    model_type = {"instanceSchema": "title: tfx.Model\ntype: object\n"}
    for name, (container, inputs, outputs, params) in tasks.items():
        ps = job["pipelineSpec"]
        ps["deploymentSpec"]["executors"][f"{name}_executor"] = {"container": container}
        ps["components"][name] = {
            "executorLabel": f"{name}_executor",
            "inputDefinitions": {"artifacts": {k: {"artifactType": model_type} for k in inputs}},
            "outputDefinitions": {"artifacts": {k: {"artifactType": model_type} for k in outputs}}}
        ps["root"]["dag"]["tasks"][name] = {
            "componentRef": {"name": name}, "dependentTasks": sorted({p for p, _ in inputs.values()}),
            "inputs": {"artifacts": {k: {"taskOutputArtifact": {"producerTask": p, "outputArtifactKey": o}}
                                     for k, (p, o) in inputs.items()},
                       "parameters": {k: {"runtimeValue": {"constant": v}} for k, v in params.items()}}}
    return job


# A stand-in Trainer: writes a SavedModel-shaped folder at its provisioned output and its ExecutorOutput.
FAKE_TRAINER = """
import json, os, sys
ex = json.loads(sys.argv[1])
art = ex["outputs"]["artifacts"]["model"]["artifacts"][0]
os.makedirs(os.path.join(art["uri"], "Format-Serving"), exist_ok=True)
os.makedirs(os.path.dirname(ex["outputs"]["outputFile"]), exist_ok=True)
json.dump({"artifacts": {"model": {"artifacts": [dict(art, metadata={"tfx_version": "1.16.0"})]}}},
          open(ex["outputs"]["outputFile"], "w"))
"""


def test_a_real_tfx_task_runs_from_the_spec_through_the_tfx_entrypoint(compiled, tmp_path, capsys):
    """PushedModelBaseline's compiled container (TFX's kubeflow_v2_run_executor and our executor),
    fed only what the launcher feeds it, picks the pushed model and reports it downstream."""
    spec = compiled["job"]["pipelineSpec"]
    picker = spec["deploymentSpec"]["executors"][spec["components"]["PushedModelBaseline"]["executorLabel"]]
    serving = tmp_path / "serving"
    (serving / "1700000000" / "variables").mkdir(parents=True)
    (serving / "1700000000" / "saved_model.pb").write_bytes(b"graph")
    job = mini_job(spec, {
        "Trainer": ({"image": "x", "command": PY + [FAKE_TRAINER], "args": ["{{$}}"]}, {}, ["model"], {}),
        "PushedModelBaseline": (picker["container"], {"candidate": ("Trainer", "model")}, ["baseline"],
                                {"push_destination": str(serving)}),
    })
    out = tmp_path / "out"
    done = kfp_local.execute(job, str(out), "process", "run-1", [])
    assert done is not None, capsys.readouterr()
    run_id, times = done
    assert run_id == "run-1" and list(times) == ["Trainer", "PushedModelBaseline"]
    task_root = out / "root" / "mini" / "run-1" / "PushedModelBaseline"
    assert (task_root / "baseline" / "Format-Serving" / "saved_model.pb").read_bytes() == b"graph"
    written = json.loads((out / "pods" / "run-1" / "PushedModelBaseline" / "kfp_outputs" /
                          "output_metadata.json").read_text())
    meta = written["artifacts"]["baseline"]["artifacts"][0]["metadata"]
    assert meta["pushed_version"] == "1700000000" and meta["found"] == 1
    assert "baseline: the pushed model 1700000000" in capsys.readouterr().out


def test_a_failed_task_names_itself_its_exit_code_and_its_log(compiled, tmp_path, capsys):
    job = mini_job(compiled["job"]["pipelineSpec"], {
        "Trainer": ({"image": "x", "command": PY + [FAKE_TRAINER], "args": ["{{$}}"]}, {}, ["model"], {}),
        "Broken": ({"image": "x", "command": PY + ["print('boom'); raise SystemExit(3)"], "args": []},
                   {"model": ("Trainer", "model")}, [], {}),
        "After": ({"image": "x", "command": PY + ["raise SystemExit(0)"], "args": []},
                  {"model": ("Broken", "model")}, [], {}),
    })
    assert kfp_local.execute(job, str(tmp_path), "process", "run-2", []) is None
    err = capsys.readouterr().err
    log = tmp_path / "logs" / "run-2" / "Broken.log"
    assert err == f"task Broken failed: exit code 3; log: {log}\n"
    assert log.read_text().strip() == "boom"
    assert not (tmp_path / "logs" / "run-2" / "After.log").exists()  # nothing after a failure runs


def test_container_command_mounts_the_output_and_data_at_their_own_paths():
    cmd = kfp_local.container_command("podman", "img:1", ["python", "-m", "x"], [("/o", "rw"), ("/d", "ro")])
    assert cmd[:3] == ["podman", "--runtime", os.environ.get("PODMAN_RUNTIME", "runc")]
    assert "--network=none" in cmd and cmd[-4:] == ["img:1", "python", "-m", "x"]
    assert cmd[cmd.index("/o:/o:rw") - 1] == "-v" and cmd[cmd.index("/d:/d:ro") - 1] == "-v"
    assert kfp_local.container_command("process", "img:1", ["a"], [("/o", "rw")]) == ["a"]


def test_figure_comparison_is_exact_and_names_what_differs():
    a = {"tasks": {"smile": {"metrics": {"accuracy": 0.9, "auc": 0.95}, "intervals": {"accuracy": [0.8, 1.0]}}}}
    b = json.loads(json.dumps(a))
    assert kfp_local.task_figure_differences(a, b) == (4, [])
    b["tasks"]["smile"]["metrics"]["auc"] = 0.9500000001
    b["tasks"]["smile"]["extra"] = 1
    count, diffs = kfp_local.task_figure_differences(a, b)
    assert diffs == ["tasks.smile.extra: only in the expected report",
                     "tasks.smile.metrics.auc: 0.95 here, 0.9500000001 expected"]
