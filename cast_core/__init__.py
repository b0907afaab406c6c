"""cast_core — the exact CAST math in NumPy.

CAST (arXiv 2606.00172) keeps GRPO's verifier-grounded objective and shapes each token's
advantage with a stop-gradient, answer-free self-teacher. This package is the
dependency-light reference (numpy + sympy, never torch) that every other implementation
is checked against; the definitions are in ``spec/CAST.md``.

Submodules: ``baselines`` (GRPO, RLSD, RL-ZVP, OPSD), ``diagnostics``, ``verify``
(answer extraction and equivalence), ``conformance`` (the port checker CLI).
"""

from . import baselines, diagnostics
from .advantages import base_advantages, cast_advantages, token_advantages
from .config import CASTConfig, lam_at, zv_scale_at
from .diagnostics import cast_diagnostics
from .loss import AGGREGATIONS, policy_loss, policy_loss_grad

__version__ = "0.1.0"

__all__ = [
    "CASTConfig",
    "lam_at",
    "zv_scale_at",
    "base_advantages",
    "token_advantages",
    "cast_advantages",
    "policy_loss",
    "policy_loss_grad",
    "AGGREGATIONS",
    "cast_diagnostics",
    "baselines",
    "diagnostics",
]
