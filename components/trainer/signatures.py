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
Transform graph was built from, so both paths give the same pixels.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

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


def _outputs(model: keras.Model, image: tf.Tensor, config: Config) -> dict[str, tf.Tensor]:
    out = model({"image": image}, training=False)
    return {t: tf.identity(out[t], name=t) for t in config.task_names}


def make_signatures(model: keras.Model, tf_transform_output: tft.TFTransformOutput,
                    config: Config) -> dict[str, Callable]:
    """tf.functions (with input signatures) for model.save(..., signatures=...)."""
    # Attached to the model so the saved model tracks the Transform graph's assets.
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
