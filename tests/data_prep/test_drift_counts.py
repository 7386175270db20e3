"""The conversion's counts for the drift check (prep_stats.json `labels_by_task`, `image_formats`,
`image_sizes`) on a small hand-made folder source of mixed formats and sizes, and their parts."""
import io
import json

from PIL import Image

from config import TaskConfig
from data_prep.beam_job import build_stats, count_key, format_count
from data_prep.convert import Converted, convert_record, label_classes, list_source_records, raw_header
from tests.data_prep.helpers import make_config


def _image(fmt: str, size: tuple[int, int], exif_rotate: bool = False) -> bytes:
    img = Image.new("RGB", size, (120, 80, 40))
    out = io.BytesIO()
    if exif_rotate:  # orientation 6: shown turned 90 degrees, stored as `size`
        exif = Image.Exif()
        exif[0x0112] = 6
        img.save(out, format=fmt, exif=exif)
    else:
        img.save(out, format=fmt)
    return out.getvalue()


# class folder -> files (name -> bytes); mood's classes are neutral, happy, sad
FILES = {
    "neutral": {"p1_a.jpg": _image("JPEG", (40, 30)), "p2_b.jpg": _image("JPEG", (40, 30)),
                "p3_c.jpg": _image("JPEG", (40, 30), exif_rotate=True)},  # stored 40x30, shown 30x40
    "happy": {"p1_d.png": _image("PNG", (64, 64)), "p4_e.png": _image("PNG", (64, 64)),
              "p5_f.bmp": _image("BMP", (20, 10))},
    "sad": {"p6_g.gif": _image("GIF", (48, 48)), "p7_h.jpg": b""},  # zero bytes: bad_image, not counted
    "angry": {"p8_i.png": _image("PNG", (64, 64))},  # not a class: unknown_class, not counted
}


def _source(tmp_path):
    root = tmp_path / "faces"
    for cls, files in FILES.items():
        (root / cls).mkdir(parents=True)
        for name, data in files.items():
            (root / cls / name).write_bytes(data)
    return make_config(str(tmp_path), [{"name": "faces", "format": "folder", "path": str(root),
                                        "tasks": ["mood"], "options": {"group_regex": r"^(p\d+)_"}}])


def test_counts_of_a_mixed_source(tmp_path):
    from data_prep.beam_job import run_conversion

    config = _source(tmp_path)
    out = tmp_path / "out"
    stats = run_conversion(config, str(out / "ex"), str(out / "dl"), str(out / "s.json"))
    st = stats["sources"]["faces"]
    assert json.loads((out / "s.json").read_text()) == stats
    # 9 files: 7 written, p7_h.jpg bad_image, angry/p8_i.png unknown_class
    assert (st["read"], st["written"], st["rejected"]) == (9, 7, 2)
    assert st["rejected_by_reason"] == {"bad_image": 1, "unknown_class": 1}
    assert st["labels_by_task"] == {"mood": {"neutral": 3, "happy": 3, "sad": 1}}
    assert st["image_formats"] == {"JPEG": 3, "PNG": 2, "BMP": 1, "GIF": 1}
    # the stored size, before EXIF rotation and the 48x48 resize: p3_c.jpg counts as 40x30
    assert st["image_sizes"] == {"40x30": 3, "64x64": 2, "20x10": 1, "48x48": 1}
    assert sum(st["image_formats"].values()) == sum(st["image_sizes"].values()) == st["written"]


def test_converted_carries_classes_format_and_size(tmp_path):
    config = _source(tmp_path)
    source = config.sources[0]
    by_id = {r.raw_id: r for r in list_source_records(source, config)}
    out = convert_record(by_id["neutral/p3_c.jpg"], source, config)
    assert (out.label_classes, out.image_format, out.image_size) == ((("mood", "neutral"),), "JPEG", (40, 30))
    out = convert_record(by_id["happy/p5_f.bmp"], source, config)
    assert (out.label_classes, out.image_format, out.image_size) == ((("mood", "happy"),), "BMP", (20, 10))
    # the new fields have defaults: a Converted built as before still is one
    assert Converted("g", "train", ()).label_classes == () and Converted("g", "train", ()).image_size is None


def test_label_classes_by_task_type():
    tags = TaskConfig("tags", "multilabel", ("hat", "glasses", "beard"))
    mood = TaskConfig("mood", "multiclass", ("neutral", "happy", "sad"))
    assert label_classes(mood, 2) == ("sad",)
    assert label_classes(tags, [0, 2]) == ("hat", "beard")  # each positive class of a multilabel label
    assert label_classes(tags, []) == ()
    assert label_classes(TaskConfig("years", "regression"), 31.5) == ()  # regression: no class


def test_raw_header():
    assert raw_header(_image("PNG", (7, 5))) == ("PNG", (7, 5))
    assert raw_header(_image("JPEG", (40, 30), exif_rotate=True)) == ("JPEG", (40, 30))


def test_count_keys_take_any_class_name():
    """A class name may hold any character (a tab, a slash, a quote): the count key keeps it whole."""
    config = make_config("/nowhere", [{"name": "f", "format": "folder", "path": "/nowhere/f", "tasks": ["mood"]}])
    odd = 'tab\there / "quoted"'
    lines = [format_count((count_key("f", ("labels_by_task", "mood", odd)), 2)),
             format_count((count_key("f", ("labels_by_task", "mood", odd)), 3)),
             format_count((count_key("f", ("image_sizes", "40x30")), 4)),
             format_count((count_key("f", ("read",)), 5))]
    st = build_stats(config, lines)["sources"]["f"]
    assert st["labels_by_task"] == {"mood": {odd: 5}} and st["image_sizes"] == {"40x30": 4} and st["read"] == 5
    assert st["image_formats"] == {}  # nothing counted: the empty dict
