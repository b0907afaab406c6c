"""cast_torch — the CAST math on torch tensors, a GRPO/CAST trainer, and TRL/verl bridges.

The advantage and loss functions mirror ``cast_core`` (same names, signatures and
``CASTConfig``) and are tested to agree with it. Submodules: ``baselines``,
``diagnostics``, ``train`` (the trainer and the ``cast-train`` CLI), ``integrations``.
"""

from cast_core.config import CASTConfig, lam_at, zv_scale_at

from . import baselines, diagnostics
from .advantages import base_advantages, cast_advantages, token_advantages
from .diagnostics import cast_diagnostics
from .loss import AGGREGATIONS, policy_loss

__version__ = "0.1.0"

__all__ = [
    "CASTConfig",
    "lam_at",
    "zv_scale_at",
    "base_advantages",
    "token_advantages",
    "cast_advantages",
    "policy_loss",
    "AGGREGATIONS",
    "cast_diagnostics",
    "baselines",
    "diagnostics",
]
