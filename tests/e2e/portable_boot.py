"""An SDK worker's boot, as Beam's Python SDK container does it (its Go `boot` binary), without Docker.

Beam's worker pool (`python -m apache_beam.runners.worker.worker_pool_main
--container_executable=<this, wrapped>`) starts it once per SDK worker with the container
contract's flags. Like the container's boot it:
  1. asks the runner's provision service for the job's pipeline options and staged artifacts;
  2. fetches every artifact (the `--setup_file` sdist `workflow.tar.gz`, `--extra_package`s and
     their manifest `extra_packages.txt`, a `--requirements_file` as `requirements.txt` with the
     packages the stager downloaded for it, a pickled main session) from the artifact retrieval
     service into <work dir>/staged;
  3. pip-installs, in the container's order, the staged requirements (`pip install -r
     requirements.txt --no-index --no-deps --find-links <staged>`: the container's first, offline
     round; its second round, which may reach PyPI, is left out), then the extra packages the
     manifest lists, then the sdist (offline: `--no-index --no-deps`; the worker's environment
     already has the project's requirements, as the project's Docker image has), into
     <work dir>/site, put first on the worker's PYTHONPATH: the shared virtualenv is not touched,
     and only what the staged requirements file names goes into site;
  4. runs `apache_beam.runners.worker.sdk_worker_main` with the environment the container gives it.
The worker pool is started without the repository on PYTHONPATH and outside it, so the project's
modules reach a worker only through what the job staged: what a Flink/Spark/Dataflow worker sees.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    import grpc
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import (
        beam_artifact_api_pb2,
        beam_artifact_api_pb2_grpc,
        beam_provision_api_pb2,
        beam_provision_api_pb2_grpc,
        beam_runner_api_pb2,
    )
    from google.protobuf import json_format

    p = argparse.ArgumentParser()
    for flag in ("id", "logging_endpoint", "artifact_endpoint", "provision_endpoint", "control_endpoint"):
        p.add_argument(f"--{flag}", required=True)
    args, _ = p.parse_known_args(argv)

    work = os.path.join(os.environ.get("PORTABLE_BOOT_DIR", "/tmp/portable_boot"), args.id)
    staged, site = os.path.join(work, "staged"), os.path.join(work, "site")
    os.makedirs(staged, exist_ok=True)
    meta = [("worker_id", args.id)]

    info = beam_provision_api_pb2_grpc.ProvisionServiceStub(grpc.insecure_channel(args.provision_endpoint)) \
        .GetProvisionInfo(beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=meta).info
    retrieval = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(grpc.insecure_channel(args.artifact_endpoint))
    names = []
    for dep in info.dependencies:
        if dep.role_urn != common_urns.artifact_roles.STAGING_TO.urn:
            continue
        name = os.path.basename(beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
            dep.role_payload).staged_name)
        with open(os.path.join(staged, name), "wb") as f:
            for chunk in retrieval.GetArtifact(beam_artifact_api_pb2.GetArtifactRequest(artifact=dep), metadata=meta):
                f.write(chunk.data)
        names.append(name)

    # The container's boot installs the staged requirements (from the packages the stager
    # downloaded for them, staged alongside), then the extra packages its manifest lists, then
    # the workflow sdist (setup.py). Other staged wheels (the requirements' own) are not installed.
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
           "--no-build-isolation", "--disable-pip-version-check", "--target", site]
    env = dict(os.environ)
    if "requirements.txt" in names:
        subprocess.run([*pip, "--find-links", staged, "-r", os.path.join(staged, "requirements.txt")],
                       check=True, stdout=sys.stderr)
    packages = []
    if "extra_packages.txt" in names:
        with open(os.path.join(staged, "extra_packages.txt")) as f:
            packages += [line.strip() for line in f if line.strip()]
    packages += [n for n in names if n == "workflow.tar.gz"]
    if packages:
        subprocess.run([*pip, *[os.path.join(staged, n) for n in packages]], check=True, stdout=sys.stderr)
    if os.path.isdir(site):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH", "")]))
    with open(os.path.join(work, "staged_names.json"), "w") as f:
        json.dump(sorted(names), f)

    env.update(
        WORKER_ID=args.id,
        PIPELINE_OPTIONS=json_format.MessageToJson(info.pipeline_options),
        SEMI_PERSISTENT_DIRECTORY=work,
        LOGGING_API_SERVICE_DESCRIPTOR=f"url: '{args.logging_endpoint}'",
        CONTROL_API_SERVICE_DESCRIPTOR=f"url: '{args.control_endpoint}'",
        RUNNER_CAPABILITIES=" ".join(info.runner_capabilities),
    )
    if info.HasField("status_endpoint"):
        env["STATUS_API_SERVICE_DESCRIPTOR"] = f"url: '{info.status_endpoint.url}'"
    os.chdir(work)
    return subprocess.call([sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
