"""The served model's history, and rollback.

    python -m serving.versions [--output-dir DIR | --serving-dir DIR] [--json]
    python -m serving.versions [--output-dir DIR | --serving-dir DIR] --rollback VERSION [--reason TEXT]

The push destination (`<output-dir>/serving_model/`) holds the Pusher's
numbered versions; the newest whole one serves (`serving.predict.pushed_versions`,
the one rule TF Serving, `serving.predict` and the Evaluator's baseline share).
Beside them, `_history/<version>.json` records each version: how it came
(`push`, or `rollback` of an earlier one), the config's name and fingerprint,
the spans, each task's primary metric, whether it was blessed and against
which served version. TF Serving and `pushed_versions` skip the folder: its
name is not a number. One file per version, each written to a temporary name
and renamed, so concurrent runs never write the same file and a killed write
leaves no half record.

A rollback copies the chosen version's files to a NEW, higher version number
instead of deleting the newer ones: the one rule then picks it with no change,
TF Serving loads it as it loads a push, the next run's baseline is it, and
nothing is lost (a rollback can itself be undone). The copy goes to a
temporary sibling whose name is not a number and is renamed into place once
whole; the record is written first, so no rollback serves unrecorded.

Exit status: 0; 2 (one `error:` line) when there is nothing to list or the
rollback's version does not exist; 1 when the copy fails (a full disk). The
destination is then left unchanged.
"""
from __future__ import annotations

import argparse
import datetime
import getpass
import hashlib
import json
import os
import posixpath
import shutil
import sys
import time
import uuid
from typing import Any, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from serving import METADATA_FILE
from serving.predict import pushed_versions

HISTORY_DIR = "_history"
# Not a number, so neither TF Serving nor pushed_versions ever takes a partial copy for a version.
TMP_PREFIX = "_rollback-"
SAVED_MODEL = "saved_model.pb"


class VersionsError(Exception):
    """A destination or version that cannot be used; the message says which and why."""


class _LocalFS:
    """The few tf.io.gfile calls used here, for local paths: listing or refusing a local rollback
    then imports no TensorFlow, whose import prints lines of its own (the error must be one line)."""

    isdir = staticmethod(os.path.isdir)
    exists = staticmethod(os.path.exists)
    listdir = staticmethod(os.listdir)
    remove = staticmethod(os.remove)
    walk = staticmethod(os.walk)
    rmtree = staticmethod(shutil.rmtree)

    @staticmethod
    def makedirs(path: str) -> None:
        os.makedirs(path, exist_ok=True)

    @staticmethod
    def GFile(path: str, mode: str = "r"):  # noqa: N802 - gfile's name
        return open(path, mode)

    @staticmethod
    def rename(src: str, dst: str, overwrite: bool = False) -> None:
        (os.replace if overwrite else os.rename)(src, dst)

    @staticmethod
    def copy(src: str, dst: str, overwrite: bool = False) -> None:
        if not overwrite and os.path.exists(dst):
            raise FileExistsError(dst)
        shutil.copyfile(src, dst)


def _fs(path: str):
    if _is_local(path):
        return _LocalFS
    import tensorflow as tf  # an object store (gs://, s3://): only TF's filesystems reach it

    return tf.io.gfile


def _join(*parts: str) -> str:
    return posixpath.join(*parts)  # keeps gs:// URLs intact


def _is_local(path: str) -> bool:
    return "://" not in path


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _created_from_version(version: str) -> str | None:
    """The Pusher names a version by its Unix time in seconds."""
    if version.isdigit() and 9 <= len(version) <= 11:
        return datetime.datetime.fromtimestamp(int(version), datetime.timezone.utc).isoformat(timespec="seconds")
    return None


def config_fingerprint(config_dict: dict[str, Any]) -> str:
    """Short hash of a config's canonical JSON: two runs with the same fingerprint ran the same config."""
    text = json.dumps(config_dict, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --- records ---------------------------------------------------------------

def record_path(serving_dir: str, version: str) -> str:
    return _join(serving_dir, HISTORY_DIR, f"{version}.json")


def write_record(serving_dir: str, record: dict[str, Any]) -> str:
    """Writes `_history/<version>.json` whole or not at all (temporary name, then rename)."""
    gfile = _fs(serving_dir)
    path = record_path(serving_dir, str(record["version"]))
    gfile.makedirs(posixpath.dirname(path))
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(record, indent=1, sort_keys=True))
    gfile.rename(tmp, path, overwrite=True)
    return path


def read_records(serving_dir: str) -> dict[str, dict[str, Any]]:
    """{version: record} of every readable record; a file that does not parse is left out."""
    gfile = _fs(serving_dir)
    folder = _join(serving_dir, HISTORY_DIR)
    if not gfile.isdir(folder):
        return {}
    out = {}
    for name in gfile.listdir(folder):
        if not name.endswith(".json"):
            continue
        try:
            with gfile.GFile(_join(folder, name)) as f:
                record = json.load(f)
        except (ValueError, OSError):
            continue
        out[name[:-len(".json")]] = record
    return out


def push_record(version: str, config_dict: dict[str, Any], report: dict[str, Any],
                blessed_against: str | None, model_uri: str | None = None,
                report_dir: str | None = None) -> dict[str, Any]:
    """The record of a version the Pusher wrote, from the run's report (report.json's content)."""
    return {
        "version": version,
        "created": _created_from_version(version) or _now(),
        "source": "push",
        "config": {"name": config_dict.get("name"), "fingerprint": config_fingerprint(config_dict)},
        "spans": report.get("spans"),  # None until ExampleGen records spans
        "metrics": {name: {"metric": t.get("primary_metric"),
                           "value": (t.get("metrics") or {}).get(t.get("primary_metric"))}
                    for name, t in (report.get("tasks") or {}).items()},
        "blessed": report.get("blessed"),
        "blessed_against": blessed_against or None,  # None: no model served yet, value thresholds only
        "model": model_uri,
        "report_dir": report_dir or None,
    }


def record_push(pushed_destination: str, pushed_version: str, config_dict: dict[str, Any],
                report: dict[str, Any], blessed_against: str | None, model_uri: str | None = None,
                report_dir: str | None = None) -> str:
    """Records a push; `pushed_destination` is the Pusher's (the version folder itself). Returns the path."""
    serving_dir = posixpath.dirname(pushed_destination.rstrip("/"))
    return write_record(serving_dir, push_record(pushed_version, config_dict, report, blessed_against,
                                                 model_uri, report_dir))


# --- listing ---------------------------------------------------------------

def _unrecorded(serving_dir: str, version: str) -> dict[str, Any]:
    """What a version pushed before records existed says about itself (the Trainer's metadata)."""
    row: dict[str, Any] = {"version": version, "created": _created_from_version(version), "source": None,
                           "config": None, "spans": None, "metrics": None, "blessed": None,
                           "blessed_against": None, "recorded": False}
    try:
        with _fs(serving_dir).GFile(_join(serving_dir, version, METADATA_FILE)) as f:
            config = json.load(f).get("config") or {}
        row["config"] = {"name": config.get("name"), "fingerprint": None}  # the Trainer's view, not the run's
    except (OSError, ValueError):
        pass
    return row


def list_versions(serving_dir: str) -> list[dict[str, Any]]:
    """Every whole version under `serving_dir`, oldest first, each with its record (or what can be
    read without one) and `serving`: True for the one that serves now."""
    versions = pushed_versions(serving_dir)
    records = read_records(serving_dir)
    rows = []
    for version in versions:
        row = dict(records[version], recorded=True) if version in records else _unrecorded(serving_dir, version)
        row["version"] = version
        row["serving"] = version == versions[-1]
        rows.append(row)
    return rows


def leftovers(serving_dir: str) -> list[str]:
    """Partial copies a killed rollback left (never served: their names are not numbers)."""
    gfile = _fs(serving_dir)
    if not gfile.isdir(serving_dir):
        return []
    return sorted(n.rstrip("/") for n in gfile.listdir(serving_dir) if n.startswith(TMP_PREFIX))


def _source(row: dict[str, Any]) -> str:
    if row.get("source") == "rollback":
        return f"rollback of {row.get('restores')}"
    return row.get("source") or "push (no record)"


def _metrics(row: dict[str, Any]) -> str:
    metrics = row.get("metrics")
    if not metrics:
        return "-"
    parts = []
    for task, m in sorted(metrics.items()):
        value = m.get("value")
        parts.append(f"{task} {m.get('metric')} {'-' if value is None else f'{value:.3f}'}")
    return ", ".join(parts)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    header = ["", "version", "created", "source", "config", "blessed against", "primary metrics"]
    lines = [header]
    for r in rows:
        config = r.get("config") or {}
        name = config.get("name") or "-"
        if config.get("fingerprint"):
            name += f" ({config['fingerprint']})"
        lines.append(["*" if r.get("serving") else "", r["version"], r.get("created") or "-", _source(r), name,
                      r.get("blessed_against") or "-", _metrics(r)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(line, widths)), line[-1]]).rstrip() for line in lines)


# --- rollback --------------------------------------------------------------

def _copy_file(src: str, dst: str) -> None:
    _fs(dst).copy(src, dst, overwrite=False)


def _copy_tree(src: str, dst: str) -> None:
    """Copies `src` into `dst`, saved_model.pb last: where a copy is not renamed whole (an object
    store), the version counts (pushed_versions) only once everything else is there."""
    gfile = _fs(src)
    files = []
    for root, _, names in gfile.walk(src):
        rel = posixpath.relpath(root, src) if _is_local(src) else root[len(src):].strip("/")
        for name in names:
            files.append(posixpath.normpath(_join(rel, name)))
    files.sort(key=lambda f: (f == SAVED_MODEL, f))
    for rel in files:
        gfile.makedirs(posixpath.dirname(_join(dst, rel)))
        _copy_file(_join(src, rel), _join(dst, rel))


def _new_version(existing: Sequence[str]) -> str:
    """Above every version (TF Serving serves the highest) and, like the Pusher's, a Unix time."""
    return str(max(int(time.time()), int(existing[-1]) + 1 if existing else 0))


def rollback(serving_dir: str, version: str, reason: str | None = None) -> dict[str, Any] | None:
    """Makes `version` the served one again as a new, highest version; returns its record, or None
    when it serves already. VersionsError (nothing changed) when `version` is not a whole version
    under `serving_dir`."""
    gfile = _fs(serving_dir)
    versions = pushed_versions(serving_dir)
    if not versions:
        raise VersionsError(f"no pushed versions under {serving_dir}: nothing to roll back to")
    if version not in versions:
        raise VersionsError(f"cannot roll back: no version {version} under {serving_dir}; "
                            f"versions: {', '.join(versions)}")
    current = versions[-1]
    if version == current:
        return None
    restored = read_records(serving_dir).get(version) or _unrecorded(serving_dir, version)
    new = _new_version(versions)
    record = {
        "version": new, "created": _now(), "source": "rollback",
        "restores": version,  # whose files these are
        "rolled_back_from": current,  # what served before
        "reason": reason, "by": _user(),
        # the restored model's own figures: it is the same model
        **{k: restored.get(k) for k in ("config", "spans", "metrics", "blessed", "blessed_against", "model",
                                        "report_dir")},
    }
    final = _join(serving_dir, new)
    tmp = _join(serving_dir, f"{TMP_PREFIX}{new}-{uuid.uuid4().hex[:8]}")
    path = write_record(serving_dir, record)
    try:
        _copy_tree(_join(serving_dir, version), tmp)
        if gfile.exists(final):
            raise VersionsError(f"version {new} appeared under {serving_dir} meanwhile (a push?); "
                                "roll back again")
        if _is_local(serving_dir):
            os.rename(tmp, final)  # atomic: the version appears whole
        else:
            _copy_tree(tmp, final)  # an object store renames object by object; saved_model.pb goes last
            gfile.rmtree(tmp)
    except BaseException:
        for leftover in (tmp, path):
            try:
                (gfile.rmtree if leftover == tmp else gfile.remove)(leftover)
            except Exception:  # noqa: BLE001 - already gone, or never made; the first error is the news
                pass
        raise
    return record


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return None


# --- command line ----------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m serving.versions", description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--output-dir", default="outputs", help="a run's output dir; its serving_model/ is used")
    where.add_argument("--serving-dir", help="the push destination itself (local or gs://)")
    ap.add_argument("--rollback", metavar="VERSION", help="make VERSION serve again, as a new highest version")
    ap.add_argument("--reason", help="why, kept in the rollback's record")
    ap.add_argument("--json", action="store_true", help="the listing (or the rollback's record) as JSON")
    args = ap.parse_args(argv)
    serving_dir = args.serving_dir or os.path.join(args.output_dir, "serving_model")
    try:
        if args.rollback is not None:
            record = rollback(serving_dir, args.rollback, args.reason)
            if record is None:
                print(f"version {args.rollback} serves already under {serving_dir}; nothing changed")
            elif args.json:
                print(json.dumps(record, indent=1, sort_keys=True))
            else:
                print(f"rolled back: version {record['restores']} serves again as version {record['version']} "
                      f"(was {record['rolled_back_from']}); recorded in {record_path(serving_dir, record['version'])}")
            return 0
        rows = list_versions(serving_dir)
        if not rows:
            raise VersionsError(f"no pushed versions under {serving_dir}")
    except VersionsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a failed copy (disk full, permissions): rollback() undid it
        print(f"error: rollback to {args.rollback} failed, nothing changed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=1, sort_keys=True))
        return 0
    print(format_table(rows))
    print("* serves now (the highest version)")
    left = leftovers(serving_dir)
    if left:
        print(f"partial copies of interrupted rollbacks, never served, safe to delete: {', '.join(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
