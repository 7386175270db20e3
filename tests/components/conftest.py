"""Fixtures for the component tests."""
import pytest


@pytest.fixture
def make_config():
    """The Trainer-side test config builder (tests/components/trainer/helpers.py): the default
    config's tasks and sources (smile on genki4k; gender, age on wiki), for Transform and Trainer."""
    from tests.components.trainer import helpers

    return helpers.make_config
