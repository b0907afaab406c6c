"""Put this folder on sys.path so test modules can ``from _spec_load import load``
(pytest runs with --import-mode=importlib, which does not add test folders)."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
