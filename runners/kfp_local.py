"""Runs the compiled Kubeflow spec offline, task by task, as a KFP v2 backend would.

    python -m runners.kfp_local --config configs/default.yaml --output-dir DIR
    make kfp-local OUTPUT=DIR                      (builds the image first)

1. Compiles the pipeline with `kubeflow_runner.py`, exactly as for a cluster
   (spec 2.1, a gs:// pipeline root), into DIR/pipeline.json.
2. Reads that spec, and only the spec, as the cluster does: the tasks of
   `root.dag`, their executors' containers, parameters and artifact wiring.
   Nothing of the pipeline's Python objects decides what runs.
3. Runs every task in topological order inside the image (podman or docker),
   each given the `ExecutorInput` JSON a KFP v2 launcher puts in place of
   `{{$}}`: input artifacts from the upstream tasks' `ExecutorOutput`s (uri,
   type from the spec, metadata), `parameterValues` from the spec's
   `runtimeValue.constant` (all the open-source driver reads), output artifact
   URIs provisioned as `ROOT/<pipeline>/<run id>/<task>/<output key>`, and
   `outputs.outputFile`. The run's pipeline root is a folder on this disk,
   DIR/root, standing in for the object store (as `kfp.Client(...,
   pipeline_root=...)` replaces the compiled root at submission).

The report lands in DIR/report/, the pushed model in DIR/serving_model/. A
second run on the same DIR compares its model with the first run's pushed one.
Where a task fails, it prints the task, its exit code and its log's path, and
exits 1. What this proves and what still needs a cluster: docs/kubeflow.md.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before any TensorFlow import

import argparse
import datetime
import graphlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

from config import ConfigError, error_line, load, validate

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_IMAGE = "multitask-tfx:latest"
# The bucket the spec is compiled for; its objects live under DIR/root here.
COMPILED_ROOT = "gs://kfp-local/root"
RUNTIMES = ("podman", "docker", "process")
WHOLE_INPUT = "{{$}}"


class KfpLocalError(Exception):
    """A problem with the spec or the set-up: one line, exit 2."""


@dataclass
class Task:
    name: str
    command: list[str]
    args: list[str]
    image: str
    parameters: dict  # name -> value, from runtimeValue.constant
    inputs: dict  # input key -> (producer task, producer output key)
    input_types: dict  # input key -> artifactType (the consumer's inputDefinitions)
    outputs: dict  # output key -> artifactType
    depends: set = field(default_factory=set)


# --- reading the spec, as the backend does -------------------------------------


def read_tasks(pipeline_spec: dict) -> dict[str, Task]:
    """Every task of the root DAG with its container, constants and wiring; KfpLocalError on what
    an open-source KFP v2 backend would not run."""
    components = pipeline_spec["components"]
    executors = pipeline_spec["deploymentSpec"]["executors"]
    tasks = {}
    for name, t in pipeline_spec["root"]["dag"]["tasks"].items():
        comp = components[t["componentRef"]["name"]]
        executor = executors[comp["executorLabel"]]
        if "container" not in executor:
            kind = next(iter(executor), "?")
            raise KfpLocalError(f"task {name}: a {kind!r} executor; open-source KFP v2 runs only containers "
                                "(its Argo compiler answers 'resolver executors not implemented')")
        params = {}
        for pname, p in t.get("inputs", {}).get("parameters", {}).items():
            value = p.get("runtimeValue", {})
            if "constant" not in value:
                raise KfpLocalError(
                    f"task {name}: parameter {pname!r} is not a spec 2.1 `runtimeValue.constant` ({p}); "
                    "the open-source driver passes no other form")
            params[pname] = value["constant"]
        inputs = {}
        for key, a in t.get("inputs", {}).get("artifacts", {}).items():
            src = a.get("taskOutputArtifact")
            if src is None:
                raise KfpLocalError(f"task {name}: input artifact {key!r} is not another task's output ({a})")
            inputs[key] = (src["producerTask"], src["outputArtifactKey"])
        container = executor["container"]
        tasks[name] = Task(
            name=name, command=list(container.get("command", [])), args=list(container.get("args", [])),
            image=container.get("image", ""), parameters=params, inputs=inputs,
            input_types={k: v["artifactType"] for k, v in
                         comp.get("inputDefinitions", {}).get("artifacts", {}).items()},
            outputs={k: v["artifactType"] for k, v in
                     comp.get("outputDefinitions", {}).get("artifacts", {}).items()},
            depends=set(t.get("dependentTasks", [])) | {p for p, _ in inputs.values()})
    for task in tasks.values():
        unknown = sorted(task.depends - set(tasks))
        if unknown:
            raise KfpLocalError(f"task {task.name} depends on tasks not in the spec: {unknown}")
    return tasks


def topological_order(tasks: dict[str, Task]) -> list[str]:
    """The tasks in dependency order, each ready set by name (the same order every run);
    KfpLocalError on a cycle."""
    sorter = graphlib.TopologicalSorter({n: t.depends for n, t in tasks.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as e:
        raise KfpLocalError(f"the spec's tasks form a cycle: {sorted(set(e.args[1]))}") from e
    order = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order += ready
        sorter.done(*ready)
    return order


# --- what the launcher hands a task ------------------------------------------------


def executor_input(task: Task, produced: dict, task_root: str, output_file: str, run_id: str) -> dict:
    """The ExecutorInput JSON for `task`: inputs from `produced[(task, key)]` (the upstream
    ExecutorOutput's artifact list), outputs provisioned under `task_root`."""
    inputs = {}
    for key, (producer, out_key) in sorted(task.inputs.items()):
        if (producer, out_key) not in produced:
            raise KfpLocalError(f"task {task.name}: input {key!r} needs {producer}.{out_key}, which was not produced")
        artifacts = []
        for art in produced[(producer, out_key)]:
            artifacts.append({"name": art["name"], "uri": art["uri"], "metadata": art.get("metadata", {}),
                              "type": task.input_types.get(key) or art["type"]})
        inputs[key] = {"artifacts": artifacts}
    outputs = {key: {"artifacts": [{"name": f"{run_id}/{task.name}/{key}", "type": art_type,
                                    "uri": f"{task_root}/{key}", "metadata": {}}]}
               for key, art_type in sorted(task.outputs.items())}
    return {"inputs": {"artifacts": inputs, "parameterValues": task.parameters},
            "outputs": {"artifacts": outputs, "outputFile": output_file}}


def render_args(args: list[str], whole_input: dict) -> list[str]:
    out = []
    for arg in args:
        if arg == WHOLE_INPUT:
            out.append(json.dumps(whole_input))
        elif "{{$" in arg:
            raise KfpLocalError(f"placeholder {arg!r}: only {WHOLE_INPUT} is filled here")
        else:
            out.append(arg)
    return out


def read_executor_output(path: str, task: Task, provisioned: dict) -> dict:
    """{(task, output key): [artifact]} from the task's ExecutorOutput; the types are the spec's."""
    with open(path) as f:
        written = json.load(f)
    produced = {}
    for key, art_type in task.outputs.items():
        listed = written.get("artifacts", {}).get(key, {}).get("artifacts")
        if not listed:  # a task may leave an output's metadata out; the launcher keeps what it provisioned
            listed = provisioned[key]["artifacts"]
        produced[(task.name, key)] = [{**a, "type": art_type} for a in listed]
    return produced


# --- running -------------------------------------------------------------------------


def container_command(runtime: str, image: str, argv: list[str], mounts: list[tuple[str, str]]) -> list[str]:
    if runtime == "process":
        return argv
    base = [runtime] if runtime == "docker" else [
        "podman", "--runtime", os.environ.get("PODMAN_RUNTIME", "runc")]
    cmd = base + ["run", "--rm", "--network=none"]
    if runtime == "podman":
        ulimits = os.environ.get("PODMAN_ULIMITS", "--ulimit nofile=20000:20000 --ulimit nproc=4096:4096")
        cmd += shlex.split(ulimits)
    for path, mode in mounts:
        cmd += ["-v", f"{path}:{path}:{mode}"]
    return cmd + [image] + argv


def image_exists(runtime: str, image: str) -> bool:
    if runtime == "process":
        return True
    check = [runtime, "image", "inspect", image] if runtime == "docker" else ["podman", "image", "exists", image]
    return subprocess.run(check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def compile_spec(config_path: str, out: str, image: str, image_root: str | None = None) -> dict:
    """kubeflow_runner.py --compile-only, as a user compiles for a cluster, plus this run's local folders.

    `image_root`: where the tasks find this repo, when not the image's /pipeline (the process runtime).
    """
    spec_path = os.path.join(out, "pipeline.json")
    cmd = [sys.executable, os.path.join(REPO_ROOT, "kubeflow_runner.py"), "--config", config_path,
           "--pipeline-root", COMPILED_ROOT, "--image", image, "--compile-only", "--output", spec_path,
           # the report and the pushed model go to DIR (mounted at the same path in every task),
           # and so do the sources: local paths, hence --allow-local-paths
           "--serving-dir", os.path.join(out, "serving_model"), "--report-dir", os.path.join(out, "report"),
           "--span-store", os.path.join(out, "span_store"),
           "--allow-local-paths"] + (["--image-root", image_root] if image_root else [])
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KfpLocalError(f"compiling failed (exit {proc.returncode}): "
                            f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    with open(spec_path) as f:
        return json.load(f)


def local_root(out: str) -> str:
    return os.path.join(out, "root")


def execute(job: dict, out: str, runtime: str, run_id: str | None, mounts: list[tuple[str, str]],
            preamble: str = "") -> tuple[str, dict] | None:
    """Runs every task of a compiled PipelineJob: (run id, {task: seconds}), or None after
    printing the failed task, its exit code and its log's path."""
    spec = job["pipelineSpec"]
    if spec.get("schemaVersion") != "2.1.0":
        raise KfpLocalError(f"spec schema {spec.get('schemaVersion')}: the open-source driver needs 2.1.0")
    root = job["runtimeConfig"]["gcsOutputDirectory"]
    pipeline = spec["pipelineInfo"]["name"]
    tasks = read_tasks(spec)
    order = topological_order(tasks)
    run_id = run_id or f"run-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    print(f"{preamble + ': ' if preamble else ''}{len(order)} tasks, pipeline root {root} -> {local_root(out)}, "
          f"run {run_id}, {runtime}")
    logs = os.path.join(out, "logs", run_id)
    os.makedirs(logs, exist_ok=True)
    produced: dict = {}
    times: dict = {}
    for name in order:
        task = tasks[name]
        task_root = os.path.join(local_root(out), pipeline, run_id, name)
        os.makedirs(task_root, exist_ok=True)
        # the launcher's local outputs folder (the pod's /tmp/kfp_outputs); TFX puts its temp files beside it
        output_file = os.path.join(out, "pods", run_id, name, "kfp_outputs", "output_metadata.json")
        os.makedirs(os.path.dirname(output_file), exist_ok=True)
        ex_input = executor_input(task, produced, task_root, output_file, run_id)
        with open(os.path.join(task_root, "executor_input.json"), "w") as f:
            json.dump(ex_input, f, indent=1)
        argv = task.command + render_args(task.args, ex_input)
        log_path = os.path.join(logs, f"{name}.log")
        start = time.time()
        env = None
        if runtime == "process":
            env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_USE_LEGACY_KERAS": "1",
                   "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        with open(log_path, "w") as log:
            rc = subprocess.run(container_command(runtime, task.image, argv, mounts), stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT).returncode
        seconds = time.time() - start
        if rc == 0 and not os.path.isfile(output_file):
            print(f"task {name} failed: exit code 0 but no ExecutorOutput at {output_file}; log: {log_path}",
                  file=sys.stderr)
            return None
        if rc != 0:
            print(f"task {name} failed: exit code {rc}; log: {log_path}", file=sys.stderr)
            return None
        produced.update(read_executor_output(output_file, task, ex_input["outputs"]["artifacts"]))
        times[name] = seconds
        print(f"  {name}: {seconds:.0f} s")
        if name == "PushedModelBaseline":
            meta = produced[(name, "baseline")][0].get("metadata", {})
            version = meta.get("pushed_version")
            print(f"    baseline: {'the pushed model ' + version if version else 'none pushed yet'}")
    return run_id, times


def run(args) -> int:
    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)
    config = load(args.config)
    validate(config)
    from data_prep.generate import generate_missing

    for path in generate_missing(config):
        print(f"generated sample data: {path}")
    if not image_exists(args.runtime, args.image):
        raise KfpLocalError(f"image {args.image} not found by {args.runtime}; build it with `make image`")

    t0 = time.time()
    # The process runtime runs the tasks from this checkout: it is "the image" there.
    job = compile_spec(os.path.abspath(args.config), out, args.image,
                       REPO_ROOT if args.runtime == "process" else None)
    compile_s = time.time() - t0
    mounts = [(out, "rw")] + [(s.path, "ro") for s in config.sources]
    done = execute(job, out, args.runtime, args.run_id, mounts,
                   preamble=f"compiled {os.path.join(out, 'pipeline.json')} in {compile_s:.0f} s")
    if done is None:
        return 1
    run_id, times = done

    total = time.time() - t0
    with open(os.path.join(out, "last_kfp_run.json"), "w") as f:
        json.dump({"run_id": run_id, "runtime": args.runtime, "image": args.image, "compile_s": round(compile_s, 1),
                   "total_s": round(total, 1),
                   "tasks": [{"task": n, "seconds": round(s, 1)} for n, s in times.items()]}, f, indent=2)
    report_path = os.path.join(out, "report", "report.json")
    with open(report_path) as f:
        report = json.load(f)
    from run_local import format_table

    print()
    print(format_table(report))
    print(f"\nblessed: {report.get('blessed')}   total time: {total:.0f} s (compile {compile_s:.0f} s)")
    if report.get("not_blessed_reason"):
        print(f"not blessed: {report['not_blessed_reason']}")
    print(f"report: {report_path}")
    served = sorted(os.listdir(os.path.join(out, "serving_model"))) if os.path.isdir(
        os.path.join(out, "serving_model")) else []
    print(f"pushed versions: {', '.join(served) or 'none'}")
    if args.expect_figures_of:
        with open(args.expect_figures_of) as f:
            count, diffs = task_figure_differences(report, json.load(f))
        if diffs:
            print(f"per-task figures differ from {args.expect_figures_of} ({len(diffs)} of {count} numbers):",
                  file=sys.stderr)
            for line in diffs[:20]:
                print(f"  {line}", file=sys.stderr)
            return 1
        print(f"per-task figures equal those of {args.expect_figures_of}: {count} numbers, exactly")
    return 0


def task_figure_differences(report: dict, expected: dict) -> tuple[int, list[str]]:
    """(numbers compared, differences) between two report.json's per-task entries, exactly."""
    diffs: list[str] = []
    count = 0

    def walk(a, b, where):
        nonlocal count
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if key not in a or key not in b:
                    diffs.append(f"{where}.{key}: only in {'the expected report' if key in b else 'this run'}")
                else:
                    walk(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{where}[{i}]")
        else:
            count += isinstance(a, (int, float)) and not isinstance(a, bool)
            if a != b:
                diffs.append(f"{where}: {a!r} here, {b!r} expected")

    walk(report["tasks"], expected["tasks"], "tasks")
    return count, diffs


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Run the compiled Kubeflow spec offline, each task in the image, "
                                             "fed what a KFP v2 launcher feeds it.")
    ap.add_argument("--config", default="configs/default.yaml", help="run config (YAML)")
    ap.add_argument("--output-dir", required=True, help="DIR: spec, pipeline root, report, pushed models, logs")
    ap.add_argument("--image", default=DEFAULT_IMAGE, help=f"image built by `make image` (default {DEFAULT_IMAGE})")
    ap.add_argument("--runtime", choices=RUNTIMES, default=os.environ.get("KFP_LOCAL_RUNTIME", "podman"),
                    help="podman (default) or docker run each task in the image; process runs them here, "
                         "in this Python, from this checkout (no image; what make test uses)")
    ap.add_argument("--run-id", help="run id in the artifact URIs (default run-YYYYmmdd-HHMMSS)")
    ap.add_argument("--expect-figures-of", metavar="REPORT_JSON",
                    help="after the run, compare every per-task figure of the report with this report.json "
                         "(e.g. make run's) exactly; exit 1 on a difference")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.runtime != "process" and shutil.which(args.runtime) is None:
        print(f"error: {args.runtime} is not installed (make image installs podman)", file=sys.stderr)
        return 2
    try:
        return run(args)
    except ConfigError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    except KfpLocalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
