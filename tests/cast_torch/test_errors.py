"""The same bad inputs raise the same error class in cast_torch and cast_core, naming the
same argument and (for arrays) the same first offending index."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import cast_core
import cast_torch
from cast_core import CASTConfig
from cast_core import baselines as core_bl
from cast_core.diagnostics import cast_diagnostics as core_diag
from cast_torch import baselines as torch_bl
from cast_torch.diagnostics import cast_diagnostics as torch_diag

NAN, INF = math.nan, math.inf
R = np.array([1.0, 0.0, 1.0, 1.0])
GID = np.array([3, 3, -7, -7])
G = np.array([[0.1, -0.2, NAN], [0.3, INF, 0.0], [-INF, 0.2, 0.1], [0.0, 0.5, -0.5]])
M = np.array([[1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 0, 1]], dtype=bool)
LP = np.log(np.full((4, 3), 0.5))


def _with(a: np.ndarray, index, value, dtype=None) -> np.ndarray:
    out = a.astype(dtype) if dtype is not None else a.copy()
    out[index] = value
    return out


ADV = (cast_core.cast_advantages, cast_torch.cast_advantages)
BASE = (cast_core.base_advantages, cast_torch.base_advantages)
TOKEN = (cast_core.token_advantages, cast_torch.token_advantages)
LOSS = (cast_core.policy_loss, cast_torch.policy_loss)
GRPO = (core_bl.grpo_advantages, torch_bl.grpo_advantages)
RLSD = (core_bl.rlsd_advantages, torch_bl.rlsd_advantages)
ZVP = (core_bl.rl_zvp_advantages, torch_bl.rl_zvp_advantages)
OPSD = (core_bl.opsd_advantages, torch_bl.opsd_advantages)
DIAG = (core_diag, torch_diag)

CASES = {
    "nan reward": (ADV, (_with(R, 2, NAN), GID, G, M), {}),
    "inf reward": (ADV, (_with(R, 0, -INF), GID, G, M), {}),
    "nan gap inside the mask": (ADV, (R, GID, _with(G, (2, 1), NAN), M), {}),
    "nan in a float mask": (ADV, (R, GID, G, _with(M, (1, 2), NAN, np.float64)), {}),
    "mask value 2": (ADV, (R, GID, G, _with(M, (3, 0), 2, np.int64)), {}),
    "gaps rows != N": (ADV, (R, GID, G[:3], M[:3]), {}),
    "mask shape": (ADV, (R, GID, G, M[:, :2]), {}),
    "group ids length": (ADV, (R, GID[:3], G, M), {}),
    "non-integer float group ids": (ADV, (R, _with(GID, 1, 3.5, np.float64), G, M), {}),
    "nan group id": (ADV, (R, _with(GID, 0, NAN, np.float64), G, M), {}),
    "bool group ids": (ADV, (R, np.array([True, False, True, True]), G, M), {}),
    "N = 0": (ADV, (R[:0], GID[:0], G[:0], M[:0]), {}),
    "1-D gaps": (ADV, (R, GID, G[0], M), {}),
    "2-D rewards": (ADV, (R[:, None], GID, G, M), {}),
    "bool gaps": (ADV, (R, GID, M, M), {}),
    "complex gaps": (ADV, (R, GID, G.astype(np.complex128), M), {}),
    "string rewards": (ADV, (["a", "b", "c", "d"], GID, G, M), {}),
    "config not a CASTConfig": (ADV, (R, GID, G, M, {"lam": 0.5}), {}),
    "negative step": (ADV, (R, GID, G, M, None, -1), {}),
    "float step": (ADV, (R, GID, G, M, None, 1.5), {}),
    "bool step": (ADV, (R, GID, G, M, None, True), {}),
    "base: nan": (BASE, (_with(R, 1, NAN), GID), {}),
    "base: N = 0": (BASE, (R[:0], GID[:0]), {}),
    "token: nan base": (TOKEN, (_with(R, 3, NAN), G, M), {}),
    "token: nan gap": (TOKEN, (R, _with(G, (0, 0), NAN), M), {}),
    "token: rows": (TOKEN, (R[:2], G, M), {}),
    "loss: unknown agg": (LOSS, (LP, LP, LP, M), {"agg": "mean"}),
    "loss: negative clip": (LOSS, (LP, LP, LP, M), {"clip_low": -0.1}),
    "loss: nan clip": (LOSS, (LP, LP, LP, M), {"clip_high": NAN}),
    "loss: nan logp inside mask": (LOSS, (_with(LP, (1, 1), NAN), LP, LP, M), {}),
    "loss: inf advantage inside mask": (LOSS, (LP, LP, _with(LP, (2, 0), INF), M), {}),
    "loss: beta without ref": (LOSS, (LP, LP, LP, M), {"beta": 0.1}),
    "loss: max_len 0": (LOSS, (LP, LP, LP, M), {"agg": "seq-mean-token-sum-norm", "max_len": 0}),
    "loss: shapes": (LOSS, (LP, LP[:, :2], LP, M), {}),
    "loss: mask 0.5": (LOSS, (LP, LP, LP, _with(M, (0, 0), 0.5, np.float64)), {}),
    "grpo: mask rows": (GRPO, (R, GID, M[:2]), {}),
    "grpo: nan reward": (GRPO, (_with(R, 0, NAN), GID, M), {}),
    "rlsd: eps_w > 1": (RLSD, (R, GID, G, M), {"eps_w": 1.5}),
    "rlsd: negative lam": (RLSD, (R, GID, G, M), {"lam": -0.1}),
    "rlsd: decay steps": (RLSD, (R, GID, G, M), {"lam_decay_steps": -1}),
    "rlsd: nan gap": (RLSD, (R, GID, _with(G, (3, 2), NAN), M), {}),
    "zvp: negative entropy": (ZVP, (R, GID, _with(np.abs(np.nan_to_num(G)), (1, 1), -0.5), M), {}),
    "zvp: inf entropy": (ZVP, (R, GID, _with(np.abs(np.nan_to_num(G)), (2, 2), INF), M), {}),
    "zvp: alpha": (ZVP, (R, GID, np.abs(np.nan_to_num(G)), M), {"alpha": -1.0}),
    "opsd: inf gap": (OPSD, (G, M), {}),
    "diagnostics: nan reward": (DIAG, (_with(R, 3, NAN), GID, G, M), {}),
    "diagnostics: nan gap": (DIAG, (R, GID, _with(G, (1, 0), NAN), M), {}),
}

_INDEX = re.compile(r"index (\(\d+(?:, \d+)*\)|\d+)")


def _to_torch(x):
    if isinstance(x, np.ndarray) and x.dtype != object:
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


def _raised(fn, args, kwargs) -> BaseException:
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # the class is compared by the caller
        return exc
    pytest.fail(f"{fn.__module__}.{fn.__name__} accepted the bad input")


@pytest.mark.parametrize("name", list(CASES))
def test_same_error_in_both(name):
    (core_fn, torch_fn), args, kwargs = CASES[name]
    core_exc = _raised(core_fn, args, kwargs)
    torch_exc = _raised(torch_fn, tuple(_to_torch(a) for a in args), kwargs)
    assert isinstance(core_exc, (ValueError, TypeError)), repr(core_exc)
    assert type(torch_exc) is type(core_exc), f"cast_core: {core_exc!r}\ncast_torch: {torch_exc!r}"
    core_msg, torch_msg = str(core_exc), str(torch_exc)
    assert core_msg.split(":")[0] == torch_msg.split(":")[0], (core_msg, torch_msg)   # the argument named
    core_idx, torch_idx = _INDEX.search(core_msg), _INDEX.search(torch_msg)
    assert (core_idx and core_idx.group(1)) == (torch_idx and torch_idx.group(1)), (core_msg, torch_msg)


def test_validate_false_skips_value_checks_but_not_shape_checks():
    r, gid, g, m = (_to_torch(a) for a in (R, GID, G, M))
    out = cast_torch.cast_advantages(_to_torch(_with(R, 2, NAN)), gid, g, m, validate=False)
    assert out.shape == (4, 3)       # garbage in, garbage out, but no host sync to find it
    with pytest.raises(ValueError, match="gaps"):
        cast_torch.cast_advantages(r, gid, g[:3], m[:3], validate=False)
    with pytest.raises(ValueError, match="mask"):
        cast_torch.cast_advantages(r, gid, g, m[:, :2], validate=False)
    with pytest.raises(ValueError, match="empty batch"):
        cast_torch.cast_advantages(r[:0], gid[:0], g[:0], m[:0], validate=False)
    with pytest.raises(TypeError, match="config"):
        cast_torch.cast_advantages(r, gid, g, m, CASTConfig.to_dict(CASTConfig()), validate=False)
