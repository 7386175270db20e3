"""Label mapping shared by the face formats (imdb_wiki, utkface) and path checks shared by
the manifest formats (csv, fashionai)."""
from __future__ import annotations

import os
from typing import Any

from config import Config, SourceConfig, TaskConfig
from data_prep.formats._options import fail, task_option


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate_age_task(source: SourceConfig, config: Config, age_task: str) -> None:
    """An age task is a regression (age in years) or a classification task with `options.age_bins`."""
    task_option(source, config, "options.age_task", age_task, ("binary", "multiclass", "regression"))
    bins = source.options.get("age_bins")
    task = config.task(age_task)
    if task.type == "regression":
        if bins is not None:
            fail(source, config, "options.age_bins", f"task {age_task!r} is a regression task (label = age "
                                                     f"in years); remove age_bins, received {bins!r}")
        return
    if not (isinstance(bins, list) and all(is_number(b) for b in bins)
            and all(a < b for a, b in zip(bins, bins[1:]))):
        fail(source, config, "options.age_bins",
             f"expected a strictly increasing list of ages (upper edges, exclusive, of all groups but "
             f"the last), received {bins!r}")
    if len(bins) + 1 != task.width:
        fail(source, config, "options.age_bins",
             f"{len(bins)} edges make {len(bins) + 1} age groups but task {age_task!r} has "
             f"{task.width} classes {list(task.classes)!r}; give {task.width - 1} edges")


def age_class(age: float, bins: list[float]) -> int:
    """Index of the age group: the number of upper edges <= age (edges are exclusive)."""
    return sum(1 for edge in bins if age >= edge)


def age_label(task: TaskConfig, age: float, bins: list[float] | None) -> float | int:
    """The age task's label value: the age itself (regression) or its group index."""
    return float(age) if task.type == "regression" else age_class(age, bins)


def validate_gender_task(source: SourceConfig, config: Config, gender_task: str) -> None:
    task_option(source, config, "options.gender_task", gender_task, ("binary", "multiclass"))
    if config.task(gender_task).width != 2:
        fail(source, config, "options.gender_task", f"task {gender_task!r} needs 2 classes (female, male), "
                                                    f"received {list(config.task(gender_task).classes)!r}")


def gender_index(task: TaskConfig, male: bool) -> int:
    """Class index of a gender: by name when the classes are female/male (any case and order),
    else male = index 1, the same for every source so one gender task means one thing."""
    classes = [c.lower() for c in task.classes]
    male_index = classes.index("male") if sorted(classes) == ["female", "male"] else 1
    return male_index if male else 1 - male_index


def relative_path(rel: str) -> str | None:
    """`rel` normalised, or None if it is absolute, a URL or climbs out of its root with `..`."""
    if not rel or "://" in rel or os.path.isabs(rel) or rel.startswith("\\"):
        return None
    norm = os.path.normpath(rel)
    if norm == ".." or norm.startswith("../"):
        return None
    return norm
