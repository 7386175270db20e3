"""Fixtures for the Trainer-side tests; the helpers live in trainer_testdata.py."""
import pytest

import trainer_testdata


@pytest.fixture
def make_config():
    return trainer_testdata.make_config
