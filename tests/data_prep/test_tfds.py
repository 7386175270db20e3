"""tfds: a prepared TFDS dataset read offline, records listed from metadata, each shard read once."""
import os

import numpy as np
import pytest

from config import ConfigError
from data_prep.convert import convert_record, list_source_records, validate_sources
from data_prep.formats import tfds as tfds_format
from data_prep.generate import generate_missing
from data_prep.generators.bad_files import good_jpeg
from data_prep.generators.tfds import write_dataset
from data_prep.records import Reject, SourceError

CLASS_MAP = {"calm": "neutral", "joy": "happy"}  # "sad" maps to itself


def _td(path, config_factory, **options):
    opts = {"name": "moods", "class_map": dict(CLASS_MAP), **options}
    return config_factory(os.path.dirname(path), [{"name": "td", "format": "tfds", "path": path,
                                                   "tasks": ["mood"], "options": opts}])


def _image(v):
    return np.full((20, 30, 3), v, np.uint8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tfds"))
    write_dataset(d, "moods", ["calm", "joy", "sad"], {
        # train index 0..7 in the order given (TFDS shuffles by key hash when preparing)
        "train": [(_image(10), 0), (_image(20), 1), (b"", 2), (good_jpeg()[:400], 0),
                  (b"<html>404</html>", 1), (_image(30), 2), (_image(40), -1), (good_jpeg(3), 1)],
        "test": [(_image(50), 2), (_image(60), 0)]}, num_shards=2)
    return d


def _converted(source, config, records):
    """Reads every container as the Beam job does, then converts each record: raw id -> labels or reason."""
    by_key = {}
    for r in records:
        by_key.setdefault(tfds_format.container_of(r), []).append(r)
    got = {}
    for key, group in by_key.items():
        for r in tfds_format.read_container(key, group, source, config):
            try:
                got[r.raw_id] = dict(convert_record(r, source, config).examples) and \
                    tfds_format.parse_record(r, source, config).labels
            except Reject as e:
                got[r.raw_id] = e.reason
    return by_key, got


def test_records_from_metadata_and_labels(data_dir, config_factory):
    config = _td(data_dir, config_factory, splits=["train", "test"])
    validate_sources(config)
    source = config.sources[0]
    records = list_source_records(source, config)
    assert [r.raw_id for r in records] == [f"train/{i}" for i in range(8)] + ["test/0", "test/1"]
    by_key, got = _converted(source, config, records)
    # 2 shards per split, each read as one TFDS slice
    assert {k: len(v) for k, v in by_key.items()} == {"train[0:4]": 4, "train[4:8]": 4, "test[0:1]": 1,
                                                     "test[1:2]": 1}
    reasons = sorted(v for v in got.values() if isinstance(v, str))
    # zero-byte, truncated and text images -> bad_image; label -1 -> bad_label
    assert reasons == ["bad_image", "bad_image", "bad_image", "bad_label"]
    labels = sorted(v["mood"] for v in got.values() if isinstance(v, dict))
    # good images: calm x1 -> neutral 0, joy x2 -> happy 1 (one of them good_jpeg(3)), sad x2 + test sad -> 2,
    # test calm -> 0
    assert labels == [0, 0, 1, 1, 2, 2]


def test_group_id_is_the_record_id(data_dir, config_factory):
    config = _td(data_dir, config_factory)
    source = config.sources[0]
    records = list_source_records(source, config)
    read = list(tfds_format.read_container("train[0:4]", records[:4], source, config))
    assert sorted(r.raw_id for r in read) == ["train/0", "train/1", "train/2", "train/3"]
    pairs = [(r.raw_id, tfds_format.parse_record(r, source, config).group_id) for r in read if r.fields["label"] >= 0]
    assert len(pairs) >= 3 and all(raw == group for raw, group in pairs)  # one label -1 among the 8


def test_truncated_shard_dead_letters_its_records(tmp_path, config_factory):
    d = str(tmp_path / "d")
    version_dir = write_dataset(d, "moods", ["calm", "joy", "sad"],
                                {"train": [(_image(v), v % 3) for v in range(6)]}, num_shards=1)
    [shard] = [f for f in os.listdir(version_dir) if ".tfrecord-" in f]
    data = open(os.path.join(version_dir, shard), "rb").read()
    open(os.path.join(version_dir, shard), "wb").write(data[: len(data) // 2])
    config = _td(d, config_factory)
    source = config.sources[0]
    records = list_source_records(source, config)
    out = list(tfds_format.read_container("train[0:6]", records, source, config))
    assert sorted(r.raw_id for r in out) == [f"train/{i}" for i in range(6)]  # every record comes back
    failed = [r for r in out if "read_error" in r.fields]
    # the reader fails part-way (TFDS: "expected to contain 6 elements but contained only 3")
    assert 1 <= len(failed) < 6 and failed[0].fields["read_error"].startswith("reading train[0:6]: ")
    with pytest.raises(Reject) as e:
        tfds_format.parse_record(failed[0], source, config)
    assert e.value.reason == "unreadable_image"


@pytest.mark.parametrize("options,match", [
    ({"name": "no_such_set"},
     r"source 'td' \(tfds\): no prepared dataset 'no_such_set' under .*nothing is downloaded$"),
    ({"splits": ["validation"]}, r"has no split 'validation'; it has \['test', 'train'\]"),
    ({"class_map": {}}, r"dataset class\(es\) \['calm', 'joy'\] are not classes of task 'mood'.*options.class_map"),
    ({"image_key": "label"}, r"has no Image feature 'label'.*\{'image': 'Image', 'label': 'ClassLabel'\}"),
])
def test_source_errors(data_dir, config_factory, options, match):
    config = _td(data_dir, config_factory, **options)
    with pytest.raises(SourceError, match=match):
        list_source_records(config.sources[0], config)


def test_unprepared_registered_dataset(tmp_path, config_factory):
    config = _td(str(tmp_path), config_factory, name="mnist", class_map={})
    with pytest.raises(SourceError, match=r"dataset 'mnist' is not prepared in .*nothing is downloaded: prepare "
                                          r"it with `tfds build mnist --data_dir"):
        list_source_records(config.sources[0], config)


@pytest.mark.parametrize("options,match", [
    ({"name": ""}, r"options\.name.*TFDS dataset name"),
    ({"splits": "train"}, r"options\.splits.*list of distinct"),
    ({"splits": ["train", "train"]}, r"options\.splits.*list of distinct"),
    ({"class_map": {"calm": "angry"}}, r"options\.class_map\.calm.*'angry', not a class of task 'mood'"),
    ({"label": "y"}, r"options\.label'.*valid options.*class_map, image_key, label_key, name, splits"),
])
def test_options(tmp_path, config_factory, options, match):
    with pytest.raises(ConfigError, match=match):
        validate_sources(_td(str(tmp_path), config_factory, **options))


def test_sample_generator(tmp_path, config_factory):
    config = config_factory(str(tmp_path), [{"name": "td", "format": "tfds", "path": str(tmp_path / "td"),
                                             "tasks": ["mood"], "options": {"name": "gen_moods", "splits": ["a", "b"],
                                                                            "class_map": {"calm": "neutral"}},
                                             "sample": {"count": 9, "seed": 1, "shards": 2}}])
    generate_missing(config)
    assert os.listdir(tmp_path / "td") == ["gen_moods"]  # nothing but the prepared dataset
    import tensorflow_datasets as tfds

    b = tfds.builder("gen_moods", data_dir=str(tmp_path / "td"))
    assert b.info.features["label"].names == ["calm", "happy", "sad"]
    assert (b.info.splits["a"].num_examples, b.info.splits["b"].num_examples) == (5, 4)
    assert len(b.info.splits["a"].shard_lengths) == 2
