"""Model families, one module each, resolved by name from the config's `model.name`.

The registry maps names to modules so that config validation needs no
TensorFlow import; `get_builder` imports the module when a model is built.
"""
from pipeline import registry

# name -> module exposing `build(config) -> tf_keras.Model`
MODELS = {
    "bknet": "models.bknet",
}


# name -> TensorFlow-free module exposing `resolve_params(params) -> dict`
PARAMS = {
    "bknet": "models.bknet_params",
}


def validate_params(name: str, params) -> dict:
    """The model's params with defaults filled in; raises ValueError naming the bad key.
    Imports no TensorFlow, so config loading can call it."""
    return registry.load(PARAMS, name, "model").resolve_params(params)


def get_builder(name: str):
    return registry.load(MODELS, name, "model").build
