"""The saved model's three signatures (the penguin template's pattern).

  serving_default     examples: tf.string [None] serialized raw tf.Example
                      -> {task: float32 [None, width]}
  transform_features  examples -> the transformed features but the image:
                      task_index, label_<task>, weight_<task> (what TFMA reads
                      through `preprocessing_function_names`; the image reaches
                      the model through serving_default, and 48x48 floats per
                      example carried through TFMA's extracts cost ~25% of
                      its time on the evaluation benchmark)
  serving_image       image_bytes: tf.string [None] encoded images
                      -> the same outputs as serving_default

Raw examples go through Transform's own graph (`transform_features_layer`);
`serving_image` calls models.preprocess directly, the same function the
Transform graph was built from, so both paths give the same pixels. Both run a
batch larger than `chunk_size(config)` through the model in chunks, one after
another: the same outputs, and inference memory that does not grow with the
caller's batch size.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.trainer.precision import policy_scope
from config import Config
from models.preprocess import preprocess_image_batch
from models.tf_compat import skip_autograph_for_tf_keras

skip_autograph_for_tf_keras()  # tf_keras traces 20x faster (see models/tf_compat.py)

EXAMPLES = "examples"
IMAGE_BYTES = "image_bytes"


def _serving_spec(raw_spec: dict) -> dict:
    """The raw spec with defaults for everything but `image`: a client asking for
    predictions sends only the image, and `label`/`task_index` then parse as zeros
    (they only feed the label/weight outputs, which serving ignores)."""
    spec = {}
    for name, f in raw_spec.items():
        if name != "image" and isinstance(f, tf.io.FixedLenFeature) and f.default_value is None:
            n = 1
            for d in f.shape:
                n *= d
            zero = b"" if f.dtype == tf.string else 0
            f = tf.io.FixedLenFeature(f.shape, f.dtype, default_value=[zero] * n if f.shape else zero)
        spec[name] = f
    return spec


# Pixels one model call runs on at most (examples x height x width): the signatures run a
# larger batch in chunks, one at a time. A caller's batch size then does not set the peak
# memory of inference: TFMA's evaluation batches grow adaptively up to 1,000 examples as the
# data grows (tfx_bsl's batch cap), and each doubling of the batch doubled BKNet's activations
# (docs/results.md, cost curve). 2^18 pixels = 113 examples of 48x48, 5 of 224x224.
CHUNK_PIXELS = 2 ** 18


def chunk_size(config: Config) -> int:
    """Examples per model call in the signatures: CHUNK_PIXELS worth, at least 1."""
    height, width = config.image.size
    return max(1, CHUNK_PIXELS // (height * width))


def _call(model: keras.Model, image: tf.Tensor, config: Config) -> dict[str, tf.Tensor]:
    """The model on a batch, a batch of one run as two (the example twice), first row kept.

    On the CPU a batch of one takes other kernels (matrix-vector) than any larger batch, and
    its outputs differ from the same example's in a larger batch in the last bits (measured
    on BKNet: every example of a batch of one, none of batches of 2 to 226). TFMA's
    adaptive batches start at one example and grow with its timings, so without this the
    Evaluator's probability sums (calibration) changed in the 9th digit from run to run.
    """
    m = tf.shape(image)[0]
    image = tf.cond(m == 1, lambda: tf.concat([image, image], axis=0), lambda: image)
    out = model({"image": image}, training=False)
    return {t: tf.cast(out[t][:m], tf.float32) for t in config.task_names}


def _outputs(model: keras.Model, image: tf.Tensor, config: Config) -> dict[str, tf.Tensor]:
    chunk = chunk_size(config)
    n = tf.shape(image)[0]

    def whole():
        return _call(model, image, config)

    def chunked():
        k = (n + chunk - 1) // chunk
        arrays = {t: tf.TensorArray(tf.float32, size=k, infer_shape=False, element_shape=[None, task.width])
                  for t, task in zip(config.task_names, config.tasks)}

        def body(i, arrays):
            out = _call(model, image[i * chunk:(i + 1) * chunk], config)
            return i + 1, {t: a.write(i, out[t]) for t, a in arrays.items()}

        # parallel_iterations=1: chunks run one after another, so one chunk's activations live.
        _, arrays = tf.while_loop(lambda i, _: i < k, body, (tf.constant(0), arrays), parallel_iterations=1)
        return {t: a.concat() for t, a in arrays.items()}

    out = tf.cond(n <= chunk, whole, chunked)
    return {t: tf.identity(out[t], name=t) for t in config.task_names}


def make_signatures(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                    config: Config) -> dict[str, Callable]:
    """tf.functions (with input signatures) for model.save(..., signatures=...)."""
    # Attached to the model so the saved model tracks the Transform graph's assets. Built
    # under float32: a layer takes the global policy when it is made, and under a mixed
    # policy Keras would cast its float inputs to bfloat16, which Transform's graph rejects.
    with policy_scope("float32"):
        model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = _serving_spec(raw_spec)
    image_cfg = config.image

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES)])
    def serve_examples(examples):
        transformed = model.tft_layer(tf.io.parse_example(examples, serving_spec))
        return _outputs(model, transformed["image"], config)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES)])
    def transform_features(examples):
        transformed = model.tft_layer(tf.io.parse_example(examples, raw_spec))
        return {k: v for k, v in transformed.items() if k != "image"}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES)])
    def serve_image(image_bytes):
        return _outputs(model, preprocess_image_batch(image_bytes, image_cfg), config)

    # The tf.functions themselves (each has its input_signature), not their concrete
    # functions: a concrete function traced outside the strategy that built the model
    # reads its distributed variables in a way model.save rejects ("ConcreteFunction that
    # uses distributed variables in certain way cannot be saved") under
    # MultiWorkerMirroredStrategy; the saver traces the tf.functions itself.
    return {
        "serving_default": serve_examples,
        "transform_features": transform_features,
        "serving_image": serve_image,
    }
