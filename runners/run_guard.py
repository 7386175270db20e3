"""What keeps a local run's output dir consistent: one run at a time, one config per
dir, executions of killed runs cleaned up, and every failure one line plus a log.

Used by run_local.py only (Kubeflow gives each run its own pipeline root and
its orchestrator owns MLMD). Nothing here imports TensorFlow or TFX at module
level: a refused run exits in a second.

- `hold_output_dir`: an advisory `fcntl.flock` on `<out>/.run.lock`. The OS
  releases it when the process ends, however it ends, so a killed run leaves
  no stale lock; the file's text (pid, start time, config) only names the
  holder in the refusal message. `<out>/output_dir.json` records the config
  name the dir belongs to; a run of another config is refused, since
  `report/`, `serving_model/` and `last_run.json` are per output dir.
- `abandon_interrupted`: with the lock held no other run is alive, so an
  execution still NEW or RUNNING in MLMD was killed: it is marked CANCELED
  (custom property `abandoned`), its pending outputs ABANDONED, and its
  partial folders deleted. TFX does not reuse it: a new run has a new run
  context and registers a new execution.
- `Progress`: one console line per component as MLMD records it.

How a failure is told (one `error:` line, the traceback in `<out>/logs/`) is
config/errors.py's, shared by every entry point.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from config.errors import now_text

LOCK_FILE = ".run.lock"
OWNER_FILE = "output_dir.json"
LOG_DIR = "logs"


class OutputDirError(Exception):
    """The output dir cannot take this run (busy, or another config's); the message is one line."""


@dataclass
class Held:
    output_dir: str
    log_path: str
    started: float


@contextlib.contextmanager
def hold_output_dir(output_dir: str, config_name: str, wait: bool = False,
                    log: Callable[[str], None] = print) -> Iterator[Held]:
    """Holds `output_dir` for one run of `config_name`; raises OutputDirError when it cannot."""
    out = os.path.abspath(output_dir)
    os.makedirs(out, exist_ok=True)
    fd = os.open(os.path.join(out, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise OutputDirError(
                    f"output dir {out} is in use by {holder}; wait for it to finish, run again with --wait, "
                    "or use another --output-dir") from None
            log(f"waiting for {holder} to release {out}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _claim(out, config_name)
        started = time.time()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "started": now_text(started),
                                  "config": config_name}).encode(), 0)
        os.makedirs(os.path.join(out, LOG_DIR), exist_ok=True)
        stamp = datetime.datetime.fromtimestamp(started).strftime("%Y%m%d-%H%M%S")
        yield Held(out, os.path.join(out, LOG_DIR, f"run-{stamp}-{os.getpid()}.log"), started)
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race a waiter)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"run PID {info['pid']} (config {info['config']!r}, started {info['started']})"
    except (ValueError, KeyError, OSError):
        return "another run (starting)"


def _claim(out: str, config_name: str) -> None:
    path = os.path.join(out, OWNER_FILE)
    if os.path.exists(path):
        try:
            with open(path) as f:
                owner = json.load(f).get("config")
        except ValueError:
            owner = None  # unreadable: written by a run killed mid-write; claim it again
        if owner is not None and owner != config_name:
            raise OutputDirError(
                f"output dir {out} holds the outputs of config {owner!r} (its report, serving model and "
                f"last_run.json); this config is {config_name!r}: use another --output-dir")
        if owner == config_name:
            return
    tmp = path + f".tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"config": config_name}, f)
    os.replace(tmp, path)


# ----------------------------------------------------------------- killed executions
def _store(metadata_path: str):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    conn = metadata_store_pb2.ConnectionConfig()
    conn.sqlite.filename_uri = metadata_path
    return metadata_store.MetadataStore(conn)


def abandon_interrupted(metadata_path: str, pipeline_root: str) -> list[str]:
    """Marks the executions left NEW/RUNNING by killed runs CANCELED, their pending outputs
    ABANDONED, and deletes their partial folders; returns 'component (execution id)' of each.
    Call only with the output dir held (hold_output_dir): then no run is alive."""
    if not os.path.exists(metadata_path):
        return []
    from ml_metadata.proto import metadata_store_pb2 as pb

    # TFX deletes a node's stateful working folder when the node finishes; names are fresh UUIDs
    # not recorded in MLMD, so with no run alive any left is a killed or failed run's.
    for node in _listdir(pipeline_root):
        for left in _listdir(os.path.join(pipeline_root, node, ".system", "stateful_working_dir")):
            _remove(os.path.join(pipeline_root, node, ".system", "stateful_working_dir", left), pipeline_root)

    store = _store(metadata_path)
    active = (pb.Execution.NEW, pb.Execution.RUNNING)
    killed = [e for e in store.get_executions() if e.last_known_state in active]
    if not killed:
        return []
    types = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    done = []
    for execution in killed:
        events = store.get_events_by_execution_ids([execution.id])
        outputs = {ev.artifact_id for ev in events if ev.type in (pb.Event.OUTPUT, pb.Event.PENDING_OUTPUT)}
        artifacts = store.get_artifacts_by_id(sorted(outputs)) if outputs else []
        for artifact in artifacts:
            if artifact.state in (pb.Artifact.PENDING, pb.Artifact.UNKNOWN):
                _remove(artifact.uri, pipeline_root)
                artifact.state = pb.Artifact.ABANDONED
        if artifacts:
            store.put_artifacts(artifacts)
        for node in _node_ids(store, execution.id):
            # output folders <root>/<node>/<key>/<id> with no artifact in MLMD yet, and the executor's scratch
            system = os.path.join(pipeline_root, node, ".system")
            for folder in ([os.path.join(system, "executor_execution", str(execution.id))]
                           + [os.path.join(pipeline_root, node, key, str(execution.id))
                              for key in _listdir(os.path.join(pipeline_root, node)) if key != ".system"]):
                _remove(folder, pipeline_root)
        execution.custom_properties["abandoned"].string_value = (
            f"still {pb.Execution.State.Name(execution.last_known_state)} when the run of {now_text()} started: "
            "its run was killed")
        execution.last_known_state = pb.Execution.CANCELED
        store.put_executions([execution])
        done.append(f"{types.get(execution.type_id, execution.type_id)} (execution {execution.id})")
    return done


def _node_ids(store, execution_id: int) -> list[str]:
    contexts = store.get_contexts_by_execution(execution_id)
    names = {t.id: t.name for t in store.get_context_types()}
    # a node context is named "<pipeline>.<node id>"
    return [c.name.split(".", 1)[1] for c in contexts if names.get(c.type_id) == "node" and "." in c.name]


def _listdir(path: str) -> list[str]:
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def _remove(path: str, root: str) -> None:
    """Deletes a partial output, only ever under the pipeline root."""
    from data_prep.fileio import inside

    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if not path or real == real_root or not inside(real, real_root) or not os.path.lexists(path):
        return
    if os.path.isdir(real) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        os.remove(path)


# ----------------------------------------------------------------- progress
def executions_since(metadata_path: str, since_ms: int) -> list[tuple[str, float, str]]:
    """(component, seconds, state) of every execution recorded in MLMD since `since_ms`, in start order.

    LocalDagRunner records an execution when a component starts and updates it
    when it ends, so the difference is the component's wall time (RUNNING: so far)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    store = _store(metadata_path)
    types = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    runs = [e for e in store.get_executions() if e.create_time_since_epoch >= since_ms]
    now = time.time() * 1000
    active = (pb.Execution.NEW, pb.Execution.RUNNING)
    return [(types[e.type_id],
             ((now if e.last_known_state in active else e.last_update_time_since_epoch) - e.create_time_since_epoch)
             / 1000,
             pb.Execution.State.Name(e.last_known_state))
            for e in sorted(runs, key=lambda e: (e.create_time_since_epoch, e.id))]


class Progress:
    """Prints a line as each component starts and ends, read from MLMD once a second."""

    def __init__(self, metadata_path: str, since_ms: int, out: Callable[[str], None] = print):
        self.metadata_path, self.since_ms, self.out = metadata_path, since_ms, out
        self.seen: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()  # the last transitions

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.poll()

    def poll(self) -> None:
        if not os.path.exists(self.metadata_path):
            return
        try:
            rows = executions_since(self.metadata_path, self.since_ms)
        except Exception:  # the store is busy or being created: try again next second
            return
        for i, (name, seconds, state) in enumerate(rows):
            if self.seen.get(i) == state:
                continue
            if state in ("NEW", "RUNNING"):
                self.out(f"  {name}: running")
            elif state == "CACHED":
                self.out(f"  {name}: cached")
            else:
                self.out(f"  {name}: {state.lower()} in {seconds:.1f} s")
            self.seen[i] = state


def failed_component(metadata_path: str, since_ms: int) -> str | None:
    """The component that failed in this run: a FAILED execution, else the last one still running."""
    if not os.path.exists(metadata_path):
        return None
    try:
        rows = executions_since(metadata_path, since_ms)
    except Exception:
        logging.exception("could not read %s", metadata_path)
        return None
    for wanted in (("FAILED",), ("RUNNING", "NEW")):
        names = [n for n, _, s in rows if s in wanted]
        if names:
            return names[-1]
    return None
