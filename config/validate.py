"""The deep checks of a parsed config, the ones `load` / `parse` leave out.

`parse` checks every key without importing anything heavy or reading the
data, so components can re-parse the config from JSON anywhere (a Kubeflow
pod sees neither the launcher's disk nor its paths). `validate` is what every
entry point runs right after `load`, before any heavy work:

- each source's format options, by the format's own module
  (`validate_options`, through config.registry.FORMATS);
- `prep.face_crop` only where the format gives face boxes;
- `sample:` settings against the format's sample-data generator;
- with `check_paths` (the default), the source's local path and the layout
  its format reads there (`layout(source)`), unless the source has a
  `sample:` (then missing data is generated) or its path is a URL; for a
  span pattern (`{SPAN}`), that it matches a span, and each chosen span's layout.

Model params, threshold metric names and everything else are checked by
`parse` already. Raises ConfigError naming the key as the YAML file spells it.
"""
from __future__ import annotations

import dataclasses
import glob
import inspect
import os

from config import registry
from config.errors import ConfigError, fail, show
from config.spans import glob_pattern, has_spans, select, spans_found
from config.types import Config, SourceConfig


def validate(config: Config, *, check_paths: bool = True) -> None:
    """Raises ConfigError on the first source whose format options, prep, sample settings or
    (with `check_paths`) data layout are wrong. `check_paths=False` where the paths are
    not this machine's (kubeflow_runner.py: the pods read them)."""
    for i, source in enumerate(config.sources):
        where = f"sources[{i}]"
        fmt = registry.load(registry.FORMATS, source.format, "source format")
        try:
            fmt.validate_options(source, config)
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - a value of a type the format did not expect
            fail(f"{where}.options", f"format {source.format} rejected these options ({type(e).__name__}: "
                                     f"{e}), received {show(dict(source.options))}")
        if source.prep.face_crop and not (hasattr(fmt, "face_boxes") and fmt.face_boxes(source)):
            fail(f"{where}.prep.face_crop",
                 f"received true, but format {source.format} gives no face boxes with these options; face boxes "
                 f"come from imdb_wiki (face_location) and csv (options.bbox_column)")
        if source.sample is not None:
            _check_sample(where, source, config)
        elif check_paths and "://" not in source.path:
            for span_source in _local_spans(where, source):
                _check_layout(where, fmt, span_source)


def label_noise_error(value) -> str | None:
    """What is wrong with a `sample.label_noise` (the share of ambiguous sample images), or None.
    Under 0.5, so the class a face shows stays its likeliest label (docs/data_prep.md)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 0.5:
        return f"expected a share of ambiguous images in [0, 0.5), received {value!r}"
    return None


def _check_sample(where: str, source: SourceConfig, config: Config) -> None:
    """The sample settings bind to the format's generator: `generate(source, config, *, count, seed, ...)`."""
    generate = registry.load(registry.GENERATORS, source.format, "sample-data generator format").generate
    params = inspect.signature(generate).parameters
    valid = [p for p in params if p not in ("source", "config")]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(source.sample) - set(valid))
        if unknown:
            fail(f"{where}.sample.{unknown[0]}", f"unknown sample setting for format {source.format}; "
                                                 f"valid: {', '.join(valid)}")
    if "label_noise" in source.sample and label_noise_error(source.sample["label_noise"]):
        fail(f"{where}.sample.label_noise", label_noise_error(source.sample["label_noise"]))
    share = source.sample.get("smile_share", 0.5)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
        fail(f"{where}.sample.smile_share", f"expected a share of smiling faces in (0, 1), received {show(share)}")
    try:
        inspect.signature(generate).bind(source, config, **source.sample)
    except TypeError as e:
        fail(f"{where}.sample", f"{e}, received {show(dict(source.sample))}; valid keys: {', '.join(valid)}")


def _local_spans(where: str, source: SourceConfig) -> list[SourceConfig]:
    """The source once per span its window chooses (itself when its path has no `{SPAN}`);
    ConfigError when a span pattern matches nothing."""
    if not has_spans(source.path):
        return [source]
    found = spans_found(f"{where}.path", source.path, glob.glob(glob_pattern(source.path)))
    return [dataclasses.replace(source, path=found[s]) for s in select(list(found), source.spans)]


def _check_layout(where: str, fmt, source: SourceConfig) -> None:
    """The source's local path exists and holds what its format reads (`fmt.layout(source)`:
    paths relative to it, a trailing '/' for a folder, './' for the path itself)."""
    path = source.path
    if not os.path.exists(path):
        fail(f"{where}.path", f"{path} does not exist; point it at the {source.format} data, or add "
                              f"`sample: {{count: 500}}` to the source to generate sample data there")
    entries = tuple(getattr(fmt, "layout", lambda s: ())(source))
    for rel in entries:
        full = os.path.normpath(os.path.join(path, rel))
        ok = os.path.isdir(full) if rel.endswith("/") else os.path.isfile(full)
        if not ok:
            what = f"{path} is not a folder" if rel == "./" else f"{path} has no {rel.rstrip('/')} " \
                                                                   f"({'folder' if rel.endswith('/') else 'file'})"
            fail(f"{where}.path", f"{what}; format {source.format} reads "
                                  f"{', '.join('<path>' if r == './' else '<path>/' + r for r in entries)}")
