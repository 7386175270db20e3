"""fashionai: label.csv rows `image,attr_key,labels` -> one example per row, bad rows rejected with the reason."""
import pytest

from config import ConfigError
from data_prep.convert import convert_record, list_source_records, validate_sources
from data_prep.formats import fashionai
from data_prep.generate import generate_missing
from data_prep.generators.bad_files import good_jpeg
from data_prep.records import Reject, SourceError
from tests.data_prep.helpers import outcome

COLLAR = "Images/collar_design_labels/a.jpg"


def _fa(tmp_path, config_factory, tasks=("collar",), **options):
    opts = {"attributes": {"collar_design_labels": "collar"}, **options}
    return config_factory(str(tmp_path), [{"name": "fa", "format": "fashionai", "path": str(tmp_path / "fa"),
                                           "tasks": list(tasks), "options": opts}])


ROWS = [
    f"{COLLAR},collar_design_labels,nnynn",          # line 1: class 2
    "Images/collar_design_labels/b.jpg,collar_design_labels,mnnny",  # 'm' = maybe, ignored: class 4
    "Images/collar_design_labels/c.jpg,collar_design_labels,nnnnn",  # no y
    "Images/collar_design_labels/d.jpg,collar_design_labels,ynnyn",  # two
    "Images/collar_design_labels/e.jpg,collar_design_labels,nnyn",   # 4 letters, 5 classes
    "Images/collar_design_labels/f.jpg,collar_design_labels,nnYnn",  # upper case: not y/n/m
    "Images/sleeve_length_labels/g.jpg,sleeve_length_labels,nnynnnnnn",  # not mapped
    "../outside.jpg,collar_design_labels,ynnnn",
    f"{COLLAR},collar_design_labels,nynnn",          # line 9: same image and attribute again
    "Images/collar_design_labels/h.jpg,collar_design_labels",  # 2 fields
    "",                                             # blank line: not a row
    "/abs/i.jpg,collar_design_labels,ynnnn",
]


def test_rows_and_labels(tmp_path, config_factory):
    config = _fa(tmp_path, config_factory)
    (tmp_path / "fa" / "Annotations").mkdir(parents=True)
    (tmp_path / "fa" / "Annotations" / "label.csv").write_text("\n".join(ROWS) + "\n")
    source = config.sources[0]
    records = list_source_records(source, config)
    assert [r.path for r in records[:1]] == [str(tmp_path / "fa" / COLLAR)]
    got = [(r.raw_id, outcome(fashionai, r, source, config)) for r in records]
    assert got == [
        (COLLAR, (COLLAR, {"collar": 2}, {}, None)),
        ("Images/collar_design_labels/b.jpg", ("Images/collar_design_labels/b.jpg", {"collar": 4}, {}, None)),
        ("Images/collar_design_labels/c.jpg", "no_y_label"),
        ("Images/collar_design_labels/d.jpg", "multiple_y_labels"),
        ("Images/collar_design_labels/e.jpg", "wrong_label_length"),
        ("Images/collar_design_labels/f.jpg", "bad_label"),
        ("Images/sleeve_length_labels/g.jpg", "unknown_attribute"),
        ("../outside.jpg", "path_escapes_root"),
        (COLLAR, "duplicate_row"),
        ("Images/collar_design_labels/h.jpg", "bad_row"),
        ("/abs/i.jpg", "path_escapes_root"),
    ]


def test_skip_unknown_attributes_is_counted_not_silent(tmp_path, config_factory):
    config = _fa(tmp_path, config_factory, unknown_attributes="skip")
    (tmp_path / "fa" / "Annotations").mkdir(parents=True)
    (tmp_path / "fa" / "Annotations" / "label.csv").write_text(ROWS[6] + "\n")
    source = config.sources[0]
    [record] = list_source_records(source, config)
    with pytest.raises(Reject) as e:
        fashionai.parse_record(record, source, config)
    assert (e.value.reason, e.value.detail) == (
        "skipped_attribute", "Annotations/label.csv line 1: attribute 'sleeve_length_labels' is not in "
                             "options.attributes (collar_design_labels)")


def test_missing_and_bad_image(tmp_path, config_factory):
    config = _fa(tmp_path, config_factory)
    (tmp_path / "fa" / "Annotations").mkdir(parents=True)
    (tmp_path / "fa" / "Annotations" / "label.csv").write_text(
        f"{COLLAR},collar_design_labels,ynnnn\nImages/collar_design_labels/z.jpg,collar_design_labels,ynnnn\n")
    (tmp_path / "fa" / "Images" / "collar_design_labels").mkdir(parents=True)
    (tmp_path / "fa" / COLLAR).write_bytes(good_jpeg()[:300])
    source = config.sources[0]
    reasons = []
    for r in list_source_records(source, config):
        with pytest.raises(Reject) as e:
            convert_record(r, source, config)
        reasons.append(e.value.reason)
    assert reasons == ["bad_image", "missing_image"]


def test_generator_rows_parse(tmp_path, config_factory):
    config = config_factory(str(tmp_path), [{
        "name": "fa", "format": "fashionai", "path": str(tmp_path / "fa"), "tasks": ["collar", "mood"],
        "options": {"attributes": {"collar_design_labels": "collar", "my_mood_labels": "mood"}},
        "sample": {"count": 10, "seed": 1}}])
    generate_missing(config)
    lines = (tmp_path / "fa" / "Annotations" / "label.csv").read_text().splitlines()
    assert len(lines) == 10 and [line.split(",")[1] for line in lines[:2]] == ["collar_design_labels", "my_mood_labels"]
    source = config.sources[0]
    got = [outcome(fashionai, r, source, config) for r in list_source_records(source, config)]
    for line, (group, labels, _, _) in zip(lines, got):
        image, key, letters = line.split(",")
        assert (group, labels) == (image, {{"collar_design_labels": "collar", "my_mood_labels": "mood"}[key]:
                                           letters.index("y")})
        assert len(letters) == (5 if key == "collar_design_labels" else 3)


@pytest.mark.parametrize("tasks,options,match", [
    (["collar"], {"attributes": {}}, r"options\.attributes.*expected a mapping attr_key -> task"),
    (["collar"], {"attributes": {"collar_design_labels": "smile"}}, r"options\.attributes\.collar_design_labels.*"
                                                                    r"expected one of this source's tasks"),
    (["mood"], {"attributes": {"collar_design_labels": "mood"}},
     r"options\.attributes\.collar_design_labels.*has 5 classes in FashionAI; task 'mood' has 3"),
    (["collar", "mood"], {}, r"sources\[0\]\.tasks.*mood get no labels"),
    (["collar"], {"unknown_attributes": "ignore"}, r"options\.unknown_attributes.*valid: reject, skip"),
    (["collar"], {"labels_file": "../label.csv"}, r"options\.labels_file"),
    (["collar"], {"label_file": "x"}, r"options\.label_file'.*valid options.*labels_file"),
])
def test_options(tmp_path, config_factory, tasks, options, match):
    with pytest.raises(ConfigError, match=match):
        validate_sources(_fa(tmp_path, config_factory, tasks, **options))


def test_missing_labels_file(tmp_path, config_factory):
    config = _fa(tmp_path, config_factory)
    (tmp_path / "fa").mkdir()
    with pytest.raises(SourceError, match=r"source 'fa' \(fashionai\): .*Annotations/label.csv does not exist"):
        list_source_records(config.sources[0], config)
