"""Training and serving see the same pixels: real, hostile image files (EXIF orientations 1..8
in both TIFF byte orders, GIF, palette / RGBA / LA / 16-bit / 1-bit PNGs, CMYK JPEG, BMP, 1x1,
over-limit headers) through the conversion's PIL decode (data_prep.image_prep, what a tf.Example
holds) and through the serving decode (models.preprocess, which the serving_image signature
and Transform call), compared array to array; and `python -m serving.predict` on them.

Measured tolerance: 0 levels for every file but the CMYK JPEG, which differs by at most 1 level
(TensorFlow's and Pillow's CMYK -> RGB conversions round (255 - C)(255 - K) / 255 differently;
measured over 6x10 and 97x131 random CMYK JPEGs: at most 1, mean about 0.45)."""
import functools
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from config import ImageConfig
from data_prep.image_prep import decode, prep_image
from data_prep.records import Reject
from models.preprocess import preprocess_image_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RNG = np.random.default_rng(18)
# Asymmetric on purpose (H 6 != W 10, no symmetry), so every orientation gives different pixels.
RGB = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)
RGB[:3, :5] = (250, 20, 20)  # a red top-left corner: the JPEG keeps it recognisable


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _exif_jpeg(orientation: int, endian: str) -> bytes:
    exif = Image.Exif()
    exif.endian = endian  # "<": TIFF header II, ">": MM
    exif[0x0112] = orientation
    return _save(Image.fromarray(RGB), "JPEG", quality=95, exif=exif)


def _palette(transparency=None) -> Image.Image:
    img = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=7)
    if transparency is not None:
        img.info["transparency"] = transparency
    return img


def _cmyk_jpeg() -> bytes:
    cmyk = RNG.integers(0, 256, (6, 10, 4), dtype=np.uint8)
    return _save(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=95)


def _png16(rgb=False) -> bytes:
    values = RNG.integers(0, 65536, (6, 10)).astype(np.uint16)
    return _save(Image.fromarray(values), "PNG")


def _placed_gif(data: bytes, screen, offset) -> bytes:
    """The GIF with its logical screen (W, H) and first frame's position (left, top) rewritten."""
    data = bytearray(data)
    data[6:10] = screen[0].to_bytes(2, "little") + screen[1].to_bytes(2, "little")
    pos = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 128 else 0)
    while data[pos] == 0x21:  # extensions: label, then sub-blocks up to a zero size
        pos += 2
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
    assert data[pos] == 0x2C
    data[pos + 1:pos + 5] = offset[0].to_bytes(2, "little") + offset[1].to_bytes(2, "little")
    return bytes(data)


def _animated_gif() -> bytes:
    frames = [Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE, colors=8) for a in (RGB, 255 - RGB)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def hostile_files() -> dict:
    files = {f"exif{o}_{'II' if e == '<' else 'MM'}": _exif_jpeg(o, e) for o in range(1, 9) for e in "<>"}
    files.update({
        "jpeg_rgb": _save(Image.fromarray(RGB), "JPEG", quality=90),
        "jpeg_gray": _save(Image.fromarray(RGB[..., 1]), "JPEG", quality=90),
        "jpeg_cmyk": _cmyk_jpeg(),
        "gif": _save(_palette(), "GIF"),
        "gif_transparent": _save(_palette(transparency=2), "GIF", transparency=2),  # TF alone: black
        # a first frame smaller than the screen, off (0, 0): PIL fills the rest, TF alone clips the frame
        "gif_frame_offset": _placed_gif(_save(_palette(transparency=3), "GIF", transparency=3), (14, 9), (3, 2)),
        "gif_frame_beyond_screen": _placed_gif(_save(_palette(), "GIF"), (6, 4), (2, 1)),  # PIL enlarges
        "gif_animated": _animated_gif(),
        "png_palette": _save(_palette(), "PNG"),
        "png_palette_trns": _save(_palette(transparency=2), "PNG"),
        "png_rgba": _save(Image.fromarray(np.dstack([RGB, RGB[..., :1]]), "RGBA"), "PNG"),
        "png_la": _save(Image.fromarray(np.dstack([RGB[..., 0], RGB[..., 1]]), "LA"), "PNG"),
        "png_16bit": _png16(),
        "png_1bit": _save(Image.fromarray(RGB[..., 0] > 127), "PNG"),
        "png_rgb": _save(Image.fromarray(RGB), "PNG"),
        "bmp": _save(Image.fromarray(RGB), "BMP"),
        "jpeg_1x1": _save(Image.new("RGB", (1, 1), (10, 200, 30)), "JPEG"),
        "png_1x1": _save(Image.new("L", (1, 1), 77), "PNG"),
        "gif_1x1": _save(Image.new("P", (1, 1), 0), "GIF"),
    })
    return files


FILES = hostile_files()
TOLERANCE = {"jpeg_cmyk": 1}  # levels; 0 for every other file (measured)


def conversion_pixels(data: bytes, channels: int) -> np.ndarray:
    """What the tf.Example holds, decoded: prep_image at the image's own (oriented) size, as PNG."""
    width, height = decode(data).size
    out = prep_image(data, ImageConfig(size=(height, width), channels=channels, encoding="png"))
    pixels = np.asarray(Image.open(io.BytesIO(out)))
    return pixels[..., None] if pixels.ndim == 2 else pixels


def serving_pixels(data: bytes, channels: int, size) -> np.ndarray:
    """What the serving_image signature feeds the model, back in [0, 255] ("unit": x / 255)."""
    cfg = ImageConfig(size=size, channels=channels, normalization="unit")
    return np.round(preprocess_image_bytes(tf.constant(data), cfg).numpy() * 255).astype(np.int64)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(FILES))
def test_conversion_and_serving_decode_give_the_same_pixels(name, channels):
    expected = conversion_pixels(FILES[name], channels).astype(np.int64)
    got = serving_pixels(FILES[name], channels, expected.shape[:2])
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE.get(name, 0), (name, channels)


def test_exif_orientations_are_read_in_both_byte_orders():
    # The parity test above says serving = PIL's exif_transpose for each file; this, that the tag
    # really changes the pixels: 8 different arrays per byte order, 5..8 with H and W swapped.
    for order in ("II", "MM"):
        arrays = [serving_pixels(FILES[f"exif{o}_{order}"], 3, (6, 10) if o < 5 else (10, 6)) for o in range(1, 9)]
        assert [a.shape[:2] for a in arrays] == [(6, 10)] * 4 + [(10, 6)] * 4
        assert len({a.tobytes() for a in arrays}) == 8, order


@functools.lru_cache(maxsize=None)
def _over_limit_files() -> dict:
    """Headers saying 13400 x 13360 = 179,024,000 pixels, over the 178,956,970 limit."""
    big_png = _save(Image.new("1", (13400, 13360)), "PNG")  # a real, valid, 22 kB PNG bomb
    jpeg = bytearray(_save(Image.new("L", (8, 8)), "JPEG"))
    sof = jpeg.index(b"\xff\xc0")  # SOF0: length(2) precision(1) height(2) width(2)
    jpeg[sof + 5:sof + 9] = (13360).to_bytes(2, "big") + (13400).to_bytes(2, "big")
    gif = bytearray(_save(Image.new("P", (8, 8)), "GIF"))
    gif[6:10] = (13400).to_bytes(2, "little") + (13360).to_bytes(2, "little")  # logical screen
    return {"png": big_png, "jpeg": bytes(jpeg), "gif": bytes(gif)}


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif"])
def test_over_the_pixel_limit_is_refused_by_both_before_decoding(fmt):
    from data_prep.image_prep import MAX_PIXELS

    assert MAX_PIXELS == 178956970  # Pillow's DecompressionBombError threshold, 2 x 89478485
    data = _over_limit_files()[fmt]
    with pytest.raises(Reject) as e:
        prep_image(data, ImageConfig())
    assert e.value.reason == "bad_image"
    with pytest.raises(tf.errors.InvalidArgumentError, match="over the pixel limit"):
        preprocess_image_bytes(tf.constant(data), ImageConfig(size=(48, 48), channels=1))


def test_decode_is_saveable_in_a_saved_model_and_gives_the_same_pixels(tmp_path):
    from models.image_decode import decode_pixels

    class Decoder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def gray(self, image_bytes):
            return decode_pixels(image_bytes, 1)

        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def rgb(self, image_bytes):
            return decode_pixels(image_bytes, 3)

    tf.saved_model.save(Decoder(), str(tmp_path / "decoder"))
    loaded = tf.saved_model.load(str(tmp_path / "decoder"))
    for name, data in FILES.items():
        for channels, fn in ((1, loaded.gray), (3, loaded.rgb)):
            got = fn(tf.constant(data)).numpy().astype(np.int64)
            expected = conversion_pixels(data, channels)
            assert got.shape == expected.shape and np.abs(got - expected).max() <= TOLERANCE.get(name, 0), name
    with pytest.raises(tf.errors.InvalidArgumentError, match="over the pixel limit"):
        loaded.gray(tf.constant(_over_limit_files()["jpeg"]))


# ---------------------------------------------------------------- the CLI on the tiny trained (gray) model

def test_cli_predicts_gif_and_cmyk_jpeg(trained, tmp_path):
    _, fn_args, loaded, _ = trained
    paths = []
    for name in ("gif", "jpeg_cmyk", "exif6_MM"):
        path = tmp_path / f"{name}.{'gif' if name == 'gif' else 'jpg'}"
        path.write_bytes(FILES[name])
        paths.append(str(path))
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "serving.predict", "--model", fn_args.serving_model_dir,
                           "--json", *paths], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [r["image"] for r in json.loads(done.stdout)] == paths


def test_cli_refuses_an_over_limit_image_and_a_non_image_in_one_line(trained, tmp_path, capsys):
    from serving.predict import main

    _, fn_args, _, _ = trained
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_over_limit_files()["png"])
    assert main(["--model", fn_args.serving_model_dir, str(bomb)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith("error: ") and "13400 x 13360" in captured.err and "pixel limit" in captured.err
    text = tmp_path / "notes.jpg"
    text.write_bytes(b"not an image")
    assert main(["--model", fn_args.serving_model_dir, str(text)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "not a decodable image" in err


def test_the_batch_function_gives_the_single_image_pixels():
    # preprocess_image_batch (Transform, the signatures) maps decode_pixels over the batch, where
    # its loops and branches run in graph mode: the same pixels as one image at a time, eagerly.
    from models.preprocess import preprocess_image_batch

    plain = [n for n in sorted(FILES) if not n.startswith(("gif", "exif"))]
    for channels in (1, 3):
        cfg = ImageConfig(size=(6, 10), channels=channels, normalization="unit")
        for names in (plain, sorted(FILES)):
            batch = preprocess_image_batch(tf.constant([FILES[n] for n in names]), cfg).numpy()
            single = np.stack([preprocess_image_bytes(tf.constant(FILES[n]), cfg).numpy() for n in names])
            np.testing.assert_array_equal(batch, single)
        with pytest.raises(tf.errors.InvalidArgumentError, match="over the pixel limit"):
            preprocess_image_batch(tf.constant([FILES["png_rgb"], _over_limit_files()["png"]]), cfg)
