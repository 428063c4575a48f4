"""The framework registry: names users type, and the package that implements each one.

The harness core refers to frameworks only by these names; the packages are imported lazily,
so one process only ever loads the framework (and the Horovod binding) it runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FRAMEWORK_PACKAGES = {"torch": "models_torch", "tf": "models_tf"}


def check_framework(name: str) -> str:
    if name not in FRAMEWORK_PACKAGES:
        raise ValueError(f"unknown framework {name!r}; expected one of {sorted(FRAMEWORK_PACKAGES)}")
    return name


def framework_module(name: str, module: str) -> ModuleType:
    """Import ``module`` (e.g. ``"distributed"``) from the package of framework ``name``."""
    return importlib.import_module(f"{FRAMEWORK_PACKAGES[check_framework(name)]}.{module}")
