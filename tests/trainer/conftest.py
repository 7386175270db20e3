"""Fixtures for the Trainer-side tests; the helpers live in trainer_testdata.py."""
import pytest

import trainer_testdata


@pytest.fixture
def make_config():
    return trainer_testdata.make_config


@pytest.fixture(scope="session")
def transformed_data(tmp_path_factory):
    """The tiny dataset through the real transform graph (48x48 gray; smile, gender, age)."""
    config = trainer_testdata.make_config(size=(48, 48), batch_size=8)
    return trainer_testdata.prepare_transformed(tmp_path_factory.mktemp("transformed"), config)


@pytest.fixture(scope="session")
def trained(transformed_data, tmp_path_factory):
    """run_fn for 3 steps of the default test config (BKNet): (config, fn_args, loaded SavedModel,
    the 8 eval rows as (serialized raw example, instance))."""
    import tensorflow as tf

    from components.trainer.run_fn import run_fn

    config = trainer_testdata.make_config(size=(48, 48), batch_size=8)
    fn_args = trainer_testdata.fn_args_for(transformed_data, config, tmp_path_factory.mktemp("run_fn"), 3)
    run_fn(fn_args)
    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    splits = transformed_data["splits"]
    return config, fn_args, loaded, splits["eval_genki4k"] + splits["eval_wiki"]
