"""The Beam conversion of utkface + fashionai + csv + tfds sources with real bad files and rows mixed in."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from data_prep.formats.utkface import parse_name
from data_prep.generate import generate_missing
from data_prep.generators.bad_files import good_jpeg, write_text_as_jpeg, write_truncated_jpeg, write_zero_byte
from data_prep.generators.tfds import write_dataset
from data_prep.records import SourceError
from data_prep.splits import assign_split
from tests.data_prep.helpers import dead_letters, feature, make_config, read_examples

SALT = "b"


def _sources(root):
    return [
        {"name": "utk", "format": "utkface", "path": f"{root}/utk", "tasks": ["gender", "years", "race"],
         "options": {"age_task": "years", "gender_task": "gender", "race_task": "race"},
         "prep": {"color": "grayscale", "resize": "crop"}, "sample": {"count": 40, "seed": 1}},
        {"name": "fa", "format": "fashionai", "path": f"{root}/fa", "tasks": ["collar"],
         "options": {"attributes": {"collar_design_labels": "collar"}}, "sample": {"count": 20, "seed": 2}},
        {"name": "man", "format": "csv", "path": f"{root}/man", "tasks": ["tags", "mood", "years"],
         "options": {"columns": {"years": "age"}, "group_column": "person", "bbox_column": "box"},
         "prep": {"face_crop": True, "face_margin": 0.1, "resize": "pad"}, "sample": {"count": 30, "seed": 3}},
        {"name": "td", "format": "tfds", "path": f"{root}/td", "tasks": ["mood"],
         "options": {"name": "moods", "class_map": {"calm": "neutral", "joy": "happy"}},
         "prep": {"encoding": "jpeg"}},
    ]


UTK_BAD = {"30_0_1_20170101000000001.jpg.chip.jpg": "bad_image",   # zero bytes
           "31_1_1_20170101000000002.jpg.chip.jpg": "bad_image",   # truncated
           "32_0_3_20170101000000003.jpg.chip.jpg": "bad_image",   # HTML
           "30_0_20170101000000004.jpg.chip.jpg": "bad_name",      # 3 fields
           "3x_0_1_20170101000000005.jpg.chip.jpg": "bad_name",
           "117_0_1_20170101000000006.jpg.chip.jpg": "bad_age",
           "30_2_1_20170101000000007.jpg.chip.jpg": "bad_gender",
           "30_0_7_20170101000000008.jpg.chip.jpg": "bad_race"}
FA_ROWS = {"Images/collar_design_labels/noy.jpg,collar_design_labels,nnnnn": "no_y_label",
           "Images/collar_design_labels/twoy.jpg,collar_design_labels,ynnny": "multiple_y_labels",
           "Images/collar_design_labels/len.jpg,collar_design_labels,nny": "wrong_label_length",
           "Images/collar_design_labels/abc.jpg,collar_design_labels,nnxyn": "bad_label",
           "Images/sleeve_length_labels/s.jpg,sleeve_length_labels,nnnnynnnn": "unknown_attribute",
           "../outside.jpg,collar_design_labels,nnnny": "path_escapes_root",
           "Images/collar_design_labels/missing.jpg,collar_design_labels,nnnny": "missing_image",
           "Images/collar_design_labels/zero.jpg,collar_design_labels,nnnny": "bad_image",
           "Images/collar_design_labels/trunc.jpg,collar_design_labels,nnnny": "bad_image",
           "Images/collar_design_labels/text.jpg,collar_design_labels,nnnny": "bad_image"}
MAN_ROWS = {"../escape.jpg,hat,happy,30,p900,": "path_escapes_root",
            "/tmp/abs.jpg,hat,happy,30,p900,": "path_escapes_root",
            "images/x1.jpg,hat,angry,30,p900,1 1 40 40": "unknown_class",
            "images/x2.jpg,hat,happy,nan,p900,1 1 40 40": "bad_value",
            "images/x3.jpg,hat,happy": "bad_row",
            "images/zero.jpg,hat,happy,30,p901,1 1 40 40": "bad_image",
            "images/text.jpg,glasses,sad,40,p901,1 1 40 40": "bad_image",
            "images/missing.jpg,hat,happy,30,p902,1 1 40 40": "missing_image"}


def _break(root):
    for name in UTK_BAD:
        open(f"{root}/utk/{name}", "wb").write(good_jpeg())
    write_zero_byte(f"{root}/utk/30_0_1_20170101000000001.jpg.chip.jpg")
    write_truncated_jpeg(f"{root}/utk/31_1_1_20170101000000002.jpg.chip.jpg")
    write_text_as_jpeg(f"{root}/utk/32_0_3_20170101000000003.jpg.chip.jpg")

    d = f"{root}/fa/Images/collar_design_labels"
    for name in ("noy", "twoy", "len", "abc"):
        open(f"{d}/{name}.jpg", "wb").write(good_jpeg())
    write_zero_byte(f"{d}/zero.jpg")
    write_truncated_jpeg(f"{d}/trunc.jpg")
    write_text_as_jpeg(f"{d}/text.jpg")
    rows = open(f"{root}/fa/Annotations/label.csv").read().splitlines()
    open(f"{root}/fa/Annotations/label.csv", "w").write("\n".join(rows + list(FA_ROWS) + [rows[0]]) + "\n")

    write_zero_byte(f"{root}/man/images/zero.jpg")
    write_text_as_jpeg(f"{root}/man/images/text.jpg")
    lines = open(f"{root}/man/manifest.csv").read().splitlines()
    open(f"{root}/man/manifest.csv", "w").write("\n".join(lines + list(MAN_ROWS) + [lines[1]]) + "\n")

    rng = np.random.default_rng(0)
    good = [(rng.integers(0, 255, (30, 20, 3), dtype=np.uint8), k % 3) for k in range(12)]
    write_dataset(f"{root}/td", "moods", ["calm", "joy", "sad"],
                  {"train": good + [(b"", 0), (good_jpeg()[:500], 1), (b"<html></html>", 2),
                                    (good[0][0], -1)]}, num_shards=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from data_prep.beam_job import run_conversion

    root = str(tmp_path_factory.mktemp("formats"))
    config = make_config(root, _sources(f"{root}/data"), image={"size": [48, 48], "channels": 3},
                         splits={"eval": 0.3, "salt": SALT})
    generate_missing(config)
    _break(f"{root}/data")
    out = f"{root}/out"
    stats = run_conversion(config, f"{out}/examples", f"{out}/dead_letter", f"{out}/prep_stats.json")
    return config, f"{root}/data", out, stats


def _counts(st):
    return st["read"], st["written"], st["rejected"]


def test_counts_and_reasons(run):
    _, _, out, stats = run
    s = stats["sources"]
    # utk: 40 generated (i = 17 lacks race: bad_name) + 8 broken = 48 read; 39 images x 3 tasks = 117 examples
    assert _counts(s["utk"]) == (48, 39, 9)
    assert s["utk"]["rejected_by_reason"] == {"bad_image": 3, "bad_name": 3, "bad_age": 1, "bad_gender": 1,
                                              "bad_race": 1}
    assert s["utk"]["examples_by_task"] == {"gender": 39, "years": 39, "race": 39}
    # fa: 20 generated rows + 10 broken + a repeat of row 1 = 31
    assert _counts(s["fa"]) == (31, 20, 11)
    assert s["fa"]["rejected_by_reason"] == {"no_y_label": 1, "multiple_y_labels": 1, "wrong_label_length": 1,
                                             "bad_label": 1, "unknown_attribute": 1, "path_escapes_root": 1,
                                             "missing_image": 1, "bad_image": 3, "duplicate_row": 1}
    # man: 30 generated rows (rows 3, 13, 23 lack tags, mood, years) + 8 broken + a repeat = 39
    assert _counts(s["man"]) == (39, 30, 9)
    assert s["man"]["rejected_by_reason"] == {"path_escapes_root": 2, "unknown_class": 1, "bad_value": 1,
                                              "bad_row": 1, "bad_image": 2, "missing_image": 1, "duplicate_path": 1}
    assert s["man"]["missing_labels_by_reason"] == {"missing_tags": 1, "missing_mood": 1, "missing_years": 1}
    assert s["man"]["examples_by_task"] == {"tags": 29, "mood": 29, "years": 29}
    # td: 12 good + zero-byte, truncated, HTML (bad_image) + label -1 (bad_label) = 16
    assert _counts(s["td"]) == (16, 12, 4)
    assert s["td"]["rejected_by_reason"] == {"bad_image": 3, "bad_label": 1}
    for st in s.values():
        assert st["examples"]["train"] + st["examples"]["eval"] == sum(st["examples_by_task"].values())
        assert st["examples"]["eval"] > 0 and st["examples"]["train"] > 0


def test_dead_letters_name_each_record(run):
    _, _, out, stats = run
    rows = {name: dead_letters(out, name) for name in stats["sources"]}
    assert {name: len(r) for name, r in rows.items()} == {n: st["rejected"] for n, st in stats["sources"].items()}
    utk = {r["id"]: r["reason"] for r in rows["utk"]}
    assert {k: v for k, v in utk.items() if k in UTK_BAD} == UTK_BAD
    fa = sorted((r["id"], r["reason"]) for r in rows["fa"])
    assert sorted((row.split(",")[0], reason) for row, reason in FA_ROWS.items()) == \
        [x for x in fa if x[1] != "duplicate_row"]
    man = sorted((r["id"], r["reason"]) for r in rows["man"] if r["reason"] != "duplicate_path")
    assert man == sorted((row.split(",")[0], reason) for row, reason in MAN_ROWS.items())
    assert all(r["detail"] for rs in rows.values() for r in rs)


def test_utk_one_example_per_task_with_labels_from_the_name(run):
    config, _, out, _ = run
    by_image = {}
    for split in ("train", "eval"):
        for ex in read_examples(f"{out}/examples/Split-{split}_utk/data_tfrecord-*.gz"):
            raw_id, task = feature(ex, "example_id")[0].decode()[len("utk/"):].rsplit("/", 1)
            age, gender, race = parse_name(raw_id)
            label = feature(ex, "label")  # width 5: tags 3, collar 5, race 5, ...
            expected = {"gender": [float(gender == 1), float(gender == 0)],  # [female, male]; UTKFace 0 = male
                        "years": [float(age)], "race": [float(k == race) for k in range(5)]}[task]
            assert label[:len(expected)] == expected and not any(label[len(expected):])
            assert feature(ex, "task_index") == [config.task_index(task)]
            assert split == assign_split(raw_id, config.splits.eval, SALT)  # group = file name
            img = Image.open(io.BytesIO(feature(ex, "image")[0]))
            assert (img.mode, img.size) == ("RGB", (48, 48))
            r, g, b = img.split()
            assert r.tobytes() == g.tobytes() == b.tobytes()  # prep.color grayscale, channels 3
            by_image.setdefault(raw_id, []).append(task)
    assert len(by_image) == 39 and all(sorted(t) == ["gender", "race", "years"] for t in by_image.values())


def test_fashionai_label_is_the_y_position(run):
    config, data, out, _ = run
    rows = {line.split(",")[0]: line.split(",")[2]
            for line in open(f"{data}/fa/Annotations/label.csv").read().splitlines()[:20]}
    seen = 0
    for split in ("train", "eval"):
        for ex in read_examples(f"{out}/examples/Split-{split}_fa/data_tfrecord-*.gz"):
            image = feature(ex, "example_id")[0].decode()[len("fa/"):].rsplit("/", 1)[0]
            assert feature(ex, "label").index(1.0) == rows[image].index("y")
            assert split == assign_split(image, config.splits.eval, SALT)
            seen += 1
    assert seen == 20


def test_csv_groups_never_cross_splits(run):
    config, data, out, stats = run
    import csv

    rows = {r["path"]: r for r in csv.DictReader(open(f"{data}/man/manifest.csv"))}
    splits_of = {}
    for split in ("train", "eval"):
        for ex in read_examples(f"{out}/examples/Split-{split}_man/data_tfrecord-*.gz"):
            path, task = feature(ex, "example_id")[0].decode()[len("man/"):].rsplit("/", 1)
            row, label = rows[path], feature(ex, "label")
            if task == "mood":
                assert label.index(1.0) == ["neutral", "happy", "sad"].index(row["mood"])
            elif task == "tags":
                assert [i for i, v in enumerate(label) if v] == sorted(
                    ["hat", "glasses", "beard"].index(t) for t in row["tags"].split("|"))
            else:
                assert label[0] == pytest.approx(float(row["age"]))
            splits_of.setdefault(row["person"], set()).add(split)
            img = Image.open(io.BytesIO(feature(ex, "image")[0]))
            assert (img.format, img.size) == ("PNG", (48, 48))
    assert all(len(s) == 1 for s in splits_of.values())  # no person in train and eval
    assert {s for v in splits_of.values() for s in v} == {"train", "eval"}


def test_tfds_examples(run):
    _, _, out, stats = run
    examples = [ex for split in ("train", "eval")
                for ex in read_examples(f"{out}/examples/Split-{split}_td/data_tfrecord-*.gz")]
    assert len(examples) == 12
    # prep.encoding jpeg overrides image.encoding png for this source only
    assert {Image.open(io.BytesIO(feature(ex, "image")[0])).format for ex in examples} == {"JPEG"}
    # generated labels k % 3 for k < 12: four of each; calm -> neutral 0, joy -> happy 1, sad 2
    assert sorted(feature(ex, "label").index(1.0) for ex in examples) == [0] * 4 + [1] * 4 + [2] * 4


@pytest.mark.parametrize("fmt,options,match", [
    ("utkface", {"gender_task": "gender"}, r"source 's' \(utkface\): no records found under"),
    ("fashionai", {"attributes": {"collar_design_labels": "collar"}},
     r"source 's' \(fashionai\): .*/s/Annotations/label.csv does not exist"),
    ("csv", {}, r"source 's' \(csv\): manifest .*/s/manifest.csv does not exist"),
    ("tfds", {"name": "faces"}, r"source 's' \(tfds\): no prepared dataset 'faces' under"),
])
def test_empty_source_fails_before_beam(tmp_path, fmt, options, match):
    from data_prep.beam_job import run_conversion

    (tmp_path / "s").mkdir()
    task = "collar" if fmt == "fashionai" else "gender"
    config = make_config(str(tmp_path), [{"name": "s", "format": fmt, "path": str(tmp_path / "s"),
                                          "tasks": [task], "options": options}])
    with pytest.raises(SourceError, match=match):
        run_conversion(config, str(tmp_path / "ex"), str(tmp_path / "dl"), str(tmp_path / "s.json"))
    os.rmdir(tmp_path / "s")
    with pytest.raises(SourceError, match=r"source 's': path .*/s does not exist"):
        run_conversion(config, str(tmp_path / "ex"), str(tmp_path / "dl"), str(tmp_path / "s.json"))
    assert not os.path.exists(tmp_path / "ex")
