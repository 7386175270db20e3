"""A TFDS image-classification dataset already prepared under `<path>` (the TFDS data_dir).

`<path>/<name>/<version>/` as `tfds build` or `builder.download_and_prepare()`
leaves it (dataset_info.json, features.json, shard files). Nothing is
downloaded: the dataset is opened with `tfds.builder(name, data_dir=path)`,
which reads a prepared dataset even when its builder class is not installed,
and an unprepared one is a SourceError. The source labels one binary or
multiclass task from the ClassLabel feature `label_key`; every dataset class
name, after options.class_map, must be one of the task's classes.

Records are listed from the dataset's metadata (split shard lengths), not by
reading it; the Beam job then reads each shard once (`container_of` /
`read_container`), as the TFDS slice `<split>[<start>:<end>]`, with the image
left encoded (`tfds.decode.SkipDecoding`). The TFDS split names only choose
what is read: train / eval come from the group hash, as for every source.
Raw id = group id = `<split>/<index in split>` (no identities); the order is
the prepared dataset's own, so ids are stable while the data is.
"""
from __future__ import annotations

from typing import Any, Iterator

from config import Config, SourceConfig
from data_prep.formats._options import check_option_keys, fail, sole_task
from data_prep.records import Parsed, RawRecord, Reject, SourceError

OPTIONS = ("name", "splits", "image_key", "label_key", "class_map")
DEFAULTS = {"splits": ["train"], "image_key": "image", "label_key": "label", "class_map": {}}
_BUILDERS: dict[tuple[str, str], Any] = {}  # one builder per worker process: opening one reads its metadata


def option(source: SourceConfig, key: str) -> Any:
    return source.options.get(key, DEFAULTS.get(key))


def validate_options(source: SourceConfig, config: Config) -> None:
    check_option_keys(source, config, OPTIONS)
    task = config.task(sole_task(source, config, ("binary", "multiclass")))
    name = source.options.get("name")
    if not isinstance(name, str) or not name:
        fail(source, config, "options.name", f"expected a TFDS dataset name such as 'mnist' or "
                                             f"'my_faces/config:1.0.0', received {name!r}")
    splits = option(source, "splits")
    if (not isinstance(splits, list) or not splits or not all(isinstance(s, str) and s for s in splits)
            or len(set(splits)) != len(splits)):
        fail(source, config, "options.splits", f"expected a list of distinct TFDS split names, received {splits!r}")
    for key in ("image_key", "label_key"):
        if not isinstance(option(source, key), str) or not option(source, key):
            fail(source, config, f"options.{key}", f"expected a feature name, received {option(source, key)!r}")
    cmap = option(source, "class_map")
    if not isinstance(cmap, dict):
        fail(source, config, "options.class_map", f"expected a mapping dataset class -> task class, received {cmap!r}")
    for k, v in cmap.items():
        if v not in task.classes:
            fail(source, config, f"options.class_map.{k}",
                 f"received {v!r}, not a class of task {task.name!r}; valid: {', '.join(task.classes)}")


def builder(source: SourceConfig):
    """The prepared dataset's builder (cached per process); SourceError if absent or unprepared."""
    key = (source.options["name"], source.path)
    if key not in _BUILDERS:
        import tensorflow_datasets as tfds

        try:
            b = tfds.builder(source.options["name"], data_dir=source.path)
        except tfds.core.registered.DatasetNotFoundError as e:  # its message lists every TFDS dataset
            raise SourceError(f"source {source.name!r} (tfds): no prepared dataset {key[0]!r} under {source.path} "
                              f"(expected {source.path}/<name>/<version>/dataset_info.json) and no such "
                              f"builder installed; nothing is downloaded") from e
        if not b.is_prepared():
            raise SourceError(f"source {source.name!r} (tfds): dataset {key[0]!r} is not prepared in {source.path} "
                              f"(no {b.data_dir}/dataset_info.json); nothing is downloaded: prepare it "
                              f"with `tfds build {key[0]} --data_dir {source.path}` where it can be")
        _BUILDERS[key] = b
    return _BUILDERS[key]


def _dataset(source: SourceConfig) -> str:
    return f"dataset {source.options['name']!r}"


def class_names(source: SourceConfig, config: Config) -> list[str]:
    """The dataset's class names, checked to map onto the task's classes."""
    import tensorflow_datasets as tfds

    b = builder(source)
    features = b.info.features
    image_key, label_key = option(source, "image_key"), option(source, "label_key")
    for key, kind in ((image_key, tfds.features.Image), (label_key, tfds.features.ClassLabel)):
        if key not in features or not isinstance(features[key], kind):
            raise SourceError(f"source {source.name!r} (tfds): {_dataset(source)} has no {kind.__name__} feature "
                              f"{key!r} (options.image_key / label_key); its features: "
                              f"{dict(sorted((k, type(v).__name__) for k, v in features.items()))}")
    names = list(features[label_key].names)
    task = config.task(source.tasks[0])
    cmap = option(source, "class_map")
    unknown = [n for n in names if cmap.get(n, n) not in task.classes]
    if unknown:
        raise SourceError(f"source {source.name!r} (tfds): dataset class(es) {unknown} are not classes of task "
                          f"{task.name!r} ({', '.join(task.classes)}); map them with options.class_map")
    return names


def layout(source: SourceConfig) -> tuple[str, ...]:
    """The source's path is a folder (config.validate checks it before a run)."""
    return ("./",)


def list_records(source: SourceConfig, config: Config) -> list[RawRecord]:
    class_names(source, config)
    splits = builder(source).info.splits
    records = []
    for split in option(source, "splits"):
        if split not in splits:
            raise SourceError(f"source {source.name!r} (tfds): {_dataset(source)} has no split {split!r}; "
                              f"it has {sorted(splits.keys())}")
        start = 0
        for n in splits[split].shard_lengths:
            records.extend(RawRecord(raw_id=f"{split}/{i}", path="", fields={"split": split, "index": i,
                                                                              "shard": [start, start + n]})
                           for i in range(start, start + n))
            start += n
    return records


def container_of(record: RawRecord) -> str:
    """The TFDS slice of the record's shard, e.g. `train[0:1000]`."""
    a, b = record.fields["shard"]
    return f"{record.fields['split']}[{a}:{b}]"


def read_container(key: str, records: list[RawRecord], source: SourceConfig, config: Config) -> Iterator[RawRecord]:
    """Reads one shard slice; yields every record given, with `image` and `label` or a `read_error`."""
    import tensorflow_datasets as tfds

    todo = {r.fields["index"]: r for r in records}
    start = min(r.fields["shard"][0] for r in records)
    image_key, label_key = option(source, "image_key"), option(source, "label_key")
    try:
        names = class_names(source, config)
        ds = builder(source).as_dataset(split=key, shuffle_files=False,
                                        decoders={image_key: tfds.decode.SkipDecoding()})
        for i, ex in enumerate(tfds.as_numpy(ds), start=start):
            r = todo.pop(i, None)
            if r is not None:
                label = int(ex[label_key])
                yield RawRecord(r.raw_id, r.path, {**r.fields, "image": bytes(ex[image_key]), "label": label,
                                                   "class_name": names[label] if 0 <= label < len(names) else None})
        error = "not in the shard (the dataset is shorter than its metadata says)"
    except Exception as e:  # a corrupt shard: its unread records are dead-lettered, the job goes on
        error = f"reading {key}: {type(e).__name__}: {e}"
    for r in todo.values():
        yield RawRecord(r.raw_id, r.path, {**r.fields, "read_error": error})


def read_image(record: RawRecord) -> bytes:
    if "read_error" in record.fields:
        raise Reject("unreadable_image", record.fields["read_error"])
    return record.fields["image"]


def parse_record(record: RawRecord, source: SourceConfig, config: Config) -> Parsed:
    f = record.fields
    if "read_error" in f:
        raise Reject("unreadable_image", f["read_error"])
    if f["class_name"] is None:
        raise Reject("bad_label", f"label {f['label']} is not a class index of {_dataset(source)}")
    task = config.task(source.tasks[0])
    return Parsed(group_id=record.raw_id,
                  labels={task.name: task.classes.index(option(source, "class_map").get(f["class_name"],
                                                                                           f["class_name"]))})
