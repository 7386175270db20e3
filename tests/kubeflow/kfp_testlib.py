"""Shared pieces of the Kubeflow runner tests: cluster configs, guards, the KFP stub."""
import json
import os
import socket
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import yaml

from docker_context import ROOT

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



def submit_args(tmp_path, host, *extra):
    return ["--config", cluster_config(tmp_path), "--pipeline-root", PIPELINE_ROOT, "--image", IMAGE,
            "--output", str(tmp_path / "pipeline.json"), "--host", host, *extra]

