"""GENKI-4K: `<path>/files/file0001.jpg ...` and `<path>/labels.txt`.

labels.txt has one line per image, `smile yaw pitch roll` (e.g.
`1 -0.021162 0.059530 -0.039662`); line k labels `file%04d.jpg` % k, which is
the sorted file order of the real dataset. Matching by the number in the name
(not by position) keeps one missing image from shifting every later label.
smile 1 = smiling -> class index 1 of the smile task, 0 -> index 0.
Group id (split hashing) = the file name: GENKI-4K has no identities.
"""
from __future__ import annotations

import os
import re
from typing import Iterator

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats._options import check_option_keys, fail, sole_task, task_option
from data_prep.records import Parsed, RawRecord, Reject, SourceError

OPTIONS = ("smile_task",)
IMAGES_DIR = "files"
LABELS_FILE = "labels.txt"
_CLASSIFICATION = ("binary", "multiclass")
_FILE_NAME = re.compile(r"^file(\d+)\.jpe?g$", re.IGNORECASE)


def validate_options(source: SourceConfig, config: Config) -> None:
    check_option_keys(source, config, OPTIONS)
    if "smile_task" in source.options:
        task_option(source, config, "options.smile_task", source.options["smile_task"], _CLASSIFICATION)
        if len(source.tasks) != 1:
            fail(source, config, "tasks", f"GENKI-4K labels only smiles; list just the smile task, "
                                          f"received {list(source.tasks)!r}")
    else:
        sole_task(source, config, _CLASSIFICATION)
    if config.task(source.tasks[0]).width != 2:
        fail(source, config, "tasks", f"the smile task needs 2 classes (no smile, smile), task "
                                      f"{source.tasks[0]!r} has {config.task(source.tasks[0]).width}")


def layout(source: SourceConfig) -> tuple[str, ...]:
    """What the source's path holds (config.validate checks it before a run)."""
    return (IMAGES_DIR + "/", LABELS_FILE)


def iter_records(source: SourceConfig, config: Config) -> Iterator[RawRecord]:
    """Every file in files/, then every label line with no image, as a stream."""
    files_dir = os.path.join(source.path, IMAGES_DIR)
    labels_path = os.path.join(source.path, LABELS_FILE)
    for p in (files_dir, labels_path):
        if not fileio.exists(p):
            raise SourceError(f"source {source.name!r} (genki4k): {p} does not exist; expected "
                              f"{IMAGES_DIR}/file0001.jpg... and {LABELS_FILE}")
    lines = fileio.read_text(labels_path).splitlines()
    while lines and not lines[-1].strip():  # trailing blank lines are not label lines
        lines.pop()
    numbers = set()
    for name in fileio.listdir(files_dir):
        m = _FILE_NAME.match(name)
        number = int(m.group(1)) if m else None
        line = lines[number - 1] if number is not None and 1 <= number <= len(lines) else None
        if number is not None:
            numbers.add(number)
        yield RawRecord(raw_id=name, path=os.path.join(files_dir, name), fields={"number": number, "line": line})
    # Label lines without an image are records too: read = written + rejected.
    for k, line in enumerate(lines, start=1):
        if k not in numbers:
            yield RawRecord(raw_id=f"{LABELS_FILE}:{k}", path="", fields={"number": k, "line": line, "no_image": True})


def list_records(source: SourceConfig, config: Config) -> list[RawRecord]:
    return list(iter_records(source, config))


def parse_record(record: RawRecord, source: SourceConfig, config: Config) -> Parsed:
    f = record.fields
    if f.get("no_image"):
        raise Reject("missing_image", f"{LABELS_FILE} line {f['number']} has no {IMAGES_DIR}/file{f['number']:04d}.jpg")
    if f["number"] is None:
        raise Reject("unexpected_file", f"{record.raw_id!r} is not named fileNNNN.jpg")
    if f["line"] is None:
        raise Reject("missing_label", f"{LABELS_FILE} has no line {f['number']}")
    parts = f["line"].split()
    try:
        if len(parts) != 4 or parts[0] not in ("0", "1"):
            raise ValueError
        [float(p) for p in parts[1:]]
    except ValueError:
        raise Reject("bad_label", f"{LABELS_FILE} line {f['number']}: expected 'smile(0|1) yaw pitch roll', "
                                  f"received {f['line']!r}") from None
    task = source.options.get("smile_task", source.tasks[0])
    return Parsed(group_id=record.raw_id, labels={task: int(parts[0])})
