"""data_prep.tfrecords: gzip TFRecords at a chosen level, read back by TensorFlow as TFX reads them."""
import gzip
import os

import apache_beam as beam
import pytest

from data_prep.tfrecords import GzipTFRecordSink, write_tfrecords

# 40 records that deflate well (repeated text) and one that does not (random bytes).
RECORDS = [f"example {i} ".encode() * 50 for i in range(40)] + [os.urandom(3000)]


def _write(tmp_path, level: int) -> list[str]:
    prefix = str(tmp_path / f"level{level}" / "data_tfrecord")
    with beam.Pipeline() as p:
        _ = p | beam.Create([RECORDS[:7], RECORDS[7:8], RECORDS[8:]]) | write_tfrecords(prefix, level)
    return sorted(str(f) for f in (tmp_path / f"level{level}").iterdir())


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_every_level_reads_back_as_gzip_tfrecords(tmp_path, level):
    import tensorflow as tf

    files = _write(tmp_path, level)
    assert [os.path.basename(f) for f in files] == ["data_tfrecord-00000-of-00001.gz"]
    got = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    assert sorted(got) == sorted(RECORDS)
    # a plain gzip stream (what Beam's and tfx_bsl's `.gz` auto-detection expect)
    framed = gzip.decompress(open(files[0], "rb").read())
    assert len(framed) == sum(len(r) + 16 for r in RECORDS)  # TFRecord framing: 8 + 4 + data + 4


def test_level_0_stores_and_higher_levels_deflate(tmp_path):
    sizes = {level: os.path.getsize(_write(tmp_path, level)[0]) for level in (0, 6)}
    raw = sum(len(r) + 16 for r in RECORDS)
    assert raw < sizes[0] < raw + 200  # stored: the bytes plus gzip and block headers
    assert sizes[6] < raw / 3  # the repeated text deflates


def test_out_of_range_level_is_refused():
    with pytest.raises(ValueError, match="gzip level must be 0-9, received 10"):
        GzipTFRecordSink("/tmp/x", 10)
