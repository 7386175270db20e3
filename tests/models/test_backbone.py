"""keras.applications backbones (seeds 001, 004): built at small sizes, weights only
from local files (saved here by the test), gray input, frozen or fine-tuned."""
import numpy as np
import pytest
import tf_keras as keras

from config import ConfigError, parse
from models import get_builder
from models.backbone import BACKBONE_LAYER, build
from tests.models.helpers import config_dict

TASKS = [
    {"name": "smile", "type": "binary", "classes": ["no", "yes"]},
    {"name": "attrs", "type": "multilabel", "classes": ["red", "blue", "hat"]},
    {"name": "age", "type": "regression"},
]


def png(pixels: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def backbone_config(backbone, size, normalization, channels=1, base_dir=None, **params):
    d = config_dict(tasks=TASKS, size=(size, size), channels=channels, model="backbone",
                    normalization=normalization, params={"backbone": backbone, **params})
    return parse(d, base_dir=base_dir)


@pytest.mark.parametrize("backbone,size,normalization", [
    ("vgg16", 32, "caffe"), ("resnet50", 32, "caffe"), ("mobilenet_v2", 32, "tf"), ("inception_resnet_v2", 75, "tf")])
def test_each_backbone_loads_local_weights_and_takes_gray_input(tmp_path, backbone, size, normalization):
    fresh = build(backbone_config(backbone, size, normalization))
    assert fresh.get_layer(BACKBONE_LAYER).trainable is False  # default: frozen
    fresh.get_layer(BACKBONE_LAYER).save_weights(str(tmp_path / "notop.h5"))
    # a relative path is relative to the config file's folder, like sources' paths
    cfg = backbone_config(backbone, size, normalization, base_dir=str(tmp_path), weights="notop.h5")
    assert cfg.model.params["weights"] == str(tmp_path / "notop.h5")
    loaded = get_builder("backbone")(cfg)
    a, b = fresh.get_layer(BACKBONE_LAYER).get_weights(), loaded.get_layer(BACKBONE_LAYER).get_weights()
    assert len(a) == len(b) > 0 and all(np.array_equal(x, y) for x, y in zip(a, b))
    # gray [N, H, W, 1] in, one head per task out
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, size, size, 1)).astype("float32")
    out = loaded(x, training=False)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"smile": (2, 2), "attrs": (2, 3), "age": (2, 1)}
    np.testing.assert_allclose(out["smile"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    # frozen: only the heads train (3 outputs, kernel + bias each)
    assert sorted(w.name.split("/")[0] for w in loaded.trainable_weights) == ["age", "age", "attrs", "attrs",
                                                                                "smile", "smile"]


def test_fine_tune_all_or_the_last_layers():
    cfg = backbone_config("vgg16", 32, "caffe", channels=3, trainable=True, fine_tune_last=4, dense=[8])
    model = build(cfg)
    base = model.get_layer(BACKBONE_LAYER)
    # vgg16 without top, pooling avg: input, 13 conv, 5 pool, global pool = 20 layers; the last 4 are
    # block5_conv2, block5_conv3, block5_pool, global_average_pooling2d: 2 convs x (kernel, bias)
    assert len(base.layers) == 20
    assert [w.name for w in base.trainable_weights] == [
        "block5_conv2/kernel:0", "block5_conv2/bias:0", "block5_conv3/kernel:0", "block5_conv3/bias:0"]
    everything = build(backbone_config("vgg16", 32, "caffe", channels=3, trainable=True))
    assert len(everything.get_layer(BACKBONE_LAYER).trainable_weights) == 26  # 13 convs x 2
    # heads: dropout then dense 8 then the output, per task
    assert model.get_layer("age_dense1").units == 8 and model.get_layer("age_dropout").rate == 0.5


def test_gray_caffe_input_is_exactly_keras_caffe_of_the_gray_rgb_image():
    import tensorflow as tf

    from models.preprocess import preprocess_image_bytes

    cfg = backbone_config("vgg16", 32, "caffe")
    model = build(cfg)
    gray = np.random.default_rng(1).integers(0, 256, size=(32, 32), dtype=np.uint8)
    pixels = preprocess_image_bytes(tf.constant(png(gray)), cfg.image)  # [32, 32, 1], g - 114.799
    to_backbone = keras.Model(model.input, model.get_layer("gray_to_caffe_bgr").output)
    seen = to_backbone(pixels[None]).numpy()[0]
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype("float32")
    expected = keras.applications.vgg16.preprocess_input(rgb.copy())  # BGR minus ImageNet means
    np.testing.assert_allclose(seen, expected, atol=1e-4)


def test_saved_model_loads_with_plain_keras(tmp_path):
    from components.trainer.run_fn import compile_for_export

    fresh = build(backbone_config("vgg16", 32, "caffe"))
    fresh.get_layer(BACKBONE_LAYER).save_weights(str(tmp_path / "w.h5"))
    model = build(backbone_config("vgg16", 32, "caffe", weights=str(tmp_path / "w.h5"), pooling="flatten"))
    compile_for_export(model, backbone_config("vgg16", 32, "caffe"))
    model.save(str(tmp_path / "saved"), save_format="tf")
    again = keras.models.load_model(str(tmp_path / "saved"))  # no custom objects
    x = np.random.default_rng(2).uniform(-120, 140, size=(2, 32, 32, 1)).astype("float32")
    for task in ("smile", "attrs", "age"):
        np.testing.assert_allclose(again(x)[task].numpy(), model(x)[task].numpy(), atol=1e-5)
    assert {t: fn.__name__ for t, fn in again.loss.items()} == {
        "smile": "categorical_crossentropy", "attrs": "binary_crossentropy", "age": "mean_squared_error"}


def test_bad_backbone_settings_fail_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'model.params.weights': no such file '.*/missing.h5' \(from "
                                          r"'missing.h5', relative to the config's folder"):
        backbone_config("vgg16", 32, "caffe", base_dir=str(tmp_path), weights="missing.h5")
    (tmp_path / "w.h5").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"'model.params.weights': vgg16's pretrained weights expect "
                                          r"image.normalization 'caffe', the config has 'tf'"):
        backbone_config("vgg16", 32, "tf", base_dir=str(tmp_path), weights="w.h5")
    with pytest.raises(ConfigError, match=r"'model.params.backbone': received 'vgg19'; valid: vgg16, resnet50, "
                                          r"mobilenet_v2, inception_resnet_v2"):
        backbone_config("vgg19", 32, "caffe")
    with pytest.raises(ConfigError, match=r"'model.params.fine_tune_last': received 3 with trainable: false"):
        backbone_config("vgg16", 32, "caffe", fine_tune_last=3)
    with pytest.raises(ValueError, match=r"'image.size': inception_resnet_v2 needs at least 75x75 pixels, "
                                         r"received \[48, 48\]"):
        build(backbone_config("inception_resnet_v2", 48, "tf"))
    # the file vanished between loading the config and training; an empty file does not fit
    with pytest.raises(ValueError, match=r"'model.params.weights': '.*/w.h5' does not fit vgg16 without its top"):
        build(backbone_config("vgg16", 32, "caffe", weights=str(tmp_path / "w.h5")))
    cfg = backbone_config("vgg16", 32, "caffe", weights=str(tmp_path / "gone.h5"))  # no base_dir: not checked
    with pytest.raises(ValueError, match=r"'model.params.weights': no such file '.*/gone.h5'"):
        build(cfg)


def test_bn_momentum_sets_every_backbone_batch_norm_and_is_validated():
    model = build(backbone_config("mobilenet_v2", 32, "tf", channels=3, trainable=True, bn_momentum=0.9))
    bns = [layer for layer in model.get_layer(BACKBONE_LAYER).layers
           if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 52 and {layer.momentum for layer in bns} == {0.9}
    default = build(backbone_config("mobilenet_v2", 32, "tf", channels=3, trainable=True))
    assert {layer.momentum for layer in default.get_layer(BACKBONE_LAYER).layers
            if isinstance(layer, keras.layers.BatchNormalization)} == {0.999}
    with pytest.raises(ConfigError, match=r"'model.params.bn_momentum': expected a number in \[0, 1\) or null, "
                                          r"received 1.5"):
        backbone_config("mobilenet_v2", 32, "tf", bn_momentum=1.5)
