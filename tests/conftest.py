"""Session fixtures shared by more than one tests folder (each built once per session, on first use):

- `transformed_data`, `trained`: the tiny dataset through the real transform graph, and run_fn on
  it (tests/components/trainer, tests/serving, tests/models/test_decode_parity.py); the data
  come from tests/components/trainer/helpers.py.
- `run`, `run_ci`: one TFMA run over the evaluator's tiny examples and saved model
  (tests/components/evaluator, tests/components/report, tests/benchmarks); built by
  tests/components/evaluator/helpers.py.

The imports are inside the fixtures, so a folder that uses none of them does not load
TensorFlow Transform or TFMA for them."""
import pytest


@pytest.fixture(scope="session")
def transformed_data(tmp_path_factory):
    """The tiny dataset through the real transform graph (48x48 gray; smile, gender, age)."""
    from tests.components.trainer import helpers

    config = helpers.make_config(size=(48, 48), batch_size=8)
    return helpers.prepare_transformed(tmp_path_factory.mktemp("transformed"), config)


@pytest.fixture(scope="session")
def trained(transformed_data, tmp_path_factory):
    """run_fn for 3 steps of the default test config (BKNet): (config, fn_args, loaded SavedModel,
    the 8 eval rows as (serialized raw example, instance))."""
    import tensorflow as tf

    from components.trainer.run_fn import run_fn
    from tests.components.trainer import helpers

    config = helpers.make_config(size=(48, 48), batch_size=8)
    fn_args = helpers.fn_args_for(transformed_data, config, tmp_path_factory.mktemp("run_fn"), 3)
    run_fn(fn_args)
    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    splits = transformed_data["splits"]
    return config, fn_args, loaded, splits["eval_genki4k"] + splits["eval_wiki"]


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """The evaluator's fixtures evaluated as the default config does: no confidence intervals."""
    from tests.components.evaluator import helpers as fx

    return fx.evaluate(tmp_path_factory, fx.make_config())


@pytest.fixture(scope="session")
def run_ci(tmp_path_factory):
    """The same with `evaluation.confidence_intervals: true` (~28x the TFMA time: slow tests only)."""
    from tests.components.evaluator import helpers as fx

    return fx.evaluate(tmp_path_factory, fx.make_config(
        evaluation={**fx.RAW_CONFIG["evaluation"], "confidence_intervals": True}))
