import io

import pytest
from PIL import Image

from data_prep.generators.bad_files import good_jpeg, make_bad_files
from data_prep.image_prep import prep_image
from data_prep.records import Reject
from pipeline.config import ImageConfig


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
