"""kubeflow_runner.py: compiles the same DAG as run_local.py for KFP v2 and submits it.

Compiling runs in this process under guards that record any gs:// file access
and any network connection; submission goes to a stand-in of the KFP v2beta1
REST API on 127.0.0.1 that records what kfp.Client sends.
"""
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from google.protobuf import json_format

import kubeflow_runner
from docker_context import ROOT, context_files, module_file
from pipeline.config import load, split_names

IMAGE = "registry.example.com/team/multitask-tfx:abc123"
PIPELINE_ROOT = "gs://bucket/root"
DATAFLOW_ARGS = ["--runner=DataflowRunner", "--project=my-project", "--region=europe-west1",
                 "--temp_location=gs://bucket/tmp"]
KFP_NAME = "bknet-smile-gender-age"  # configs/default.yaml's name, '_' -> '-'
TASKS = ["AnomalyGate", "DataPrepExampleGen", "Evaluator", "ExampleValidator", "ImportSchemaGen",
         "Pusher", "ReportGen", "StatisticsGen", "Trainer", "Transform",
         # the latest-blessed-model Resolver compiles to two query tasks
         "latest_blessed_model_resolver-model-blessing-resolver",
         "latest_blessed_model_resolver-model-resolver"]


def cluster_config(tmp_path, **overrides):
    """configs/default.yaml with its sources on gs:// (what a cluster config looks like)."""
    with open(os.path.join(ROOT, "configs", "default.yaml")) as f:
        raw = yaml.safe_load(f)
    for src in raw["sources"]:
        src["path"] = f"gs://bucket/data/{src['name']}"
    raw.update(overrides)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


class Guards:
    """Records gs:// file access (at TF's C++ file-system boundary) and network connections."""

    def __init__(self, monkeypatch, allow_loopback=True):
        self.gs_calls, self.connections = [], []
        from tensorflow.python.lib.io import _pywrap_file_io

        for name in dir(_pywrap_file_io):
            fn = getattr(_pywrap_file_io, name)
            if callable(fn) and not name.startswith("_"):  # functions and file classes (GFile's streams)
                monkeypatch.setattr(_pywrap_file_io, name, self._wrap_fs(name, fn))

        real_connect = socket.socket.connect

        def connect(sock, address):
            host = address[0] if isinstance(address, tuple) else address
            if not (allow_loopback and host in ("127.0.0.1", "localhost", "::1")):
                self.connections.append(address)
                raise OSError(f"test guard: no network ({address})")
            return real_connect(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)

    def _wrap_fs(self, name, fn):
        def guarded(*args, **kwargs):
            if any(isinstance(a, (str, bytes)) and ("gs://" in str(a) or "s3://" in str(a)) for a in args):
                self.gs_calls.append((name, args))
                raise OSError(f"test guard: no remote storage ({name}{args})")
            return fn(*args, **kwargs)
        return guarded


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kfp")
    config_path = cluster_config(tmp)
    out = tmp / "out" / "pipeline.json"
    with pytest.MonkeyPatch.context() as mp:
        guards = Guards(mp, allow_loopback=False)
        rc = kubeflow_runner.main(["--config", config_path, "--pipeline-root", PIPELINE_ROOT + "/",
                                   "--image", IMAGE, "--compile-only", "--output", str(out)]
                                  + [f"--beam-arg={a}" for a in DATAFLOW_ARGS])
        # The guard itself works: a gs:// read under it is seen and refused.
        import tensorflow as tf
        with pytest.raises(Exception):
            tf.io.gfile.exists("gs://bucket/probe")
        probe = guards.gs_calls.pop()
    assert rc == 0
    text = out.read_text()
    return {"tmp": str(tmp), "config_path": config_path, "json_path": str(out), "text": text,
            "job": json.loads(text), "guards": guards, "probe": probe}


def params(job, task):
    """A task's constant parameters, as compiled."""
    out = {}
    for name, p in job["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"].get("parameters", {}).items():
        value = p["runtimeValue"]["constantValue"]
        out[name] = value.get("stringValue", value.get("numberValue", value.get("intValue")))
    return out


def local_dag(config, options):
    """The DAG run_local.py runs, from the same definition (local paths, sqlite MLMD)."""
    import run_local
    from pipeline.pipeline import create_pipeline

    paths = run_local.local_paths("/local/out", config.name, "/local/out/schema/x/schema.pbtxt")
    return create_pipeline(config, paths, options)


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
    assert spec.schema_version == "2.0.0"
    assert job["runtimeConfig"]["gcsOutputDirectory"] == PIPELINE_ROOT  # trailing '/' dropped
    # The .yaml beside it is what kfp.Client submits: the same spec.
    yaml_path = compiled["json_path"][:-5] + ".yaml"
    with open(yaml_path) as f:
        assert json_format.ParseDict(yaml.safe_load(f), pipeline_spec_pb2.PipelineSpec()) == spec


def test_spec_holds_every_component_of_the_local_dag(compiled):
    from pipeline.pipeline import RunOptions

    config = load(compiled["config_path"])
    local_ids = [c.id for c in local_dag(config, RunOptions()).components]
    tasks = sorted(compiled["job"]["pipelineSpec"]["root"]["dag"]["tasks"])
    assert tasks == TASKS
    # each task comes from one local component: itself, or the Resolver's two queries
    owner = {t: [i for i in local_ids if t == i or t.startswith(i + "-")] for t in tasks}
    assert all(len(v) == 1 for v in owner.values()), owner
    assert sorted({v[0] for v in owner.values()}) == sorted(local_ids)
    assert len(local_ids) == 11


def test_parameters_equal_the_local_dag_except_paths(compiled):
    """Same definition, only configuration differs: every parameter of every
    component equals the local DAG's, except the three cluster paths."""
    from pipeline.pipeline import RunOptions

    config = load(compiled["config_path"])
    config = dataclasses.replace(config, name=KFP_NAME)
    options = RunOptions(beam_args=tuple(DATAFLOW_ARGS), source_fingerprint="")
    job = compiled["job"]
    path_params = {("ImportSchemaGen", "schema_file"), ("Pusher", "push_destination"),
                   ("ReportGen", "report_dir")}
    compared = 0
    for comp in local_dag(config, options).components:
        if comp.id not in job["pipelineSpec"]["root"]["dag"]["tasks"]:
            continue  # the Resolver: no parameters of its own
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
    assert (list(targs.splits), targs.num_steps) == (train, 300)  # configs/default.yaml train.steps
    eargs = json_format.Parse(trainer["eval_args"], trainer_pb2.EvalArgs())
    assert (list(eargs.splits), eargs.num_steps) == (evals, 10)
    assert trainer["run_fn"] == "components.trainer.run_fn"
    custom = json.loads(json.loads(trainer["custom_config"])["config"])
    assert custom["name"] == KFP_NAME and custom["train"]["steps"] == 300
    assert [s["path"] for s in custom["sources"]] == ["gs://bucket/data/genki4k", "gs://bucket/data/wiki"]
    transform = params(job, "Transform")
    assert transform["preprocessing_fn"] == "components.transform.preprocessing_fn"
    sc = json_format.Parse(transform["splits_config"], transform_pb2.SplitsConfig())
    assert (list(sc.analyze), list(sc.transform)) == (train, train + evals)
    from components.eval_config import build_eval_config
    from tfx.proto import evaluator_pb2  # noqa: F401  (EvalConfig is TFMA's proto)
    import tensorflow_model_analysis as tfma

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


def test_every_container_runs_the_image_with_the_beam_args(compiled):
    executors = compiled["job"]["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = {k: v["container"] for k, v in executors.items() if "container" in v}
    assert len(containers) == 10  # all but the Resolver's two queries
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
                    "components.example_gen.DataPrepExampleGen_Executor",
                    "components.report.ReportGen_Executor",
                    "components.trainer.run_fn", "components.transform.preprocessing_fn"]
    files = context_files()
    assert [n for n in ours if module_file(n) not in files] == []

    titles = set()
    for comp in job["pipelineSpec"]["components"].values():
        for side in ("inputDefinitions", "outputDefinitions"):
            for art in comp.get(side, {}).get("artifacts", {}).values():
                schema = json_format.ParseDict(art["artifactType"], pipeline_spec_pb2.ArtifactTypeSchema())
                titles.add(eu._retrieve_class_path(schema))  # what the pod imports
    custom = sorted(t for t in titles if not t.startswith("tfx."))
    assert len(custom) == 3, custom  # PrepReport, PipelineGate, the report
    for title in custom:
        cls = import_utils.import_class_by_path(title)
        assert issubclass(cls, Artifact) and cls.TYPE_NAME == title
        assert module_file(title) in files


# --- submission -------------------------------------------------------------

class KfpStub(BaseHTTPRequestHandler):
    """The v2beta1 endpoints kfp 2.5's create_run_from_pipeline_package calls."""

    requests: list = []

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        url = urlparse(self.path)
        self.requests.append((self.command, url.path, parse_qs(url.query), body))
        return url.path, body

    def do_GET(self):
        path, _ = self._record()
        if path == "/apis/v2beta1/healthz":
            self._reply(200, {"multi_user": False})
        elif path == "/apis/v2beta1/experiments":
            self._reply(200, {})  # no experiment of that name yet
        else:
            self._reply(404, {"error_message": f"stub: no GET {path}"})

    def do_POST(self):
        path, body = self._record()
        if path == "/apis/v2beta1/experiments":
            self._reply(200, {"experiment_id": "exp-7", "display_name": body["display_name"]})
        elif path == "/apis/v2beta1/runs":
            self._reply(200, {"run_id": "run-42", "display_name": body["display_name"],
                              "experiment_id": body["experiment_id"]})
        else:
            self._reply(404, {"error_message": f"stub: no POST {path}"})

    def log_message(self, *args):
        pass


@pytest.fixture
def kfp_stub(monkeypatch, tmp_path):
    import kfp.client.client as kfp_client

    # No user kfp context file may change what the client sends.
    monkeypatch.setattr(kfp_client.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "no-context.json"))
    KfpStub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), KfpStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", KfpStub.requests
    server.shutdown()
    server.server_close()


def submit_args(tmp_path, host, *extra):
    return ["--config", cluster_config(tmp_path), "--pipeline-root", PIPELINE_ROOT, "--image", IMAGE,
            "--output", str(tmp_path / "pipeline.json"), "--host", host, *extra]


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
                           sources=[{**raw["sources"][1], "path": "gs://bucket/data/wiki"}])
    assert kubeflow_runner.main(["--config", stale] + base) == 2
    assert "schemas/bknet_smile_gender_age.pbtxt does not match config" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_local_paths_refused_unless_allowed(tmp_path, capsys):
    default = os.path.join(ROOT, "configs", "default.yaml")
    base = ["--config", default, "--compile-only", "--output", str(tmp_path / "p.json")]
    assert kubeflow_runner.main(base + ["--pipeline-root", PIPELINE_ROOT]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"sources[genki4k].path: {os.path.join(ROOT, 'data', 'sample', 'genki4k')}" in err
    assert f"sources[wiki].path: {os.path.join(ROOT, 'data', 'sample', 'wiki')}" in err
    assert kubeflow_runner.main(["--config", cluster_config(tmp_path), "--pipeline-root", "/tmp/root",
                                 "--compile-only"]) == 2
    assert "pipeline_root: /tmp/root" in capsys.readouterr().err
    # PVC and in-image paths are cluster paths.
    assert kubeflow_runner.is_cluster_path("/mnt/pipeline") and kubeflow_runner.is_cluster_path("/pipeline/data")
    assert not kubeflow_runner.is_cluster_path("/mntx/data")
    # --allow-local-paths compiles, warning once per path.
    assert kubeflow_runner.main(base + ["--pipeline-root", "/mnt/pipeline", "--allow-local-paths"]) == 0
    assert capsys.readouterr().err.count("WARNING: local path") == 2


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
