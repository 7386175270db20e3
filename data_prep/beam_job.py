"""The Beam job: every source's raw records -> data-contract TFRecords, dead letters, stats.

Layout written (one file set per source inside each split, as ImportExampleGen
reads it with input splits `train_<source>` / `eval_<source>`):
  <examples_dir>/Split-<split>_<source>/data_tfrecord-SSSSS-of-NNNNN.gz   gzip, tfrecords.gzip_level
  <dead_letter_dir>/<source>-SSSSS-of-NNNNN.jsonl   {source, id, reason, detail}
  <stats_path>                                       see `run_conversion`
Counts come from the job's own outputs (a CombinePerKey written next to the
stats and read back), not from runner metrics, so they are exact on every
runner; Beam counters are also emitted for monitoring UIs.
"""
from __future__ import annotations

import dataclasses
import gc
import gzip
import json
import logging
import os
from collections import Counter, defaultdict
from typing import Any, Iterator, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from config import Config, config_from_json, split_dir, split_name
from data_prep import fileio
from data_prep.beam_args import complete as complete_beam_args
from data_prep.beam_args import conversion_mode
from data_prep.convert import Failed, convert_records, validate_sources
from data_prep.formats import get_format
from data_prep.listing import CHUNK, chunk_records, read_manifest, write_manifest
from data_prep.records import RawRecord, SourceError
from data_prep.splits import SPLITS
from data_prep.tfrecords import write_tfrecords

REJECTED = "rejected"
COUNTS = "counts"


def examples_prefix(examples_dir: str, split: str, source: str) -> str:
    return os.path.join(split_dir(examples_dir, split_name(split, source)), "data_tfrecord")


class _SourceFn(beam.DoFn):
    """A DoFn of one source: holds only the config JSON and the source name (pickles
    small) and rebuilds both on each worker."""

    def __init__(self, config_json: str, source_name: str):
        self._config_json = config_json
        self._source_name = source_name

    def setup(self) -> None:
        self._config = config_from_json(self._config_json)
        self._source = next(s for s in self._config.sources if s.name == self._source_name)


class ConvertRecordsFn(_SourceFn):
    """A batch of raw records -> per split, the batch's examples as one list; dead letters; counts.

    Batches in and out: convert_records works in phases over a batch, and the
    TFRecord sink writes a list per element, so the runner's per-element
    dispatch is paid per batch, not per example. Counts are summed per bundle
    and emitted once per key in finish_bundle, so the counting shuffle sees a
    few elements per bundle, not ~5 per record.
    """

    def start_bundle(self) -> None:
        self._counts: Counter = Counter()

    def finish_bundle(self) -> Iterator[Any]:
        for key, n in self._counts.items():
            Metrics.counter(f"data_prep.{self._source_name}", "/".join(key)).inc(n)
            yield beam.pvalue.TaggedOutput(COUNTS, WindowedValue(
                (count_key(self._source_name, key), n), MIN_TIMESTAMP, [GlobalWindow()]))
        self._counts.clear()

    def process(self, records: list[RawRecord]) -> Iterator[Any]:
        count = self._counts
        examples: dict[str, list[bytes]] = {split: [] for split in SPLITS}
        for record, out in zip(records, convert_records(records, self._source, self._config)):
            count["read",] += 1
            if isinstance(out, Failed):
                count["rejected",] += 1
                count["rejected_by_reason", out.reason] += 1
                yield beam.pvalue.TaggedOutput(REJECTED, json.dumps(
                    {"source": self._source_name, "id": record.raw_id, "reason": out.reason,
                     "detail": out.detail}, sort_keys=True))
                continue
            count["written",] += 1
            for task, example in out.examples:
                examples[out.split].append(example)
                count["examples", out.split] += 1
                count["examples_by_task", task] += 1
                count["examples_by_split_task", out.split, task] += 1
            for reason in out.missing.values():
                count["missing_labels_by_reason", reason] += 1
            for task, class_name in out.label_classes:
                count["labels_by_task", task, class_name] += 1
            if out.image_format is not None:
                count["image_formats", out.image_format] += 1
            if out.image_size is not None:
                count["image_sizes", "%dx%d" % out.image_size] += 1
        for split, batch in examples.items():
            if batch:
                yield beam.pvalue.TaggedOutput(split, batch)


def _container_key(record: RawRecord, format_name: str) -> tuple[str, RawRecord]:
    return get_format(format_name).container_of(record), record


class ReadContainerFn(_SourceFn):
    """(container, its records) -> the same records, with what the format reads from the container,
    in batches of CHUNK (formats whose images live inside shard files, like tfds: each shard is read once)."""

    def setup(self) -> None:
        super().setup()
        self._format = get_format(self._source.format)

    def process(self, kv: tuple[str, Any]) -> Iterator[list[RawRecord]]:
        key, records = kv
        batch = []
        for record in self._format.read_container(key, list(records), self._source, self._config):
            batch.append(record)
            if len(batch) == CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch


def _records_input(pipeline: beam.Pipeline, name: str, manifests: list[str]):
    """Batches of records (lists of up to CHUNK), from the source's manifest files written next to
    the stats (data_prep.listing.write_manifest: stream order, CHUNK records a line, SHARD_CHUNKS
    lines a file): the job graph stays small on any source size (runners cap it; Dataflow ~10-20
    MB), and it measured faster than beam.Create even at 12,000 records (7.6 vs 8.1 s), whose graph
    pickling bz2-compresses every record. Reshuffle spreads the files over workers (DirectRunner
    splits only shuffled inputs between its workers); shuffling their paths, not their lines,
    keeps what the runner holds for the shuffle to a path per 1,000 records."""
    return (pipeline
            | f"Manifests[{name}]" >> beam.Create(manifests)
            | f"Spread[{name}]" >> beam.Reshuffle()
            | f"ReadManifest[{name}]" >> beam.FlatMap(read_manifest)
            | f"Records[{name}]" >> beam.Map(chunk_records))


def count_key(source: str, key: tuple[str, ...]) -> str:
    """The shuffle key of one count: its parts as a JSON list, so any part may hold any character
    (class names are free text; a separator character could split one)."""
    return json.dumps([source, *key])


def format_count(kv: tuple[str, int]) -> str:
    return json.dumps([json.loads(kv[0]), kv[1]])


def _empty_stats(config: Config) -> dict[str, Any]:
    return {"read": 0, "written": 0, "rejected": 0, "rejected_by_reason": {},
            "missing_labels_by_reason": {}, "examples": {s: 0 for s in SPLITS},
            "examples_by_task": {}, "examples_by_split_task": {s: {} for s in SPLITS},
            "labels_by_task": {}, "image_formats": {}, "image_sizes": {}}


def build_stats(config: Config, count_lines: Sequence[str]) -> dict[str, Any]:
    """Folds the job's count lines into per-source stats (zeros where nothing was counted)."""
    sources = {s.name: _empty_stats(config) for s in config.sources}
    for line in count_lines:
        key, n = json.loads(line)
        node = sources[key[0]]
        for part in key[1:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = node.get(key[-1], 0) + n
    total = defaultdict(int)
    for st in sources.values():
        for k in ("read", "written", "rejected"):
            total[k] += st[k]
        for s in SPLITS:
            total[f"examples_{s}"] += st["examples"][s]
    return {"sources": sources, "total": dict(total)}


def _check_counts(stats: dict[str, Any], listed: dict[str, int]) -> None:
    for name, st in stats["sources"].items():
        if st["read"] != listed[name] or st["read"] != st["written"] + st["rejected"]:
            raise RuntimeError(f"source {name!r}: counts do not add up: listed {listed[name]} records, "
                               f"read {st['read']}, written {st['written']} + rejected {st['rejected']}")


def _ensure_split_dirs(config: Config, examples_dir: str) -> None:
    """Sinks write an empty shard for an empty split on the runners we know; make sure anyway,
    since ExampleGen consumers fail on a missing split directory."""
    for source in config.sources:
        for split in SPLITS:
            prefix = examples_prefix(examples_dir, split, source.name)
            if not fileio.glob(prefix + "-*"):
                fileio.write_bytes(prefix + "-00000-of-00001.gz", gzip.compress(b""))


def run_conversion(config: Config, examples_dir: str, dead_letter_dir: str, stats_path: str,
                   beam_args: Sequence[str] | None = None, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Converts every source of `config`; returns (and writes to `stats_path`) the stats.

    stats = {"sources": {name: {read, written, rejected, rejected_by_reason,
    missing_labels_by_reason, examples: {train, eval}, examples_by_task,
    examples_by_split_task, labels_by_task, image_formats, image_sizes}}, "total": {...}}
    with read == written + rejected (records; `examples` count tf.Examples, one per labelled task).
    Beam args: config.beam.args, then `beam_args`; DirectRunner unless a
    `--runner` is given. `only`: the names of the sources to convert (default all; the
    others are left out of the output and the stats: one span at a time, data_prep/spans.py).
    Raises ConfigError / SourceError before Beam starts.
    """
    # The objects alive before the job (TensorFlow's and Beam's modules: ~470k in a process that
    # imported TensorFlow, as the DAG's executor has) leave the collector's reach for the job:
    # each full collection walks them all, ~0.3 s, about once per 12,000 images on 1 worker.
    # unfreeze() hands them back, so nothing is kept from collection after the job.
    gc.freeze()
    try:
        return _run_conversion(config, examples_dir, dead_letter_dir, stats_path, beam_args, only)
    finally:
        gc.unfreeze()


def _run_conversion(config: Config, examples_dir: str, dead_letter_dir: str, stats_path: str,
                    beam_args: Sequence[str] | None, only: Sequence[str] | None) -> dict[str, Any]:
    validate_sources(config)
    config_json = config.to_json()  # the whole config: the workers parse it (every task keeps a source)
    if only is not None:
        unknown = sorted(set(only) - {s.name for s in config.sources})
        if unknown:
            raise ValueError(f"only: unknown source(s) {', '.join(unknown)}")
        config = dataclasses.replace(config, sources=tuple(s for s in config.sources if s.name in only))
    for out_dir in (examples_dir, dead_letter_dir):
        if fileio.exists(out_dir) and fileio.listdir(out_dir):
            raise SourceError(f"output directory {out_dir} is not empty; stale shards would mix with new ones")
    work_dir = stats_path + ".work"  # counts and record manifests; removed after the run
    counts_prefix = os.path.join(work_dir, "counts")
    fileio.rmtree(work_dir)
    # Written in hash order, not the listing's (often class by class): convert.stream_order's order,
    # streamed from the listing into manifest files with bounded memory (data_prep/listing.py).
    manifests, listed = {}, {}
    for s in config.sources:
        manifests[s.name], listed[s.name] = write_manifest(s, config, os.path.join(work_dir, "records", s.name))

    # complete_beam_args: what a portable runner (Flink, Spark) needs too; data_prep/beam_args.py
    args = complete_beam_args(["--runner=DirectRunner", *config.beam.args, *(beam_args or [])])
    # in-process or multi-process by the number of records, unless the args chose (beam_args.py)
    extra, mode = conversion_mode(args, sum(listed.values()))
    args += extra
    logging.info("data_prep: %d records, %s", sum(listed.values()), mode)
    options = PipelineOptions(args)
    pipeline = beam.Pipeline(options=options)
    all_counts = []
    for source in config.sources:
        name = source.name
        raw = _records_input(pipeline, name, manifests[name])
        if hasattr(get_format(source.format), "read_container"):
            raw = (raw | f"Unbatch[{name}]" >> beam.FlatMap(lambda batch: batch)
                   | f"KeyByContainer[{name}]" >> beam.Map(_container_key, source.format)
                   | f"GroupByContainer[{name}]" >> beam.GroupByKey()
                   | f"ReadContainer[{name}]" >> beam.ParDo(ReadContainerFn(config_json, name)))
        outputs = raw | f"Convert[{name}]" >> beam.ParDo(ConvertRecordsFn(config_json, name)).with_outputs(
            *SPLITS, REJECTED, COUNTS)
        for split in SPLITS:
            _ = outputs[split] | f"Write[{split}_{name}]" >> write_tfrecords(
                examples_prefix(examples_dir, split, name), config.tfrecords.level_for(source))
        _ = outputs[REJECTED] | f"DeadLetter[{name}]" >> beam.io.WriteToText(
            os.path.join(dead_letter_dir, name), file_name_suffix=".jsonl")
        all_counts.append(outputs[COUNTS])
    _ = (all_counts | "FlattenCounts" >> beam.Flatten()
         | "SumCounts" >> beam.CombinePerKey(sum)
         | "FormatCounts" >> beam.Map(format_count)
         | "WriteCounts" >> beam.io.WriteToText(counts_prefix, file_name_suffix=".jsonl"))
    result = pipeline.run()
    state = result.wait_until_finish()
    if state != PipelineState.DONE:
        raise RuntimeError(f"Beam conversion job ended in state {state}")

    lines = [line for path in fileio.glob(counts_prefix + "*")
             for line in fileio.read_text(path).splitlines() if line.strip()]
    stats = build_stats(config, lines)
    _check_counts(stats, listed)
    _ensure_split_dirs(config, examples_dir)
    fileio.write_bytes(stats_path, (json.dumps(stats, indent=2, sort_keys=True) + "\n").encode())
    fileio.rmtree(work_dir)
    for name, st in stats["sources"].items():
        logging.info("data_prep %s: read %d, written %d, rejected %d %s, examples train %d eval %d",
                     name, st["read"], st["written"], st["rejected"], st["rejected_by_reason"],
                     st["examples"]["train"], st["examples"]["eval"])
    return stats
