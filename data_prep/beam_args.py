"""What every Beam job of the project adds to the user's Beam args (config `beam.args`,
`--beam-arg`) so that it also runs on a portable runner (Flink, Spark, Beam's job service;
docs/distributed.md, "Beam's portable path"). Both were found running the pipeline that way
(tests/e2e/test_portable.py); the DirectRunner needs neither and ignores both.

- `--beam_plugins=data_prep.beam_args`: this module, imported first thing in every SDK worker
  process (Beam's worker entry point, `apache_beam.runners.worker.sdk_worker_main`, imports the
  plugins before it runs a bundle). It sets `TF_USE_LEGACY_KERAS=1`, as every process of the
  project does (components/*, the Dockerfile): on a worker of Beam's stock SDK image, the
  Evaluator's TFMA otherwise loads the Trainer's tf_keras SavedModel with Keras 3 and fails
  ("File format not supported"). A worker without the project staged (`--setup_file`, or the
  project's image) only logs that the plugin did not import.
- `--job_server_timeout=86400`, unless given: Beam 2.59's PortableRunner (and FlinkRunner,
  SparkRunner, built on it) opens the job's state and message streams with the job server
  timeout as their deadline, 60 s by default, so a job that runs longer than that fails in the
  launcher with `DEADLINE_EXCEEDED` (`Stream removed`) while it still runs. The same value bounds
  the wait for an unreachable job endpoint: pass `--job_server_timeout=N` to choose another.
"""
from __future__ import annotations

import os
from typing import Iterable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

PLUGIN = __name__
JOB_SERVER_TIMEOUT_S = 86400


def complete(beam_args: Iterable[str]) -> list[str]:
    """`beam_args` plus the worker plugin (once) and a job server timeout (unless one is given)."""
    args = list(beam_args)
    if f"--beam_plugins={PLUGIN}" not in args:
        args.append(f"--beam_plugins={PLUGIN}")
    if not any(a.split("=", 1)[0] in ("--job_server_timeout", "--job-server-timeout") for a in args):
        args.append(f"--job_server_timeout={JOB_SERVER_TIMEOUT_S}")
    return args
