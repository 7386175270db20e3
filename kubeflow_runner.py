"""Compiles the pipeline for Kubeflow Pipelines v2 and, optionally, submits it.

    python kubeflow_runner.py --config configs/default.yaml \\
        --pipeline-root gs://BUCKET/tfx --image REGISTRY/multitask-tfx:TAG \\
        --compile-only --output pipeline.json
    python kubeflow_runner.py --config CLUSTER_CONFIG.yaml \\
        --pipeline-root gs://BUCKET/tfx --image REGISTRY/multitask-tfx:TAG \\
        --host http://localhost:8080 --experiment multitask

Like run_local.py it only configures `pipeline.pipeline.create_pipeline`: the
DAG is the same, the paths are cluster paths and the code runs from the image
built by the Dockerfile (the repo is at /pipeline there). CLUSTER_CONFIG.yaml is a
config whose source paths are cluster paths (docs/kubeflow.md). Steps and caveats:
docs/kubeflow.md.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before any TensorFlow import

import argparse
import dataclasses
import datetime
import posixpath
import re
import sys

from config import MAX_NAME_LENGTH, Config, ConfigError, error_line, load, validate

REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_IMAGE = "multitask-tfx:latest"
IMAGE_ROOT = "/pipeline"  # where the Dockerfile copies this repo
# Paths a task pod can read: object stores, volumes mounted under /mnt, the image.
CLUSTER_PREFIXES = ("gs://", "s3://", "/mnt/", IMAGE_ROOT + "/")
# KFP turns the pipeline name into Kubernetes/Argo names (DNS-1123 labels).
_KFP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class RunnerError(Exception):
    """A problem the user fixes with a flag or a file; printed as one line, exit 2."""


def is_cluster_path(path: str) -> bool:
    """True for URLs (gs://, s3://, ...) and paths under a cluster-visible prefix."""
    return "://" in path or any(path.startswith(p) or path + "/" == p for p in CLUSTER_PREFIXES)


# Object stores a pipeline root may name. Open-source KFP v2's launcher maps gs://,
# s3:// and minio:// roots (nothing else: a volume path fails before a task starts),
# and TFX's executors read and write the artifact URIs themselves through
# TensorFlow's file systems: the image's TensorFlow 2.16 reads gs:// (through
# tensorflow-io-gcs-filesystem); s3:// needs tensorflow-io, which the lock does not
# hold, and no TensorFlow file system reads minio://.
ROOT_SCHEMES = ("gs://",)
_REFUSED_ROOTS = {
    "s3://": "TensorFlow 2.16 in the image reads s3:// only through the tensorflow-io package, "
             "which requirements.txt does not hold",
    "minio://": "the launcher accepts minio://, but TFX's executors write artifacts through "
                "TensorFlow, which has no minio:// file system",
}


def check_pipeline_root(root: str) -> str:
    """The pipeline root without a trailing '/', or RunnerError when a KFP v2 run could not use it."""
    for prefix, why in _REFUSED_ROOTS.items():
        if root.startswith(prefix):
            raise RunnerError(f"--pipeline-root {root}: {why}; use gs://BUCKET/PATH (docs/kubeflow.md)")
    if not root.startswith(ROOT_SCHEMES) or len(root.rstrip("/")) <= len("gs://"):
        raise RunnerError(
            f"--pipeline-root {root} is not an object store URL; Kubeflow Pipelines' launcher maps only "
            "object store roots to its tasks (a volume path fails before a task starts): use gs://BUCKET/PATH "
            "(docs/kubeflow.md)")
    return root.rstrip("/")


def kfp_pipeline_name(name: str) -> str:
    """The config's name made valid for KFP: lower case, '_' -> '-'."""
    kfp_name = name.lower().replace("_", "-")
    if not _KFP_NAME.match(kfp_name) or len(kfp_name) > MAX_NAME_LENGTH:
        raise RunnerError(
            f"config name {name!r} cannot name a Kubeflow pipeline (as {kfp_name!r}): it must be at most "
            f"{MAX_NAME_LENGTH} letters, digits, '-' or '_', starting and ending with a letter or digit")
    return kfp_name


def schema_in_image(config: Config, image_root: str = IMAGE_ROOT) -> str:
    """Path, inside the image, of the checked-in contract schema for this config.

    ImportSchemaGen reads the file in the task pod, so it must be in the image
    and must be this config's contract; a stale copy would fail every run at
    the anomaly gate.
    """
    from schemas.contract import schema_text

    rel = posixpath.join("schemas", f"{config.name}.pbtxt")
    fix = f"run: python -m schemas --config CONFIG --output {rel} (then rebuild the image)"
    local = os.path.join(REPO_ROOT, rel)
    if not os.path.isfile(local):
        raise RunnerError(f"schema {rel} is missing; the image must contain it; {fix}")
    with open(local) as f:
        if f.read() != schema_text(config):
            raise RunnerError(f"schema {rel} does not match config {config.name!r}; {fix}")
    return posixpath.join(image_root, rel)


def local_paths_in(config: Config, paths) -> list[str]:
    """'what: path' for every path a task pod could not read."""
    found = [f"sources[{s.name}].path: {s.path}" for s in config.sources if not is_cluster_path(s.path)]
    for what in ("pipeline_root", "serving_model_dir", "report_dir", "span_store"):
        value = getattr(paths, what)
        if value and not is_cluster_path(value):  # span_store "": under the pipeline root
            found.append(f"{what}: {value}")
    return found


def cluster_paths(args, config: Config, schema_file: str):
    from pipeline.pipeline import PipelinePaths

    root = check_pipeline_root(args.pipeline_root)
    return PipelinePaths(
        pipeline_root=root,
        schema_file=schema_file,
        serving_model_dir=args.serving_dir or posixpath.join(root, "serving_model", config.name),
        report_dir=args.report_dir or posixpath.join(root, "report", config.name),
        metadata_path=None,  # the cluster's MLMD
        span_store=args.span_store or "",  # "": PIPELINE_ROOT/span_store
    )


def yaml_path_for(output: str) -> str:
    return (output[:-5] if output.endswith(".json") else output) + ".yaml"


def compile_pipeline(config: Config, paths, options, image: str, output: str) -> dict:
    """Writes the TFX PipelineJob JSON to `output` and its pipelineSpec as YAML beside it."""
    import yaml
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    output = os.path.abspath(output)
    # Spec 2.1: parameters as `runtimeValue.constant` with a `parameterType`, the only
    # form the open-source KFP v2 driver reads (2.0.0's `constantValue` reaches no task there).
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True),
        output_dir=os.path.dirname(output), output_filename=os.path.basename(output))
    job = runner.run(create_pipeline(config, paths, options), write_out=True)
    # kfp.Client takes .yaml/.zip/.tar.gz packages holding the pipelineSpec, not TFX's JSON.
    with open(yaml_path_for(output), "w") as f:
        yaml.safe_dump(job["pipelineSpec"], f, sort_keys=True)
    return job


def component_ids(job: dict) -> list[str]:
    return sorted(job["pipelineSpec"]["root"]["dag"]["tasks"])


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Compile the multitask TFX pipeline for Kubeflow Pipelines v2 and submit it.",
        epilog="Beam args start with '--', so pass them with '=': --beam-arg=--runner=DataflowRunner")
    ap.add_argument("--config", default="configs/default.yaml", help="run config (YAML)")
    ap.add_argument("--pipeline-root", required=True,
                    help="where runs write artifacts: gs://BUCKET/PATH (the one object store both KFP's "
                         "launcher and TensorFlow in the image take; docs/kubeflow.md)")
    ap.add_argument("--image", default=DEFAULT_IMAGE,
                    help=f"image built from ./Dockerfile that every component runs in (default {DEFAULT_IMAGE}; "
                         "use a unique tag per build, see docs/kubeflow.md)")
    ap.add_argument("--image-root", default=IMAGE_ROOT,
                    help=f"where the image holds this repo (default {IMAGE_ROOT}, as the Dockerfile puts it); "
                         "the spec names the schema file under it")
    ap.add_argument("--serving-dir", help="the Pusher's destination (default PIPELINE_ROOT/serving_model/NAME)")
    ap.add_argument("--report-dir", help="where the per-task report goes (default PIPELINE_ROOT/report/NAME)")
    ap.add_argument("--span-store", help="where converted spans are kept across runs "
                                         "(default PIPELINE_ROOT/span_store; docs/continuous.md)")
    ap.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                    help="Beam pipeline arg appended to the config's beam.args (repeatable)")
    ap.add_argument("--output", default="pipeline.json",
                    help="compiled TFX PipelineJob JSON; the pipelineSpec is also written as .yaml beside it")
    ap.add_argument("--compile-only", action="store_true", help="compile, do not submit")
    ap.add_argument("--host", default=os.environ.get("KF_PIPELINES_ENDPOINT"),
                    help="KFP API endpoint, e.g. http://localhost:8080 (default $KF_PIPELINES_ENDPOINT)")
    ap.add_argument("--experiment", default="multitask", help="KFP experiment (created if missing)")
    ap.add_argument("--namespace", help="Kubernetes namespace (multi-user Kubeflow only)")
    ap.add_argument("--run-name", help="run name (default NAME YYYY-mm-dd HH-MM-SS)")
    ap.add_argument("--dry-run", action="store_true",
                    help="compile and print what would be submitted; contacts nothing")
    ap.add_argument("--no-cache", action="store_true",
                    help="rerun every component (needed when source files changed under the same path)")
    ap.add_argument("--allow-local-paths", action="store_true",
                    help="submit even if data/output paths are local to this machine (warns; "
                         "--compile-only only warns anyway)")
    return ap.parse_args(argv)


def submit(args, yaml_path: str, run_name: str):
    import warnings

    import kfp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0.0-beta.2"
        client = kfp.Client(host=args.host, **({"namespace": args.namespace} if args.namespace else {}))
    return client.create_run_from_pipeline_package(
        yaml_path, arguments={}, run_name=run_name, experiment_name=args.experiment,
        namespace=args.namespace, pipeline_root=args.pipeline_root.rstrip("/"),
        enable_caching=not args.no_cache)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        config = load(args.config)
        # format options, face boxes, sample settings; the data paths are the pods' (not checked here)
        validate(config, check_paths=False)
        schema_file = schema_in_image(config, args.image_root)
        kfp_name = kfp_pipeline_name(config.name)
        if not args.compile_only and not args.dry_run and not args.host:
            raise RunnerError("no KFP endpoint: give --host URL (or set KF_PIPELINES_ENDPOINT), "
                              "or use --compile-only / --dry-run")
        paths = cluster_paths(args, config, schema_file)
        local = local_paths_in(config, paths)
        # Compiling alone puts nothing at risk (the spec can be read, or compiled again with
        # cluster paths): local paths are warnings then; a submission refuses them.
        if local and not args.allow_local_paths and not args.compile_only:
            raise RunnerError(
                "paths a Kubeflow pod cannot read (use gs://, /mnt/... or /pipeline/..., "
                f"or pass --allow-local-paths): {'; '.join(local)}")
    except ConfigError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    except RunnerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in local:
        print(f"WARNING: local path in a Kubeflow pipeline, pods will not find it: {line}", file=sys.stderr)

    if kfp_name != config.name:
        # The pipeline name becomes Argo/Kubernetes names, which allow no '_'.
        print(f"note: Kubeflow pipeline name is {kfp_name!r} (config name {config.name!r})")
        config = dataclasses.replace(config, name=kfp_name)

    import warnings

    # Each Vertex AI module TFX's Kubeflow runner imports warns about Python 3.10.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core")
    from pipeline.pipeline import RunOptions

    # No source fingerprint: it would list files on gs:// at compile time; the
    # KFP cache keys on the config and the image instead (docs/kubeflow.md).
    options = RunOptions(beam_args=tuple(config.beam.args) + tuple(args.beam_arg),
                         enable_cache=not args.no_cache, source_fingerprint="")
    job = compile_pipeline(config, paths, options, args.image, args.output)
    yaml_path = yaml_path_for(os.path.abspath(args.output))
    print(f"compiled: {os.path.abspath(args.output)}\npipeline spec: {yaml_path}")
    if args.compile_only:
        return 0

    run_name = args.run_name or f"{kfp_name} {datetime.datetime.now():%Y-%m-%d %H-%M-%S}"
    if args.dry_run:
        print("dry run, nothing submitted. Would submit:")
        for key, value in (("host", args.host or "(none given)"), ("namespace", args.namespace or "(default)"),
                           ("experiment", args.experiment), ("run name", run_name),
                           ("pipeline root", paths.pipeline_root), ("image", args.image),
                           ("caching", "off" if args.no_cache else "on"),
                           ("beam args", " ".join(options.beam_args) or "(none)"),
                           ("components", ", ".join(component_ids(job)))):
            print(f"  {key}: {value}")
        return 0

    try:
        result = submit(args, yaml_path, run_name)
    except Exception as e:  # kfp raises ApiException, TimeoutError, urllib3 errors, ...
        first_line = str(e).splitlines()[0] if str(e) else ""
        print(f"error: submitting to {args.host} failed: {type(e).__name__}: {first_line}", file=sys.stderr)
        return 1
    print(f"submitted run {result.run_id} ({run_name!r}) to experiment {args.experiment!r} at {args.host}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
