"""Generates sample data for sources that ask for it (`sample:`) and lack it."""
from __future__ import annotations

import dataclasses
import inspect
import logging
import os

from config import Config, SourceConfig
from config.spans import SPAN_TOKEN, glob_pattern, has_spans
from config.validate import label_noise_error
from data_prep import fileio
from data_prep.formats._options import fail
from data_prep.generators import get_generator


def _sample_args(source: SourceConfig, config: Config) -> dict:
    args = dict(source.sample or {})
    count = args.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        fail(source, config, "sample.count", f"expected a positive integer, received {count!r}")
    seed = args.setdefault("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        fail(source, config, "sample.seed", f"expected an integer, received {seed!r}")
    if "label_noise" in args and label_noise_error(args["label_noise"]):
        fail(source, config, "sample.label_noise", label_noise_error(args["label_noise"]))
    return args


def generate_missing(config: Config) -> list[str]:
    """Writes sample data at every `sample:` source's path that does not exist; returns those paths.

    Idempotent: an existing path is never touched. A span pattern (`{SPAN}`) with no span
    yet gets its span 1. Local data is written to a
    temporary sibling and renamed, so an interrupted run leaves no half source.
    """
    done = []
    for source in config.sources:
        if has_spans(source.path):  # a span pattern: sample data is its span 1, when it has none
            if source.sample is None or fileio.glob(glob_pattern(source.path)):
                continue
            source = dataclasses.replace(source, path=source.path.replace(SPAN_TOKEN, "1"))
        if source.sample is None or fileio.exists(source.path):
            continue
        args = _sample_args(source, config)
        generate = get_generator(source.format)
        try:
            inspect.signature(generate).bind(source, config, **args)
        except TypeError as e:
            valid = [p for p in inspect.signature(generate).parameters if p not in ("source", "config")]
            fail(source, config, "sample", f"{e} (received {sorted(args)}); valid keys: {', '.join(valid)}")
        local = "://" not in source.path
        target = source.path + ".partial" if local else source.path
        if local:
            fileio.rmtree(target)
        generate(dataclasses.replace(source, path=target), config, **args)
        if local:
            os.replace(target, source.path)
        logging.info("generated %d sample %s records for source %r at %s",
                     args["count"], source.format, source.name, source.path)
        done.append(source.path)
    return done
