"""Sampling shares per source, exact (tasks: smile on genki4k; gender and age on wiki)."""
import pytest

from components.trainer.samplers import sampling_weights
from config import parse
from tests.components.trainer.helpers import config_dict, make_config


def test_natural_is_proportional_to_records():
    # 300 / (300 + 100) = 0.75, 100 / 400 = 0.25
    assert sampling_weights(make_config(), {"genki4k": 300, "wiki": 100}) == {"genki4k": 0.75, "wiki": 0.25}


def test_temperature_flattens_the_natural_mix():
    cfg = make_config(sampling={"type": "temperature", "temperature": 2.0})
    # 400 ** (1/2) = 20, 100 ** (1/2) = 10 -> 20 / 30 = 2/3, 10 / 30 = 1/3
    shares = sampling_weights(cfg, {"genki4k": 400, "wiki": 100})
    assert shares == pytest.approx({"genki4k": 2 / 3, "wiki": 1 / 3}, abs=1e-12)
    # T = 1 is natural: 400 / 500 = 0.8
    cfg1 = make_config(sampling={"type": "temperature", "temperature": 1.0})
    assert sampling_weights(cfg1, {"genki4k": 400, "wiki": 100}) == pytest.approx({"genki4k": 0.8, "wiki": 0.2})


def test_uniform_gives_each_task_an_equal_share():
    cfg = make_config(sampling={"type": "uniform"})
    # 3 tasks, 1/3 each: smile -> genki4k; gender and age -> wiki = 2/3. Counts do not matter.
    assert sampling_weights(cfg, {"genki4k": 10, "wiki": 1000}) == pytest.approx({"genki4k": 1 / 3, "wiki": 2 / 3})
    assert sampling_weights(cfg) == pytest.approx({"genki4k": 1 / 3, "wiki": 2 / 3})


def test_uniform_splits_a_task_over_the_sources_labelling_it():
    raw = config_dict(sampling={"type": "uniform"})
    raw["sources"].append({"name": "smiles2", "format": "folder", "path": "/x", "tasks": ["smile"]})
    cfg = parse(raw, base_dir=None)
    # smile's 1/3 split over genki4k and smiles2: 1/6 each; wiki keeps gender + age = 2/3
    assert sampling_weights(cfg) == pytest.approx({"genki4k": 1 / 6, "wiki": 2 / 3, "smiles2": 1 / 6})
    # smiles2 empty: smile's whole 1/3 goes to genki4k, smiles2 is left out
    assert sampling_weights(cfg, {"genki4k": 5, "wiki": 5, "smiles2": 0}) == pytest.approx(
        {"genki4k": 1 / 3, "wiki": 2 / 3})


def test_explicit_weights_are_normalised_and_zeros_skipped():
    cfg = make_config(sampling={"type": "weights", "weights": {"genki4k": 3, "wiki": 1}})
    assert sampling_weights(cfg) == {"genki4k": 0.75, "wiki": 0.25}  # 3 / 4, 1 / 4
    cfg0 = make_config(sampling={"type": "weights", "weights": {"genki4k": 0, "wiki": 2}})
    assert sampling_weights(cfg0) == {"wiki": 1.0}


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="sampling type 'natural' needs the record count of every source"):
        sampling_weights(make_config())
    with pytest.raises(ValueError, match=r"counts must name exactly the sources \['genki4k', 'wiki'\]"):
        sampling_weights(make_config(), {"genki4k": 1})
    with pytest.raises(ValueError, match="every source has share 0"):
        sampling_weights(make_config(), {"genki4k": 0, "wiki": 0})
