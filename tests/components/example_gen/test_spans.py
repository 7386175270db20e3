"""DataPrepExampleGen with spans: the window trains, the newest span evaluates, a converted
span is reused, and spans that disagree or a pattern that matches nothing stop the run."""
import dataclasses
import glob
import json
import os

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from components.artifacts import PrepReport
from components.example_gen.component import DataPrepExampleGen, source_fingerprint
from config import ConfigError, load
from data_prep.generate import generate_missing
from data_prep.generators import get_generator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def span_config(tmp_path, window="all", counts=(12, 16)):
    import yaml

    with open(os.path.join(ROOT, "configs", "default.yaml")) as f:
        raw = yaml.safe_load(f)
    for src, count in zip(raw["sources"], counts):
        src["path"] = str(tmp_path / "data" / src["name"])
        src["sample"]["count"] = count
    raw["sources"][0]["path"] = str(tmp_path / "data" / "genki4k" / "span-{SPAN}")
    raw["sources"][0]["spans"] = window
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load(str(path))


def write_span(config, span, **kwargs):
    source = config.sources[0]
    args = {**source.sample, **kwargs}
    get_generator(source.format)(dataclasses.replace(source, path=source.path.replace("{SPAN}", str(span))),
                                 config, **args)


def run(config, tmp_path, name):
    examples, report = standard_artifacts.Examples(), PrepReport()
    examples.uri, report.uri = str(tmp_path / name / "examples"), str(tmp_path / name / "report")
    os.makedirs(report.uri)
    DataPrepExampleGen.EXECUTOR_SPEC.executor_class().Do(
        {}, {"examples": [examples], "prep_report": [report]},
        {"config_json": config.to_json(), "source_fingerprint": "x", "beam_args_json": "[]",
         "span_store": str(tmp_path / "store")})
    return examples, json.load(open(os.path.join(report.uri, "prep_stats.json")))


def count_records(split_dir):
    return sum(1 for f in glob.glob(os.path.join(split_dir, "*"))
               for _ in tf.data.TFRecordDataset(f, compression_type="GZIP"))


def test_window_trains_newest_evaluates_and_a_converted_span_is_reused(tmp_path):
    config = span_config(tmp_path)
    assert generate_missing(config) == [str(tmp_path / "data" / "genki4k" / "span-1"),
                                        str(tmp_path / "data" / "wiki")]
    write_span(config, 2, seed=7)

    examples, stats = run(config, tmp_path, "first")
    spans = stats["spans"]["genki4k"]
    assert (spans["found"], spans["train"], spans["eval"], spans["previous"]) == ([1, 2], [1, 2], 2, 1)
    assert (spans["converted"], spans["reused"]) == ([1, 2], [])
    assert stats["spans"]["wiki"]["train"] == [0]
    per = spans["per_span"]
    assert per["1"]["read"] == per["2"]["read"] == 12
    merged = stats["sources"]["genki4k"]
    assert merged["read"] == 24
    # train: both spans' train examples; eval: span 2's only
    train_n = per["1"]["examples"]["train"] + per["2"]["examples"]["train"]
    assert merged["examples"] == {"train": train_n, "eval": per["2"]["examples"]["eval"]}
    assert count_records(os.path.join(examples.uri, "Split-train_genki4k")) == train_n
    assert count_records(os.path.join(examples.uri, "Split-eval_genki4k")) == per["2"]["examples"]["eval"]
    assert examples.span == 2
    assert examples.get_json_value_custom_property("spans")["genki4k"] == {"train": [1, 2], "eval": 2}

    # span 3 arrives: only it is converted; the window "all" now trains on three
    write_span(config, 3, seed=8)
    examples, stats = run(config, tmp_path, "second")
    spans = stats["spans"]["genki4k"]
    assert (spans["converted"], spans["reused"], spans["train"], spans["eval"]) == ([3], [1, 2], [1, 2, 3], 3)
    assert stats["sources"]["genki4k"]["read"] == 36


def test_window_latest_keeps_the_previous_span_for_drift_only(tmp_path):
    config = span_config(tmp_path, window="latest")
    generate_missing(config)
    write_span(config, 2, seed=7)
    examples, stats = run(config, tmp_path, "run")
    spans = stats["spans"]["genki4k"]
    assert (spans["train"], spans["eval"], spans["previous"]) == ([2], 2, 1)
    assert sorted(spans["per_span"]) == ["1", "2"]  # span 1 converted for the drift check
    assert stats["sources"]["genki4k"]["read"] == 12
    assert {os.path.basename(f).split("-")[1] for f in glob.glob(
        os.path.join(examples.uri, "Split-train_genki4k", "*"))} == {"2"}


def test_a_span_pattern_that_matches_nothing_is_one_config_error(tmp_path):
    config = span_config(tmp_path)
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path.*matches nothing"):
        run(config, tmp_path, "run")
    assert not os.path.exists(tmp_path / "store")  # nothing converted, nothing half-written


def test_spans_of_different_image_sizes_are_one_config_error(tmp_path):
    config = span_config(tmp_path)
    generate_missing(config)
    write_span(config, 2, seed=7, size=64)  # span 1 is 96x96 (the generator's default)
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path.*different sizes: span 1: 96x96; span 2: 64x64"):
        run(config, tmp_path, "run")


def test_fingerprint_sees_a_new_span(tmp_path):
    config = span_config(tmp_path)
    generate_missing(config)
    before = source_fingerprint(config)
    write_span(config, 2, seed=7)
    assert source_fingerprint(config) != before


def test_validate_refuses_a_pattern_without_spans(tmp_path):
    from config import validate

    config = span_config(tmp_path)
    config = dataclasses.replace(config, sources=(dataclasses.replace(config.sources[0], sample=None),
                                                  config.sources[1]))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path.*matches nothing"):
        validate(config)
