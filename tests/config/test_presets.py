"""Every preset in configs/ loads, generates its sample data in its real
format, converts it with labels for every task, and builds a model whose
outputs match its tasks. (Each preset's full `make run` and per-task figures
are in docs/presets.md; a full DAG per preset is too slow for `make test`.)"""
from __future__ import annotations

import dataclasses
import glob
import json
import os

import numpy as np
import pytest

from config import load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRESETS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml")))
SAMPLE_COUNT = 60


def test_there_is_one_preset_per_seed():
    names = [os.path.basename(p) for p in PRESETS]
    assert "default.yaml" in names  # seed 000
    for seed in ("001", "002", "003", "004"):
        assert any(n.startswith(seed + "_") for n in names), (seed, names)


def _tiny(config, tmp_path):
    """The preset with its sample data at a tmp path, SAMPLE_COUNT records each."""
    sources = tuple(dataclasses.replace(s, path=str(tmp_path / "data" / s.name),
                                        sample={**s.sample, "count": SAMPLE_COUNT})
                    for s in config.sources)
    return dataclasses.replace(config, sources=sources)


@pytest.mark.parametrize("path", PRESETS, ids=os.path.basename)
def test_preset_converts_its_sample_data_and_builds_its_model(path, tmp_path):
    from data_prep.beam_job import run_conversion
    from data_prep.generate import generate_missing
    from models import get_builder

    config = _tiny(load(path), tmp_path)
    assert len(generate_missing(config)) == len(config.sources)
    stats_path = str(tmp_path / "prep_stats.json")
    stats = run_conversion(config, str(tmp_path / "examples"), str(tmp_path / "dead"), stats_path)
    assert json.load(open(stats_path)) == json.loads(json.dumps(stats))
    total = stats["total"]
    assert total["read"] == total["written"] + total["rejected"]
    assert total["written"] >= SAMPLE_COUNT * len(config.sources) * 0.8
    labelled = {t for s in stats["sources"].values() for t, n in s["examples_by_task"].items() if n > 0}
    assert labelled == set(config.task_names)

    model = get_builder(config.model.name)(config)
    h, w = config.image.size
    out = model(np.zeros((2, h, w, config.image.channels), np.float32), training=False)
    assert sorted(out) == sorted(config.task_names)
    for task in config.tasks:
        assert tuple(out[task.name].shape) == (2, task.width), task.name
