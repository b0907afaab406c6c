"""Shared fixtures of the trainer tests: a tiny random model (no warm start), tiny batches."""

from __future__ import annotations

import pytest


def parity_reward(completions, answers, **row):
    """Deterministic reward with mixed groups on a random model: 1 for even-length completions."""
    return [float(len(c) % 2 == 0) for c in completions]


def zero_reward(completions, answers, **row):
    """Every completion wrong: every group is all-wrong."""
    return [0.0] * len(completions)


@pytest.fixture
def tiny_overrides(tmp_path):
    """Settings for a fast CPU run: random 1-layer model, 2 prompts x 4 completions."""
    return dict(
        out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"), model="tiny", data="arithmetic",
        max_operand=9, num_problems=40, eval_size=4, tiny_hidden_size=32, tiny_layers=1, tiny_heads=2,
        warm_start_steps=0, prompts_per_step=2, group_size=4, max_new_tokens=6, max_steps=2, lr=1e-3,
        eval_every=0, save_every=0, tensorboard=False, progress=False, num_threads=1, score_chunk_size=3,
        reward=parity_reward,
    )


@pytest.fixture
def make_config(tiny_overrides):
    from cast_torch.train import config_from_mapping

    def make(**changes):
        return config_from_mapping({**tiny_overrides, **changes})
    return make


@pytest.fixture
def all_wrong_reward():
    return zero_reward
