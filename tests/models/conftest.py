"""Fixtures for model tests; the config builder lives in helpers.py."""
import pytest

from config import parse
from tests.models.helpers import config_dict


@pytest.fixture
def make_config():
    return lambda **kw: parse(config_dict(**kw), base_dir=None)
