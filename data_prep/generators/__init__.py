"""Sample-data generators, one module per source format, writing the real on-disk layout.

Each module exposes `generate(source, config, *, count, seed, **kwargs)`,
writing `count` raw records under `source.path`.
"""
from config import registry


def get_generator(format_name: str):
    return registry.load(registry.GENERATORS, format_name, "sample-data generator format").generate
