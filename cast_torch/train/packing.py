"""CPU decoding with oneDNN-prepacked ``nn.Linear`` weights.

A decode step multiplies a few rows (the batch) by every weight matrix of the model, so on
a CPU it is bound by reading the weights from memory. PyTorch's default CPU ``F.linear``
(MKL ``sgemm``) re-packs the weight matrix into its blocked layout on every call, which
roughly halves the bandwidth it reaches for a batch of ~8 rows; oneDNN can pack a matrix
once (``torch.ops.mkldnn._reorder_linear_weight``) and multiply against the packed copy
(``torch.ops.mkldnn._linear_pointwise``) — the ops ``torch.compile`` uses for frozen CPU
weights. :func:`packed_linears` swaps that in for the ``forward`` of every plain
``nn.Linear`` while generating and restores it afterwards. The product is the same
``x @ W.T + b`` in float32 (another summation order: results differ from MKL's by float
rounding, as any two GEMM kernels do).

Packed copies cost one more copy of the weights while generating; they are made when the
block is entered and dropped when it is left (packing ~0.5 GB takes a fraction of a second
on one core, a few percent of a rollout), so the training phases never hold them: peak
memory is set by the update, not by the sampler. Keeping the packed copy of a frozen
LoRA base between steps was tried: no step-time gain measurable above the noise of a
shared machine, +0.1–0.5 GB peak RSS.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["packing_available", "packed_linears"]


def packing_available() -> bool:
    """Whether this torch build has the oneDNN packed-linear ops (CPU builds with MKLDNN)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._reorder_linear_weight
        torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return False
    return True


def _packable(mod: torch.nn.Module) -> bool:
    w = getattr(mod, "weight", None)
    return (type(mod) is torch.nn.Linear and isinstance(w, torch.Tensor) and w.device.type == "cpu"
            and w.dtype == torch.float32 and w.dim() == 2 and "forward" not in mod.__dict__)


@contextlib.contextmanager
def packed_linears(model: torch.nn.Module, *, batch_hint: int = 8, enabled: bool = True) -> Iterator[int]:
    """Within the block, every packable ``nn.Linear`` of ``model`` multiplies by a packed copy.

    Yields the number of layers swapped (0 when disabled, unavailable, or under autocast,
    whose low-precision matmuls the packed float32 ops would bypass). Use it under
    ``torch.no_grad()`` only: the packed ops have no backward.
    """
    if not enabled or not packing_available() or torch.is_autocast_enabled("cpu") or torch.is_grad_enabled():
        yield 0
        return
    mods = [m for m in model.modules() if _packable(m)]
    try:
        for mod in mods:
            weight = torch.ops.mkldnn._reorder_linear_weight(mod.weight.detach(), batch_hint)
            bias = None if mod.bias is None else mod.bias.detach()

            def forward(x: torch.Tensor, weight=weight, bias=bias) -> torch.Tensor:
                return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

            mod.forward = forward   # an instance attribute shadows nn.Linear.forward
        yield len(mods)
    finally:
        for mod in mods:
            mod.__dict__.pop("forward", None)
