"""ExampleGen that runs the Beam conversion of every source in the config.

It keeps one split per (split, source) pair (`train_genki4k`, `eval_wiki`,
...) so that the Trainer can read each source on its own and mix them, and
so that statistics and validation are per source.
"""

import json

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
    span_store: tfx.dsl.components.Parameter[str],
    examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    prep_report: tfx.dsl.components.OutputArtifact[PrepReport],
):
    """Converts every source into the data contract's TFRecords.

    `source_fingerprint` is not read here: it is part of the cache key, so a
    changed source file reruns the conversion while an unchanged one reuses it.
    Sources with spans (`{SPAN}` in their path) are converted span by span
    into `span_store`, once each (data_prep/spans.py); the artifact gets the
    run's window of train splits and the newest span's eval split.
    """
    del source_fingerprint
    from data_prep.assemble import convert_all  # Beam-heavy: import when run

    config = config_from_json(config_json)
    stats = convert_all(config, examples.uri, prep_report.uri, span_store, json.loads(beam_args_json))
    # every (split, source) directory exists, empty or not
    splits = split_names(config, "train") + split_names(config, "eval")
    examples.split_names = artifact_utils.encode_split_names(splits)
    examples.set_string_custom_property("file_format", "tfrecords_gzip")
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    # TFX's span properties: the newest span evaluated (0 without spans); which spans, per source
    spans = stats["spans"]
    examples.span = max((s["eval"] for s in spans.values()), default=0)
    examples.version = 0
    examples.set_json_value_custom_property("spans", {
        src: {"train": s["train"], "eval": s["eval"]} for src, s in spans.items()})
    # The per-source accounting, visible in MLMD without opening prep_stats.json.
    prep_report.set_json_value_custom_property("totals", {
        src: {k: s[k] for k in ("read", "written", "rejected")} for src, s in stats["sources"].items()
    })


def source_fingerprint(config: Config) -> str:
    """A cheap fingerprint of every source's files (names, sizes, mtimes), span by span.

    Runners pass it to DataPrepExampleGen so that editing, adding or removing
    a source file (or a span) invalidates the cached conversion.
    """
    import hashlib

    from config import ConfigError
    from data_prep.spans import files_fingerprint, list_spans

    h = hashlib.sha256()
    for source in config.sources:
        h.update(source.name.encode())
        try:
            found = list_spans(source)
        except ConfigError:  # a pattern matching nothing: the conversion says so
            h.update(b"<no spans>")
            continue
        for span, path in sorted(found.items()):
            h.update(f"\0{span}\0{files_fingerprint(path)}\n".encode())
    return h.hexdigest()
