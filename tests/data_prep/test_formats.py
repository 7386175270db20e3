"""Each format's record listing, labels and option checks, on real on-disk layouts."""
import math
import os
import shutil

import numpy as np
import pytest
import scipy.io

from config import ConfigError
from data_prep.convert import list_source_records, validate_sources
from data_prep.formats import folder, genki4k, imdb_wiki
from data_prep.formats._labels import age_class
from data_prep.generate import generate_missing
from data_prep.records import SourceError
from tests.data_prep.helpers import BASE, outcome, write_mat


# ---------------------------------------------------------------- genki4k
def test_genki4k_records_and_labels(tmp_path, config_factory):
    config = config_factory(str(tmp_path), [{"name": "g", "format": "genki4k", "path": str(tmp_path / "g"),
                                             "tasks": ["smile"], "sample": {"count": 6}}])
    generate_missing(config)
    files = tmp_path / "g" / "files"
    (tmp_path / "g" / "labels.txt").write_text(
        "1 0.1 0.2 0.3\nx 0 0 0\n0 -0.1 0 0\n1 0 0 0\n0 0 0 0\n1 0 0 0\n")
    os.remove(files / "file0004.jpg")  # its label line 4 has no image
    shutil.copy(files / "file0001.jpg", files / "file0009.jpg")  # no line 9
    (files / "notes.txt").write_text("hi")
    source = config.sources[0]
    records = list_source_records(source, config)
    got = {r.raw_id: outcome(genki4k, r, source, config) for r in records}
    assert got == {
        "file0001.jpg": ("file0001.jpg", {"smile": 1}, {}, None),  # smile 1 -> class index 1
        "file0002.jpg": "bad_label",
        "file0003.jpg": ("file0003.jpg", {"smile": 0}, {}, None),
        "file0005.jpg": ("file0005.jpg", {"smile": 0}, {}, None),
        "file0006.jpg": ("file0006.jpg", {"smile": 1}, {}, None),
        "file0009.jpg": "missing_label",
        "notes.txt": "unexpected_file",
        "labels.txt:4": "missing_image",
    }


def test_genki4k_options(tmp_path, config_factory):
    src = {"name": "g", "format": "genki4k", "path": str(tmp_path), "tasks": ["smile"]}
    with pytest.raises(ConfigError, match=r"sources\[0\]\.options\.smiles.*valid options.*smile_task"):
        validate_sources(config_factory(str(tmp_path), [{**src, "options": {"smiles": "smile"}}]))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.tasks.*2 classes"):
        validate_sources(config_factory(str(tmp_path), [{**src, "tasks": ["age"]}]))


def test_missing_path_is_a_source_error(tmp_path, config_factory):
    config = config_factory(str(tmp_path), [{"name": "g", "format": "genki4k", "path": str(tmp_path / "nope"),
                                             "tasks": ["smile"]}])
    with pytest.raises(SourceError, match=r"source 'g'.*nope does not exist"):
        list_source_records(config.sources[0], config)


# ---------------------------------------------------------------- imdb_wiki
def test_age_arithmetic():
    # Real first row of wiki.mat: 17/10000217_1981-05-05_2009.jpg has dob 723671.
    # fromordinal(723671) - 366 days = ordinal 723305 = 1981-05-05; 2009 - 1981 = 28.
    assert imdb_wiki.age_of(723671.0, 2009) == 28
    # datenum 719529 = 1970-01-01 (fromordinal gives 1971-01-02, minus 366 days): 2000 - 1970 = 30
    assert imdb_wiki.age_of(719529.0, 2000) == 30
    # bins [20, 30, 40, 55] are exclusive upper edges: 19 -> 0, 20 -> 1, 54 -> 3, 55 -> 4
    assert [age_class(a, [20, 30, 40, 55]) for a in (19, 20, 54, 55)] == [0, 1, 3, 4]
    with pytest.raises(ValueError):
        imdb_wiki.age_of(math.nan, 2009)


NAN, INF = math.nan, math.inf
WIKI_ROWS = [
    dict(BASE, full_path="17/a.jpg"),
    dict(BASE, full_path="17/b.jpg", gender=NAN, photo_taken=2041),  # age 60 -> class 4, gender unknown
    dict(BASE, full_path="17/c.jpg", face_score=-INF),
    dict(BASE, full_path="17/d.jpg", face_score=0.5),
    dict(BASE, full_path="17/e.jpg", second=2.0),
    dict(BASE, full_path="17/f.jpg", gender=0.0, photo_taken=1975, name=""),  # age -6, female, no name
    dict(BASE, full_path="17/g.jpg", gender=NAN, photo_taken=1975),
]


def _wiki(tmp_path, config_factory, prep=None, **options):
    src = {"name": "wiki", "format": "imdb_wiki", "path": str(tmp_path / "w"), "tasks": ["gender", "age"],
           "options": {"age_task": "age", "gender_task": "gender", "age_bins": [20, 30, 40, 55],
                       "min_face_score": 1.0, "drop_second_face": True, **options}, "prep": prep or {}}
    return config_factory(str(tmp_path), [src])


def test_imdb_wiki_records_and_labels(tmp_path, config_factory):
    write_mat(str(tmp_path / "w" / "wiki.mat"), WIKI_ROWS)
    config = _wiki(tmp_path, config_factory)
    source = config.sources[0]
    records = list_source_records(source, config)
    assert [r.path for r in records[:1]] == [str(tmp_path / "w" / "17" / "a.jpg")]
    got = {r.raw_id: outcome(imdb_wiki, r, source, config) for r in records}
    assert got == {
        "17/a.jpg": ("Sami", {"gender": 1, "age": 1}, {}, None),  # male -> index of "male" = 1
        "17/b.jpg": ("Sami", {"age": 4}, {"gender": "missing_gender"}, None),
        "17/c.jpg": "no_face",
        "17/d.jpg": "low_face_score",
        "17/e.jpg": "second_face",
        "17/f.jpg": ("17/f.jpg", {"gender": 0}, {"age": "bad_age"}, None),  # empty name -> raw id
        "17/g.jpg": "no_labels",  # neither label usable
    }


def test_imdb_wiki_crop_and_defaults(tmp_path, config_factory):
    write_mat(str(tmp_path / "w" / "imdb.mat"), WIKI_ROWS, stem="imdb")
    config = _wiki(tmp_path, config_factory, prep={"face_crop": True}, mat_file="imdb.mat",
                   min_face_score=None, drop_second_face=False)
    source = config.sources[0]
    got = [outcome(imdb_wiki, r, source, config) for r in list_source_records(source, config)]
    assert got[0] == ("Sami", {"gender": 1, "age": 1}, {}, (10.0, 20.0, 60.0, 80.0))
    assert got[2:5] == ["no_face", ("Sami", {"gender": 1, "age": 1}, {}, (10.0, 20.0, 60.0, 80.0)),
                        ("Sami", {"gender": 1, "age": 1}, {}, (10.0, 20.0, 60.0, 80.0))]


def test_imdb_wiki_wrong_struct_name(tmp_path, config_factory):
    write_mat(str(tmp_path / "w" / "wiki.mat"), WIKI_ROWS, stem="imdb")
    config = _wiki(tmp_path, config_factory)
    with pytest.raises(SourceError, match=r"no struct 'wiki'.*\['imdb'\]"):
        list_source_records(config.sources[0], config)


def test_imdb_wiki_dob_of_strings_is_a_source_error(tmp_path, config_factory):
    rows = [dict(r) for r in WIKI_ROWS]
    write_mat(str(tmp_path / "w" / "wiki.mat"), rows)
    mat = scipy.io.loadmat(str(tmp_path / "w" / "wiki.mat"))
    dob = np.empty((1, len(rows)), dtype=object)
    for i in range(len(rows)):
        dob[0, i] = "1981-05-12"  # dates as text, not MATLAB datenums
    struct = {k: mat["wiki"][0, 0][k] for k in mat["wiki"].dtype.names}
    scipy.io.savemat(str(tmp_path / "w" / "wiki.mat"), {"wiki": {**struct, "dob": dob}})
    config = _wiki(tmp_path, config_factory)
    with pytest.raises(SourceError, match=r"wiki\.mat: field 'dob' must hold numbers; received "):
        list_source_records(config.sources[0], config)


@pytest.mark.parametrize("options,match", [
    ({"age_bins": [20, 30]}, r"sources\[0\]\.options\.age_bins.*3 age groups.*5 classes"),
    ({"age_bins": [30, 20, 40, 55]}, r"options\.age_bins.*strictly increasing"),
    ({"gender_task": "smile"}, r"options\.gender_task.*expected one of this source's tasks"),
    ({"age_task": None, "gender_task": None}, r"options\.age_task.*set age_task and/or gender_task"),
    ({"gender_task": None}, r"sources\[0\]\.tasks.*gender get no labels"),
    ({"min_face_score": "high"}, r"options\.min_face_score.*'high'"),
    ({"crop": True}, r"options\.crop'.*valid options.*drop_second_face"),
    ({"crop_face": True}, r"options\.crop_face'.*moved to the source's prep: `prep: \{face_crop: true\}`"),
    ({"mat_file": "wiki.csv"}, r"options\.mat_file"),
])
def test_imdb_wiki_options(tmp_path, config_factory, options, match):
    config = _wiki(tmp_path, config_factory, **options)
    with pytest.raises(ConfigError, match=match):
        validate_sources(config)


def test_imdb_wiki_gender_class_order(tmp_path, config_factory):
    from config import parse

    write_mat(str(tmp_path / "w" / "wiki.mat"), WIKI_ROWS[:1])
    config = parse({"name": "t", "tasks": [{"name": "sex", "type": "binary", "classes": ["Male", "Female"]}],
                    "sources": [{"name": "w", "format": "imdb_wiki", "path": str(tmp_path / "w"), "tasks": ["sex"],
                                 "options": {"gender_task": "sex"}}]}, base_dir=None)
    source = config.sources[0]
    record = list_source_records(source, config)[0]
    assert imdb_wiki.parse_record(record, source, config).labels == {"sex": 0}  # "Male" is index 0 here


# ---------------------------------------------------------------- folder
def _folder(tmp_path, config_factory, **options):
    return config_factory(str(tmp_path), [{"name": "f", "format": "folder", "path": str(tmp_path / "f"),
                                           "tasks": ["mood"], "options": options, "sample": {"count": 5, "seed": 3}}])


def test_folder_records_and_labels(tmp_path, config_factory):
    config = _folder(tmp_path, config_factory, group_regex=r"^(p\d+)_")
    generate_missing(config)
    root = tmp_path / "f"
    generated = sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))
    (root / "angry").mkdir()
    (root / "angry" / "p001_0100.jpg").write_bytes(b"x")
    (root / "README.txt").write_text("hi")
    (root / "happy" / "sub").mkdir(parents=True, exist_ok=True)
    (root / "happy" / "sub" / "p007_0101.jpg").write_bytes(b"x")
    (root / "sad").mkdir(exist_ok=True)
    (root / "sad" / "nobody.jpg").write_bytes(b"x")
    source = config.sources[0]
    got = {r.raw_id: outcome(folder, r, source, config) for r in list_source_records(source, config)}
    classes = ["neutral", "happy", "sad"]
    expected = {rel: (rel.split("/")[1].split("_")[0], {"mood": classes.index(rel.split("/")[0])}, {}, None)
                for rel in generated}
    expected.update({"angry/p001_0100.jpg": "unknown_class", "README.txt": "unknown_class",
                     "happy/sub/p007_0101.jpg": ("p007", {"mood": 1}, {}, None), "sad/nobody.jpg": "no_group"})
    assert len(generated) == 5
    assert got == expected


def test_folder_group_defaults_to_relative_path(tmp_path, config_factory):
    config = _folder(tmp_path, config_factory)
    generate_missing(config)
    source = config.sources[0]
    record = list_source_records(source, config)[0]
    assert folder.parse_record(record, source, config).group_id == record.raw_id


@pytest.mark.parametrize("options,match", [
    ({"group_regex": "p\\d+"}, r"sources\[0\]\.options\.group_regex.*capture group"),
    ({"group_regex": "(p"}, r"options\.group_regex.*not a valid regex"),
    ({"group_by": "file"}, r"options\.group_by.*valid options.*group_regex"),
])
def test_folder_options(tmp_path, config_factory, options, match):
    with pytest.raises(ConfigError, match=match):
        validate_sources(_folder(tmp_path, config_factory, **options))


def test_folder_needs_one_task(tmp_path, config_factory):
    config = config_factory(str(tmp_path), [{"name": "f", "format": "folder", "path": str(tmp_path),
                                             "tasks": ["mood", "smile"]}])
    with pytest.raises(ConfigError, match=r"sources\[0\]\.tasks.*exactly one task"):
        validate_sources(config)
