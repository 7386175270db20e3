"""Fixtures for model tests; the config builder lives in models_testdata.py."""
import pytest

from models_testdata import config_dict
from config import parse


@pytest.fixture
def make_config():
    return lambda **kw: parse(config_dict(**kw), base_dir=None)
