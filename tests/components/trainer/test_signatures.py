"""The signatures run a large batch through the model in chunks: same outputs, bounded memory."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.trainer import signatures
from models import get_builder
from tests.components.trainer.helpers import make_config


def test_chunk_size_follows_the_image_size():
    assert signatures.chunk_size(make_config(size=(48, 48))) == 2 ** 18 // (48 * 48) == 113
    assert signatures.chunk_size(make_config(size=(8, 8))) == 4096
    assert signatures.chunk_size(make_config(size=(1024, 1024))) == 1  # never 0


@pytest.mark.parametrize("n", [1, 7, 8, 9, 24, 25])
def test_chunked_outputs_equal_one_call(monkeypatch, n):
    config = make_config(size=(16, 16))
    keras.utils.set_random_seed(3)
    model = get_builder(config.model.name)(config)
    images = np.random.default_rng(n).random((n, 16, 16, 1), dtype=np.float32)
    spec = [tf.TensorSpec([None, 16, 16, 1], tf.float32)]
    whole = tf.function(lambda im: model({"image": im}, training=False), input_signature=spec)(images)
    monkeypatch.setattr(signatures, "CHUNK_PIXELS", 8 * 16 * 16)  # 8 examples per call
    assert signatures.chunk_size(config) == 8
    out = tf.function(lambda im: signatures._outputs(model, im, config), input_signature=spec)(images)
    assert sorted(out) == sorted(config.task_names)
    for t, task in zip(config.task_names, config.tasks):
        assert out[t].shape == (n, task.width)
        # inference is per example (BatchNorm uses its moving statistics), so chunking changes nothing
        np.testing.assert_allclose(out[t].numpy(), whole[t].numpy(), rtol=0, atol=1e-6)


def test_an_example_alone_gives_the_bits_it_gives_in_a_batch():
    """TFMA batches adaptively from one example up: a batch of one must not take other kernels."""
    config = make_config(size=(48, 48))
    keras.utils.set_random_seed(3)
    model = get_builder(config.model.name)(config)
    images = np.random.default_rng(0).random((9, 48, 48, 1), dtype=np.float32)
    spec = [tf.TensorSpec([None, 48, 48, 1], tf.float32)]
    fn = tf.function(lambda im: signatures._outputs(model, im, config), input_signature=spec)
    batch = fn(images)
    for i in range(len(images)):
        alone = fn(images[i:i + 1])
        for t in config.task_names:
            assert alone[t].shape == (1, batch[t].shape[1])
            np.testing.assert_array_equal(alone[t].numpy()[0], batch[t].numpy()[i])
