"""Shared helpers of the end-to-end tests: the default DAG's tiny config and what a run left
(states, figures, MLMD executions), for test_local_dag.py, test_faults.py and test_portable.py;
and Beam's own Python job service and an SDK worker pool on 127.0.0.1, for the PortableRunner
tests (test_portable.py).

The job service (`apache_beam.runners.portability.local_job_service_main`) takes jobs over
Beam's portable job API, as Flink's and Spark's job servers do; it stages the job's artifacts
and runs the pipeline with SDK workers it asks the worker pool for (`--environment_type=EXTERNAL`).
The worker pool (`apache_beam.runners.worker.worker_pool_main`) starts each worker as a separate
process through portable_boot.py, which installs what the job staged (`--setup_file`). Both run
outside the repository and without it on PYTHONPATH, so a worker sees the project only as staged.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASKS = ["smile", "gender", "age"]
BOOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "portable_boot.py")


def write_config(path, data_dir, steps=20):
    with open(os.path.join(ROOT, "configs", "default.yaml")) as f:
        raw = yaml.safe_load(f)
    raw["name"] = "tiny_e2e"
    counts = {"genki4k": 60, "wiki": 90}
    for src in raw["sources"]:
        src["path"] = str(data_dir / src["name"])
        src["sample"]["count"] = counts[src["name"]]
    raw["train"].update(steps=steps, batch_size=16, eval_steps=2)
    for task in raw["tasks"]:
        task["thresholds"] = {"accuracy": 0.0}  # tiny data: blessing is not the point here
    path.write_text(yaml.safe_dump(raw))
    return path


def states(out):
    """component -> MLMD state of its execution in the latest run."""
    with open(out / "last_run.json") as f:
        return {c["component"]: c["state"] for c in json.load(f)["components"]}


def figures(out):
    report = json.loads((out / "report" / "report.json").read_text())
    return {t: (report["tasks"][t]["eval_examples"], report["tasks"][t]["metrics"]["accuracy"]) for t in TASKS}


def mlmd_executions(path):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    conn = metadata_store_pb2.ConnectionConfig()
    conn.sqlite.filename_uri = str(path)
    return metadata_store.MetadataStore(conn).get_executions()


# --- PortableRunner: Beam's job service and SDK worker pool on 127.0.0.1 ---

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: str, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited {proc.returncode}: {open(log).read()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s: {open(log).read()[-3000:]}")


@contextlib.contextmanager
def portable_services(work_dir: str, job_port: int = 0, pool_port: int = 0):
    """Yields the Beam args that run a job there: PortableRunner, EXTERNAL workers, the project
    staged with --setup_file. Stops both services (and so their workers) on exit. Ports: free
    ones unless given."""
    os.makedirs(work_dir, exist_ok=True)
    boot = os.path.join(work_dir, "boot.sh")
    with open(boot, "w") as f:  # the container contract's executable: this Python, the boot script
        f.write(f'#!/bin/sh\nexec "{sys.executable}" "{BOOT}" "$@"\n')
    os.chmod(boot, 0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PORTABLE_BOOT_DIR=os.path.join(work_dir, "workers"), TF_CPP_MIN_LOG_LEVEL="2")
    job_port, pool_port = job_port or free_port(), pool_port or free_port()
    procs = []
    try:
        for name, cmd, port in (
                ("job_service", ["apache_beam.runners.portability.local_job_service_main",
                                 f"--port={job_port}", f"--staging_dir={work_dir}/staging"], job_port),
                ("worker_pool", ["apache_beam.runners.worker.worker_pool_main", f"--service_port={pool_port}",
                                 f"--container_executable={boot}"], pool_port)):
            log = os.path.join(work_dir, f"{name}.log")
            proc = subprocess.Popen([sys.executable, "-m", *cmd], cwd=work_dir, env=env,
                                    stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(proc)
            _wait_for_port(port, proc, log)
        yield [
            "--runner=PortableRunner",
            f"--job_endpoint=127.0.0.1:{job_port}",
            "--environment_type=EXTERNAL",
            f"--environment_config=127.0.0.1:{pool_port}",
            f"--setup_file={os.path.join(ROOT, 'setup.py')}",
        ]
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
