"""What every Beam SDK worker must set before it runs the project's DoFns.

Imported first thing in each SDK worker process: `with_worker_plugin` adds this module to the
Beam args as `--beam_plugins=pipeline.beam_worker`, and Beam's worker entry point
(`apache_beam.runners.worker.sdk_worker_main`) imports every plugin before it runs a bundle.
The DirectRunner runs bundles in the launching process, which has set this already; a portable
runner's workers (Flink, Spark, Dataflow, Beam's job service) are other processes, and a worker
from Beam's stock SDK image has not: there, TFMA's model loading in the Evaluator fails with
Keras 3's "File format not supported" on the Trainer's tf_keras SavedModel.
A worker without the project staged (`--setup_file`, or the project's image) only logs that the
plugin did not import.
"""
from __future__ import annotations

import os
from typing import Iterable

# tf.keras is tf_keras (Keras 2), as in every process of the project (components/*, Dockerfile).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

PLUGIN = __name__


def with_worker_plugin(beam_args: Iterable[str]) -> list[str]:
    """`beam_args` plus `--beam_plugins=pipeline.beam_worker` (once)."""
    args = list(beam_args)
    if f"--beam_plugins={PLUGIN}" not in args:
        args.append(f"--beam_plugins={PLUGIN}")
    return args
