"""Model families, one module each, resolved by name from the config's `model.name`
through config.registry (MODELS, PARAMS); `get_builder` imports the module
when a model is built."""
from config import registry


def get_builder(name: str):
    return registry.load(registry.MODELS, name, "model").build
