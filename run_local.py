"""Runs the whole pipeline locally with LocalDagRunner.

    python run_local.py --config configs/default.yaml --output-dir outputs

It only configures `pipeline.pipeline.create_pipeline`: works out paths under
the output dir, generates the bundled sample data where a source asks for it
and its path is missing, writes the contract schema, runs the DAG and prints
the per-task report.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before any TensorFlow import

import argparse
import json
import logging
import sys
import time

from pipeline.config import ConfigError, load


def local_paths(output_dir: str, config_name: str, schema_file: str):
    from pipeline.pipeline import PipelinePaths

    out = os.path.abspath(output_dir)
    return PipelinePaths(
        pipeline_root=os.path.join(out, "tfx", config_name),
        schema_file=schema_file,
        serving_model_dir=os.path.join(out, "serving_model"),
        report_dir=os.path.join(out, "report"),
        # One MLMD store per pipeline name: the baseline resolver looks at every
        # Model in its store, and another config's model has other outputs.
        metadata_path=os.path.join(out, "tfx", config_name, "metadata.sqlite"),
    )


def format_table(report: dict) -> str:
    rows = [("task", "type", "eval n", "chance", "metric", "value")]
    for name, task in report["tasks"].items():
        # The task's primary metric, the one its chance level is given in.
        metric = task.get("chance_metric") or ("accuracy" if "accuracy" in task["metrics"]
                                               else next(iter(task["metrics"]), "-"))
        value = task["metrics"].get(metric)
        per_label = [v for k, v in task["metrics"].items() if k.startswith(metric + "/")]
        if value is None and per_label:  # multilabel: the mean over labels, as its chance is
            metric, value = f"mean {metric}", sum(per_label) / len(per_label)
        chance = task.get("chance")
        rows.append((name, task["type"], str(task.get("eval_examples", "-")),
                     "-" if chance is None else f"{chance:.3f}", metric,
                     "-" if value is None else f"{value:.3f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def component_times(metadata_path: str, since_ms: int) -> list[tuple[str, float, str]]:
    """(component, seconds, state) of every execution this run recorded in MLMD.

    LocalDagRunner records an execution when a component starts and updates
    it when it ends, so the difference is the component's wall time; cached
    components show as CACHED with ~0 s.
    """
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    conn = metadata_store_pb2.ConnectionConfig()
    conn.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(conn)
    types = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    states = metadata_store_pb2.Execution.State.Name
    runs = [e for e in store.get_executions() if e.create_time_since_epoch >= since_ms]
    return [(types[e.type_id], (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000,
             states(e.last_known_state)) for e in sorted(runs, key=lambda e: e.create_time_since_epoch)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Run the multitask TFX pipeline locally.")
    ap.add_argument("--config", default="configs/default.yaml", help="run config (YAML)")
    ap.add_argument("--output-dir", default="outputs", help="where everything the run writes goes")
    ap.add_argument("--no-cache", action="store_true", help="rerun every component")
    args = ap.parse_args(argv)

    try:
        config = load(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from data_prep.beam_job import SourceError
    from data_prep.generate import generate_missing

    try:
        for path in generate_missing(config):
            print(f"generated sample data: {path}")
    except (ConfigError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tfx import v1 as tfx

    from components.example_gen import source_fingerprint
    from pipeline.pipeline import RunOptions, create_pipeline
    from schemas.contract import write_schema

    paths = local_paths(args.output_dir, config.name,
                        write_schema(config, os.path.join(os.path.abspath(args.output_dir), "schema")))
    options = RunOptions(beam_args=config.beam.args, enable_cache=not args.no_cache,
                         source_fingerprint=source_fingerprint(config))
    start = time.time()
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config, paths, options))
    elapsed = time.time() - start

    with open(os.path.join(paths.report_dir, "report.json")) as f:
        report = json.load(f)
    print()
    print(format_table(report))
    times = component_times(paths.metadata_path, int(start * 1000))
    with open(os.path.join(os.path.abspath(args.output_dir), "last_run.json"), "w") as f:
        json.dump({"pipeline_s": round(elapsed, 1),
                   "components": [{"component": n, "seconds": t, "state": st} for n, t, st in times]},
                  f, indent=2)
    print("\ncomponent times: " + ", ".join(f"{n} {t:.1f} s{' (cached)' if st == 'CACHED' else ''}"
                                            for n, t, st in times))
    print(f"\nblessed: {report.get('blessed')}   pipeline time: {elapsed:.0f} s")
    print(f"report: {os.path.join(paths.report_dir, 'index.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
