"""Shared pieces of the Kubeflow runner tests: cluster configs, guards, the KFP stub, and
what `docker build .` would send and copy (worked out without a Docker daemon, below)."""
from __future__ import annotations

import fnmatch
import json
import os
import socket
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "registry.example.com/team/multitask-tfx:abc123"
PIPELINE_ROOT = "gs://bucket/root"
DATAFLOW_ARGS = ["--runner=DataflowRunner", "--project=my-project", "--region=europe-west1",
                 "--temp_location=gs://bucket/tmp"]
KFP_NAME = "bknet-smile-gender-age"  # configs/default.yaml's name, '_' -> '-'
TASKS = ["AnomalyGate", "DataPrepExampleGen", "DriftGate", "Evaluator", "ExampleValidator", "ImportSchemaGen",
         "PushedModelBaseline", "Pusher", "ReportGen", "StatisticsGen", "Trainer", "Transform"]



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
    """A task's constant parameters, as compiled (spec 2.1: `runtimeValue.constant`)."""
    return {name: p["runtimeValue"]["constant"]
            for name, p in job["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"].get("parameters", {}).items()}


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


# --- the Docker build context ---
#
# What `docker build .` would send and copy, worked out without a Docker daemon.
#
# A small model of .dockerignore: a path is left out when a pattern matches it
# or one of its parent folders (`*` and `?` as in fnmatch, a leading `**/`
# also matches at the top level, `!pattern` re-includes). Enough for the plain
# patterns this repo uses; not a full implementation of Docker's rules.


def ignore_patterns(root: str = ROOT) -> list[str]:
    with open(os.path.join(root, ".dockerignore")) as f:
        lines = [line.strip() for line in f]
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def _matches(path: str, pattern: str) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]  # the path and its parents
    pats = [pattern.lstrip("/")]
    if pattern.startswith("**/"):
        pats.append(pattern[3:])
    return any(fnmatch.fnmatchcase(c, p) for c in candidates for p in pats)


def is_ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:  # later patterns win, as in Docker
        if pattern.startswith("!"):
            if _matches(path, pattern[1:]):
                ignored = False
        elif _matches(path, pattern):
            ignored = True
    return ignored


def context_files(root: str = ROOT) -> set[str]:
    """Repo-relative paths of the files the build context holds."""
    patterns = ignore_patterns(root)
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not is_ignored(rel_dir + d, patterns)]
        out.update(rel_dir + f for f in filenames if not is_ignored(rel_dir + f, patterns))
    return out


def module_file(dotted: str) -> str:
    """`components.trainer.run_fn.run_fn` -> the repo file that defines it (module or package)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        base = "/".join(parts[:n])
        for cand in (base + ".py", base + "/__init__.py"):
            if os.path.isfile(os.path.join(ROOT, cand)):
                return cand
    raise AssertionError(f"{dotted!r} names no module in the repo")
