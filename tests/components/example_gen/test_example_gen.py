"""DataPrepExampleGen's executor on generated data: splits, payload and accounting."""
import json
import os

from tfx.types import artifact_utils, standard_artifacts

from components.artifacts import PrepReport
from components.example_gen.component import DataPrepExampleGen, source_fingerprint
from config import load
from data_prep.generate import generate_missing

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def tiny_config(tmp_path):
    import yaml

    with open(os.path.join(ROOT, "configs", "default.yaml")) as f:
        raw = yaml.safe_load(f)
    for src, count in zip(raw["sources"], (12, 16)):
        src["path"] = str(tmp_path / "data" / src["name"])
        src["sample"]["count"] = count
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load(str(path))


def test_executor_writes_one_split_per_source_and_records_totals(tmp_path):
    config = tiny_config(tmp_path)
    generate_missing(config)
    examples, report = standard_artifacts.Examples(), PrepReport()
    examples.uri, report.uri = str(tmp_path / "examples"), str(tmp_path / "report")
    os.makedirs(report.uri)
    DataPrepExampleGen.EXECUTOR_SPEC.executor_class().Do(
        {}, {"examples": [examples], "prep_report": [report]},
        {"config_json": config.to_json(), "source_fingerprint": "x", "beam_args_json": "[]",
         "span_store": str(tmp_path / "store")})

    assert artifact_utils.decode_split_names(examples.split_names) == [
        "train_genki4k", "train_wiki", "eval_genki4k", "eval_wiki"]
    stats = json.load(open(os.path.join(report.uri, "prep_stats.json")))
    totals = report.get_json_value_custom_property("totals")
    assert set(totals) == {"genki4k", "wiki"}
    for name, t in totals.items():
        assert t == {k: stats["sources"][name][k] for k in ("read", "written", "rejected")}
        assert t["read"] == t["written"] + t["rejected"]
    assert totals["genki4k"]["read"] == 12


def test_fingerprint_changes_when_a_source_file_changes(tmp_path):
    config = tiny_config(tmp_path)
    generate_missing(config)
    before = source_fingerprint(config)
    assert source_fingerprint(config) == before
    victim = sorted((tmp_path / "data" / "genki4k" / "files").iterdir())[0]
    victim.unlink()
    assert source_fingerprint(config) != before
