"""Sample-data generators, one module per source format, writing the real on-disk layout.

Each module exposes `generate(source, config, *, count, seed, **kwargs)`,
writing `count` raw records under `source.path`.
"""
from pipeline import registry

GENERATORS = {
    "genki4k": "data_prep.generators.genki4k",
    "imdb_wiki": "data_prep.generators.imdb_wiki",
    "folder": "data_prep.generators.folder",
    "utkface": "data_prep.generators.utkface",
    "fashionai": "data_prep.generators.fashionai",
    "csv": "data_prep.generators.csv_manifest",
    "tfds": "data_prep.generators.tfds",
}


def get_generator(format_name: str):
    return registry.load(GENERATORS, format_name, "sample-data generator format").generate
