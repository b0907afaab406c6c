"""End-to-end runs of the tiny presets (slow: warm start + RL on CPU, minutes)."""

from __future__ import annotations

import os
import statistics

import pytest

from cast_torch.train import Trainer, get_preset, read_metrics
from cast_torch.train.metrics import REQUIRED_STEP_KEYS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    # Reuse the user's warm-start cache when set (CI sets CAST_CACHE_DIR), else one per session.
    return os.environ.get("CAST_CACHE_DIR") or str(tmp_path_factory.mktemp("cast-cache"))


def test_preset_run_logs_every_required_key(tmp_path, cache_dir):
    cfg = get_preset("tiny-arithmetic", out=str(tmp_path / "run"), cache_dir=cache_dir, max_steps=12,
                     eval_every=6, save_every=6, progress=False)
    final = Trainer(cfg, log=lambda s: None).train()
    lines = read_metrics(cfg.out)
    steps = [r for r in lines if r["step"] > 0]
    assert [r["step"] for r in steps] == list(range(1, 13))
    for r in steps:
        assert set(REQUIRED_STEP_KEYS) <= set(r), sorted(set(REQUIRED_STEP_KEYS) - set(r))
    assert lines[0]["step"] == 0 and "eval_accuracy" in lines[0]
    assert "eval_accuracy" in final and (tmp_path / "run" / "tb").is_dir()
    assert (tmp_path / "run" / "checkpoints" / "step-12" / "model").is_dir()


def test_preset_learns(tmp_path, cache_dir):
    """The demo's claim: reward and greedy eval accuracy rise over the run."""
    cfg = get_preset("tiny-arithmetic", out=str(tmp_path / "run"), cache_dir=cache_dir, progress=False,
                     tensorboard=False)
    Trainer(cfg, log=lambda s: None).train()
    lines = read_metrics(cfg.out)
    rewards = [r["reward_mean"] for r in lines if "reward_mean" in r]
    evals = [r["eval_accuracy"] for r in lines if "eval_accuracy" in r]
    k = len(rewards) // 5
    assert statistics.fmean(rewards[-k:]) > statistics.fmean(rewards[:k]) + 0.05
    assert evals[-1] > evals[0] + 0.05
