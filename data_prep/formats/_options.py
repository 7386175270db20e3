"""Helpers for format modules: option keys named like the config file spells them."""
from __future__ import annotations

from typing import Any, Collection

from config import Config, SourceConfig
from config.errors import fail as fail_key


def source_key(source: SourceConfig, config: Config, key: str) -> str:
    """`sources[<i>].<key>` for error messages, i = the source's position in the config."""
    i = [s.name for s in config.sources].index(source.name)
    return f"sources[{i}].{key}"


def fail(source: SourceConfig, config: Config, key: str, msg: str) -> None:
    """ConfigError `config key 'sources[<i>].<key>': <msg> (source '<name>', format <format>)`.
    With no options at all, an option's error names `options`: the key the user is to add."""
    if key.startswith("options.") and not source.options:
        key = "options"
    fail_key(source_key(source, config, key), f"{msg} (source {source.name!r}, format {source.format})")


def check_option_keys(source: SourceConfig, config: Config, allowed: Collection[str]) -> None:
    for key in sorted(source.options):
        if key not in allowed:
            fail(source, config, f"options.{key}",
                 f"unknown option; valid options for format {source.format}: {', '.join(sorted(allowed))}")


def task_option(source: SourceConfig, config: Config, key: str, value: Any, types: Collection[str]) -> str:
    """Checks that an option naming a task names one of this source's tasks of a usable type;
    `key` is the option's path under the source (`options.age_task`)."""
    if not isinstance(value, str) or value not in source.tasks:
        fail(source, config, key,
             f"expected one of this source's tasks ({', '.join(source.tasks)}), received {value!r}")
    ttype = config.task(value).type
    if ttype not in types:
        fail(source, config, key,
             f"task {value!r} has type {ttype!r}; this option needs a task of type {' or '.join(types)}")
    return value


def sole_task(source: SourceConfig, config: Config, types: Collection[str]) -> str:
    """The one task of a source whose format labels exactly one task."""
    if len(source.tasks) != 1:
        fail(source, config, "tasks",
             f"format {source.format} labels exactly one task, received {list(source.tasks)!r}")
    task = config.task(source.tasks[0])
    if task.type not in types:
        fail(source, config, "tasks",
             f"format {source.format} needs a task of type {' or '.join(types)}; "
             f"task {task.name!r} has type {task.type!r}")
    return task.name


def require_mapped(source: SourceConfig, config: Config, mapped: Collection[str | None], hint: str) -> None:
    """Fails naming the source's tasks that no option maps to a label of the format
    (they would get no examples); `hint` says which option maps them."""
    unlabelled = [t for t in source.tasks if t not in set(mapped)]
    if unlabelled:
        fail(source, config, "tasks", f"task(s) {', '.join(unlabelled)} get no labels from this source; {hint}")
