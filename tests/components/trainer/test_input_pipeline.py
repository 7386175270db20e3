"""The Trainer's tf.data input: per-source streams, mixing shares, Keras-shaped batches."""

import numpy as np
import pytest
import tensorflow as tf

from components.trainer.input_pipeline import count_records, make_dataset, mixing_weights
from tests.components.trainer.helpers import transformed_example, write_gzip_tfrecords

SPEC = {
    "image": tf.io.FixedLenFeature([2, 2, 1], tf.float32),
    "label_smile": tf.io.FixedLenFeature([2], tf.float32),
    "label_gender": tf.io.FixedLenFeature([2], tf.float32),
    "label_age": tf.io.FixedLenFeature([5], tf.float32),
    "weight_smile": tf.io.FixedLenFeature([], tf.float32),
    "weight_gender": tf.io.FixedLenFeature([], tf.float32),
    "weight_age": tf.io.FixedLenFeature([], tf.float32),
    "task_index": tf.io.FixedLenFeature([], tf.int64),
}


def record(task_index: int, pixel: float, label: list) -> bytes:
    label = np.asarray(label, np.float32)
    return transformed_example({
        "image": np.full((2, 2, 1), pixel, np.float32),
        "label_smile": label[:2], "label_gender": label[:2], "label_age": label,
        "weight_smile": float(task_index == 0), "weight_gender": float(task_index == 1),
        "weight_age": float(task_index == 2), "task_index": np.int64(task_index)})


@pytest.fixture
def sources(tmp_path):
    # genki4k: 6 smile records in 2 files (pixel = its number); wiki: 4 records, gender and age
    genki = [record(0, i, [1, 0, 0, 0, 0] if i % 2 else [0, 1, 0, 0, 0]) for i in range(6)]
    write_gzip_tfrecords(str(tmp_path / "Split-train_genki4k" / "a.gz"), genki[:3])
    write_gzip_tfrecords(str(tmp_path / "Split-train_genki4k" / "b.gz"), genki[3:])
    wiki = [record(1, 10, [0, 1, 0, 0, 0]), record(2, 11, [0, 0, 1, 0, 0]),
            record(1, 12, [1, 0, 0, 0, 0]), record(2, 13, [0, 0, 0, 0, 1])]
    write_gzip_tfrecords(str(tmp_path / "Split-train_wiki" / "a.gz"), wiki)
    return {"genki4k": str(tmp_path / "Split-train_genki4k" / "*"), "wiki": str(tmp_path / "Split-train_wiki" / "*")}


def test_count_records_is_exact(sources):
    assert count_records(sources["genki4k"]) == 6
    assert count_records(sources["wiki"]) == 4
    with pytest.raises(ValueError, match=r"source 'x': no file matches '/nonexistent/\*'"):
        count_records("/nonexistent/*", "x")


def test_eval_stream_reads_every_record_once_in_keras_form(make_config, sources):
    cfg = make_config()
    ds = make_dataset(sources, SPEC, cfg, batch_size=4, counts={"genki4k": 6, "wiki": 4}, training=False)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[0]["image"]) for b in batches] == [4, 4, 2]  # 10 records, batch 4, last partial
    features, labels, weights = (
        {k: np.concatenate([b[i][k] for b in batches]) for k in batches[0][i]} for i in range(3))
    assert sorted(features) == ["image"] and features["image"].shape == (10, 2, 2, 1)
    assert sorted(labels) == sorted(weights) == ["age", "gender", "smile"]
    assert labels["age"].shape == (10, 5) and labels["smile"].shape == (10, 2) and weights["age"].shape == (10,)
    # each record appears once: pixels 0..5 (genki4k) and 10..13 (wiki)
    assert sorted(features["image"][:, 0, 0, 0].tolist()) == [0, 1, 2, 3, 4, 5, 10, 11, 12, 13]
    # the age label rides with its record: pixel 13 is age class 4, pixel 11 age class 2
    by_pixel = {int(p): i for i, p in enumerate(features["image"][:, 0, 0, 0])}
    assert labels["age"][by_pixel[13]].tolist() == [0, 0, 0, 0, 1] and weights["age"][by_pixel[13]] == 1.0
    assert labels["age"][by_pixel[11]].tolist() == [0, 0, 1, 0, 0]
    # weights: 6 smile, 2 gender, 2 age records
    assert [weights[t].sum() for t in ("smile", "gender", "age")] == [6.0, 2.0, 2.0]


def test_training_stream_follows_the_sampling_shares(make_config, sources):
    cfg = make_config(sampling={"type": "weights", "weights": {"genki4k": 3, "wiki": 1}})
    ds = make_dataset(sources, SPEC, cfg, batch_size=50, training=True)  # repeats forever
    smile = np.concatenate([b[2]["smile"] for b in ds.take(40).as_numpy_iterator()])
    # share 3 / (3 + 1) = 0.75 from genki4k (weight_smile = 1 exactly on its records); 2,000 draws,
    # binomial sd = sqrt(0.75 * 0.25 / 2000) = 0.0097, so 0.05 is > 5 sd
    assert len(smile) == 2000
    assert abs(smile.mean() - 0.75) < 0.05
    # the same seed gives the same stream
    again = np.concatenate([b[2]["smile"] for b in make_dataset(sources, SPEC, cfg, 50).take(40).as_numpy_iterator()])
    np.testing.assert_array_equal(smile, again)


def test_zero_share_source_is_never_read(make_config, sources):
    cfg = make_config(sampling={"type": "weights", "weights": {"genki4k": 0, "wiki": 1}})
    batch = next(make_dataset(sources, SPEC, cfg, batch_size=64).as_numpy_iterator())
    assert set(batch[0]["image"][:, 0, 0, 0].tolist()) == {10, 11, 12, 13}


def test_eval_mix_is_natural_and_errors_are_named(make_config, sources):
    cfg = make_config(sampling={"type": "uniform"})
    # eval ignores the training sampler: 6 / 10 and 4 / 10
    assert mixing_weights(cfg, ["genki4k", "wiki"], {"genki4k": 6, "wiki": 4}, training=False) == {
        "genki4k": 0.6, "wiki": 0.4}
    with pytest.raises(ValueError, match=r"must name exactly the config's sources \['genki4k', 'wiki'\]"):
        make_dataset({"genki4k": sources["genki4k"]}, SPEC, cfg, 4)
    with pytest.raises(ValueError, match=r"transformed feature spec lacks \['weight_age'\]"):
        make_dataset(sources, {k: v for k, v in SPEC.items() if k != "weight_age"}, cfg, 4)


def test_source_selector_draws_the_shares_and_repeats_with_the_seed():
    import numpy as np

    from components.trainer.input_pipeline import source_selector

    draws = np.array(list(source_selector([0.2, 0.5, 0.3], seed=7).take(60_000).as_numpy_iterator()))
    shares = np.bincount(draws, minlength=3) / len(draws)
    assert np.allclose(shares, [0.2, 0.5, 0.3], atol=0.01), shares
    again = np.array(list(source_selector([0.2, 0.5, 0.3], seed=7).take(1000).as_numpy_iterator()))
    other = np.array(list(source_selector([0.2, 0.5, 0.3], seed=8).take(1000).as_numpy_iterator()))
    assert (again == draws[:1000]).all() and (other != draws[:1000]).any()


def _max_class_share(labels, window: int) -> float:
    labels = np.asarray(labels)
    return float(np.mean([np.bincount(labels[i:i + window], minlength=2).max() / window
                          for i in range(0, len(labels) - window + 1, window)]))


def test_cached_stream_is_shuffled_in_full(make_config, tmp_path):
    # 3,000 records stored class by class (more than the 1,024-record shuffle window): a
    # window shuffle would give batches of one class; the cached stream's full shuffle mixes
    # them like independent draws.
    n = 3000
    records = [record(0, i, [1, 0, 0, 0, 0] if i < n // 2 else [0, 1, 0, 0, 0]) for i in range(n)]
    write_gzip_tfrecords(str(tmp_path / "Split-train_genki4k" / "a.gz"), records)
    write_gzip_tfrecords(str(tmp_path / "Split-train_wiki" / "a.gz"), [record(1, 10, [0, 1, 0, 0, 0])])
    patterns = {"genki4k": str(tmp_path / "Split-train_genki4k" / "*"),
                "wiki": str(tmp_path / "Split-train_wiki" / "*")}
    cfg = make_config(sampling={"type": "weights", "weights": {"genki4k": 1.0}})
    ds = make_dataset(patterns, SPEC, cfg, batch_size=30, counts={"genki4k": n, "wiki": 1}, training=True)
    labels = [int(np.argmax(y)) for _, batch, _ in ds.take(100).as_numpy_iterator() for y in batch["smile"]]
    rng = np.random.default_rng(0)
    base = [0] * (n // 2) + [1] * (n // 2)
    bound = np.quantile([_max_class_share(rng.permutation(base)[:len(labels)], 30) for _ in range(300)], 0.99)
    assert _max_class_share(labels, 30) <= bound
    # and every record of a pass is drawn once before any repeats
    pixels = [int(p) for f, _, _ in ds.take(100).as_numpy_iterator() for p in f["image"][:, 0, 0, 0]]
    assert sorted(pixels) == list(range(n))
