"""Slice-only features (docs/data_contract.md): a record labelled for several tasks gives each of
its examples the record's OTHER binary / multiclass labels as `slice_<task>` (class name), never
touching `label` or `task_index`; a single-task source's examples are byte for byte what they were."""
import tensorflow as tf

from config import parse
from data_prep.convert import convert_record, list_source_records
from data_prep.generators.bad_files import good_jpeg
from data_prep.records import make_example, slice_features

GOOD = "26_1_2_20170116174525125.jpg.chip.jpg"  # age 26, gender 1 (female in UTKFace), race 2 (Asian)
CONTRACT = {"image", "task_index", "label", "source", "example_id"}


def _convert(tmp_path, config_factory, tasks, **options):
    config = config_factory(str(tmp_path), [{"name": "utk", "format": "utkface", "path": str(tmp_path / "u"),
                                             "tasks": list(tasks), "options": options}])
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / GOOD).write_bytes(good_jpeg())
    source = config.sources[0]
    return config, convert_record(list_source_records(source, config)[0], source, config)


def _features(serialized: bytes) -> dict:
    f = tf.train.Example.FromString(serialized).features.feature
    return {k: (list(v.bytes_list.value) or list(v.float_list.value) or list(v.int64_list.value))
            for k, v in f.items()}


def test_a_multi_task_record_carries_its_other_labels_as_slice_features(tmp_path, config_factory):
    config, out = _convert(tmp_path, config_factory, ("years", "gender", "race"),
                           age_task="years", gender_task="gender", race_task="race")
    got = {task: _features(ex) for task, ex in out.examples}
    # UTKFace's gender 1 is female; the format maps it to the class named so
    assert {t: {k: v for k, v in f.items() if k.startswith("slice_")} for t, f in got.items()} == {
        "gender": {"slice_race": [b"Asian"]},
        "years": {"slice_gender": [b"female"], "slice_race": [b"Asian"]},  # regression: no slice_years
        "race": {"slice_gender": [b"female"]},
    }
    # label and task_index are the contract's, unchanged by the slice features
    for task, ex in out.examples:
        f = _features(ex)
        plain = make_example(f["image"][0], f["task_index"][0], f["label"], "utk", f["example_id"][0].decode())
        stripped = tf.train.Example.FromString(ex)
        for k in [k for k in stripped.features.feature if k.startswith("slice_")]:
            del stripped.features.feature[k]
        assert stripped.SerializeToString(deterministic=True) == plain, task
        assert f["task_index"] == [config.task_index(task)]


def test_a_single_task_source_writes_exactly_the_contract(tmp_path, config_factory):
    config, out = _convert(tmp_path, config_factory, ("gender",), gender_task="gender")
    [(task, ex)] = out.examples
    f = _features(ex)
    assert set(f) == CONTRACT
    assert ex == make_example(f["image"][0], 0, f["label"], "utk", f"utk/{GOOD}/gender")


def test_a_missing_label_is_an_absent_feature():
    config = parse({"name": "t", "tasks": [
        {"name": "gender", "type": "binary", "classes": ["f", "m"]},
        {"name": "age", "type": "multiclass", "classes": ["young", "old"]},
        {"name": "years", "type": "regression"}],
        "sources": [{"name": "w", "format": "imdb_wiki", "path": "/x", "tasks": ["gender", "age", "years"],
                     "options": {"gender_task": "gender", "age_task": "age", "age_bins": [40]}}]},
        base_dir=None)
    # the record has age and years but no gender (NaN in wiki.mat)
    assert slice_features(config.tasks, {"age": 1, "years": 52.0}, "age") == {}
    assert slice_features(config.tasks, {"age": 1, "years": 52.0}, "years") == {"slice_age": "old"}
    assert slice_features(config.tasks, {"gender": 0, "age": 0}, "gender") == {"slice_age": "young"}
