"""numpy-in / numpy-out adapters that run the spec vectors through ``cast_torch``.

Each function has the calling convention of ``cast_core.conformance`` (numpy arrays in,
numpy arrays or Python floats out), converts its inputs to CPU tensors without changing
their dtype (float64 stays float64, so the vectors' 1e-12 tolerance applies), calls the
torch implementation with ``validate=True``, and converts back. ``policy_loss_grad`` is
the autograd gradient of ``cast_torch.policy_loss`` with respect to ``logp`` — the
vectors check it against the oracle's closed form. Use them as::

    python -m cast_core.conformance --impl cast_torch.conformance:cast_advantages
    python -m cast_core.conformance --loss-impl cast_torch.conformance:policy_loss \\
        --grad-impl cast_torch.conformance:policy_loss_grad
    python -m cast_torch.conformance          # every function in the vectors, through torch

(the last one forwards its arguments, e.g. ``--only``, ``-v``, ``--vectors``, to the runner).
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import numpy as np
import torch

from cast_core.config import CASTConfig

from . import advantages as _adv
from . import baselines as _bl
from . import loss as _loss

__all__ = [
    "cast_advantages", "base_advantages", "token_advantages", "policy_loss", "policy_loss_grad",
    "grpo_advantages", "rlsd_advantages", "rl_zvp_advantages", "opsd_advantages", "CASTConfig",
    "IMPLS", "main",
]


def _t(x: Any) -> Any:
    """numpy array / nested list / tensor -> CPU tensor with numpy's dtype (None stays None).

    Lists go through numpy first so Python floats become float64, not torch's float32.
    """
    if x is None or isinstance(x, torch.Tensor):
        return x
    try:
        return torch.from_numpy(np.ascontiguousarray(np.asarray(x)))
    except TypeError as exc:  # object arrays (ragged or non-numeric input)
        raise TypeError(f"input cannot be read as a tensor ({exc})") from None


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def cast_advantages(rewards: Any, group_ids: Any, gaps: Any, mask: Any, config: CASTConfig | None = None,
                    step: int = 0) -> np.ndarray:
    """``cast_torch.cast_advantages`` on numpy inputs; returns [N, T] numpy."""
    return _np(_adv.cast_advantages(_t(rewards), _t(group_ids), _t(gaps), _t(mask), config, step))


def base_advantages(rewards: Any, group_ids: Any, config: CASTConfig | None = None, step: int = 0) -> np.ndarray:
    """``cast_torch.base_advantages`` on numpy inputs; returns [N] numpy."""
    return _np(_adv.base_advantages(_t(rewards), _t(group_ids), config, step))


def token_advantages(base: Any, gaps: Any, mask: Any, config: CASTConfig | None = None,
                     step: int = 0) -> np.ndarray:
    """``cast_torch.token_advantages`` on numpy inputs; returns [N, T] numpy."""
    return _np(_adv.token_advantages(_t(base), _t(gaps), _t(mask), config, step))


def _loss_tensor(logp, old_logp, advantages, mask, kwargs, *, grad: bool):
    lp = _t(logp)
    if grad:
        # A float64 leaf: the gradient is compared with the float64 closed form.
        lp = lp.detach().to(torch.float64).clone().requires_grad_(True)
    if kwargs.get("ref_logp") is not None:
        kwargs = {**kwargs, "ref_logp": _t(kwargs["ref_logp"])}
    return lp, _loss.policy_loss(lp, _t(old_logp), _t(advantages), _t(mask), **kwargs)


def policy_loss(logp: Any, old_logp: Any, advantages: Any, mask: Any, **kwargs: Any) -> float:
    """``cast_torch.policy_loss`` on numpy inputs (same keyword arguments); a Python float."""
    _, value = _loss_tensor(logp, old_logp, advantages, mask, kwargs, grad=False)
    return float(value.detach())


def policy_loss_grad(logp: Any, old_logp: Any, advantages: Any, mask: Any, **kwargs: Any) -> np.ndarray:
    """d ``cast_torch.policy_loss`` / d logp by autograd, float64 [N, T] numpy."""
    lp, value = _loss_tensor(logp, old_logp, advantages, mask, kwargs, grad=True)
    if not value.requires_grad:  # nothing reached logp (e.g. an empty batch): the gradient is 0
        return np.zeros(tuple(lp.shape))
    (g,) = torch.autograd.grad(value, lp, allow_unused=True)
    return np.zeros(tuple(lp.shape)) if g is None else _np(g)


def grpo_advantages(rewards: Any, group_ids: Any, mask: Any, config: CASTConfig | None = None) -> np.ndarray:
    """``cast_torch.baselines.grpo_advantages`` on numpy inputs."""
    return _np(_bl.grpo_advantages(_t(rewards), _t(group_ids), _t(mask), config))


def rlsd_advantages(rewards: Any, group_ids: Any, gaps: Any, mask: Any, **kwargs: Any) -> np.ndarray:
    """``cast_torch.baselines.rlsd_advantages`` on numpy inputs (same keyword arguments)."""
    return _np(_bl.rlsd_advantages(_t(rewards), _t(group_ids), _t(gaps), _t(mask), **kwargs))


def rl_zvp_advantages(rewards: Any, group_ids: Any, entropies: Any, mask: Any, **kwargs: Any) -> np.ndarray:
    """``cast_torch.baselines.rl_zvp_advantages`` on numpy inputs (same keyword arguments)."""
    return _np(_bl.rl_zvp_advantages(_t(rewards), _t(group_ids), _t(entropies), _t(mask), **kwargs))


def opsd_advantages(gaps: Any, mask: Any) -> np.ndarray:
    """``cast_torch.baselines.opsd_advantages`` on numpy inputs."""
    return _np(_bl.opsd_advantages(_t(gaps), _t(mask)))


#: Every function of the vectors mapped to its torch adapter (for ``run_conformance(impls=...)``).
#: ``CASTConfig`` is the one class both packages share; it is listed so the config error
#: cases run too.
IMPLS: dict[str, str] = {name: f"cast_torch.conformance:{name}" for name in (
    "cast_advantages", "base_advantages", "token_advantages", "policy_loss", "policy_loss_grad",
    "grpo_advantages", "rlsd_advantages", "rl_zvp_advantages", "opsd_advantages", "CASTConfig")}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cast_torch.conformance [runner options]``: all vectors through torch."""
    from cast_core.conformance import main as run_main

    user_args = list(sys.argv[1:] if argv is None else argv)
    impl_args = [arg for name, spec in IMPLS.items() for arg in ("--impl-for", f"{name}={spec}")]
    return run_main(impl_args + user_args)


if __name__ == "__main__":
    sys.exit(main())
