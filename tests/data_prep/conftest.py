"""Fixtures for data_prep tests."""
import pytest

from tests.data_prep.helpers import make_config


@pytest.fixture
def config_factory():
    return make_config
