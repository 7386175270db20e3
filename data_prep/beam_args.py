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

And, for the conversion only, `conversion_mode`: on the DirectRunner with no mode given,
`multi_processing` with a worker per core from MULTI_PROCESS_FROM records on a machine of
MULTI_PROCESS_MIN_CORES cores or more, else in-process.
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

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


# The conversion's DirectRunner mode, chosen by size when the user chose none (docs/data_prep.md,
# "Choosing in-process or multi-process"). On UTKFace's 200x200 chips, on this project's 2 cores
# when quiet, one in-process worker started in ~0.7 s and converted ~2,100 images/s; two
# `multi_processing` workers started in ~5 s (each imports Beam) and converted ~4,100 images/s
# together: 0.7 + N / 2,100 = 5.2 + N / 4,100 at N ~ 20,000. On the same 2 cores shared with other
# jobs (load ~3), on bench-scale's GENKI-4K + IMDB-WIKI images, two workers were slower than one
# at 8,000 and at 32,000 images (16.6 vs 13.6 s; 33-43 vs 21-22 s, with +470 MB of worker RSS):
# two cores leave the workers none to themselves. Hence multi-process only from
# MULTI_PROCESS_FROM records AND MULTI_PROCESS_MIN_CORES cores (an estimate: no such machine here).
MULTI_PROCESS_FROM = 20_000
MULTI_PROCESS_MIN_CORES = 4
_MODE_FLAGS = ("--direct_running_mode", "--direct_num_workers")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def conversion_mode(beam_args: Sequence[str], records: int, cores: int | None = None) -> tuple[list[str], str]:
    """(Beam args to add, a line saying which mode the conversion runs in and why) for a job of
    `records` raw records with `beam_args` (the last `--runner` wins, DirectRunner when none).
    Adds nothing unless the runner is the DirectRunner and neither `--direct_running_mode` nor
    `--direct_num_workers` is given: then `multi_processing` with a worker per core from
    MULTI_PROCESS_FROM records on MULTI_PROCESS_MIN_CORES cores or more, else one worker in this
    process."""
    runner = "DirectRunner"
    for i, arg in enumerate(beam_args):
        if arg == "--runner" and i + 1 < len(beam_args):
            runner = beam_args[i + 1]
        elif arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
    if runner not in ("DirectRunner", "direct"):
        return [], f"runner {runner}: the runner's workers"
    given = [a for a in beam_args if a.split("=", 1)[0] in _MODE_FLAGS]
    if given:
        return [], f"DirectRunner as the Beam args set it ({' '.join(given)})"
    cores = _cores() if cores is None else cores
    if records < MULTI_PROCESS_FROM or cores < MULTI_PROCESS_MIN_CORES:
        why = (f"{records:,} records < {MULTI_PROCESS_FROM:,}" if records < MULTI_PROCESS_FROM
               else f"{cores} cores < {MULTI_PROCESS_MIN_CORES}")
        return [], f"DirectRunner in-process, 1 worker ({why})"
    return (["--direct_running_mode=multi_processing", f"--direct_num_workers={cores}"],
            f"DirectRunner multi_processing, {cores} workers ({records:,} records >= {MULTI_PROCESS_FROM:,})")
