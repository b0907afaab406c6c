"""Privileged-teacher diagnostics: score CAST's rollouts a second time with the answer shown.

The paper's motivating analysis compares two teachers on the *same* sampled
completions:

- the **answer-free** lagged teacher CAST trains with,
  ``g_t = log π_T(y_t | x, y_<t) − log π_old(y_t | x, y_<t)``;
- a **privileged** teacher whose context also shows the reference answer a*,
  ``g*_t = log π_T(y_t | c(x, a*), y_<t) − log π_old(y_t | x, y_<t)``, with
  ``c`` a template holding ``{prompt}`` and ``{answer}``.

Both use the same teacher weights (the lagged snapshot/EMA/base of the run), so the
only difference between them is the answer in the context. The privileged gap is
**never trained on**: :class:`PrivilegedDiagnosticsTrainer` computes it inside the
scoring step, keeps it out of the advantages, and adds its statistics to the step's
metrics line. Scoring is a forward pass without gradient, in eval mode, that draws no
random numbers, so a run's trajectory (rollouts, updates, metrics) is the same with
and without the analysis; only the extra keys and the wall time differ.

Keys added to every RL step of ``OUT/metrics.jsonl``:

- ``priv_<k>`` for each gap statistic ``k`` of :data:`GAP_KEYS`
  (``cast_core.cast_diagnostics`` evaluated on the privileged gaps, e.g.
  ``priv_gap_mean_correct``, ``priv_teacher_pos_frac_wrong``, ``priv_flip_rate_correct``
  = the share of tokens CAST *would* flip with that teacher);
- ``seq_gap_auc`` / ``priv_seq_gap_auc``: within mixed groups, the probability that a
  correct completion has a larger sequence log-ratio ``S_i = Σ_t m_{i,t} g_{i,t}`` than a
  wrong completion of the same prompt (ties count ½; 0.5 is chance, 1 is perfect
  alignment with the verifier); ``NaN`` (logged as ``null``) when the batch has no
  mixed group;
- ``seq_gap_pairs``: the number of (correct, wrong) pairs behind the AUCs.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import numpy as np
import torch

from .config import check_teacher_context
from .rollout import Rollout
from .trainer import Trainer

__all__ = [
    "PrivilegedDiagnosticsTrainer", "DEFAULT_PRIVILEGED_TEMPLATE", "GAP_KEYS", "seq_gap_auc",
    "privileged_metrics",
]

# The answer is written in the exact format of the worked solutions ("#### <answer>"),
# then the problem is repeated: a teacher that can read its context sees the solution's
# final line right before it scores the completion.
DEFAULT_PRIVILEGED_TEMPLATE = "Reference answer: #### {answer}\n{prompt}"

# Statistics of cast_core.cast_diagnostics that depend on the gaps (the others —
# group fractions, λ — are the same for both teachers and are not repeated).
GAP_KEYS = (
    "teacher_pos_frac_correct", "teacher_neg_frac_correct", "teacher_pos_frac_wrong",
    "teacher_neg_frac_wrong", "gap_mean_correct", "gap_mean_wrong", "flip_rate_correct",
    "flip_rate_wrong", "sign_disagree_frac",
)


def seq_gap_auc(rewards: np.ndarray, group_ids: np.ndarray, gaps: np.ndarray, mask: np.ndarray,
                threshold: float = 0.5) -> tuple[float, int]:
    """Within-group AUC of the sequence log-ratio against correctness.

    ``S_i = Σ_t mask[i, t] · clip(gaps[i, t], −50, 50)``; for every mixed group and every
    pair (i correct, j wrong) of its members, score 1 if ``S_i > S_j``, ½ if equal, 0
    otherwise. Returns ``(mean score, number of pairs)``; ``(nan, 0)`` without pairs.

    Args:
        rewards: [N] float.   group_ids: [N] int.
        gaps: [N, T] float (±inf allowed inside the mask; anything outside it).
        mask: [N, T] bool or 0/1.   threshold: correct means ``reward > threshold``.
    """
    r = np.asarray(rewards, dtype=np.float64)
    gid = np.asarray(group_ids)
    g = np.asarray(gaps, dtype=np.float64)
    m = np.asarray(mask).astype(bool)
    if r.ndim != 1 or g.ndim != 2 or g.shape != m.shape or g.shape[0] != r.shape[0] or gid.shape != r.shape:
        raise ValueError(f"seq_gap_auc: shapes disagree: rewards {r.shape}, group_ids {gid.shape}, "
                         f"gaps {g.shape}, mask {m.shape}")
    bad = np.argwhere(np.isnan(g) & m)
    if bad.size:
        raise ValueError(f"seq_gap_auc: gaps: NaN inside the mask at index {tuple(int(i) for i in bad[0])}")
    s = np.where(m, np.clip(np.nan_to_num(g, nan=0.0), -50.0, 50.0), 0.0).sum(axis=1)     # [N]
    correct = r > threshold
    total, pairs = 0.0, 0
    for k in np.unique(gid):
        members = gid == k
        sc, sw = s[members & correct], s[members & ~correct]
        if sc.size and sw.size:
            diff = sc[:, None] - sw[None, :]                                                # [nc, nw]
            total += float((diff > 0).sum()) + 0.5 * float((diff == 0).sum())
            pairs += diff.size
    return (total / pairs if pairs else float("nan")), pairs


def privileged_metrics(rewards: np.ndarray, group_ids: np.ndarray, gaps: np.ndarray, priv_gaps: np.ndarray,
                       mask: np.ndarray, config, step: int) -> dict[str, float]:
    """The analysis keys for one batch (see the module docstring).

    Args:
        rewards: [N] float.   group_ids: [N] int.   mask: [N, T] bool.
        gaps: [N, T] float, the answer-free gaps the run trained with.
        priv_gaps: [N, T] float, the privileged teacher's gaps on the same tokens.
        config: the run's ``CASTConfig`` (correctness threshold, flip rule, λ schedule).
        step: the step index the run's own diagnostics used.
    """
    from cast_core import cast_diagnostics
    diag = cast_diagnostics(rewards, group_ids, np.where(mask, priv_gaps, 0.0), mask, config=config, step=step)
    out = {f"priv_{k}": float(diag[k]) for k in GAP_KEYS}
    thr = config.correct_threshold
    auc, pairs = seq_gap_auc(rewards, group_ids, gaps, mask, thr)
    priv_auc, _ = seq_gap_auc(rewards, group_ids, priv_gaps, mask, thr)
    out.update(seq_gap_auc=auc, priv_seq_gap_auc=priv_auc, seq_gap_pairs=float(pairs))
    return out


class _MergingLogger:
    """Wraps the trainer's metrics logger so a step's line carries the analysis keys."""

    def __init__(self, inner, pending: dict[int, dict[str, float]]) -> None:
        self.inner, self.pending = inner, pending

    def log(self, record: Mapping[str, Any]) -> None:
        extra = self.pending.pop(int(record["step"]), None) if "step" in record else None
        self.inner.log({**record, **extra} if extra else record)

    def close(self) -> None:
        self.inner.close()


class PrivilegedDiagnosticsTrainer(Trainer):
    """A :class:`Trainer` that also scores each rollout with a privileged teacher (analysis only).

    Training is unchanged: the answer-free gaps feed the advantages exactly as in
    :class:`Trainer`; the privileged log-probs go only into the logged statistics.
    Only runs whose method uses the teacher gap (``cast``, ``rlsd``, ``opsd``) get the
    analysis; for the others this class behaves exactly like :class:`Trainer`.

    Args:
        config: the run's ``TrainConfig`` (its ``teacher_context`` must stay answer-free).
        privileged_template: the privileged teacher's context, with ``{prompt}`` and
            ``{answer}`` slots (validated like ``teacher_context`` with privilege allowed).
        **kwargs: passed to :class:`Trainer` (``resume``, ``log``).
    """

    def __init__(self, config, *, privileged_template: str = DEFAULT_PRIVILEGED_TEMPLATE, **kwargs: Any) -> None:
        if not isinstance(privileged_template, str):
            raise TypeError(f"privileged_template: must be a string, got {type(privileged_template).__name__}")
        check_teacher_context(privileged_template, allow_privileged=True, name="privileged_template")
        if "{answer}" not in privileged_template:
            raise ValueError(f"privileged_template: {privileged_template!r} has no {{answer}} slot, so it is "
                             "not privileged")
        if getattr(config, "allow_privileged_teacher", False) and "{answer}" in config.teacher_context:
            raise ValueError("config.teacher_context: this run would *train* with a privileged teacher; the "
                             "analysis keeps the trained teacher answer-free")
        self.privileged_template = privileged_template
        self._pending: dict[int, dict[str, float]] = {}
        self._priv_gap: Optional[torch.Tensor] = None
        super().__init__(config, **kwargs)
        # The privileged gap needs the rollout log-probs of the whole batch before the update,
        # so the policy is scored in the scoring pass (the trainer's off-policy path: one more
        # forward without gradient) rather than inside the on-policy update's micro-batches.
        self.on_policy = False

    @property
    def logger(self):
        if self._logger is None:
            inner = Trainer.logger.fget(self)
            self._logger = _MergingLogger(inner, self._pending)
        return self._logger

    def _teacher_logprobs(self, rows: list[dict], ro: Rollout, old_logp: torch.Tensor) -> torch.Tensor:
        logp = super()._teacher_logprobs(rows, ro, old_logp)          # [N, T] the trained teacher
        self._priv_gap = self._privileged_logprobs(rows, ro) - old_logp   # [N, T] analysis only
        return logp

    @torch.no_grad()
    def _privileged_logprobs(self, rows: list[dict], ro: Rollout) -> torch.Tensor:
        return self._teacher_logprobs_in_context(self.privileged_template, rows, ro, allow_privileged=True)

    def _advantages(self, rewards, group_ids, gaps, mask, entropy) -> torch.Tensor:
        # The one hook that sees rewards, gaps and mask together before the update
        # changes the weights; the privileged gap was computed in the same scoring
        # pass, against the same old_logp.
        if self._priv_gap is not None:
            priv = torch.where(mask, self._priv_gap, torch.zeros((), device=gaps.device))   # [N, T]
            extra = privileged_metrics(rewards.detach().cpu().double().numpy(),
                                       group_ids.detach().cpu().numpy(),
                                       gaps.detach().cpu().double().numpy(),
                                       priv.detach().cpu().double().numpy(),
                                       mask.detach().cpu().numpy().astype(bool),
                                       self.config.cast, self.step_count)
            self._pending[self.step_count + 1] = {k: (v if math.isfinite(v) else float("nan"))
                                                  for k, v in extra.items()}
            self._priv_gap = None
        return super()._advantages(rewards, group_ids, gaps, mask, entropy)
