"""csv: a manifest with a column per task; bad rows rejected with the reason, paths kept inside the root."""
import pytest

from config import ConfigError
from data_prep.convert import list_source_records, validate_sources
from data_prep.formats import csv_manifest
from data_prep.generate import generate_missing
from data_prep.records import SourceError
from tests.data_prep.helpers import outcome


def _csv(tmp_path, config_factory, tasks=("tags", "mood", "years"), prep=None, sample=None, **options):
    opts = {"columns": {"years": "age"}, "group_column": "person", **options}
    return config_factory(str(tmp_path), [{"name": "m", "format": "csv", "path": str(tmp_path / "m"),
                                           "tasks": list(tasks), "options": opts, "prep": prep or {},
                                           "sample": sample}])


HEADER = "path,tags,mood,age,person,box"
ROWS = [
    "img/a.jpg,hat|beard,happy,31.5,p1,10 20 60 80",  # line 2
    "img/b.jpg,,sad,,p1,",                 # tags and age not labelled
    "img/c.jpg, glasses ,neutral,7,p2,",    # cells are stripped
    "img/../img/d.jpg,hat,happy,40,p3,",    # normalised, still inside
    "../e.jpg,hat,happy,40,p3,",
    "/abs/f.jpg,hat,happy,40,p3,",
    "img/g.jpg,hat,angry,40,p3,",
    "img/h.jpg,hat|crown,happy,40,p3,",
    "img/i.jpg,hat,happy,NaN,p3,",           # line 10
    "img/j.jpg,hat,happy,abc,p3,",
    "img/k.jpg,hat,happy,inf,p3,",
    "img/l.jpg,,,,p3,",
    "img/m.jpg,hat,happy,40,,",
    "img/n.jpg,hat,happy",
    "img/a.jpg,hat,happy,40,p1,",            # line 16: listed again
    ",hat,happy,40,p4,",
    ",,,,,",                                 # blank: not a row
    '"img/o.jpg","glasses|hat",sad,1e2,p5,',  # quoted cells; 1e2 = 100.0
]


def _write(tmp_path, rows=ROWS, header=HEADER, name="manifest.csv"):
    path = tmp_path / "m" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")


def test_rows_and_labels(tmp_path, config_factory):
    config = _csv(tmp_path, config_factory)
    _write(tmp_path)
    source = config.sources[0]
    records = list_source_records(source, config)
    assert records[0].path == str(tmp_path / "m" / "img" / "a.jpg")
    assert records[3].path == str(tmp_path / "m" / "img" / "d.jpg")
    got = [(r.raw_id, outcome(csv_manifest, r, source, config)) for r in records]
    # tags: multi-hot indices of [hat, glasses, beard]; mood: index of [neutral, happy, sad]; years: float
    assert got == [
        ("img/a.jpg", ("p1", {"tags": [0, 2], "mood": 1, "years": 31.5}, {}, None)),
        ("img/b.jpg", ("p1", {"mood": 2}, {"tags": "missing_tags", "years": "missing_years"}, None)),
        ("img/c.jpg", ("p2", {"tags": [1], "mood": 0, "years": 7.0}, {}, None)),
        ("img/../img/d.jpg", ("p3", {"tags": [0], "mood": 1, "years": 40.0}, {}, None)),
        ("../e.jpg", "path_escapes_root"),
        ("/abs/f.jpg", "path_escapes_root"),
        ("img/g.jpg", "unknown_class"),
        ("img/h.jpg", "unknown_class"),
        ("img/i.jpg", "bad_value"),
        ("img/j.jpg", "bad_value"),
        ("img/k.jpg", "bad_value"),
        ("img/l.jpg", "no_labels"),
        ("img/m.jpg", "no_group"),
        ("img/n.jpg", "bad_row"),
        ("img/a.jpg", "duplicate_path"),
        ("manifest.csv:17", "missing_path"),
        ("img/o.jpg", ("p5", {"tags": [0, 1], "mood": 2, "years": 100.0}, {}, None)),
    ]


def test_face_box_column(tmp_path, config_factory):
    config = _csv(tmp_path, config_factory, prep={"face_crop": True}, bbox_column="box")
    _write(tmp_path, ROWS[:2] + ["img/x.jpg,hat,happy,40,p1,10 20 5 80", "img/y.jpg,hat,happy,40,p1,1 2 3"])
    source = config.sources[0]
    got = [outcome(csv_manifest, r, source, config) for r in list_source_records(source, config)]
    assert got == [("p1", {"tags": [0, 2], "mood": 1, "years": 31.5}, {}, (10.0, 20.0, 60.0, 80.0)),
                   "missing_bbox", "bad_bbox", "bad_bbox"]  # x2 < x1; 3 numbers


def test_group_defaults_to_path_and_tsv(tmp_path, config_factory):
    config = _csv(tmp_path, config_factory, tasks=["mood"], columns={}, group_column=None, delimiter="\t",
                  manifest="sub/list.tsv")
    _write(tmp_path, ["x/a.jpg\thappy", "x/b.jpg\t"], header="path\tmood", name="sub/list.tsv")
    source = config.sources[0]
    records = list_source_records(source, config)
    assert records[0].path == str(tmp_path / "m" / "sub" / "x" / "a.jpg")  # relative to the manifest's folder
    assert [outcome(csv_manifest, r, source, config) for r in records] == [
        ("x/a.jpg", {"mood": 1}, {}, None), "no_labels"]


def test_missing_column_and_manifest(tmp_path, config_factory):
    config = _csv(tmp_path, config_factory)
    (tmp_path / "m").mkdir()
    with pytest.raises(SourceError, match=r"source 'm' \(csv\): manifest .*manifest.csv does not exist"):
        list_source_records(config.sources[0], config)
    _write(tmp_path, ROWS[:1], header="path,tags,mood,years,person")
    with pytest.raises(SourceError, match=r"lacks column\(s\) 'age' \(columns.years\); its header: "
                                          r"\['path', 'tags', 'mood', 'years', 'person'\]"):
        list_source_records(config.sources[0], config)


def test_header_only_is_an_empty_source(tmp_path, config_factory):
    config = _csv(tmp_path, config_factory)
    _write(tmp_path, [])
    with pytest.raises(SourceError, match=r"source 'm' \(csv\): no records found under"):
        list_source_records(config.sources[0], config)


@pytest.mark.parametrize("options,prep,match", [
    ({"manifest": "/etc/m.csv"}, None, r"options\.manifest.*relative to the source path"),
    ({"columns": {"smile": "s"}}, None, r"options\.columns\.smile.*not one of this source's tasks"),
    ({"separator": "||"}, None, r"options\.separator.*one character"),
    ({"separator": ","}, None, r"options\.separator.*must differ from options\.delimiter"),
    ({"path_column": ""}, None, r"options\.path_column.*column name"),
    ({"paths": "p"}, None, r"options\.paths'.*valid options.*bbox_column, columns, delimiter"),
    ({}, {"face_crop": True}, r"sources\[0\]\.prep\.face_crop.*format csv gives no face boxes.*bbox_column"),
])
def test_options(tmp_path, config_factory, options, prep, match):
    with pytest.raises(ConfigError, match=match):
        validate_sources(_csv(tmp_path, config_factory, prep=prep, **options))


def test_generator_manifest_parses(tmp_path, config_factory):
    config = _csv(tmp_path, config_factory, bbox_column="box", prep={"face_crop": True},
                  sample={"count": 30, "seed": 2})
    generate_missing(config)
    source = config.sources[0]
    got = [outcome(csv_manifest, r, source, config) for r in list_source_records(source, config)]
    assert len(got) == 30 and all(isinstance(g, tuple) for g in got)
    # rows i % 10 == 3 leave task (i // 10) % 3 empty: row 3 tags, row 13 mood, row 23 years
    assert [(i, g[2]) for i, g in enumerate(got) if g[2]] == [
        (3, {"tags": "missing_tags"}), (13, {"mood": "missing_mood"}), (23, {"years": "missing_years"})]
    assert all(g[3] is not None and g[0].startswith("p") for g in got)


def test_apparel_drawing_for_seed_003(tmp_path):
    from config import parse

    raw = {"name": "t", "image": {"size": [48, 48], "channels": 3},
           "tasks": [{"name": "attributes", "type": "multilabel", "classes": ["black", "blue", "dress", "jeans"]}],
           "sources": [{"name": "apparel", "format": "csv", "path": str(tmp_path / "a"), "tasks": ["attributes"],
                        "options": {"columns": {"attributes": "labels"}},
                        "sample": {"count": 6, "seed": 31, "drawing": "apparel"}}]}
    config = parse(raw, base_dir=None)
    generate_missing(config)
    source = config.sources[0]
    got = [outcome(csv_manifest, r, source, config) for r in list_source_records(source, config)]
    # one colour (index 0-1) and one garment (index 2-3) per row
    assert len(got) == 6 and all(len(g[1]["attributes"]) == 2 and g[1]["attributes"][0] < 2 <= g[1]["attributes"][1]
                                 for g in got)
    raw["sources"][0].update(path=str(tmp_path / "b"), sample={"count": 2, "drawing": "garments"})
    with pytest.raises(ConfigError, match=r"sources\[0\]\.sample\.drawing.*'garments'; valid: faces, apparel"):
        generate_missing(parse(raw, base_dir=None))
    raw["tasks"][0]["classes"] = ["black", "hat"]
    raw["sources"][0].update(sample={"count": 2, "drawing": "apparel"})
    with pytest.raises(ConfigError, match=r"sample\.drawing.*apparel draws the first task's colour \+ garment"):
        generate_missing(parse(raw, base_dir=None))
