"""Model families, one module each, resolved by name from the config's `model.name`.

The registry maps names to modules so that config validation needs no
TensorFlow import; `get_builder` imports the module when a model is built.
"""
import importlib

# name -> module exposing `build(config) -> tf_keras.Model`
MODELS = {
    "bknet": "models.bknet",
}


def get_builder(name: str):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(MODELS))}")
    return importlib.import_module(MODELS[name]).build
