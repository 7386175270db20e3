"""Name -> module registries: every configurable choice is resolved here.

Registries map names to module paths, so that validating a config imports
nothing heavy; the module is imported only when the choice is used.
"""
import importlib
import sys
from types import ModuleType
from typing import Mapping


def load(registry: Mapping[str, str], name: str, what: str) -> ModuleType:
    """Imports `registry[name]`; an unknown name fails listing the valid ones."""
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(sorted(registry))}")
    # sys.modules first: import_module takes the import lock on every call (~3 us), and the
    # conversion resolves a record's format once per record.
    return sys.modules.get(registry[name]) or importlib.import_module(registry[name])
