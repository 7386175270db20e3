"""A source's records, listed as a stream and written in hash order to the job's manifest,
with memory that does not grow with the number of records.

The conversion writes each split's examples in a seeded hash order (see
data_prep.convert.stream_order: records sorted by the hash position of their
raw id, ties by the id, the listing's order among equal ids). Sorting a
whole source in memory held every record on the launcher before Beam
started, ~2.45 KB an image at bench-scale's 160k (docs/results.md): here the
listing is a stream (`iter_source_records`: a format's `iter_records`
generator where it has one), sorted by an external merge sort
(`sorted_elements`: runs of RUN records sorted in memory and spilled to
local temporary files, then merged with heapq.merge, which is stable, so the
order is exactly stream_order's), and written as manifest files of
SHARD_CHUNKS chunks of CHUNK records (`write_manifest`). The Beam job
reshuffles the manifest files' paths, not their lines, so the runner's
shuffle holds a path per 1,000 records rather than the records.
"""
from __future__ import annotations

import heapq
import json
import os
import tempfile
from typing import Callable, Iterable, Iterator, Sequence

from config import Config, SourceConfig
from data_prep import fileio
from data_prep.formats import get_format
from data_prep.records import RawRecord, SourceError
from data_prep.splits import hash_position

CHUNK = 100  # records per manifest line = per Beam element up to the conversion
SHARD_CHUNKS = 10  # manifest lines per manifest file = per element of the job's shuffle
RUN = 20_000  # records sorted in memory at once (~10 MB of encoded records)


def iter_source_records(source: SourceConfig, config: Config) -> Iterator[RawRecord]:
    """One source's raw records in the listing's order, as a stream; SourceError if its path is
    missing or it has none (raised when the stream ends empty)."""
    if not fileio.exists(source.path):
        hint = " (set `sample:` on the source to generate sample data there)" if source.sample is None else ""
        raise SourceError(f"source {source.name!r}: path {source.path} does not exist{hint}")
    fmt = get_format(source.format)
    listed = fmt.iter_records if hasattr(fmt, "iter_records") else fmt.list_records
    empty = True
    for record in listed(source, config):
        empty = False
        yield record
    if empty:
        raise SourceError(f"source {source.name!r} ({source.format}): no records found under {source.path}")


def check_source(source: SourceConfig, config: Config) -> None:
    """Fails (SourceError) on a source that is missing, unreadable or empty, reading only as far
    as its first record (the CLI's check before Beam starts)."""
    records = iter_source_records(source, config)
    try:
        next(records)
    except StopIteration:  # pragma: no cover - iter_source_records raises SourceError instead
        pass
    finally:
        records.close()


def order_key(config: Config) -> Callable[[str], tuple[float, str]]:
    """Sort key of a raw id in stream order (data_prep.convert.stream_order): its hash position,
    salted like the split (`splits.salt` draws another order), then the id."""
    salt = "order\0" + config.splits.salt
    return lambda raw_id: (hash_position(raw_id, salt), raw_id)


def record_element(record: RawRecord) -> str:
    """A record as its manifest element, the JSON array [raw_id, path, fields] (+ problem when the
    listing found one). JSON escapes newlines, so an element never spans lines; Python's json
    round-trips the NaN / -inf of IMDB-WIKI's fields."""
    item = [record.raw_id, record.path, dict(record.fields)]
    if record.problem is not None:
        item.append(list(record.problem))
    return json.dumps(item)


def chunk_line(elements: Sequence[str]) -> str:
    """Elements as one manifest line: exactly json.dumps of the list of their arrays."""
    return "[" + ", ".join(elements) + "]"


def chunk_records(chunk: str) -> list[RawRecord]:
    return [RawRecord(item[0], item[1], item[2], tuple(item[3]) if len(item) > 3 else None)
            for item in json.loads(chunk)]


def records_to_chunks(records: Sequence[RawRecord], size: int = CHUNK) -> list[str]:
    """Records (already in order) as manifest lines of `size` records each."""
    return [chunk_line([record_element(r) for r in records[i:i + size]]) for i in range(0, len(records), size)]


def sorted_elements(records: Iterable[RawRecord], config: Config, run: int = RUN) -> Iterator[str]:
    """Each record's element (record_element), in stream order, holding at most `run` records in
    memory: sorted runs spill to a local temporary folder (removed when the stream ends) and are
    merged. The merge is stable and runs follow the listing, so the order is stream_order's."""
    key = order_key(config)
    with tempfile.TemporaryDirectory(prefix="data_prep_sort_") as tmp:
        runs: list[str] = []
        batch: list[tuple[tuple[float, str], str]] = []
        for record in records:
            batch.append((key(record.raw_id), record_element(record)))
            if len(batch) == run:
                runs.append(_spill(batch, os.path.join(tmp, f"run{len(runs)}")))
                batch = []
        if not runs:  # one run: no files
            batch.sort(key=lambda kv: kv[0])
            yield from (element for _, element in batch)
            return
        if batch:
            runs.append(_spill(batch, os.path.join(tmp, f"run{len(runs)}")))
        del batch
        files = [open(path, encoding="utf-8") for path in runs]
        try:
            merged = heapq.merge(*(map(_unspill, f) for f in files), key=lambda kv: kv[0])
            yield from (element for _, element in merged)
        finally:
            for f in files:
                f.close()


def _spill(batch: list[tuple[tuple[float, str], str]], path: str) -> str:
    batch.sort(key=lambda kv: kv[0])  # stable: equal ids keep the listing's order
    with open(path, "w", encoding="utf-8") as f:
        for k, element in batch:  # json escapes tabs and newlines: one line, one tab
            f.write(json.dumps(k) + "\t" + element + "\n")
    return path


def _unspill(line: str) -> tuple[tuple[float, str], str]:
    k, element = line.rstrip("\n").split("\t", 1)
    position, raw_id = json.loads(k)
    return (position, raw_id), element


def write_manifest(source: SourceConfig, config: Config, prefix: str, run: int = RUN) -> tuple[list[str], int]:
    """Lists `source`, writes its records in stream order as manifest files `<prefix>-NNNNN.jsonl`
    (SHARD_CHUNKS lines of CHUNK records each); returns (their paths, the number of records)."""
    paths: list[str] = []
    lines: list[str] = []
    elements: list[str] = []
    n = 0

    def flush_lines() -> None:
        path = f"{prefix}-{len(paths):05d}.jsonl"
        fileio.write_bytes(path, "".join(line + "\n" for line in lines).encode())
        paths.append(path)
        lines.clear()

    for element in sorted_elements(iter_source_records(source, config), config, run):
        n += 1
        elements.append(element)
        if len(elements) == CHUNK:
            lines.append(chunk_line(elements))
            elements.clear()
            if len(lines) == SHARD_CHUNKS:
                flush_lines()
    if elements:
        lines.append(chunk_line(elements))
    if lines:
        flush_lines()
    return paths, n


def read_manifest(path: str) -> list[str]:
    """A manifest file's chunk lines (one Beam element each)."""
    return [line for line in fileio.read_text(path).splitlines() if line]
