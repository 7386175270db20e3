"""Fixtures for data_prep tests."""
import pytest

from dp_config import make_config


@pytest.fixture
def config_factory():
    return make_config
