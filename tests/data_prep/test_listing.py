"""The streamed listing: the manifest holds exactly stream_order's records, with memory bounded by
the sort's run, not by the number of records."""
import gc
import glob
import json
import os
import tracemalloc

import pytest

from data_prep import listing
from data_prep.convert import list_source_records, stream_order
from data_prep.formats import get_format
from data_prep.generate import generate_missing
from data_prep.records import RawRecord, SourceError
from tests.data_prep.helpers import make_config


def _elements(records):
    return [listing.record_element(r) for r in records]


def test_external_sort_gives_stream_order_whatever_the_run():
    config = make_config("/nowhere", [{"name": "f", "format": "folder", "path": "/nowhere", "tasks": ["mood"]}])
    records = [RawRecord(f"c{i % 3}/img{i:03d}.png", f"/d/{i}", {"i": i}) for i in range(50)]
    # equal ids (a manifest's duplicate rows) keep the listing's order, as sorted() does
    records += [RawRecord("c1/img007.png", "/d/dup", {"i": -1}), RawRecord("c0/img000.png", "/d/dup2", {"i": -2})]
    want = _elements(stream_order(records, config))
    for run in (1, 3, 7, 52, 10_000):  # spilled runs merged, or one run in memory
        assert list(listing.sorted_elements(iter(records), config, run=run)) == want


@pytest.mark.parametrize("fmt", ["genki4k", "imdb_wiki", "folder", "utkface"])
def test_streamed_formats_list_what_list_records_lists(tmp_path, fmt):
    tasks = {"genki4k": ["smile"], "imdb_wiki": ["gender", "age"], "folder": ["mood"], "utkface": ["race"]}[fmt]
    options = {"imdb_wiki": {"age_task": "age", "gender_task": "gender", "age_bins": [20, 30, 40, 55]},
               "utkface": {"race_task": "race"}}.get(fmt, {})
    config = make_config(str(tmp_path), [{"name": "s", "format": fmt, "path": str(tmp_path / "s"), "tasks": tasks,
                                          "options": options, "sample": {"count": 12, "seed": 1}}])
    generate_missing(config)
    source = config.sources[0]
    streamed = listing.iter_source_records(source, config)
    assert not isinstance(streamed, list)
    assert _elements(streamed) == _elements(get_format(fmt).list_records(source, config))  # as JSON: NaN != NaN


def test_manifest_files_hold_stream_order_and_the_count(tmp_path, monkeypatch):
    monkeypatch.setattr(listing, "CHUNK", 4)
    monkeypatch.setattr(listing, "SHARD_CHUNKS", 2)
    config = make_config(str(tmp_path), [{"name": "g", "format": "genki4k", "path": str(tmp_path / "g"),
                                          "tasks": ["smile"], "sample": {"count": 19, "seed": 0}}])
    generate_missing(config)
    paths, n = listing.write_manifest(config.sources[0], config, str(tmp_path / "work" / "g"), run=5)
    assert n == 19 and len(paths) == 3  # 5 chunks of <= 4 records, 2 chunks a file
    assert paths == sorted(glob.glob(str(tmp_path / "work" / "g-*.jsonl")))
    lines = [line for p in paths for line in listing.read_manifest(p)]
    assert [len(json.loads(line)) for line in lines] == [4, 4, 4, 4, 3]
    want = stream_order(list_source_records(config.sources[0], config), config)
    assert [r for line in lines for r in listing.chunk_records(line)] == want
    assert lines == listing.records_to_chunks(want, size=4)  # the same bytes as the in-memory way


def test_missing_or_empty_source_fails_naming_it(tmp_path):
    config = make_config(str(tmp_path), [{"name": "f", "format": "folder", "path": str(tmp_path / "f"),
                                          "tasks": ["mood"]}])
    with pytest.raises(SourceError, match="does not exist"):
        listing.check_source(config.sources[0], config)
    os.makedirs(tmp_path / "f")
    with pytest.raises(SourceError, match=r"source 'f' \(folder\): no records"):
        listing.check_source(config.sources[0], config)


def _peak_bytes(n: int, run: int, config) -> int:
    records = (RawRecord(f"wiki/{i:07d}.jpg", f"/data/wiki/{i:07d}.jpg",
                         {"dob": 723671.0 + i, "gender": 1.0, "name": f"person {i // 3}", "face_score": 4.2})
               for i in range(n))
    gc.collect()
    tracemalloc.start()
    try:
        for _ in listing.sorted_elements(records, config, run=run):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_sort_memory_does_not_grow_with_the_records():
    config = make_config("/nowhere", [{"name": "f", "format": "folder", "path": "/nowhere", "tasks": ["mood"]}])
    small, large = _peak_bytes(3_000, 500, config), _peak_bytes(12_000, 500, config)
    in_memory = _peak_bytes(12_000, 12_000, config)  # one run: every record held, as sorted() did
    # 4x the records: the peak grows only by a read buffer per spilled run (18 more runs, ~8 KB each)
    assert large - small < 18 * 12_000, (small, large)
    assert large < in_memory / 4, (large, in_memory)
