"""FashionAI attributes: `<path>/Annotations/label.csv` plus the images it lists.

Each row is `image,attr_key,labels`, no header, e.g.
`Images/collar_design_labels/0a1b....jpg,collar_design_labels,nnynn`: the
image path is relative to `<path>`, the label string has one letter per
class of that attribute, `y` = the class, `n` = not, `m` = maybe (ignored).
Each attribute key is its own task (options.attributes); a row yields one
example. Rejected rows: no `y` (`no_y_label`), several (`multiple_y_labels`),
a length other than the task's class count (`wrong_label_length`), letters
other than y/n/m or a row without 3 fields (`bad_label` / `bad_row`), an
attribute not mapped (`unknown_attribute`, or `skipped_attribute` with
`unknown_attributes: skip`: still counted and dead-lettered, but marked
as intended), the same image and attribute twice (`duplicate_row`), a path
outside `<path>` (`path_escapes_root`).
Raw id = the image path; group id = the image path too (no identities).
"""
from __future__ import annotations

import csv
import io
import os

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats._labels import relative_path
from data_prep.formats._options import check_option_keys, fail, require_mapped, task_option
from data_prep.records import Parsed, RawRecord, Reject, SourceError

OPTIONS = ("attributes", "labels_file", "unknown_attributes")
DEFAULT_LABELS_FILE = "Annotations/label.csv"
# Class counts of the eight attributes of the FashionAI 2018 attribute set.
KNOWN_ATTRIBUTES = {"coat_length_labels": 8, "collar_design_labels": 5, "lapel_design_labels": 5,
                    "neck_design_labels": 5, "neckline_design_labels": 10, "pant_length_labels": 6,
                    "skirt_length_labels": 6, "sleeve_length_labels": 9}


def labels_file(source: SourceConfig) -> str:
    return source.options.get("labels_file", DEFAULT_LABELS_FILE)


def validate_options(source: SourceConfig, config: Config) -> None:
    check_option_keys(source, config, OPTIONS)
    attrs = source.options.get("attributes")
    if not isinstance(attrs, dict) or not attrs:
        fail(source, config, "options.attributes",
             f"expected a mapping attr_key -> task, e.g. {{collar_design_labels: collar}}, received {attrs!r}")
    for key, task in attrs.items():
        task_option(source, config, f"options.attributes.{key}", task, ("binary", "multiclass"))
        known = KNOWN_ATTRIBUTES.get(key)
        if known is not None and config.task(task).width != known:
            fail(source, config, f"options.attributes.{key}",
                 f"{key} has {known} classes in FashionAI; task {task!r} has {config.task(task).width}")
    tasks = list(attrs.values())
    if len(set(tasks)) != len(tasks):
        fail(source, config, "options.attributes", f"each attribute needs its own task, received {attrs!r}")
    require_mapped(source, config, tasks, "map them in options.attributes")
    if source.options.get("unknown_attributes", "reject") not in ("reject", "skip"):
        fail(source, config, "options.unknown_attributes",
             f"received {source.options['unknown_attributes']!r}; valid: reject, skip")
    rel = labels_file(source)
    if not isinstance(rel, str) or relative_path(rel) is None:
        fail(source, config, "options.labels_file", f"expected a path relative to the source path, received {rel!r}")


def layout(source: SourceConfig) -> tuple[str, ...]:
    """What the source's path holds (config.validate checks it before a run)."""
    return (relative_path(labels_file(source)),)


def list_records(source: SourceConfig, config: Config) -> list[RawRecord]:
    path = os.path.join(source.path, labels_file(source))
    if not fileio.exists(path):
        raise SourceError(f"source {source.name!r} (fashionai): {path} does not exist (options.labels_file = "
                          f"{labels_file(source)!r}); expected rows image,attr_key,labels")
    text = fileio.read_bytes(path).decode("utf-8-sig")
    records, seen = [], set()
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        line_no = reader.line_num
        if not row or not "".join(row).strip():
            continue  # blank lines are not rows
        image = row[0].strip()
        rel = relative_path(image)
        key = rel or image  # normalised, as the CSV format compares paths
        duplicate = len(row) == 3 and (key, row[1].strip()) in seen
        seen.add((key, row[1].strip() if len(row) > 1 else ""))
        records.append(RawRecord(
            raw_id=image or f"{labels_file(source)}:{line_no}",
            path=os.path.join(source.path, rel) if rel else "",
            fields={"line": line_no, "row": row, "duplicate": duplicate}))
    return records


def parse_record(record: RawRecord, source: SourceConfig, config: Config) -> Parsed:
    f = record.fields
    where = f"{labels_file(source)} line {f['line']}"
    row = f["row"]
    if len(row) != 3:
        raise Reject("bad_row", f"{where}: expected 3 fields image,attr_key,labels, received {row!r}")
    image, key, label = (c.strip() for c in row)
    if not record.path:
        raise Reject("path_escapes_root", f"{where}: image path {image!r} is not inside the source path")
    if f["duplicate"]:
        raise Reject("duplicate_row", f"{where}: {image} already labelled for {key}")
    attrs = source.options["attributes"]
    if key not in attrs:
        skip = source.options.get("unknown_attributes", "reject") == "skip"
        raise Reject("skipped_attribute" if skip else "unknown_attribute",
                     f"{where}: attribute {key!r} is not in options.attributes ({', '.join(attrs)})")
    task = config.task(attrs[key])
    if set(label) - set("ynm"):
        raise Reject("bad_label", f"{where}: label {label!r} holds letters other than y, n, m")
    if len(label) != task.width:
        raise Reject("wrong_label_length", f"{where}: label {label!r} has {len(label)} letters; "
                                           f"task {task.name!r} ({key}) has {task.width} classes")
    ys = label.count("y")
    if ys != 1:
        raise Reject("no_y_label" if ys == 0 else "multiple_y_labels",
                     f"{where}: label {label!r} must hold exactly one y, holds {ys}")
    return Parsed(group_id=image, labels={task.name: label.index("y")})
