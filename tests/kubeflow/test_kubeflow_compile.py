"""kubeflow_runner.py compiles the same DAG as run_local.py for KFP v2.

Compiling runs in this process under guards that record any gs:// file access
and any network connection (the `compiled` fixture in conftest.py).
"""
import dataclasses
import json
import re

import yaml
from google.protobuf import json_format

from config import load, split_names
from tests.kubeflow.helpers import (
    DATAFLOW_ARGS,
    IMAGE,
    KFP_NAME,
    PIPELINE_ROOT,
    ROOT,
    TASKS,
    context_files,
    local_dag,
    module_file,
    params,
)


def test_compile_touches_no_remote_storage_and_no_network(compiled):
    assert compiled["probe"][0]  # the guard saw the probe, so an access during compile would show
    assert compiled["guards"].gs_calls == []
    assert compiled["guards"].connections == []


def test_output_is_a_kfp_pipeline_spec_and_yaml_package(compiled):
    from kfp.pipeline_spec import pipeline_spec_pb2

    job = compiled["job"]
    assert sorted(job) == ["displayName", "labels", "pipelineSpec", "runtimeConfig"]
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == KFP_NAME
    assert spec.schema_version == "2.1.0"
    assert job["runtimeConfig"]["gcsOutputDirectory"] == PIPELINE_ROOT  # trailing '/' dropped
    # The .yaml beside it is what kfp.Client submits: the same spec.
    yaml_path = compiled["json_path"][:-5] + ".yaml"
    with open(yaml_path) as f:
        assert json_format.ParseDict(yaml.safe_load(f), pipeline_spec_pb2.PipelineSpec()) == spec


def test_spec_holds_every_component_of_the_local_dag(compiled):
    from pipeline.pipeline import RunOptions

    config = load(compiled["config_path"])
    local_ids = sorted(c.id for c in local_dag(config, RunOptions()).components)
    tasks = sorted(compiled["job"]["pipelineSpec"]["root"]["dag"]["tasks"])
    assert tasks == TASKS == local_ids  # one task per local component, nothing else
    assert len(local_ids) == 12


# --- what an open-source KFP v2 backend (kubeflow/pipelines backend/src/v2) would refuse ---


def test_no_task_is_a_resolver_or_importer(compiled):
    """The open-source Argo compiler refuses `resolver` executors when the run is created
    ("not implemented"): every executor must be a container."""
    spec = compiled["job"]["pipelineSpec"]
    kinds = {name: sorted(ex) for name, ex in spec["deploymentSpec"]["executors"].items()}
    assert kinds and all(k == ["container"] for k in kinds.values()), kinds
    assert "resolver" not in compiled["text"].lower().replace("cluster_resolver", "")
    # the Evaluator's baseline comes from a container task, ordered after the Trainer
    evaluator = spec["root"]["dag"]["tasks"]["Evaluator"]
    src = evaluator["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"]
    assert src == {"producerTask": "PushedModelBaseline", "outputArtifactKey": "baseline"}
    baseline = spec["root"]["dag"]["tasks"]["PushedModelBaseline"]
    assert baseline["dependentTasks"] == ["Trainer"]
    assert params(compiled["job"], "PushedModelBaseline")["push_destination"] == \
        "gs://bucket/root/serving_model/bknet_smile_gender_age"


def test_parameters_are_spec_2_1_constants_the_driver_passes(compiled):
    """The open-source driver fills `parameterValues` only from `runtimeValue.constant`
    (spec 2.1); 2.0.0's `constantValue` and typed `parameters` reach no task."""
    spec = compiled["job"]["pipelineSpec"]
    seen = 0
    for name, task in spec["root"]["dag"]["tasks"].items():
        for pname, p in task.get("inputs", {}).get("parameters", {}).items():
            assert list(p) == ["runtimeValue"] and list(p["runtimeValue"]) == ["constant"], (name, pname, p)
            seen += 1
    assert seen >= 24
    for comp in spec["components"].values():
        for pname, p in comp.get("inputDefinitions", {}).get("parameters", {}).items():
            assert "parameterType" in p and "type" not in p, (pname, p)
    assert "constantValue" not in compiled["text"] and '"intValue"' not in compiled["text"]


def test_pipeline_root_is_an_object_store_url(compiled):
    """The launcher maps only object-store roots; a /mnt volume root fails before a task starts."""
    root = compiled["job"]["runtimeConfig"]["gcsOutputDirectory"]
    assert root == PIPELINE_ROOT and root.startswith("gs://")


def test_parameters_equal_the_local_dag_except_paths(compiled):
    """Same definition, only configuration differs: every parameter of every
    component equals the local DAG's, except the three cluster paths."""
    from pipeline.pipeline import RunOptions

    config = load(compiled["config_path"])
    config = dataclasses.replace(config, name=KFP_NAME)
    options = RunOptions(beam_args=tuple(DATAFLOW_ARGS), source_fingerprint="")
    job = compiled["job"]
    path_params = {("ImportSchemaGen", "schema_file"), ("Pusher", "push_destination"),
                   ("PushedModelBaseline", "push_destination"), ("ReportGen", "report_dir"),
                   ("DataPrepExampleGen", "span_store")}
    compared = 0
    for comp in local_dag(config, options).components:
        compiled_params = params(job, comp.id)
        for name, local in comp.exec_properties.items():
            if local is None or (comp.id, name) in path_params:
                continue
            assert name in compiled_params, (comp.id, name)
            got = compiled_params[name]
            if hasattr(local, "DESCRIPTOR"):  # a proto, compiled as its JSON
                got = json_format.Parse(got, type(local)())
            elif isinstance(local, str) and local.startswith(("[", "{")):
                got, local = json.loads(got), json.loads(local)
            elif isinstance(local, (int, float)) and not isinstance(local, bool):
                got = type(local)(got)  # numbers are compiled as strings: '0'
            assert got == local, (comp.id, name)
            compared += 1
    assert compared >= 15

    # The key parameters, spelled out.
    from tfx.proto import pusher_pb2, trainer_pb2, transform_pb2

    train, evals = split_names(config, "train"), split_names(config, "eval")
    assert train == ["train_genki4k", "train_wiki"]
    trainer = params(job, "Trainer")
    targs = json_format.Parse(trainer["train_args"], trainer_pb2.TrainArgs())
    assert (list(targs.splits), targs.num_steps) == (train, 600)  # configs/default.yaml train.steps
    eargs = json_format.Parse(trainer["eval_args"], trainer_pb2.EvalArgs())
    assert (list(eargs.splits), eargs.num_steps) == (evals, 10)
    assert trainer["run_fn"] == "components.trainer.run_fn.run_fn"
    custom = json.loads(json.loads(trainer["custom_config"])["config"])
    assert custom["name"] == KFP_NAME and custom["train"]["steps"] == 600
    assert [s["path"] for s in custom["sources"]] == ["gs://bucket/data/genki4k", "gs://bucket/data/wiki"]
    transform = params(job, "Transform")
    assert transform["preprocessing_fn"] == "components.transform.preprocessing.preprocessing_fn"
    sc = json_format.Parse(transform["splits_config"], transform_pb2.SplitsConfig())
    assert (list(sc.analyze), list(sc.transform)) == (train, train + evals)
    import tensorflow_model_analysis as tfma
    from tfx.proto import evaluator_pb2  # noqa: F401  (EvalConfig is TFMA's proto)

    from components.common.eval_config import build_eval_config

    evaluator = params(job, "Evaluator")
    assert json_format.Parse(evaluator["eval_config"], tfma.EvalConfig()) == build_eval_config(config)
    assert json.loads(evaluator["example_splits"]) == evals
    example_gen = params(job, "DataPrepExampleGen")
    assert json.loads(example_gen["beam_args_json"]) == DATAFLOW_ARGS
    assert example_gen["source_fingerprint"] == ""

    # The three cluster paths.
    assert params(job, "ImportSchemaGen")["schema_file"] == "/pipeline/schemas/bknet_smile_gender_age.pbtxt"
    push = json_format.Parse(params(job, "Pusher")["push_destination"], pusher_pb2.PushDestination())
    assert push.filesystem.base_directory == "gs://bucket/root/serving_model/bknet_smile_gender_age"
    assert params(job, "ReportGen")["report_dir"] == "gs://bucket/root/report/bknet_smile_gender_age"
    assert params(job, "DataPrepExampleGen")["span_store"] == "gs://bucket/root/span_store"  # kept across runs


def test_every_container_runs_the_image_with_the_beam_args(compiled):
    executors = compiled["job"]["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = {k: v["container"] for k, v in executors.items() if "container" in v}
    assert len(containers) == 12  # every task
    assert {c["image"] for c in containers.values()} == {IMAGE}
    # Beam-based executors get the Dataflow args on their command line.
    for name in ("StatisticsGen_executor", "Transform_executor", "Evaluator_executor"):
        args = containers[name]["args"]
        assert all(a in args for a in DATAFLOW_ARGS), (name, args)


def test_spec_holds_no_local_path(compiled):
    text = compiled["text"]
    # An absolute local path starts a string or an `=`/space-separated value;
    # "gs://bucket/root" and "gs://bucket/tmp" are not local, hence the lookbehind.
    local = re.findall(r"(?<![\w.:/-])/(?:work|tmp|root|home)\b[^\"\s]*", text)
    assert local == []
    assert [p for p in (ROOT, compiled["tmp"]) if p in text] == []  # $HOME is /root or /home/...: the regex
    assert "gs://bucket/root/report" in text  # the lookbehind does not hide gs:// paths from the text
    assert "/pipeline/schemas/bknet_smile_gender_age.pbtxt" in text  # the one in-image path


def test_code_the_spec_names_is_in_the_image(compiled):
    """Executor classes and functions outside TFX come from repo files that the
    Dockerfile copies to /pipeline; custom artifact types resolve the way the
    container entrypoint resolves them (by importing their schema title)."""
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as eu
    from tfx.types.artifact import Artifact
    from tfx.utils import import_utils

    job = compiled["job"]
    named = [c["container"]["args"][c["container"]["args"].index("--executor_class_path") + 1]
             for c in job["pipelineSpec"]["deploymentSpec"]["executors"].values() if "container" in c]
    named += [params(job, "Trainer")["run_fn"], params(job, "Transform")["preprocessing_fn"]]
    ours = sorted({n for n in named if not n.startswith("tfx.")})
    assert ours == ["components.anomaly_gate.AnomalyGate_Executor",
                    "components.baseline.PushedModelBaseline_Executor",
                    "components.drift.component.DriftGate_Executor",
                    "components.evaluator.executor.BaselineAwareExecutor",
                    "components.example_gen.component.DataPrepExampleGen_Executor",
                    "components.report.component.ReportGen_Executor",
                    "components.trainer.run_fn.run_fn", "components.transform.preprocessing.preprocessing_fn"]
    files = context_files()
    assert [n for n in ours if module_file(n) not in files] == []

    titles = set()
    for comp in job["pipelineSpec"]["components"].values():
        for side in ("inputDefinitions", "outputDefinitions"):
            for art in comp.get(side, {}).get("artifacts", {}).values():
                schema = json_format.ParseDict(art["artifactType"], pipeline_spec_pb2.ArtifactTypeSchema())
                titles.add(eu._retrieve_class_path(schema))  # what the pod imports
    custom = sorted(t for t in titles if not t.startswith("tfx."))
    assert len(custom) == 4, custom  # PrepReport, PipelineGate, DriftReport, the report
    for title in custom:
        cls = import_utils.import_class_by_path(title)
        assert issubclass(cls, Artifact) and cls.TYPE_NAME == title
        assert module_file(title) in files


def test_the_default_config_compiles_to_a_spec_open_source_kfp_runs(tmp_path, capsys):
    """`python kubeflow_runner.py --config configs/default.yaml --pipeline-root gs://BUCKET/root
    --compile-only --output FILE`: schema 2.1.0, no resolver executor (local data paths only warn)."""
    import kubeflow_runner

    out = tmp_path / "spec.json"
    rc = kubeflow_runner.main(["--config", f"{ROOT}/configs/default.yaml", "--pipeline-root", "gs://BUCKET/root",
                               "--compile-only", "--output", str(out)])
    assert rc == 0, capsys.readouterr().err
    job = json.loads(out.read_text())
    assert job["pipelineSpec"]["schemaVersion"] == "2.1.0"
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"].values()
    assert [e for e in executors if "resolver" in e or "container" not in e] == []
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://BUCKET/root"
