"""Bridges that run CAST inside other RL engines.

The submodules are imported explicitly, because each needs an optional dependency:

- :mod:`cast_torch.integrations.trl` — ``CASTGRPOConfig`` / ``CASTGRPOTrainer``, subclasses
  of TRL's ``GRPOConfig`` / ``GRPOTrainer`` (``pip install "cast-rlvr[trl]"``).
- :mod:`cast_torch.integrations.verl` — the CAST advantage estimator with verl's
  custom-estimator signature, registered as ``"cast"`` when verl is importable, and
  ``install()``, which hooks both of verl's trainers (importing it never requires verl).
- :mod:`cast_torch.integrations.verl_teacher` — the lagged teacher as a swap of the actor's
  trainable weights (torch only); :mod:`cast_torch.integrations.verl_worker` — the verl actor
  worker mixin that runs it (needs verl).

Importing this package imports neither TRL nor verl.
"""

__all__: list[str] = []
