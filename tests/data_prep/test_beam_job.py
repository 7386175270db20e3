"""The whole conversion on generated genki4k + imdb_wiki + folder data with real bad files mixed in."""
import glob
import io
import json
import math
import os
import shutil

import pytest
from PIL import Image

from data_prep.formats._labels import age_class
from data_prep.formats.imdb_wiki import age_of, read_mat
from data_prep.generate import generate_missing
from data_prep.generators.bad_files import good_jpeg, write_text_as_jpeg, write_truncated_jpeg, write_zero_byte
from data_prep.records import SourceError
from data_prep.splits import assign_split
from tests.data_prep.helpers import feature, make_config, read_examples


def _break_sources(root: str) -> None:
    g = f"{root}/genki4k"
    write_zero_byte(f"{g}/files/file0003.jpg")
    write_truncated_jpeg(f"{g}/files/file0005.jpg")
    write_text_as_jpeg(f"{g}/files/file0007.jpg")
    lines = open(f"{g}/labels.txt").read().splitlines()
    lines[8] = "yes 0 0 0"  # line 9 -> file0009.jpg
    open(f"{g}/labels.txt", "w").write("\n".join(lines) + "\n")
    os.remove(f"{g}/files/file0011.jpg")  # label line 11 without image
    shutil.copy(f"{g}/files/file0001.jpg", f"{g}/files/file0030.jpg")  # image without line 30
    w = f"{root}/wiki"
    paths = read_mat(f"{w}/wiki.mat")["full_path"]
    write_truncated_jpeg(f"{w}/{paths[0]}")
    os.remove(f"{w}/{paths[1]}")
    f = f"{root}/faces"
    os.makedirs(f"{f}/angry")
    for k in range(2):
        open(f"{f}/angry/p001_09{k}.jpg", "wb").write(good_jpeg(k))
    open(f"{f}/README.txt", "w").write("class folders")
    for cls in ("happy", "neutral"):
        os.makedirs(f"{f}/{cls}", exist_ok=True)
    write_zero_byte(f"{f}/happy/p999_bad.jpg")
    open(f"{f}/neutral/x.jpg", "wb").write(good_jpeg(5))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from data_prep.beam_job import run_conversion

    root = str(tmp_path_factory.mktemp("prep"))
    # salt "a": 5 of the 12 generated people land in eval (with no salt, none of them would)
    config = make_config(f"{root}/data", splits={"eval": 0.2, "salt": "a"})
    assert generate_missing(config) == [f"{root}/data/genki4k", f"{root}/data/wiki", f"{root}/data/faces"]
    _break_sources(f"{root}/data")
    out = f"{root}/out"
    stats = run_conversion(config, f"{out}/examples", f"{out}/dead_letter", f"{out}/prep_stats.json")
    return config, root, out, stats


def test_counts(run):
    _, _, out, stats = run
    assert json.load(open(f"{out}/prep_stats.json")) == stats
    s = stats["sources"]
    # genki4k: 24 generated files - file0011 + file0030 = 24 files, + label line 11 without image = 25 records;
    # rejected: file0003/5/7 bad_image, file0009 bad_label, line 11 missing_image, file0030 missing_label.
    assert (s["genki4k"]["read"], s["genki4k"]["written"], s["genki4k"]["rejected"]) == (25, 19, 6)
    assert s["genki4k"]["rejected_by_reason"] == {"bad_image": 3, "bad_label": 1, "missing_image": 1,
                                                  "missing_label": 1}
    assert s["genki4k"]["examples_by_task"] == {"smile": 19}
    # wiki, 40 rows (generator positions): no_face i%20==7 -> 7, 27; second_face i%20==13 -> 13, 33;
    # low_face_score i%30==4 -> 4, 34; plus row 0 truncated image and row 1 image deleted.
    # 40 - 8 = 32 written; gender NaN at i%30==19 (row 19) and age -5 at i%50==21 (row 21) each drop one
    # example: 32 - 1 = 31 gender, 32 - 1 = 31 age.
    assert (s["wiki"]["read"], s["wiki"]["written"], s["wiki"]["rejected"]) == (40, 32, 8)
    assert s["wiki"]["rejected_by_reason"] == {"no_face": 2, "second_face": 2, "low_face_score": 2,
                                               "bad_image": 1, "missing_image": 1}
    assert s["wiki"]["missing_labels_by_reason"] == {"missing_gender": 1, "bad_age": 1}
    assert s["wiki"]["examples_by_task"] == {"gender": 31, "age": 31}
    # faces: 24 generated + angry/ x2 + README.txt + happy/p999_bad.jpg + neutral/x.jpg = 29 records
    assert (s["faces"]["read"], s["faces"]["written"], s["faces"]["rejected"]) == (29, 24, 5)
    assert s["faces"]["rejected_by_reason"] == {"unknown_class": 3, "bad_image": 1, "no_group": 1}
    for _name, st in s.items():
        assert st["read"] == st["written"] + st["rejected"]
        assert st["examples"]["train"] + st["examples"]["eval"] == sum(st["examples_by_task"].values())
    assert stats["total"]["read"] == 25 + 40 + 29


def test_dead_letters(run):
    _, _, out, stats = run
    for name, st in stats["sources"].items():
        rows = [json.loads(line) for p in sorted(glob.glob(f"{out}/dead_letter/{name}-*.jsonl"))
                for line in open(p)]
        assert len(rows) == st["rejected"]
        assert all(set(r) == {"source", "id", "reason", "detail"} and r["source"] == name for r in rows)
    rows = [json.loads(line) for p in glob.glob(f"{out}/dead_letter/genki4k-*.jsonl") for line in open(p)]
    assert sorted((r["id"], r["reason"]) for r in rows) == [
        ("file0003.jpg", "bad_image"), ("file0005.jpg", "bad_image"), ("file0007.jpg", "bad_image"),
        ("file0009.jpg", "bad_label"), ("file0030.jpg", "missing_label"), ("labels.txt:11", "missing_image")]
    assert "yes 0 0 0" in next(r["detail"] for r in rows if r["reason"] == "bad_label")


def test_genki_examples_match_labels(run):
    config, root, out, stats = run
    lines = open(f"{root}/data/genki4k/labels.txt").read().splitlines()
    examples = read_examples(f"{out}/examples/Split-*_genki4k/data_tfrecord-*.gz")
    assert len(examples) == 19
    for ex in examples:
        eid = feature(ex, "example_id")[0].decode()
        source, raw_id, task = eid.split("/")
        assert (source, task) == ("genki4k", "smile")
        smile = int(lines[int(raw_id[4:8]) - 1].split()[0])
        # label width 5 (age has 5 classes); smile is task 0, one-hot at its class index
        assert feature(ex, "task_index") == [0]
        assert feature(ex, "label") == [1.0 - smile, float(smile), 0.0, 0.0, 0.0]
        assert feature(ex, "source") == [b"genki4k"]
        img = Image.open(io.BytesIO(feature(ex, "image")[0]))
        assert (img.format, img.mode, img.size) == ("PNG", "L", (48, 48))


def test_wiki_examples_and_group_splits(run):
    config, root, out, stats = run
    mat = read_mat(f"{root}/data/wiki/wiki.mat")
    row = {p: i for i, p in enumerate(mat["full_path"])}
    seen = {}
    for split in ("train", "eval"):
        examples = read_examples(f"{out}/examples/Split-{split}_wiki/data_tfrecord-*.gz")
        assert len(examples) == stats["sources"]["wiki"]["examples"][split]
        for ex in examples:
            eid = feature(ex, "example_id")[0].decode()  # wiki/17/10000017_1950-03-04_2001.jpg/gender
            assert eid.startswith("wiki/")
            raw_id, task = eid[len("wiki/"):].rsplit("/", 1)
            i = row[raw_id]
            label = feature(ex, "label")
            if task == "gender":  # task 1; 1 male -> class 1
                assert feature(ex, "task_index") == [1]
                assert label.index(1.0) == int(mat["gender"][i]) and sum(label) == 1.0
            else:  # task 2; class from the datenum arithmetic and bins [20, 30, 40, 55]
                assert feature(ex, "task_index") == [2]
                assert label.index(1.0) == age_class(age_of(mat["dob"][i], mat["photo_taken"][i]), [20, 30, 40, 55])
            name = mat["name"][i]
            assert assign_split(name, config.splits.eval, config.splits.salt) == split
            seen.setdefault(name, set()).add(split)
    assert all(len(splits) == 1 for splits in seen.values())  # no person in both splits
    assert max(sum(1 for n in mat["name"] if n == name) for name in seen) > 1  # people do have several photos
    assert {s for v in seen.values() for s in v} == {"train", "eval"}


def test_folder_examples_group_by_person(run):
    config, root, out, stats = run
    for split in ("train", "eval"):
        for ex in read_examples(f"{out}/examples/Split-{split}_faces/data_tfrecord-*.gz"):
            raw_id = feature(ex, "example_id")[0].decode()[len("faces/"):].rsplit("/", 1)[0]
            cls, fname = raw_id.split("/")
            assert feature(ex, "task_index") == [3]
            assert feature(ex, "label").index(1.0) == ["neutral", "happy", "sad"].index(cls)
            assert assign_split(fname.split("_")[0], config.splits.eval, config.splits.salt) == split


def test_chunks_keep_every_record_in_order():
    from data_prep.listing import chunk_records, records_to_chunks
    from data_prep.records import RawRecord

    records = [RawRecord(f"r{i}", f"/d/{i}.jpg", {"note": "two\nlines" if i == 3 else i}) for i in range(7)]
    records[4] = RawRecord("link.jpg", "/d/link.jpg", {}, ("duplicate_path", "link.jpg links to the file a.jpg"))
    records[5] = RawRecord("17/a.jpg", "/d/17/a.jpg", {"gender": math.nan, "face_score": -math.inf, "loc": [1.0, 2.0]})
    chunks = records_to_chunks(records, size=3)
    assert len(chunks) == 3 and not any("\n" in c for c in chunks)  # one manifest line each
    back = [r for c in chunks for r in chunk_records(c)]
    assert back[:5] == records[:5] and back[6] == records[6]  # a newline inside a field survives, a problem too
    fields = back[5].fields  # IMDB-WIKI's NaN / -inf fields too
    assert (back[5].raw_id, fields["face_score"], fields["loc"]) == ("17/a.jpg", -math.inf, [1.0, 2.0])
    assert math.isnan(fields["gender"])


def test_every_split_dir_exists_even_when_empty(tmp_path, monkeypatch):
    from data_prep import listing
    from data_prep.beam_job import run_conversion

    monkeypatch.setattr(listing, "CHUNK", 2)  # 3 records: two chunks, one of them short,
    monkeypatch.setattr(listing, "SHARD_CHUNKS", 1)  # in two manifest files
    config = make_config(str(tmp_path), [{"name": "g", "format": "genki4k", "path": str(tmp_path / "g"),
                                          "tasks": ["smile"], "sample": {"count": 3, "seed": 0}}],
                         splits={"eval": 0.0001})
    generate_missing(config)
    stats = run_conversion(config, str(tmp_path / "ex"), str(tmp_path / "dl"), str(tmp_path / "s.json"))
    assert stats["sources"]["g"]["examples"] == {"train": 3, "eval": 0}
    assert len(glob.glob(str(tmp_path / "ex" / "Split-eval_g" / "data_tfrecord-*.gz"))) == 1
    assert read_examples(str(tmp_path / "ex" / "Split-eval_g" / "data_tfrecord-*.gz")) == []
    assert glob.glob(str(tmp_path / "dl" / "g-*.jsonl"))
    assert not os.path.exists(str(tmp_path / "s.json.work"))
    with pytest.raises(SourceError, match="not empty"):  # a rerun into the same dirs would mix shards
        run_conversion(config, str(tmp_path / "ex"), str(tmp_path / "dl2"), str(tmp_path / "s2.json"))


def test_empty_source_fails_before_beam(tmp_path):
    from data_prep.beam_job import run_conversion

    (tmp_path / "f").mkdir()
    config = make_config(str(tmp_path), [{"name": "f", "format": "folder", "path": str(tmp_path / "f"),
                                          "tasks": ["mood"]}])
    with pytest.raises(SourceError, match=r"source 'f' \(folder\): no records"):
        run_conversion(config, str(tmp_path / "ex"), str(tmp_path / "dl"), str(tmp_path / "s.json"))
    assert not os.path.exists(tmp_path / "ex")
    import gc

    assert gc.get_freeze_count() == 0  # the job's gc.freeze() is undone on the way out, error or not


def test_label_and_image_counts(run):
    """labels_by_task / image_formats / image_sizes (the drift check's counts): the numbers of this
    generated data, and the same classes read back from the written examples' one-hot labels."""
    config, _, out, stats = run
    s = stats["sources"]
    # genki4k's 19 written smile examples: 12 smile + 7 no_smile; wiki's 32 written rows: 31 gender
    # (15 + 16) and 31 age examples (7 + 5 + 6 + 8 + 5); faces' 24: 3 neutral + 13 happy + 8 sad
    assert s["genki4k"]["labels_by_task"] == {"smile": {"no_smile": 7, "smile": 12}}
    assert s["wiki"]["labels_by_task"] == {"gender": {"female": 15, "male": 16},
                                           "age": {"0-19": 7, "20-29": 5, "30-39": 6, "40-54": 8, "55+": 5}}
    assert s["faces"]["labels_by_task"] == {"mood": {"neutral": 3, "happy": 13, "sad": 8}}
    # every sample image is a 96x96 JPEG; one count per written record (not per example)
    for name in s:
        assert s[name]["image_formats"] == {"JPEG": s[name]["written"]}
        assert s[name]["image_sizes"] == {"96x96": s[name]["written"]}
    for name in s:
        by_task = {}
        for ex in read_examples(f"{out}/examples/Split-*_{name}/data_tfrecord-*.gz"):
            task = config.tasks[feature(ex, "task_index")[0]]
            cls = task.classes[feature(ex, "label").index(1.0)]
            by_task.setdefault(task.name, {}).setdefault(cls, 0)
            by_task[task.name][cls] += 1
        assert by_task == s[name]["labels_by_task"]
        assert {t: sum(c.values()) for t, c in by_task.items()} == s[name]["examples_by_task"]
