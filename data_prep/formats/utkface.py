"""UTKFace: images named `[age]_[gender]_[race]_[date&time].jpg.chip.jpg` under `<path>`.

e.g. `26_1_2_20170116174525125.jpg.chip.jpg` (the aligned & cropped set;
the in-the-wild set's `...jpg` names are read the same way, sub-folders such
as part1/ too). age 0-116 (years), gender 0 = male, 1 = female, race 0-4 =
White, Black, Asian, Indian, Others. One image labels up to three tasks and
yields one example per task mapped in the options (the data contract).

A name that does not split into 4 integer fields (the real set has a few
with 3, e.g. `61_1_20170109142408075.jpg.chip.jpg`) is rejected as
`bad_name`; a field out of range as `bad_age` / `bad_gender` / `bad_race`:
the whole image, since a name with one impossible field is not trustworthy.
Group id = the file name: UTKFace has no identities.
"""
from __future__ import annotations

import os
import re
from typing import Iterator

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats._labels import age_label, gender_index, validate_age_task, validate_gender_task
from data_prep.formats._options import check_option_keys, fail, require_mapped, task_option
from data_prep.records import Parsed, RawRecord, Reject, SourceError

OPTIONS = ("age_task", "gender_task", "race_task", "age_bins")
RACES = ("White", "Black", "Asian", "Indian", "Others")
MAX_AGE = 116
# The date field is 17 digits (yyyymmddHHMMSSfff) in the real set; it is not used, only required.
_NAME = re.compile(r"^(?P<fields>[^.]*)\.jpg(\.chip\.jpg)?$", re.IGNORECASE)


def validate_options(source: SourceConfig, config: Config) -> None:
    check_option_keys(source, config, OPTIONS)
    mapped = {k: source.options.get(k) for k in ("age_task", "gender_task", "race_task")}
    if all(v is None for v in mapped.values()):
        fail(source, config, "options.age_task", "set age_task, gender_task and/or race_task to the "
                                                 "task(s) this source labels")
    if mapped["age_task"] is not None:
        validate_age_task(source, config, mapped["age_task"])
    elif "age_bins" in source.options:
        fail(source, config, "options.age_bins", "age_bins needs an age_task of type multiclass")
    if mapped["gender_task"] is not None:
        validate_gender_task(source, config, mapped["gender_task"])
    race = mapped["race_task"]
    if race is not None:
        task_option(source, config, "options.race_task", race, ("multiclass",))
        if config.task(race).width != len(RACES):
            received = list(config.task(race).classes)
            fail(source, config, "options.race_task",
                 f"task {race!r} needs {len(RACES)} classes ({', '.join(RACES)}), received {received!r}")
    named = [t for t in mapped.values() if t is not None]
    if len(set(named)) != len(named):
        fail(source, config, "options", f"age_task, gender_task and race_task must differ, received {mapped!r}")
    require_mapped(source, config, named, "map them with options.age_task / gender_task / race_task")


def layout(source: SourceConfig) -> tuple[str, ...]:
    """The source's path is a folder (config.validate checks it before a run)."""
    return ("./",)


def iter_records(source: SourceConfig, config: Config) -> Iterator[RawRecord]:
    """The records as a stream (what the Beam job lists)."""
    if not fileio.isdir(source.path):
        raise SourceError(f"source {source.name!r} (utkface): {source.path} is not a directory")
    for rel, problem in fileio.walk_entries(source.path):
        yield RawRecord(raw_id=rel, path=os.path.join(source.path, rel), problem=problem)


def list_records(source: SourceConfig, config: Config) -> list[RawRecord]:
    return list(iter_records(source, config))


def parse_name(name: str) -> tuple[int, int, int]:
    """(age, gender, race) from a UTKFace file name; raises Reject with the reason."""
    m = _NAME.match(name)
    fields = m.group("fields").split("_") if m else []
    if len(fields) != 4 or not all(re.fullmatch(r"\d+", f) for f in fields):
        raise Reject("bad_name", f"{name!r}: expected [age]_[gender]_[race]_[date&time].jpg(.chip.jpg), "
                                 f"4 integer fields")
    age, gender, race = (int(f) for f in fields[:3])
    if age > MAX_AGE:
        raise Reject("bad_age", f"{name!r}: age {age} is outside 0-{MAX_AGE}")
    if gender > 1:
        raise Reject("bad_gender", f"{name!r}: gender {gender} is not 0 (male) or 1 (female)")
    if race >= len(RACES):
        raise Reject("bad_race", f"{name!r}: race {race} is outside 0-{len(RACES) - 1} ({', '.join(RACES)})")
    return age, gender, race


def race_index(classes: tuple[str, ...], race: int) -> int:
    """By name when the task's classes are UTKFace's race names (any case and order), else the code."""
    lower = [c.lower() for c in classes]
    if sorted(lower) == sorted(r.lower() for r in RACES):
        return lower.index(RACES[race].lower())
    return race


def parse_record(record: RawRecord, source: SourceConfig, config: Config) -> Parsed:
    name = record.raw_id.rsplit("/", 1)[-1]
    age, gender, race = parse_name(name)
    labels = {}
    o = source.options
    if o.get("age_task") is not None:
        labels[o["age_task"]] = age_label(config.task(o["age_task"]), age, o.get("age_bins"))
    if o.get("gender_task") is not None:
        labels[o["gender_task"]] = gender_index(config.task(o["gender_task"]), male=gender == 0)
    if o.get("race_task") is not None:
        labels[o["race_task"]] = race_index(config.task(o["race_task"]).classes, race)
    return Parsed(group_id=name, labels=labels)
