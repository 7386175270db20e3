"""train.sampling.min_per_task: every training batch holds at least k examples of each task."""
import numpy as np
import pytest

from components.trainer.input_pipeline import make_dataset, task_record_counts
from config import ConfigError
from tests.components.trainer.helpers import config_dict, make_config, write_gzip_tfrecords
from tests.components.trainer.test_input_pipeline import SPEC, record


@pytest.fixture
def skewed(tmp_path):
    # genki4k: 40 smile records (pixels 0..39); wiki: 2 gender (100, 101) and 1 age record (200) among
    # 30, the rest gender, so natural sampling rarely puts an age example in a batch of 8
    genki = [record(0, i, [1, 0, 0, 0, 0] if i % 2 else [0, 1, 0, 0, 0]) for i in range(40)]
    write_gzip_tfrecords(str(tmp_path / "Split-train_genki4k" / "a.gz"), genki)
    wiki = [record(1, 100 + i, [0, 1, 0, 0, 0]) for i in range(29)] + [record(2, 200, [0, 0, 1, 0, 0])]
    write_gzip_tfrecords(str(tmp_path / "Split-train_wiki" / "a.gz"), wiki)
    return ({"genki4k": str(tmp_path / "Split-train_genki4k" / "*"), "wiki": str(tmp_path / "Split-train_wiki" / "*")},
            {"genki4k": 40, "wiki": 30})


def _task_counts(batches):
    return np.array([[int(b[2][t].sum()) for t in ("smile", "gender", "age")] for b in batches])


def test_task_record_counts(skewed):
    patterns, _ = skewed
    assert task_record_counts(patterns["wiki"], "wiki", ["smile", "gender", "age"], SPEC) == {
        "smile": 0, "gender": 29, "age": 1}


def test_every_batch_holds_k_of_each_task(skewed):
    patterns, counts = skewed
    plain = make_dataset(patterns, SPEC, make_config(batch_size=8), 8, counts, training=True)
    assert (_task_counts(plain.take(50).as_numpy_iterator())[:, 2] == 0).any()  # without: batches lack age
    config = make_config(batch_size=8, sampling={"type": "natural", "min_per_task": 2})
    batches = list(make_dataset(patterns, SPEC, config, 8, counts, training=True).take(50).as_numpy_iterator())
    per_task = _task_counts(batches)
    assert all(len(b[0]["image"]) == 8 for b in batches)
    assert (per_task >= 2).all() and (per_task.sum(axis=1) == 8).all()
    # the first 2 x 3 rows are the quota, task by task: smile, smile, gender, gender, age, age
    for b in batches:
        assert [int(b[2][t][i]) for t, i in [("smile", 0), ("smile", 1), ("gender", 2), ("gender", 3),
                                             ("age", 4), ("age", 5)]] == [1] * 6
        assert b[0]["image"][4, 0, 0, 0] == b[0]["image"][5, 0, 0, 0] == 200  # the one age record
    # k x tasks = batch: the batch is the quota only
    full = make_config(batch_size=6, sampling={"type": "natural", "min_per_task": 2})
    exact = _task_counts(make_dataset(patterns, SPEC, full, 6, counts, training=True).take(10).as_numpy_iterator())
    assert (exact == 2).all()


def test_the_same_seed_gives_the_same_batches(skewed):
    patterns, counts = skewed

    def pixels(seed):
        raw = config_dict(batch_size=8, sampling={"type": "uniform", "min_per_task": 1})
        raw["train"]["seed"] = seed
        from config import parse

        ds = make_dataset(patterns, SPEC, parse(raw, base_dir=None), 8, counts, training=True)
        return np.concatenate([b[0]["image"][:, 0, 0, 0] for b in ds.take(20).as_numpy_iterator()])

    first = pixels(7)
    np.testing.assert_array_equal(first, pixels(7))
    assert (first != pixels(8)).any()


def test_quota_larger_than_the_batch_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^config key 'train.sampling.min_per_task': received 3: 3 tasks x 3 = 9 "
                                          r"examples exceed train.batch_size 8; valid: 0 to 2$"):
        make_config(batch_size=8, sampling={"type": "natural", "min_per_task": 3})
    with pytest.raises(ConfigError, match=r"'train.sampling.min_per_task'"):
        make_config(sampling={"type": "natural", "min_per_task": -1})
    assert make_config(batch_size=8, sampling={"type": "natural", "min_per_task": 2}).train.sampling.min_per_task == 2


def test_a_task_without_training_examples_is_named(tmp_path, skewed):
    patterns, counts = skewed
    write_gzip_tfrecords(str(tmp_path / "wiki_no_age" / "a.gz"), [record(1, 100, [0, 1, 0, 0, 0])])
    patterns = {**patterns, "wiki": str(tmp_path / "wiki_no_age" / "*")}
    config = make_config(batch_size=8, sampling={"type": "natural", "min_per_task": 1})
    with pytest.raises(ValueError, match=r"min_per_task: task 'age' has no training example"):
        make_dataset(patterns, SPEC, config, 8, {"genki4k": 40, "wiki": 1}, training=True)
