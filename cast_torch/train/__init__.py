"""The GRPO/CAST trainer on Hugging Face transformers, and the ``cast-train`` CLI.

Python API::

    from cast_torch.train import get_preset, Trainer
    config = get_preset("tiny-arithmetic", out="runs/demo", method="cast")
    final = Trainer(config).train()          # or: train(config)

``TrainConfig`` holds every setting (validated, help text per field); ``PRESETS`` /
``get_preset`` give the built-in runs; ``Trainer.step()`` runs one RL step. Module
map: config, data, tiny, model, rollout, scoring, teacher, trainer, rundir (the run
folder), resume (allow-list, trainer state), checkpoint (the format), metrics, plot, cli. Names are imported lazily so ``cast_torch.train.tiny`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TrainConfig", "PRESETS", "get_preset", "config_from_mapping", "load_config_file",
    "Trainer", "train", "read_metrics", "REQUIRED_STEP_KEYS", "plot_run",
    "make_tokenizer", "make_tiny_model",
]

_WHERE = {
    "TrainConfig": "config", "PRESETS": "config", "get_preset": "config", "config_from_mapping": "config",
    "load_config_file": "config", "Trainer": "trainer", "train": "trainer", "read_metrics": "metrics",
    "REQUIRED_STEP_KEYS": "metrics", "plot_run": "plot", "make_tokenizer": "tiny", "make_tiny_model": "tiny",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
