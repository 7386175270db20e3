"""Symbolic links and paths out of the dataset, on real links: every file is read once or
dead-lettered with its reason, a loop neither hangs nor crashes, nothing outside the root is read."""
import os

import pytest

from components.example_gen.component import source_fingerprint
from data_prep import fileio
from data_prep.convert import Converted, Failed, convert_records, list_source_records
from data_prep.generators.bad_files import good_jpeg
from tests.data_prep.helpers import BASE, write_mat


def _jpeg(path, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(good_jpeg(seed=seed))


@pytest.fixture
def tree(tmp_path):
    """faces/{happy,sad}/ real; faces/neutral -> ../outside (a class folder linked out of the root);
    faces/sad/loop -> .. (a loop); faces/sad/again -> ../happy (a folder inside the root);
    faces/happy/p9_out.jpg -> ../../outside/p8_x.jpg; faces/happy/p1_same.jpg -> p1_a.jpg;
    faces/happy/p1_gone.jpg -> p1_nowhere.jpg (dangling)."""
    faces, outside = tmp_path / "faces", tmp_path / "outside"
    for i, rel in enumerate(["happy/p1_a.jpg", "happy/p2_b.jpg", "sad/p3_c.jpg"]):
        _jpeg(str(faces / rel), seed=i)
    _jpeg(str(outside / "p8_x.jpg"), seed=8)
    os.symlink("../outside", faces / "neutral")
    os.symlink("..", faces / "sad" / "loop")
    os.symlink("../happy", faces / "sad" / "again")
    os.symlink("../../outside/p8_x.jpg", faces / "happy" / "p9_out.jpg")
    os.symlink("p1_a.jpg", faces / "happy" / "p1_same.jpg")
    os.symlink("p1_nowhere.jpg", faces / "happy" / "p1_gone.jpg")
    return tmp_path


def test_walk_lists_every_link_once_with_its_problem(tree):
    got = {rel: problem and problem[0] for rel, problem in fileio.walk_entries(str(tree / "faces"))}
    assert got == {
        "happy/p1_a.jpg": None, "happy/p2_b.jpg": None, "sad/p3_c.jpg": None,
        "neutral": "path_escapes_root",
        "sad/loop": "duplicate_path",
        "sad/again": "duplicate_path",
        "happy/p9_out.jpg": "path_escapes_root",
        "happy/p1_same.jpg": "duplicate_path",
        "happy/p1_gone.jpg": "missing_image",
    }
    assert fileio.walk_files(str(tree / "faces")) == ["happy/p1_a.jpg", "happy/p2_b.jpg", "sad/p3_c.jpg"]


def test_a_root_that_is_a_link_is_walked(tree):
    os.symlink(tree / "faces", tree / "faces_link")
    assert fileio.walk_files(str(tree / "faces_link")) == ["happy/p1_a.jpg", "happy/p2_b.jpg", "sad/p3_c.jpg"]


def test_folder_source_dead_letters_links_out_loops_and_duplicates(tree, config_factory):
    config = config_factory(str(tree), [{"name": "faces", "format": "folder", "path": str(tree / "faces"),
                                         "tasks": ["mood"], "options": {"group_regex": r"^(p\d+)_"}}])
    source = config.sources[0]
    records = list_source_records(source, config)
    results = {r.raw_id: (x.reason if isinstance(x, Failed) else "ok")
               for r, x in zip(records, convert_records(records, source, config))}
    assert results == {
        "happy/p1_a.jpg": "ok", "happy/p2_b.jpg": "ok", "sad/p3_c.jpg": "ok",
        "neutral": "path_escapes_root", "sad/loop": "duplicate_path", "sad/again": "duplicate_path",
        "happy/p9_out.jpg": "path_escapes_root", "happy/p1_same.jpg": "duplicate_path",
        "happy/p1_gone.jpg": "missing_image",
    }
    # the run's cache key lists the same tree without following the loop
    assert len(source_fingerprint(config)) == 64


def test_csv_duplicates_compare_normalised_paths(tmp_path, config_factory):
    root = tmp_path / "m"
    for name in ("x.jpg", "y.jpg"):
        _jpeg(str(root / "images" / name), seed=len(name))
    (root / "manifest.csv").write_text("path,mood\nimages/x.jpg,happy\nimages/./x.jpg,sad\n"
                                       "images//x.jpg,sad\nimages/y.jpg,sad\n")
    config = config_factory(str(tmp_path), [{"name": "m", "format": "csv", "path": str(root), "tasks": ["mood"]}])
    source = config.sources[0]
    records = list_source_records(source, config)
    got = [x.reason if isinstance(x, Failed) else "ok" for x in convert_records(records, source, config)]
    assert got == ["ok", "duplicate_path", "duplicate_path", "ok"]


def test_csv_file_link_out_of_the_root_is_not_read(tmp_path, config_factory):
    root = tmp_path / "m"
    _jpeg(str(tmp_path / "secret.jpg"), seed=3)
    (root / "images").mkdir(parents=True)
    os.symlink(tmp_path / "secret.jpg", root / "images" / "x.jpg")
    (root / "manifest.csv").write_text("path,mood\nimages/x.jpg,happy\n")
    config = config_factory(str(tmp_path), [{"name": "m", "format": "csv", "path": str(root), "tasks": ["mood"]}])
    source = config.sources[0]
    [result] = convert_records(list_source_records(source, config), source, config)
    assert isinstance(result, Failed) and result.reason == "path_escapes_root"


def test_imdb_wiki_paths_out_of_the_root_are_rejected_like_every_format(tmp_path, config_factory):
    _jpeg(str(tmp_path / "w" / "17" / "a.jpg"), seed=1)
    _jpeg(str(tmp_path / "elsewhere.jpg"), seed=2)
    rows = [dict(BASE, full_path="17/a.jpg"), dict(BASE, full_path=str(tmp_path / "elsewhere.jpg")),
            dict(BASE, full_path="../elsewhere.jpg")]
    write_mat(str(tmp_path / "w" / "wiki.mat"), rows)
    src = {"name": "wiki", "format": "imdb_wiki", "path": str(tmp_path / "w"), "tasks": ["gender"],
           "options": {"gender_task": "gender"}}
    config = config_factory(str(tmp_path), [src])
    source = config.sources[0]
    results = convert_records(list_source_records(source, config), source, config)
    assert isinstance(results[0], Converted)
    assert [r.reason for r in results[1:]] == ["path_escapes_root", "path_escapes_root"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_an_unreadable_folder_is_listed_with_its_reason(tree):
    locked = tree / "faces" / "sad"
    os.chmod(locked, 0)
    try:
        got = dict(fileio.walk_entries(str(tree / "faces")))
    finally:
        os.chmod(locked, 0o755)
    assert got["sad"][0] == "unreadable_image"
