"""Every spec vector passes through the torch implementation (cast_core.conformance runner)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from cast_core.conformance import default_vectors_dir, load_vectors, run_conformance
from cast_torch import conformance as adapters

HAVE_VECTORS = default_vectors_dir().is_dir() and any(default_vectors_dir().glob("*.json"))
pytestmark = pytest.mark.skipif(not HAVE_VECTORS, reason="spec/vectors not generated in this checkout")


def test_every_vector_passes_through_the_numpy_adapters():
    report = run_conformance(impls=adapters.IMPLS)
    assert report.failed == 0, report.table()
    # Every case of every file ran: no function of the vectors is left to cast_core.
    assert report.passed == len(load_vectors()) and report.skipped == 0


def test_every_vector_passes_with_tensor_inputs_to_cast_torch_itself():
    """The runner's --torch mode: cast_torch functions called directly on tensors."""
    impls = {"cast_advantages": "cast_torch:cast_advantages", "base_advantages": "cast_torch:base_advantages",
             "token_advantages": "cast_torch:token_advantages", "policy_loss": "cast_torch:policy_loss",
             "grpo_advantages": "cast_torch.baselines:grpo_advantages",
             "rlsd_advantages": "cast_torch.baselines:rlsd_advantages",
             "rl_zvp_advantages": "cast_torch.baselines:rl_zvp_advantages",
             "opsd_advantages": "cast_torch.baselines:opsd_advantages"}
    report = run_conformance(impls=impls,
                             input_adapter=lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a)))
    assert report.failed == 0, report.table()
    assert report.passed > 0


def test_cli_with_the_torch_adapter():
    cmd = [sys.executable, "-m", "cast_core.conformance", "--impl", "cast_torch.conformance:cast_advantages",
           "--loss-impl", "cast_torch.conformance:policy_loss",
           "--grad-impl", "cast_torch.conformance:policy_loss_grad"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 failed" in done.stdout


def test_adapters_return_numpy_and_the_autograd_gradient():
    rng = np.random.default_rng(0)
    old = -rng.random((3, 4))
    logp = old + rng.normal(0, 0.3, (3, 4))
    adv = rng.normal(size=(3, 4))
    mask = rng.random((3, 4)) < 0.7
    grad = adapters.policy_loss_grad(logp, old, adv, mask, agg="seq-mean-token-mean")
    assert isinstance(grad, np.ndarray) and grad.dtype == np.float64 and grad.shape == (3, 4)
    assert (grad[~mask] == 0).all() and np.abs(grad[mask]).sum() > 0
    loss = adapters.policy_loss(logp.tolist(), old.tolist(), adv.tolist(), mask.tolist())
    assert type(loss) is float
