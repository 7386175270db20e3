"""Training-only augmentation: exact pixel arithmetic, seeded, never on eval batches."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from components.trainer.augment import augment_batch, window
from components.trainer.input_pipeline import make_dataset
from config import AugmentConfig, ConfigError, ImageConfig
from tests.components.trainer.helpers import config_dict, make_config, transformed_example, write_gzip_tfrecords

RAMP = np.tile(np.arange(6, dtype=np.float32), (6, 1))  # 6 x 6, pixel = its column
IMAGE = ImageConfig(size=(6, 6), channels=1, normalization="unit")
SEED = tf.constant([7, 0], tf.int64)


def batch(n=32):
    return tf.constant(np.repeat(RAMP[None, ..., None], n, axis=0))


def test_flip_mirrors_some_images_and_follows_the_seed():
    out = augment_batch(batch(), SEED, AugmentConfig(flip=True), IMAGE).numpy()[..., 0]
    flipped = [bool((o == RAMP[:, ::-1]).all()) for o in out]
    assert all(f or (o == RAMP).all() for f, o in zip(flipped, out))  # each image: as is, or its mirror
    assert 8 < sum(flipped) < 24  # p = 1/2 over 32 images (binomial sd 2.8)
    again = augment_batch(batch(), SEED, AugmentConfig(flip=True), IMAGE).numpy()[..., 0]
    np.testing.assert_array_equal(out, again)
    other = augment_batch(batch(), tf.constant([8, 0], tf.int64), AugmentConfig(flip=True), IMAGE).numpy()[..., 0]
    assert not np.array_equal(out, other)


def test_crop_cuts_a_window_and_resizes_it_back():
    # 2 pixels: a 4 x 4 window at column offset 0, 1 or 2, stretched back to 6 columns; bilinear
    # interpolation of the ramp is exact: output column j = left + j * (4 - 1) / (6 - 1) = left + 0.6 j
    out = augment_batch(batch(), SEED, AugmentConfig(crop=2), IMAGE).numpy()[..., 0]
    lefts = set()
    for o in out:
        left = o[0, 0]
        assert left in (0.0, 1.0, 2.0)
        np.testing.assert_allclose(o, np.tile(left + 0.6 * np.arange(6), (6, 1)), atol=1e-5)
        lefts.add(float(left))
    assert lefts == {0.0, 1.0, 2.0}
    # a fraction of the side: 0.25 of 6 -> round(4.5) = 4 (banker's rounding), of 48 -> 36; pixels: 48 - 4 = 44
    assert (window(6, 0.25), window(48, 0.25), window(48, 4)) == (4, 36, 44)


def test_brightness_shifts_each_image_by_one_clipped_delta():
    flat = tf.fill([32, 6, 6, 1], 0.5)  # unit: 0.5 is grey 127.5
    out = augment_batch(flat, SEED, AugmentConfig(brightness=0.1), IMAGE).numpy()
    deltas = out[:, 0, 0, 0] - 0.5
    for o, d in zip(out, deltas):
        np.testing.assert_allclose(o, 0.5 + d, atol=1e-6)  # one delta per image
    assert (np.abs(deltas) <= 0.1 + 1e-6).all() and deltas.min() < 0 < deltas.max()
    # clipped to what pixels 0..255 normalise to: unit [0, 1]; caffe gray [-114.8, 140.2] with delta * 255
    white = augment_batch(tf.ones([32, 6, 6, 1]), SEED, AugmentConfig(brightness=0.1), IMAGE).numpy()
    assert white.max() == 1.0 and white.min() == pytest.approx(1 + deltas.min(), abs=1e-6)
    caffe = dataclasses.replace(IMAGE, normalization="caffe")
    shifted = augment_batch(tf.zeros([32, 6, 6, 1]), SEED, AugmentConfig(brightness=0.1), caffe).numpy()
    np.testing.assert_allclose(shifted[:, 0, 0, 0], deltas * 255, rtol=1e-4, atol=1e-4)


# --- in the tf.data pipeline ---

SPEC = {"image": tf.io.FixedLenFeature([6, 6, 1], tf.float32),
        **{f"label_{t}": tf.io.FixedLenFeature([w], tf.float32) for t, w in (("smile", 2), ("gender", 2), ("age", 5))},
        **{f"weight_{t}": tf.io.FixedLenFeature([], tf.float32) for t in ("smile", "gender", "age")}}


@pytest.fixture
def ramps(tmp_path):
    """genki4k and wiki: 8 records each, (the ramp plus the record's number) / 100 + 0.4: in [0.4, 0.53],
    so a brightness delta of up to 0.2 is never clipped."""
    def record(task, i):
        return transformed_example({"image": (RAMP + i)[..., None] / 100.0 + 0.4, "label_smile": [1.0, 0.0],
                                    "label_gender": [0.0, 1.0], "label_age": [1.0, 0, 0, 0, 0],
                                    "weight_smile": float(task == 0), "weight_gender": float(task == 1),
                                    "weight_age": float(task == 2)})
    patterns = {}
    for source, task in (("genki4k", 0), ("wiki", 1)):
        write_gzip_tfrecords(str(tmp_path / source / "a.gz"), [record(task, i) for i in range(8)])
        patterns[source] = str(tmp_path / source / "*")
    return patterns


def images(ds, n=3):
    return np.concatenate([b[0]["image"] for b in ds.take(n).as_numpy_iterator()])


def augmenting(seed=7, **augment):
    d = config_dict(size=(6, 6), normalization="unit", batch_size=4)
    d["train"].update(seed=seed, augment=augment)
    from config import parse

    return parse(d, base_dir=None)


def test_training_batches_change_with_the_seed_and_eval_batches_never(ramps):
    plain, aug = make_config(size=(6, 6), normalization="unit", batch_size=4), augmenting(flip=True, brightness=0.2)
    counts = {"genki4k": 8, "wiki": 8}
    stored = images(make_dataset(ramps, SPEC, plain, 4, counts, training=True))
    augmented = images(make_dataset(ramps, SPEC, aug, 4, counts, training=True))
    # same records in the same order (the mix does not depend on augmentation), pixels changed
    assert not np.allclose(stored, augmented)
    np.testing.assert_array_equal(augmented, images(make_dataset(ramps, SPEC, aug, 4, counts, training=True)))
    other_seed = images(make_dataset(ramps, SPEC, augmenting(seed=8, flip=True, brightness=0.2), 4, counts,
                                     training=True))
    assert not np.allclose(augmented, other_seed)
    # without augmentation the stored pixels come through exactly: a ramp plus the record's number, / 100
    for img in stored[..., 0]:
        np.testing.assert_allclose(img - img[0, 0], RAMP / 100.0, atol=1e-6)
    # augmented = the stored image, mirrored or not, plus one brightness delta in [-0.2, 0.2]
    mirrored = 0
    for a, s in zip(augmented[..., 0], stored[..., 0]):
        is_mirror = not np.allclose(a - s, (a - s)[0, 0], atol=1e-5)
        base = s[:, ::-1] if is_mirror else s
        mirrored += is_mirror
        np.testing.assert_allclose(a - base, (a - base)[0, 0], atol=1e-5)
        assert abs((a - base)[0, 0]) <= 0.2 + 1e-6
    assert 0 < mirrored < len(augmented)
    # eval streams are never augmented, whatever train.augment says
    np.testing.assert_array_equal(images(make_dataset(ramps, SPEC, aug, 4, counts, training=False), 4),
                                  images(make_dataset(ramps, SPEC, plain, 4, counts, training=False), 4))


def test_augment_keys_are_validated():
    assert augmenting(crop=0.1).train.augment.crop == 0.1
    assert augmenting(crop=2).train.augment.crop == 2 and isinstance(augmenting(crop=2).train.augment.crop, int)
    with pytest.raises(ConfigError, match=r"'train.augment.crop': a fraction must be in \[0, 1\), received 1.5; "
                                          r"write an integer for pixels"):
        augmenting(crop=1.5)
    with pytest.raises(ConfigError, match=r"'train.augment.crop': must be <= 5, received 6"):
        augmenting(crop=6)  # a 6 x 6 image keeps at least 1 pixel
    with pytest.raises(ConfigError, match=r"'train.augment.flip': expected true or false, received 'yes'"):
        augmenting(flip="yes")
    with pytest.raises(ConfigError, match=r"'train.augment.rotate': unknown key; valid keys here: brightness, "
                                          r"crop, flip"):
        augmenting(rotate=10)
