"""CSV manifest: `<path>/<manifest>` with a header row, one row per image.

Columns: the image path (options.path_column, relative to the manifest's
folder), one column per task (options.columns, default: the task's name),
optionally a group (identity) column and a face-box column. Cells by task
type: binary / multiclass = a class name; multilabel = class names joined by
options.separator (`|`); regression = a finite number. An empty cell = the
row is not labelled for that task (counted as `missing_<task>`).

    path,smile,tags,age,person
    img/p001_1.jpg,smile,hat|glasses,31,p001

Rejected rows: a path that is empty (`missing_path`), absolute or outside
the manifest's folder (`path_escapes_root`), seen before (`duplicate_path`);
a class name not in the task (`unknown_class`); a regression cell that is
not a finite number (`bad_value`); no label at all (`no_labels`); an empty
group cell (`no_group`); a row with too many / few cells (`bad_row`); with
prep.face_crop, an empty or malformed bbox cell (`missing_bbox`, `bad_bbox`).
Raw id = the path cell; group id = the group cell, else the path.
"""
from __future__ import annotations

import csv
import io
import math
import os
from typing import Any

from config import Config, SourceConfig, TaskConfig
from data_prep import fileio
from data_prep.formats._labels import relative_path
from data_prep.formats._options import check_option_keys, fail
from data_prep.records import Parsed, RawRecord, Reject, SourceError

OPTIONS = ("manifest", "path_column", "columns", "separator", "group_column", "bbox_column", "delimiter")
DEFAULTS = {"manifest": "manifest.csv", "path_column": "path", "separator": "|", "group_column": None,
            "bbox_column": None, "delimiter": ","}


def option(source: SourceConfig, key: str) -> Any:
    return source.options.get(key, DEFAULTS.get(key))


def task_columns(source: SourceConfig) -> dict[str, str]:
    """task -> column; tasks not in options.columns read the column named like the task."""
    return {t: (source.options.get("columns") or {}).get(t, t) for t in source.tasks}


def face_boxes(source: SourceConfig) -> bool:
    return option(source, "bbox_column") is not None


def validate_options(source: SourceConfig, config: Config) -> None:
    check_option_keys(source, config, OPTIONS)
    manifest = option(source, "manifest")
    if not isinstance(manifest, str) or relative_path(manifest) is None:
        fail(source, config, "options.manifest", f"expected a file path relative to the source path, "
                                                 f"received {manifest!r}")
    for key in ("path_column", "group_column", "bbox_column"):
        v = option(source, key)
        if v is not None and (not isinstance(v, str) or not v):
            fail(source, config, f"options.{key}", f"expected a column name, received {v!r}")
    for key in ("separator", "delimiter"):
        v = option(source, key)
        if not isinstance(v, str) or len(v) != 1 or v in "\r\n":
            fail(source, config, f"options.{key}", f"expected one character, received {v!r}")
    cols = source.options.get("columns", {})
    if not isinstance(cols, dict) or not all(isinstance(c, str) and c for c in cols.values()):
        fail(source, config, "options.columns", f"expected a mapping task -> column name, received {cols!r}")
    extra = sorted(set(cols) - set(source.tasks))
    if extra:
        fail(source, config, f"options.columns.{extra[0]}",
             f"not one of this source's tasks; valid: {', '.join(source.tasks)}")
    if option(source, "separator") == option(source, "delimiter"):
        fail(source, config, "options.separator", f"must differ from options.delimiter "
                                                  f"({option(source, 'delimiter')!r})")


def layout(source: SourceConfig) -> tuple[str, ...]:
    """What the source's path holds (config.validate checks it before a run)."""
    return (relative_path(option(source, "manifest")),)


def list_records(source: SourceConfig, config: Config) -> list[RawRecord]:
    manifest = relative_path(option(source, "manifest"))
    path = os.path.join(source.path, manifest)
    if not fileio.exists(path):
        raise SourceError(f"source {source.name!r} (csv): manifest {path} does not exist "
                          f"(options.manifest = {option(source, 'manifest')!r})")
    reader = csv.reader(io.StringIO(fileio.read_bytes(path).decode("utf-8-sig")),
                        delimiter=option(source, "delimiter"))
    header = next(reader, None) or []
    wanted = {"path_column": option(source, "path_column"), "group_column": option(source, "group_column"),
              "bbox_column": option(source, "bbox_column"),
              **{f"columns.{t}": c for t, c in task_columns(source).items()}}
    missing = {k: c for k, c in wanted.items() if c is not None and c not in header}
    if missing:
        raise SourceError(f"source {source.name!r} (csv): manifest {path} lacks column(s) "
                          f"{', '.join(f'{c!r} ({k})' for k, c in missing.items())}; its header: {header}")
    root = os.path.dirname(path)
    pos = header.index(option(source, "path_column"))
    records, seen = [], set()
    for row in reader:
        line_no = reader.line_num  # the row's last line (a quoted cell may span several)
        if not any(c.strip() for c in row):
            continue  # blank lines are not rows
        cell = row[pos].strip() if pos < len(row) else ""
        rel = relative_path(cell)
        # Compared normalised: `images/./x.jpg` and `images/x.jpg` are one file.
        key = rel or cell
        fields = {"line": line_no, "cells": dict(zip(header, row)) if len(row) == len(header) else None,
                  "n_cells": len(row), "duplicate": key in seen, "escapes": bool(cell) and rel is None}
        seen.add(key)
        records.append(RawRecord(raw_id=cell or f"{manifest}:{line_no}",
                                 path=os.path.join(root, rel) if rel else "", fields=fields))
    return records


def _label(task: TaskConfig, cell: str, separator: str) -> Any:
    """A task's label from its cell; raises Reject for a value the task cannot hold."""
    if task.type == "regression":
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise Reject("bad_value", f"task {task.name!r} (regression) needs a finite number, received {cell!r}")
        return value
    names = [n.strip() for n in cell.split(separator)] if task.type == "multilabel" else [cell]
    unknown = [n for n in names if n not in task.classes]
    if unknown:
        raise Reject("unknown_class", f"task {task.name!r}: {', '.join(map(repr, unknown))} not in its "
                                      f"classes {', '.join(task.classes)}")
    if task.type == "multilabel":
        return sorted({task.classes.index(n) for n in names})
    return task.classes.index(cell)


def _bbox(cell: str) -> tuple[float, float, float, float]:
    parts = cell.split()
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
        raise Reject("bad_bbox", f"expected 'x1 y1 x2 y2' (pixels, x2 > x1, y2 > y1), received {cell!r}")
    return box


def parse_record(record: RawRecord, source: SourceConfig, config: Config) -> Parsed:
    f = record.fields
    where = f"{option(source, 'manifest')} line {f['line']}"
    cells = f["cells"]
    if cells is None:
        raise Reject("bad_row", f"{where}: {f['n_cells']} cells, the header has a different count")
    cells = {k: v.strip() for k, v in cells.items()}
    if not cells[option(source, "path_column")]:
        raise Reject("missing_path", f"{where}: empty {option(source, 'path_column')!r} cell")
    if f["escapes"]:
        raise Reject("path_escapes_root", f"{where}: {record.raw_id!r} is not a path inside the manifest's folder")
    if f["duplicate"]:
        raise Reject("duplicate_path", f"{where}: {record.raw_id!r} is listed on an earlier line")
    labels, missing = {}, {}
    for task_name, column in task_columns(source).items():
        if cells[column]:
            labels[task_name] = _label(config.task(task_name), cells[column], option(source, "separator"))
        else:
            missing[task_name] = f"missing_{task_name}"
    if not labels:
        raise Reject("no_labels", f"{where}: every task column is empty "
                                  f"({', '.join(task_columns(source).values())})")
    group = record.raw_id
    if option(source, "group_column") is not None:
        group = cells[option(source, "group_column")]
        if not group:
            raise Reject("no_group", f"{where}: empty {option(source, 'group_column')!r} cell")
    crop = None
    if source.prep.face_crop:
        cell = cells[option(source, "bbox_column")]
        if not cell:
            raise Reject("missing_bbox", f"{where}: empty {option(source, 'bbox_column')!r} cell")
        crop = _bbox(cell)
    return Parsed(group_id=group, labels=labels, missing=missing, crop_box=crop)
