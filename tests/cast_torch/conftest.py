"""Shared setup of the cast_torch tests: put this folder on sys.path.

Test modules import the shared helpers as ``from _torch_compare import assert_agree``
and ``from _torch_strategies import ...`` (pytest runs with --import-mode=importlib,
which does not put test folders on sys.path). The names carry a ``_torch`` prefix so
they cannot shadow another test folder's helpers.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
