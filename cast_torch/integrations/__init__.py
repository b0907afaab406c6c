"""Bridges that run CAST inside other RL engines.

The submodules are imported explicitly, because each needs an optional dependency:

- :mod:`cast_torch.integrations.trl` — ``CASTGRPOConfig`` / ``CASTGRPOTrainer``, subclasses
  of TRL's ``GRPOConfig`` / ``GRPOTrainer`` (``pip install "cast-rlvr[trl]"``).
- :mod:`cast_torch.integrations.verl` — the CAST advantage estimator with verl's
  custom-estimator signature, registered as ``"cast"`` when verl is importable
  (verl itself is never required to import or test it).

Importing this package imports neither TRL nor verl.
"""

__all__: list[str] = []
