"""utkface: labels from file names, one example per mapped task, malformed names rejected with the reason."""
import os

import pytest

from config import ConfigError
from data_prep.convert import convert_record, list_source_records, validate_sources
from data_prep.formats import utkface
from data_prep.generate import generate_missing
from data_prep.generators.bad_files import good_jpeg
from data_prep.records import Reject
from tests.data_prep.helpers import outcome

GOOD = "26_1_2_20170116174525125.jpg.chip.jpg"


def _utk(tmp_path, config_factory, tasks=("years", "gender", "race"), **options):
    """Source `utk` labelling `tasks`; options default to years / gender / race, None drops one."""
    opts = {"age_task": "years", "gender_task": "gender", "race_task": "race", **options}
    opts = {k: v for k, v in opts.items() if v is not None}
    return config_factory(str(tmp_path), [{"name": "utk", "format": "utkface", "path": str(tmp_path / "u"),
                                           "tasks": list(tasks), "options": opts}])


@pytest.mark.parametrize("name,expected", [
    (GOOD, (26, 1, 2)),
    ("1_0_0_20161219140623097.jpg.chip.jpg", (1, 0, 0)),
    ("116_0_4_20170120134639935.jpg", (116, 0, 4)),  # the in-the-wild set's names
    ("0_1_3_20170109150557335.JPG.chip.jpg", (0, 1, 3)),
    ("61_1_20170109142408075.jpg.chip.jpg", "bad_name"),  # a real UTKFace name without race
    ("26_1_2_3_20170116174525125.jpg.chip.jpg", "bad_name"),  # 5 fields
    ("2a_1_2_20170116174525125.jpg.chip.jpg", "bad_name"),
    ("-5_1_2_20170116174525125.jpg.chip.jpg", "bad_name"),
    ("26_1_2_20170116174525125.png", "bad_name"),
    ("26_1_2_.jpg.chip.jpg", "bad_name"),  # empty date field
    ("117_1_2_20170116174525125.jpg.chip.jpg", "bad_age"),
    ("26_2_2_20170116174525125.jpg.chip.jpg", "bad_gender"),
    ("26_1_5_20170116174525125.jpg.chip.jpg", "bad_race"),
])
def test_parse_name(name, expected):
    try:
        got = utkface.parse_name(name)
    except Reject as r:
        got = r.reason
        assert name in r.detail
    assert got == expected


def test_labels_regression_age_and_named_classes(tmp_path, config_factory):
    config = _utk(tmp_path, config_factory)
    (tmp_path / "u" / "part1").mkdir(parents=True)
    for name in (GOOD, "61_0_0_20170109142408075.jpg.chip.jpg", "61_1_20170109142408075.jpg.chip.jpg"):
        (tmp_path / "u" / "part1" / name).write_bytes(good_jpeg())
    (tmp_path / "u" / "Thumbs.db").write_bytes(b"x")
    source = config.sources[0]
    got = {r.raw_id: outcome(utkface, r, source, config) for r in list_source_records(source, config)}
    assert got == {
        # gender 1 = female -> "female" = index 0 of [female, male]; race 2 = Asian -> index 2; group = file name
        f"part1/{GOOD}": (GOOD, {"years": 26.0, "gender": 0, "race": 2}, {}, None),
        "part1/61_0_0_20170109142408075.jpg.chip.jpg":
            ("61_0_0_20170109142408075.jpg.chip.jpg", {"years": 61.0, "gender": 1, "race": 0}, {}, None),
        "part1/61_1_20170109142408075.jpg.chip.jpg": "bad_name",
        "Thumbs.db": "bad_name",
    }


def test_binned_age_and_class_orders(tmp_path, config_factory):
    from config import parse

    raw = {"name": "t", "tasks": [
        {"name": "age", "type": "multiclass", "classes": ["young", "mid", "old"]},
        {"name": "sex", "type": "binary", "classes": ["a", "b"]},  # unnamed: male = index 1, as imdb_wiki
        {"name": "race", "type": "multiclass", "classes": ["others", "indian", "asian", "black", "white"]},
        {"name": "ethnic", "type": "multiclass", "classes": ["r0", "r1", "r2", "r3", "r4"]}],
        "sources": [{"name": "u", "format": "utkface", "path": str(tmp_path), "tasks": ["age", "sex", "race"],
                     "options": {"age_task": "age", "gender_task": "sex", "race_task": "race", "age_bins": [18, 60]}},
                    {"name": "v", "format": "utkface", "path": str(tmp_path), "tasks": ["ethnic"],
                     "options": {"race_task": "ethnic"}}]}
    config = parse(raw, base_dir=None)
    validate_sources(config)
    (tmp_path / GOOD).write_bytes(good_jpeg())
    (tmp_path / "60_0_4_20170109142408075.jpg.chip.jpg").write_bytes(good_jpeg())
    u, v = config.sources
    got = {r.raw_id: utkface.parse_record(r, u, config).labels for r in list_source_records(u, config)}
    # 26 -> bin 1 of [18, 60] (edges exclusive), 60 -> bin 2; female -> 0, male -> 1;
    # race by name: Asian -> index 2 of the reversed list, Others -> 0
    assert got == {GOOD: {"age": 1, "sex": 0, "race": 2},
                   "60_0_4_20170109142408075.jpg.chip.jpg": {"age": 2, "sex": 1, "race": 0}}
    got = {r.raw_id: utkface.parse_record(r, v, config).labels for r in list_source_records(v, config)}
    assert got == {GOOD: {"ethnic": 2}, "60_0_4_20170109142408075.jpg.chip.jpg": {"ethnic": 4}}  # by code


def test_one_example_per_task(tmp_path, config_factory):
    config = _utk(tmp_path, config_factory)
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / GOOD).write_bytes(good_jpeg())
    source = config.sources[0]
    out = convert_record(list_source_records(source, config)[0], source, config)
    # one example per task the image labels, in config task order (gender 0, years 1, race 2 here)
    assert config.task_names == ("gender", "years", "race")
    assert [task for task, _ in out.examples] == ["gender", "years", "race"]
    import tensorflow as tf

    labels = [list(tf.train.Example.FromString(ex).features.feature["label"].float_list.value)
              for _, ex in out.examples]
    # width 5 (race); female -> [1, 0] padded; 26.0 in slot 0; Asian -> slot 2
    assert labels == [[1.0, 0, 0, 0, 0], [26.0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0]]
    assert out.group_id == GOOD


@pytest.mark.parametrize("tasks,options,match", [
    (["gender"], {"age_task": None, "gender_task": None, "race_task": None},
     r"'sources\[0\]\.options': set age_task, gender_task"),
    (["gender", "race"], {"age_task": None, "race_task": "gender"},
     r"options\.race_task.*type 'binary'.*multiclass"),
    (["years", "gender", "race"], {"age_bins": [30]}, r"options\.age_bins.*regression task"),
    (["age", "gender", "race"], {"age_task": "age", "age_bins": [30]}, r"options\.age_bins.*2 age groups.*5 classes"),
    (["gender", "race"], {"age_task": None, "age_bins": [30]}, r"options\.age_bins.*needs an age_task"),
    (["gender", "race"], {"age_task": "race", "age_bins": [10, 20, 30, 40]},
     r"options'.*age_task, gender_task and race_task must differ"),
    (["years", "gender", "race"], {"ages": "years"},
     r"options\.ages'.*valid options.*age_bins, age_task, gender_task, race_task"),
])
def test_options(tmp_path, config_factory, tasks, options, match):
    with pytest.raises(ConfigError, match=match):
        validate_sources(_utk(tmp_path, config_factory, tasks, **options))


def test_race_task_needs_five_classes(tmp_path, config_factory):
    config = config_factory(str(tmp_path), [{"name": "u", "format": "utkface", "path": str(tmp_path),
                                             "tasks": ["mood"], "options": {"race_task": "mood"}}])
    with pytest.raises(ConfigError, match=r"options\.race_task.*needs 5 classes \(White, Black, Asian, Indian"):
        validate_sources(config)


def test_unmapped_task_is_an_error(tmp_path, config_factory):
    config = config_factory(str(tmp_path), [{"name": "u", "format": "utkface", "path": str(tmp_path),
                                             "tasks": ["gender", "race"], "options": {"gender_task": "gender"}}])
    with pytest.raises(ConfigError, match=r"sources\[0\]\.tasks.*race get no labels"):
        validate_sources(config)


def test_generator_layout(tmp_path, config_factory):
    config = config_factory(str(tmp_path), [{
        "name": "u", "format": "utkface", "path": str(tmp_path / "u"), "tasks": ["age", "gender", "race"],
        "options": {"age_task": "age", "gender_task": "gender", "race_task": "race", "age_bins": [20, 30, 40, 55]},
        "sample": {"count": 41, "seed": 4, "size": 64}}])
    generate_missing(config)
    names = sorted(os.listdir(tmp_path / "u"))
    assert len(names) == 41 and all(n.endswith(".jpg.chip.jpg") for n in names)
    source = config.sources[0]
    reasons = [outcome(utkface, r, source, config) for r in list_source_records(source, config)]
    assert sum(r == "bad_name" for r in reasons) == 1  # the generator drops race at i % 40 == 17: i = 17 only
    assert len({r[0] for r in reasons if r != "bad_name"}) == 40  # unique names: each its own group
