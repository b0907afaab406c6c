"""Load the files of spec/ (not a package) as modules, once each."""

import importlib.util
import sys
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2] / "spec"


def load(name: str):
    """``spec/<name>.py`` as a module (cached in sys.modules under ``cast_spec_<name>``)."""
    key = f"cast_spec_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, SPEC / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module
