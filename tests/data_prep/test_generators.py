"""Sample-data generators write the real on-disk formats, reproducibly and only when missing."""
import datetime
import os
import re
from collections import Counter

import numpy as np
import pytest
import scipy.io
from PIL import Image

from config import ConfigError
from data_prep.generate import generate_missing
from data_prep.generators.faces import Ambiguity
from tests.data_prep.helpers import make_config


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("gen"))
    config = make_config(root)
    return root, config, generate_missing(config)


def test_generates_every_sample_source_once(generated):
    root, config, done = generated
    assert done == [s.path for s in config.sources]
    assert not [p for p in os.listdir(root) if p.endswith(".partial")]
    before = {p: os.path.getmtime(p) for p in (f"{root}/genki4k/labels.txt", f"{root}/wiki/wiki.mat")}
    assert generate_missing(config) == []  # idempotent: existing paths are left alone
    assert {p: os.path.getmtime(p) for p in before} == before


def test_genki4k_layout(generated):
    root, _, _ = generated
    assert sorted(os.listdir(f"{root}/genki4k/files")) == [f"file{k:04d}.jpg" for k in range(1, 25)]
    lines = open(f"{root}/genki4k/labels.txt").read().splitlines()
    assert len(lines) == 24
    assert all(re.fullmatch(r"[01] -?\d\.\d{6} -?\d\.\d{6} -?\d\.\d{6}", line) for line in lines)
    img = Image.open(f"{root}/genki4k/files/file0001.jpg")
    assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (96, 96))


def test_wiki_mat_has_real_types(generated):
    root, _, _ = generated
    meta = scipy.io.loadmat(f"{root}/wiki/wiki.mat")["wiki"][0, 0]
    assert set(meta.dtype.names) == {"dob", "photo_taken", "full_path", "gender", "name", "face_location",
                                     "face_score", "second_face_score"}
    assert meta["dob"].shape == (1, 40) and meta["dob"].dtype == np.float64
    assert meta["photo_taken"].dtype == np.uint16
    assert meta["face_location"][0, 0].shape == (1, 4)
    gender, score, second = meta["gender"][0], meta["face_score"][0], meta["second_face_score"][0]
    # generator positions for 40 rows: NaN gender at i%30==19 -> 1; -inf at i%20==7 -> 2; 2nd face i%20==13 -> 2
    assert (np.isnan(gender).sum(), np.isneginf(score).sum(), (~np.isnan(second)).sum()) == (1, 2, 2)
    for i in range(40):
        path = str(meta["full_path"][0, i][0])
        m = re.fullmatch(r"(\d\d)/(\d+)_(\d{4}-\d\d-\d\d)_(-?\d+)\.jpg", path)
        assert m and m.group(1) == m.group(2)[-2:], path  # folder = last two digits of the id, as in wiki
        birth = datetime.datetime.fromordinal(int(meta["dob"][0, i])) - datetime.timedelta(days=366)
        assert birth.date().isoformat() == m.group(3)  # datenum and file name agree
        assert int(m.group(4)) == int(meta["photo_taken"][0, i])
        assert os.path.exists(f"{root}/wiki/{path}")
    names = [str(n[0]) for n in meta["name"][0]]
    assert len(set(names)) < len(names)  # several photos per person


def test_folder_layout(generated):
    root, _, _ = generated
    files = [os.path.join(d, f) for d in os.listdir(f"{root}/faces") for f in os.listdir(f"{root}/faces/{d}")]
    assert len(files) == 24
    assert all(d in ("neutral", "happy", "sad") and re.fullmatch(r"p\d{3}_\d{4}\.jpg", f)
               for d, f in (p.split("/") for p in files))


def test_same_seed_same_data(tmp_path):
    a = make_config(str(tmp_path / "a"), [{"name": "g", "format": "genki4k", "path": str(tmp_path / "a" / "g"),
                                          "tasks": ["smile"], "sample": {"count": 3, "seed": 7}}])
    b = make_config(str(tmp_path / "b"), [{"name": "g", "format": "genki4k", "path": str(tmp_path / "b" / "g"),
                                          "tasks": ["smile"], "sample": {"count": 3, "seed": 7}}])
    generate_missing(a), generate_missing(b)
    for rel in ("labels.txt", "files/file0003.jpg"):
        assert (tmp_path / "a" / "g" / rel).read_bytes() == (tmp_path / "b" / "g" / rel).read_bytes()


@pytest.mark.parametrize("sample,match", [
    ({"count": 0}, r"sources\[0\]\.sample\.count.*positive integer, received 0"),
    ({"seed": 1}, r"sources\[0\]\.sample\.count.*received None"),
    ({"count": 2, "colour": "red"}, r"sources\[0\]\.sample.*colour.*valid keys: count, seed, size, label_noise"),
    ({"count": 2, "label_noise": 0.5}, r"sources\[0\]\.sample\.label_noise.*\[0, 0\.5\), received 0\.5"),
    ({"count": 2, "label_noise": True}, r"sources\[0\]\.sample\.label_noise.*received True"),
])
def test_bad_sample_settings(tmp_path, sample, match):
    with pytest.raises(ConfigError, match=match):  # count and seed on load, the generator's keys here
        generate_missing(make_config(str(tmp_path), [{"name": "g", "format": "genki4k", "path": str(tmp_path / "g"),
                                                      "tasks": ["smile"], "sample": sample}]))
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("fmt,tasks,options", [
    ("utkface", ["years", "gender", "race"], {"age_task": "years", "gender_task": "gender", "race_task": "race"}),
    ("fashionai", ["collar"], {"attributes": {"collar_design_labels": "collar"}}),
    ("csv", ["tags", "years"], {"group_column": "person", "bbox_column": "box"}),
])
def test_new_generators_are_reproducible(tmp_path, fmt, tasks, options):
    def gen(where):
        config = make_config(str(tmp_path / where), [{"name": "s", "format": fmt, "path": str(tmp_path / where / "s"),
                                                      "tasks": tasks, "options": options,
                                                      "sample": {"count": 5, "seed": 3, "size": 48}}])
        generate_missing(config)
        root = tmp_path / where / "s"
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a, b = gen("a"), gen("b")
    assert a == b and len(a) >= 5


def test_ambiguity_flips_the_stated_share_to_the_other_classes_uniformly():
    draws = Ambiguity(seed=3, noise=0.1)
    shown = Counter(draws.shown(2, 5) for _ in range(40000))
    assert abs(1 - shown[2] / 40000 - 0.1) < 0.01  # binomial sd 0.0015
    assert sorted(shown) == [0, 1, 2, 3, 4]
    assert max(shown[c] for c in (0, 1, 3, 4)) / min(shown[c] for c in (0, 1, 3, 4)) < 1.2
    clean = Ambiguity(seed=3, noise=0)
    assert all(clean.shown(c, 5) == c for c in range(5) for _ in range(200))
    with pytest.raises(ValueError, match=r"label_noise must be a number in \[0, 0\.5\), received 0\.6"):
        Ambiguity(seed=3, noise=0.6)


def test_only_the_ambiguous_images_differ_from_a_noise_free_set(tmp_path):
    """Labels stay the labels; an image differs from the noise-free set of its seed
    exactly where the face shows the other class, so the Bayes error is the stated share."""
    def gen(where, noise):
        root = tmp_path / where / "g"
        generate_missing(make_config(str(tmp_path / where), [
            {"name": "g", "format": "genki4k", "path": str(root), "tasks": ["smile"],
             "sample": {"count": 200, "seed": 5, "size": 48, "label_noise": noise}}]))
        return root

    clean, noisy = gen("clean", 0), gen("noisy", 0.1)
    labels = (clean / "labels.txt").read_text()
    assert (noisy / "labels.txt").read_text() == labels
    draws = Ambiguity(seed=5, noise=0.1)
    expected = {k for k, line in enumerate(labels.splitlines(), 1)
                if draws.shown(int(line.split()[0]), 2) != int(line.split()[0])}
    differ = {k for k in range(1, 201)
              if (clean / f"files/file{k:04d}.jpg").read_bytes() != (noisy / f"files/file{k:04d}.jpg").read_bytes()}
    assert differ == expected and 10 <= len(differ) <= 30
