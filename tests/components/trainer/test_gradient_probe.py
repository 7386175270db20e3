"""The gradient-conflict probe (components/trainer/gradient_probe.py) on cases with known answers."""
import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.common.probe_file import PROBE_FILE, read_probe
from components.trainer.gradient_probe import GradientConflictProbe, conflict_stats, probe_batch, summarize
from components.trainer.training_model import make_training_model
from config import parse


def test_conflict_stats_exact():
    flat = np.array([[3.0, 4.0], [4.0, -3.0], [-3.0, -4.0]])
    stats = conflict_stats(flat, ["a", "b", "c"])
    assert stats["norm"] == {"a": 5.0, "b": 5.0, "c": 5.0}
    assert stats["cosine"] == pytest.approx({"a/b": 0.0, "a/c": -1.0, "b/c": 0.0})
    # a task whose gradient is 0 on the shared parameters has cosine 0 with the others
    assert conflict_stats(np.array([[1.0, 0.0], [0.0, 0.0]]), ["a", "b"])["cosine"] == {"a/b": 0.0}


def test_summarize_means_and_negative_share():
    probes = [{"cosine": {"a/b": c}, "norm": {"a": 2.0, "b": 1.0}} for c in (0.5, -0.25, -0.5, 0.25)]
    assert summarize(probes) == {"a/b": {"cosine_mean": 0.0, "negative_share": 0.5, "cosine_last": 0.25,
                                         "norm_ratio_last": 2.0}}
    assert summarize([]) == {}


def two_regression_tasks():
    """image x -> trunk h = w x (shared, w = 0) -> a = h, b = h (heads of kernel 1, their own)."""
    config = parse({
        "name": "t",
        "tasks": [{"name": "a", "type": "regression"}, {"name": "b", "type": "regression"}],
        "sources": [{"name": "s", "format": "folder", "path": "/x", "tasks": ["a", "b"]}],
    }, base_dir=None)
    x = keras.Input((1,), name="image")
    h = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", name="trunk")(x)
    heads = {t: keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name=t)(h) for t in ("a", "b")}
    model = keras.Model(x, heads)
    return config, model, make_training_model(model, config, total_steps=10)


def batch(label_a: float, label_b: float):
    """Two examples of a, two of b, x = 1: dL_a/dw = 2 (0 - label_a), dL_b/dw = 2 (0 - label_b)."""
    features = {"image": tf.ones((4, 1))}
    labels = {"a": tf.fill((4, 1), label_a), "b": tf.fill((4, 1), label_b)}
    weights = {"a": tf.constant([1.0, 1.0, 0.0, 0.0]), "b": tf.constant([0.0, 0.0, 1.0, 1.0])}
    return features, labels, weights


@pytest.mark.parametrize("labels, cosine", [((2.0, -2.0), -1.0), ((2.0, 3.0), 1.0)])
def test_probe_sees_conflict_on_the_shared_trunk_only(tmp_path, labels, cosine):
    config, model, training = two_regression_tasks()
    probe = GradientConflictProbe(model, training, batch(*labels), ["a", "b"], str(tmp_path / "tb"), str(tmp_path))
    stats = probe.probe(step=0)
    # only the trunk's kernel is reached by both losses; each head's by its own task only
    assert [model.trainable_variables[i].name for i in probe._shared] == ["trunk/kernel:0"]
    assert stats["cosine"] == {"a/b": pytest.approx(cosine)}
    assert stats["norm"] == {"a": pytest.approx(2 * abs(labels[0])), "b": pytest.approx(2 * abs(labels[1]))}
    assert stats["loss_weights"] == {"a": 1.0, "b": 1.0}


def test_probe_runs_each_epoch_of_fit_and_writes_the_json(tmp_path):
    config, model, training = two_regression_tasks()
    probe = GradientConflictProbe(model, training, batch(2.0, -2.0), ["a", "b"], str(tmp_path / "tb"),
                                  str(tmp_path))
    features, labels, weights = batch(2.0, -2.0)
    training.fit(features, labels, sample_weight=weights, batch_size=4, epochs=3, verbose=0, callbacks=[probe])
    doc = read_probe(str(tmp_path))
    assert [p["step"] for p in doc["probes"]] == [1, 2, 3]
    assert doc["summary"]["a/b"]["negative_share"] == 1.0
    assert doc["probe_examples"] == 4
    assert json.loads((tmp_path / PROBE_FILE).read_text())["tasks"] == ["a", "b"]
    assert (tmp_path / "tb" / "gradients").is_dir()


def test_probe_batch_fills_every_task_or_gives_none():
    def stream(weights_b):
        return tf.data.Dataset.from_tensors(({"image": tf.ones((2, 1))}, {"a": tf.ones((2, 1)), "b": tf.ones((2, 1))},
                                             {"a": tf.ones(2), "b": tf.constant(weights_b)})).repeat(10)

    features, labels, weights = probe_batch(stream([1.0, 0.0]), ["a", "b"], per_task=3)
    # 3 batches of 2 read (a has 6 >= 3, b 3 >= 3); kept: a's first 3 (rows 0, 1, 2) and b's (0, 2, 4)
    assert features["image"].shape[0] == 4
    assert float(tf.reduce_sum(weights["b"])) == 3.0 and float(tf.reduce_sum(weights["a"])) == 4.0
    assert probe_batch(stream([0.0, 0.0]), ["a", "b"], per_task=3) is None


def test_chunks_give_the_whole_batch_gradient():
    """The probe differentiates in chunks (a training step's memory); the sum over chunks divided by
    each task's count is the gradient of the whole batch's masked mean."""
    from components.trainer.gradient_probe import task_gradients

    config, model, training = two_regression_tasks()
    model.get_layer("trunk").kernel.assign([[0.5]])
    whole = task_gradients(model, training.task_losses, ["a", "b"], batch(2.0, -1.0), chunk=4)
    chunked = task_gradients(model, training.task_losses, ["a", "b"], batch(2.0, -1.0), chunk=1)
    for w, c in zip(whole, chunked):
        for gw, gc in zip(w, c):
            assert (gw is None) == (gc is None)
            if gw is not None:
                np.testing.assert_allclose(gw.numpy(), gc.numpy(), rtol=1e-6)


def test_the_probe_graph_gives_the_eager_gradients_with_one_trace(tmp_path):
    """The probe runs chunk_gradients as one tf.function with the batch dimension open: chunks of
    3 and 1 run the same graph, and the gradients are the eager ones (w = 0.5: dL_a/dw over a's two
    examples = 2 (0.5 - 2) = -3, dL_b/dw = 2 (0.5 + 1) = 3)."""
    from components.trainer.gradient_probe import task_gradients

    config, model, training = two_regression_tasks()
    model.get_layer("trunk").kernel.assign([[0.5]])
    probe = GradientConflictProbe(model, training, batch(2.0, -1.0), ["a", "b"], None, None)
    stats = probe.probe(step=0)
    assert stats["norm"] == {"a": pytest.approx(3.0), "b": pytest.approx(3.0)}
    assert stats["cosine"] == {"a/b": pytest.approx(-1.0)}
    compiled = task_gradients(model, training.task_losses, ["a", "b"], batch(2.0, -1.0), chunk=3,
                              chunk_fn=probe._chunk_fn)
    eager = task_gradients(model, training.task_losses, ["a", "b"], batch(2.0, -1.0), chunk=3)
    assert probe._chunk_fn.experimental_get_tracing_count() == 1
    for c, e in zip(compiled, eager):
        for gc, ge in zip(c, e):
            assert (gc is None) == (ge is None)
            if gc is not None:
                np.testing.assert_allclose(gc.numpy(), ge.numpy(), rtol=1e-6)
    assert float(compiled[0][0][0, 0]) == pytest.approx(-3.0)
