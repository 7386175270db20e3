"""Sample-data generators, one module per source format, writing the real on-disk layout.

Each module exposes `generate(source, config, *, count, seed, **kwargs)`,
writing `count` raw records under `source.path`.
"""
from pipeline import registry

GENERATORS = {
    "genki4k": "data_prep.generators.genki4k",
    "imdb_wiki": "data_prep.generators.imdb_wiki",
    "folder": "data_prep.generators.folder",
}


def get_generator(format_name: str):
    return registry.load(GENERATORS, format_name, "sample-data generator format").generate
