"""Model families, one module each, resolved by name from the config's `model.name`.

The registry maps names to modules so that config validation needs no
TensorFlow import; `get_builder` imports the module when a model is built.
"""
import importlib

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
    if name not in PARAMS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(PARAMS))}")
    return importlib.import_module(PARAMS[name]).resolve_params(params)


def get_builder(name: str):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(MODELS))}")
    return importlib.import_module(MODELS[name]).build
