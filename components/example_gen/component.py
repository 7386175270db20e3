"""ExampleGen that runs the Beam conversion of every source in the config.

It keeps one split per (split, source) pair (`train_genki4k`, `eval_wiki`,
...) so that the Trainer can read each source on its own and mix them, and
so that statistics and validation are per source.
"""

import json
import os

from tfx import v1 as tfx
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.artifacts import PrepReport
from config import Config, config_from_json, split_names


@tfx.dsl.components.component
def DataPrepExampleGen(
    config_json: tfx.dsl.components.Parameter[str],
    source_fingerprint: tfx.dsl.components.Parameter[str],
    beam_args_json: tfx.dsl.components.Parameter[str],
    examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    prep_report: tfx.dsl.components.OutputArtifact[PrepReport],
):
    """Converts every source into the data contract's TFRecords.

    `source_fingerprint` is not read here: it is part of the cache key, so a
    changed source file reruns the conversion while an unchanged one reuses it.
    """
    del source_fingerprint
    from data_prep.beam_job import run_conversion  # Beam-heavy: import when run

    config = config_from_json(config_json)
    stats_path = os.path.join(prep_report.uri, "prep_stats.json")
    stats = run_conversion(
        config,
        examples_dir=examples.uri,
        dead_letter_dir=os.path.join(prep_report.uri, "dead_letter"),
        stats_path=stats_path,
        beam_args=json.loads(beam_args_json),
    )
    # run_conversion creates every (split, source) directory, empty or not.
    splits = split_names(config, "train") + split_names(config, "eval")
    examples.split_names = artifact_utils.encode_split_names(splits)
    examples.set_string_custom_property("file_format", "tfrecords_gzip")
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    # The per-source accounting, visible in MLMD without opening prep_stats.json.
    prep_report.set_json_value_custom_property("totals", {
        src: {k: s[k] for k in ("read", "written", "rejected")} for src, s in stats["sources"].items()
    })


def source_fingerprint(config: Config) -> str:
    """A cheap fingerprint of every source's files (names, sizes, mtimes).

    Runners pass it to DataPrepExampleGen so that editing, adding or removing
    a source file invalidates the cached conversion.
    """
    import hashlib

    from data_prep import fileio

    h = hashlib.sha256()
    for source in config.sources:
        h.update(source.name.encode())
        if not fileio.exists(source.path):
            h.update(b"<missing>")
            continue
        if not fileio.isdir(source.path):
            h.update(_stat_key(source.path, os.path.basename(source.path)))
            continue
        # The conversion's own listing: a link loop or a link out of the dataset is one
        # entry with its problem here, as it is one dead-letter record there.
        for rel, problem in fileio.walk_entries(source.path):
            h.update(f"{rel}\0{problem[0]}\n".encode() if problem else
                     _stat_key(os.path.join(source.path, rel), rel))
    return h.hexdigest()


def _stat_key(path: str, rel: str) -> bytes:
    import tensorflow as tf

    try:
        st = tf.io.gfile.stat(path)
        return f"{rel}\0{st.length}\0{st.mtime_nsec}\n".encode()
    except tf.errors.OpError:  # vanished or unreadable: the conversion says why
        return f"{rel}\0<unreadable>\n".encode()
