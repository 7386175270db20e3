import io

import pytest
from PIL import Image

from config import ConfigError, ImageConfig, PrepConfig, config_from_json, parse
from data_prep.generators.bad_files import good_jpeg, make_bad_files
from data_prep.image_prep import prep_image
from data_prep.records import Reject


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _png(size=(120, 80), mode="RGB", color=(200, 10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB")])
@pytest.mark.parametrize("encoding,fmt", [("png", "PNG"), ("jpeg", "JPEG")])
def test_size_mode_and_encoding(channels, mode, encoding, fmt):
    # size is (H, W); PIL reports (W, H): a 30x40 (HxW) config gives PIL size (40, 30).
    out = _open(prep_image(good_jpeg(), ImageConfig(size=(30, 40), channels=channels, encoding=encoding)))
    assert (out.size, out.mode, out.format) == ((40, 30), mode, fmt)


def test_grayscale_conversion_and_rgba_input():
    out = _open(prep_image(_png(mode="RGBA", color=(255, 0, 0, 128)), ImageConfig(size=(4, 4), channels=1)))
    # PIL's L = R*299/1000 + G*587/1000 + B*114/1000 = 255*0.299 = 76.2 -> 76 (alpha dropped)
    assert out.getpixel((0, 0)) == 76


def test_crop_box_is_clipped_then_resized():
    img = Image.new("L", (100, 100), 0)
    img.paste(255, (50, 0, 100, 100))  # right half white
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    # box (50, -10, 130, 100) clips to (50, 0, 100, 100): all white
    out = _open(prep_image(buf.getvalue(), ImageConfig(size=(10, 10)), crop_box=(50, -10, 130, 100)))
    assert out.getextrema() == (255, 255)


def test_empty_crop_rejected():
    with pytest.raises(Reject) as e:
        prep_image(_png(size=(10, 10)), ImageConfig(), crop_box=(20, 20, 30, 30))
    assert e.value.reason == "bad_crop"


def test_bad_files_rejected(tmp_path):
    for kind, path in make_bad_files(str(tmp_path)).items():
        with pytest.raises(Reject) as e:
            prep_image(open(path, "rb").read(), ImageConfig())
        assert e.value.reason == "bad_image", kind
        assert e.value.detail, kind


def test_png_with_a_bad_pixel_chunk_checksum_is_rejected():
    data = bytearray(_png(size=(64, 64)))
    idat = data.index(b"IDAT")
    data[idat + 8] ^= 0xFF  # a byte of the compressed pixels: the chunk's CRC no longer matches
    with pytest.raises(Reject) as e:
        prep_image(bytes(data), ImageConfig())
    assert e.value.reason == "bad_image" and "checksum" in e.value.detail


def test_a_jpeg_is_opened_once(monkeypatch):
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: opened.append(1) or real_open(fp, *a, **k))
    prep_image(good_jpeg(), ImageConfig())
    prep_image(_png(), ImageConfig())
    assert len(opened) == 1 + 2  # a PNG twice: verify() needs a fresh open after it


# ---------------------------------------------------------------- per-source prep (sources[i].prep)


def _halves(size=(100, 50)) -> bytes:
    """A W x H image, left half black, right half white."""
    img = Image.new("L", size, 0)
    img.paste(255, (size[0] // 2, 0, size[0], size[1]))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _column(img, x):
    return [img.getpixel((x, y)) for y in range(img.height)]


def test_resize_stretch_pad_crop():
    cfg = ImageConfig(size=(10, 10), channels=1)
    stretch = _open(prep_image(_halves(), cfg, prep=PrepConfig(resize="stretch")))
    assert (_column(stretch, 0), _column(stretch, 9)) == ([0] * 10, [255] * 10)  # 2:1 squeezed to 1:1
    # pad: 100x50 -> 10x5 in the middle of 10x10; black bars above and below
    pad = _open(prep_image(_halves(), cfg, prep=PrepConfig(resize="pad")))
    rows = [pad.getpixel((9, y)) for y in range(10)]
    assert rows[0] == rows[9] == 0 and rows[3:7] == [255] * 4 and pad.size == (10, 10)
    # crop: the central 50x50 (x 25..75) -> left half black, right half white, no bars
    crop = _open(prep_image(_halves(), cfg, prep=PrepConfig(resize="crop")))
    assert (_column(crop, 0), _column(crop, 9)) == ([0] * 10, [255] * 10)
    assert crop.getpixel((2, 5)) == 0 and crop.getpixel((7, 5)) == 255


def test_pad_and_crop_differ_on_a_tall_image():
    cfg = ImageConfig(size=(10, 10), channels=1)
    tall = _halves((50, 100))  # left half black, 1:2
    pad = _open(prep_image(tall, cfg, prep=PrepConfig(resize="pad")))
    crop = _open(prep_image(tall, cfg, prep=PrepConfig(resize="crop")))
    # pad: 5x10 image in columns 2..7 (bars at 0-1 and 8-9, black); crop: central 50x50 = both halves
    assert _column(pad, 9) == [0] * 10 and _column(pad, 6) == [255] * 10
    assert _column(crop, 0) == [0] * 10 and _column(crop, 9) == [255] * 10


def test_grayscale_source_into_rgb_contract():
    red = _png(size=(8, 8), color=(255, 0, 0))
    cfg = ImageConfig(size=(4, 4), channels=3)
    assert _open(prep_image(red, cfg)).getpixel((0, 0)) == (255, 0, 0)
    # desaturated first (L = 76, see above), then 3 equal channels: still the contract's RGB
    out = _open(prep_image(red, cfg, prep=PrepConfig(color="grayscale")))
    assert (out.mode, out.getpixel((0, 0))) == ("RGB", (76, 76, 76))


def test_encoding_override_and_quality():
    cfg = ImageConfig(size=(48, 48), channels=1, encoding="png")
    hi = prep_image(good_jpeg(), cfg, prep=PrepConfig(encoding="jpeg", jpeg_quality=95))
    lo = prep_image(good_jpeg(), cfg, prep=PrepConfig(encoding="jpeg", jpeg_quality=20))
    assert _open(hi).format == _open(lo).format == "JPEG" and len(lo) < len(hi)
    assert _open(prep_image(good_jpeg(), cfg)).format == "PNG"


def test_face_margin_widens_the_box():
    img = Image.new("L", (100, 100), 0)
    img.paste(255, (40, 40, 60, 60))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    cfg = ImageConfig(size=(8, 8))
    tight = _open(prep_image(buf.getvalue(), cfg, crop_box=(40, 40, 60, 60)))
    assert tight.getextrema() == (255, 255)
    # margin 0.5 of the 20-pixel box on each side: (30, 30, 70, 70), the white square is its middle half
    wide = _open(prep_image(buf.getvalue(), cfg, crop_box=(40, 40, 60, 60), prep=PrepConfig(face_margin=0.5)))
    assert wide.getpixel((0, 0)) == 0 and wide.getpixel((4, 4)) == 255


def _source_with_prep(prep):
    return {"name": "t", "tasks": [{"name": "smile", "type": "binary", "classes": ["n", "y"]}],
            "sources": [{"name": "g", "format": "genki4k", "path": "/d", "tasks": ["smile"], "prep": prep}]}


def test_prep_config_round_trip_and_defaults():
    cfg = parse(_source_with_prep({"color": "grayscale", "resize": "pad", "encoding": "jpeg", "jpeg_quality": 80}),
                base_dir=None)
    assert cfg.sources[0].prep == PrepConfig(color="grayscale", resize="pad", encoding="jpeg", jpeg_quality=80)
    assert parse(_source_with_prep(None), base_dir=None).sources[0].prep == PrepConfig()
    assert config_from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("prep,message", [
    ({"resize": "fit"}, "config key 'sources[0].prep.resize': received 'fit'; valid: stretch, pad, crop"),
    ({"color": "rgb"}, "config key 'sources[0].prep.color': received 'rgb'; valid: auto, grayscale"),
    ({"encoding": "webp"}, "config key 'sources[0].prep.encoding': received 'webp'; valid: "
                           "null (= image.encoding), png, jpeg"),
    ({"face_crop": "yes"}, "config key 'sources[0].prep.face_crop': expected true or false, received 'yes'"),
    ({"face_margin": -0.1}, "config key 'sources[0].prep.face_margin': must be >= 0, received -0.1"),
    ({"jpeg_quality": 101}, "config key 'sources[0].prep.jpeg_quality': must be <= 100, received 101"),
    ({"size": [64, 64]}, "config key 'sources[0].prep.size': unknown key; valid keys here: color, encoding, "
                         "face_crop, face_margin, jpeg_quality, resize"),
])
def test_prep_config_errors(prep, message):
    with pytest.raises(ConfigError) as e:
        parse(_source_with_prep(prep), base_dir=None)
    assert str(e.value) == message


def test_face_crop_needs_a_format_with_boxes():
    from data_prep.convert import validate_sources

    with pytest.raises(ConfigError, match=r"'sources\[0\]\.prep\.face_crop': received true, but format "
                                          r"genki4k gives no face boxes"):
        validate_sources(parse(_source_with_prep({"face_crop": True}), base_dir=None))


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_png_is_scaled_like_tensorflow_decodes_it(channels):
    # A real 16-bit grayscale PNG (Pillow mode I;16): Pillow's convert("L") clips every value
    # above 255 to white; the conversion must give the high byte, as tf.io.decode_png does.
    import numpy as np
    import tensorflow as tf

    values = np.random.default_rng(0).integers(0, 65536, (32, 32)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "I;16"
    out = Image.open(io.BytesIO(prep_image(buf.getvalue(), ImageConfig(size=(32, 32), channels=channels))))
    pixels = np.asarray(out.convert("L"), dtype=np.int64)
    expected = tf.io.decode_png(buf.getvalue(), channels=1, dtype=tf.uint8).numpy()[..., 0]
    assert np.array_equal(pixels, expected) and (pixels == 255).mean() < 0.01  # not whitened
