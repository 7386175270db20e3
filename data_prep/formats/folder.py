"""Class folders: `<path>/<class_name>/<image>` (deeper sub-folders allowed).

The source labels exactly one binary/multiclass task; the top-level folder
name must be one of that task's classes, else each file in it is rejected
(`unknown_class`). Files directly under `<path>` are rejected the same way.
Group id = the file's path relative to `<path>`, or, with `group_regex`, the
regex's first group matched against the file name (an identity such as a
person id, so one person's images never straddle train and eval).
"""
from __future__ import annotations

import os
import re
from typing import Iterator

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats._options import check_option_keys, fail, sole_task
from data_prep.records import Parsed, RawRecord, Reject, SourceError

OPTIONS = ("group_regex",)


def validate_options(source: SourceConfig, config: Config) -> None:
    check_option_keys(source, config, OPTIONS)
    sole_task(source, config, ("binary", "multiclass"))
    pattern = source.options.get("group_regex")
    if pattern is not None:
        try:
            compiled = re.compile(pattern) if isinstance(pattern, str) else None
        except re.error as e:
            fail(source, config, "options.group_regex", f"not a valid regex ({e}), received {pattern!r}")
        if compiled is None or compiled.groups < 1:
            fail(source, config, "options.group_regex",
                 f"expected a regex with a capture group for the identity, e.g. '^(p\\d+)_', received {pattern!r}")


def layout(source: SourceConfig) -> tuple[str, ...]:
    """The source's path is a folder (config.validate checks it before a run)."""
    return ("./",)


def iter_records(source: SourceConfig, config: Config) -> Iterator[RawRecord]:
    """The records as a stream (what the Beam job lists; the walk's sorted entries are
    ~0.15 KB a file, a RawRecord ~1 KB)."""
    if not fileio.isdir(source.path):
        raise SourceError(f"source {source.name!r} (folder): {source.path} is not a directory")
    for rel, problem in fileio.walk_entries(source.path):
        yield RawRecord(raw_id=rel, path=os.path.join(source.path, rel),
                        fields={"class_name": rel.split("/", 1)[0] if "/" in rel else None}, problem=problem)


def list_records(source: SourceConfig, config: Config) -> list[RawRecord]:
    return list(iter_records(source, config))


def parse_record(record: RawRecord, source: SourceConfig, config: Config) -> Parsed:
    task = config.task(source.tasks[0])
    class_name = record.fields["class_name"]
    if class_name not in task.classes:
        where = f"folder {class_name!r}" if class_name else "no class folder"
        raise Reject("unknown_class", f"{where} is not a class of task {task.name!r}; valid: {', '.join(task.classes)}")
    group_id = record.raw_id
    pattern = source.options.get("group_regex")
    if pattern is not None:
        m = re.search(pattern, record.raw_id.rsplit("/", 1)[-1])
        if not m or not m.group(1):
            raise Reject("no_group", f"group_regex {pattern!r} does not match file name {record.raw_id!r}")
        group_id = m.group(1)
    return Parsed(group_id=group_id, labels={task.name: task.classes.index(class_name)})
