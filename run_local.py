"""Runs the whole pipeline locally with LocalDagRunner.

    python run_local.py --config configs/default.yaml --output-dir outputs

It only configures `pipeline.pipeline.create_pipeline`: works out paths under
the output dir, generates the bundled sample data where a source asks for it
and its path is missing, writes the contract schema, runs the DAG and prints
the per-task report. runners/run_guard.py keeps the output dir to one run of
one config at a time, cleans up after killed runs, and turns a failure into
one `error:` line with the traceback in `<output-dir>/logs/`.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before any TensorFlow import

import argparse
import contextlib
import json
import logging
import sys
import time

from config import ConfigError, error_line, load, validate
from runners.console import text_table


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
    return text_table(rows)


def blessing_lines(report: dict, elapsed: float) -> list[str]:
    """The run's last word on the blessing: the verdict, where it came from, and the report's
    `not_blessed_reason` word for word (components/report/blessing.py), so a model that is not
    blessed always says why here too."""
    lines = [f"blessed: {report.get('blessed')} ({report.get('blessed_from')})   pipeline time: {elapsed:.0f} s"]
    if report.get("not_blessed_reason"):
        lines.append(f"not blessed: {report['not_blessed_reason']}")
    return lines


def span_lines(report: dict) -> list[str]:
    """What the run did with each source's spans, and the drift check's verdict (sources with spans only)."""
    lines = []
    for src, s in (report.get("spans_detail") or {}).items():
        if "{SPAN}" not in (s.get("pattern") or ""):
            continue
        lines.append(f"spans {src}: trained on {s.get('train')}, evaluated on {s.get('eval')}; "
                     f"converted {s.get('converted') or 'none'}, reused {s.get('reused') or 'none'}")
    check = report.get("drift_check") or {}
    if lines and check.get("status"):
        lines.append(f"drift: {check['status']}" + "".join(f"\n  {b}" for b in check.get("breaches") or []))
    return lines


@contextlib.contextmanager
def _console_to_log(log_path: str):
    """The console keeps what this script prints: progress, the table, one `error:` line. The
    libraries' logging, Python warnings, Keras' epoch lines and the native libraries' own writes
    (TensorFlow's CUDA-factory messages, Beam workers) go to the run's log file."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    to_file = logging.FileHandler(log_path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [to_file]
    root.setLevel(logging.INFO)
    saved_raise, logging.raiseExceptions = logging.raiseExceptions, False  # a full disk: no "Logging error" noise
    logging.captureWarnings(True)
    saved = {}  # fd -> a duplicate of what it was: the console
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        stream.flush()
        saved[fd] = os.dup(fd)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log_fd, fd)  # what the process and its children write there goes to the log
        os.close(log_fd)
    # this script's own lines: the console the run started with
    console = {fd: open(dup, "w", buffering=1, closefd=False) for fd, dup in saved.items()}
    try:
        yield console[1], console[2]
    finally:
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            stream.flush()
            console[fd].flush()
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
        logging.captureWarnings(False)
        logging.raiseExceptions = saved_raise
        root.handlers[:], root.level = saved_handlers, saved_level
        to_file.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Run the multitask TFX pipeline locally.")
    ap.add_argument("--config", default="configs/default.yaml", help="run config (YAML)")
    ap.add_argument("--output-dir", default="outputs", help="where everything the run writes goes")
    ap.add_argument("--no-cache", action="store_true", help="rerun every component")
    ap.add_argument("--wait", action="store_true",
                    help="if another run holds the output dir, wait for it instead of refusing")
    args = ap.parse_args(argv)

    try:
        config = load(args.config)
        validate(config)  # format options, face boxes, sample settings, source layouts: before any heavy work
    except ConfigError as e:
        print(error_line(e), file=sys.stderr)
        return 2

    from runners import run_guard

    try:
        with run_guard.hold_output_dir(args.output_dir, config.name, wait=args.wait) as held:
            return _run(args, config, held)
    except run_guard.OutputDirError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args, config, held) -> int:
    print(f"log: {held.log_path}")
    with _console_to_log(held.log_path) as (out, err):
        return _run_logged(args, config, held, out, err)


def _run_logged(args, config, held, console, errors) -> int:
    def say(text: str = "") -> None:
        print(text, file=console)

    def fail(text: str) -> None:
        print(text, file=errors)

    from config.errors import failure_line, write_traceback
    from data_prep.beam_job import SourceError
    from data_prep.generate import generate_missing
    from runners import run_guard

    try:
        for path in generate_missing(config):
            say(f"generated sample data: {path}")
    except ConfigError as e:
        fail(error_line(e))
        return 2
    except SourceError as e:
        fail(f"error: {e}")
        return 2

    out = held.output_dir
    pipeline_root = os.path.join(out, "tfx", config.name)  # as local_paths puts them
    metadata_path = os.path.join(pipeline_root, "metadata.sqlite")
    start = time.time()
    try:
        from tfx import v1 as tfx

        from components.example_gen.component import source_fingerprint
        from pipeline.pipeline import RunOptions, create_pipeline
        from schemas.contract import write_schema

        for cleaned in run_guard.abandon_interrupted(metadata_path, pipeline_root):
            say(f"cleaned up {cleaned}: left running by a killed run")
        paths = local_paths(out, config.name, write_schema(config, os.path.join(out, "schema")))
        assert (paths.pipeline_root, paths.metadata_path) == (pipeline_root, metadata_path)
        options = RunOptions(beam_args=config.beam.args, enable_cache=not args.no_cache,
                             source_fingerprint=source_fingerprint(config))
        start = time.time()
        with run_guard.Progress(paths.metadata_path, int(start * 1000), out=say):
            tfx.orchestration.LocalDagRunner().run(create_pipeline(config, paths, options))
        elapsed = time.time() - start
        with open(os.path.join(paths.report_dir, "report.json")) as f:
            report = json.load(f)
    except ConfigError as e:  # validate() ran first; a check that only a component can make
        fail(error_line(e))
        return 2
    except Exception as e:  # noqa: BLE001 - every runtime failure ends as one line and a log
        component = run_guard.failed_component(metadata_path, int(start * 1000))
        log_path = write_traceback(held.log_path, e)
        fail(failure_line(e, component, out, log_path))
        return 1

    say()
    say(format_table(report))
    times = run_guard.executions_since(paths.metadata_path, int(start * 1000))
    with open(os.path.join(out, "last_run.json"), "w") as f:
        json.dump({"pipeline_s": round(elapsed, 1),
                   "components": [{"component": n, "seconds": t, "state": st} for n, t, st in times],
                   # per source: spans trained on, evaluated, converted by this run, reused from the store
                   "spans": report.get("spans_detail") or {}},
                  f, indent=2)
    say("\ncomponent times: " + ", ".join(f"{n} {t:.1f} s{' (cached)' if st == 'CACHED' else ''}"
                                            for n, t, st in times))
    for line in span_lines(report):
        say(line)
    say()
    for line in blessing_lines(report, elapsed):
        say(line)
    say(f"report: {os.path.join(paths.report_dir, 'index.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
