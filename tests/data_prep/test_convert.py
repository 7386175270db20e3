"""convert_records: a batch converted in phases gives each record exactly what converting it alone gives."""
import logging

from data_prep import convert
from data_prep.convert import Converted, Failed, convert_record, convert_records, list_source_records
from data_prep.formats import utkface
from data_prep.generators.bad_files import good_jpeg, write_truncated_jpeg, write_zero_byte

NAMES = {
    "a": "26_1_2_20170116174525125.jpg.chip.jpg",  # good
    "b": "61_1_20170109142408075.jpg.chip.jpg",  # no race field: rejected before its image is read
    "c": "30_0_1_20170116174525126.jpg.chip.jpg",  # zero-byte image
    "d": "40_1_3_20170116174525127.jpg.chip.jpg",  # good
    "e": "50_0_0_20170116174525128.jpg.chip.jpg",  # truncated JPEG
    "f": "60_1_4_20170116174525129.jpg.chip.jpg",  # good, but the format raises a bug (below)
}


def _batch(tmp_path, config_factory):
    config = config_factory(str(tmp_path), [{"name": "utk", "format": "utkface", "path": str(tmp_path / "u"),
                                             "tasks": ["gender", "race"],
                                             "options": {"gender_task": "gender", "race_task": "race"}}])
    (tmp_path / "u").mkdir()
    for key, name in NAMES.items():
        path = str(tmp_path / "u" / name)
        if key == "c":
            write_zero_byte(path)
        elif key == "e":
            write_truncated_jpeg(path)
        else:
            with open(path, "wb") as f:
                f.write(good_jpeg(seed=ord(key)))
    source = config.sources[0]
    return config, source, list_source_records(source, config)  # sorted by name: a, d, b, c, e, f


def test_batch_results_are_in_order_and_equal_one_by_one(tmp_path, config_factory, monkeypatch, caplog):
    config, source, records = _batch(tmp_path, config_factory)
    parse = utkface.parse_record

    def buggy(record, src, cfg):
        if record.raw_id == NAMES["f"]:
            raise ZeroDivisionError("a bug on one odd record")
        return parse(record, src, cfg)

    monkeypatch.setattr(utkface, "parse_record", buggy)
    with caplog.at_level(logging.ERROR):
        batch = convert_records(records, source, config)
    by_name = {r.raw_id: out for r, out in zip(records, batch)}
    assert by_name[NAMES["b"]] == Failed("bad_name", by_name[NAMES["b"]].detail)
    assert by_name[NAMES["c"]] == Failed("bad_image", "zero-byte file")
    assert by_name[NAMES["e"]].reason == "bad_image"
    assert by_name[NAMES["f"]] == Failed("unexpected_error", "ZeroDivisionError: a bug on one odd record")
    assert f"unexpected error converting utk/{NAMES['f']}" in caplog.text
    for key in "ad":
        out = by_name[NAMES[key]]
        assert isinstance(out, Converted) and [t for t, _ in out.examples] == ["gender", "race"]
        assert out == convert_record(next(r for r in records if r.raw_id == NAMES[key]), source, config)


def test_a_rejected_label_reads_no_image(tmp_path, config_factory, monkeypatch):
    config, source, records = _batch(tmp_path, config_factory)
    read = []
    monkeypatch.setattr(convert, "read_image_file", lambda path: read.append(path) or good_jpeg())
    convert_records(records, source, config)
    assert sorted(read) == sorted(str(tmp_path / "u" / NAMES[k]) for k in "acdef")  # not b
