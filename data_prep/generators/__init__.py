"""Sample-data generators, one module per source format, writing the real on-disk layout.

Each module exposes `generate(source, config, *, count, seed, **kwargs)`,
writing `count` raw records under `source.path`.
"""
import importlib

GENERATORS = {
    "genki4k": "data_prep.generators.genki4k",
    "imdb_wiki": "data_prep.generators.imdb_wiki",
    "folder": "data_prep.generators.folder",
}


def get_generator(format_name: str):
    if format_name not in GENERATORS:
        raise ValueError(f"no sample-data generator for format {format_name!r}; "
                         f"formats with one: {', '.join(sorted(GENERATORS))}")
    return importlib.import_module(GENERATORS[format_name]).generate
