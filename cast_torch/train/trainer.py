"""The GRPO/CAST trainer on Hugging Face transformers.

One RL step (``Trainer.step``), top to bottom:

1. **generate**: P prompts, G sampled completions each (N = P·G rows).
2. **reward**: the verifier scores each completion → ``rewards [N]``.
3. **score** (no gradient, chunked): rollout-policy log-probs ``old_logp [N, T]`` and
   entropies, the teacher's ``teacher_logp [N, T]`` (methods that use the gap), the base
   model's ``ref_logp [N, T]`` when ``kl_beta > 0``; ``gaps = teacher_logp − old_logp``.
4. **advantages**: ``cast_torch`` (CAST or a baseline) → ``adv [N, T]``.
5. **update**: μ epochs × minibatches × micro-batches of the clipped surrogate
   (``cast_torch.policy_loss``), AdamW, warm-up/schedule, gradient clipping.
6. **teacher**: snapshot refresh every K steps / EMA update.
7. **metrics** to ``OUT/metrics.jsonl`` (+ TensorBoard), evaluation and checkpoints
   on their schedules.

A non-finite loss or gradient skips the rest of that step's update (nothing from the
bad minibatch is applied), logs ``skipped = 1`` and continues; ``max_consecutive_skips``
skipped steps in a row stop the run with a ``RuntimeError``.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

import cast_torch
from cast_core.diagnostics import DIAGNOSTIC_KEYS
from cast_torch import baselines
from cast_torch.diagnostics import cast_diagnostics

from .checkpoint import save_checkpoint
from .config import GAP_METHODS, TrainConfig
from .data import PromptSampler, load_problems
from .metrics import MetricsLogger, truncate_metrics
from .model import apply_lora, check_model_source, load_policy, render_prompt, resolve_device, uses_chat_template
from .resume import capture_state, prepare_resume, restore_state
from .rundir import plan_run_dir, write_run_config
from .rollout import Rollout, encode_prompts, generate
from .scoring import token_logprobs
from .teacher import Teacher, teacher_prompt

__all__ = ["Trainer", "train", "resolve_reward", "GAP_METHODS", "TrainingStopped"]


class TrainingStopped(RuntimeError):
    """Training cannot continue (``max_consecutive_skips`` non-finite steps in a row)."""


def _math_reward_fn(completions: Sequence[str], answers: Sequence[str], **_: Any) -> list[float]:
    from cast_core.verify import math_reward
    return [math_reward(c, a) for c, a in zip(completions, answers)]


def resolve_reward(spec: Any) -> Callable[..., Any]:
    """The reward callable for ``TrainConfig.reward`` ("math", "module:function" or a callable)."""
    if callable(spec):
        return spec
    if spec == "math":
        return _math_reward_fn
    module, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"TrainConfig.reward: cannot import {spec!r}: {e}") from None
    if not callable(fn):
        raise ValueError(f"TrainConfig.reward: {spec!r} is not callable")
    return fn


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """GRPO/CAST trainer. ``Trainer(config).train()`` runs ``config.max_steps`` RL steps.

    Everything is checked before the model loads and before ``OUT`` changes: the config, the
    run folder (:mod:`.rundir`), the checkpoint and the settings a resume changes
    (:mod:`.resume`), the model folder and the data. Then the model loads, and only then is
    ``OUT`` claimed (``config.json`` and ``metrics.jsonl`` are written at once, so a started
    folder is always a run).

    Args:
        config: the run's :class:`TrainConfig`.
        resume: continue from ``OUT/checkpoints/latest`` (``ValueError`` if there is none);
            only the settings in :data:`.resume.RESUME_MUTABLE` may differ from the run's.
        overwrite: a fresh run into an ``OUT`` that already holds a run moves that run aside
            and deletes it once this run writes its first checkpoint; without it (and without
            ``resume``) such an ``OUT`` is a ``ValueError``.
        allow_config_change: with ``resume``, accept changed settings outside the allow-list
            (recorded in ``config.json``; the fixed ones in :data:`.resume.RESUME_FIXED` still fail).
        log: where progress messages go (default ``print``).
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                 allow_config_change: bool = False, log: Optional[Callable[[str], None]] = None) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config: must be a TrainConfig, got {type(config).__name__}")
        c = self.config = config
        self.log = log or print

        # -- 1. check everything; nothing is written or loaded yet ------------------------
        self.run_dir = plan_run_dir(c.out, resume=resume, overwrite=overwrite)
        self.out, self.ckpt_dir = self.run_dir.path, self.run_dir.ckpt_dir
        point = prepare_resume(self.run_dir, c, allow_change=allow_config_change) if resume else None
        check_model_source(c)
        self.reward_fn = resolve_reward(c.reward)
        self.train_rows, self.eval_rows = load_problems(c)

        avail = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch.set_num_threads(c.num_threads or avail)
        _seed_everything(c.seed)
        self.device = resolve_device(c.device)
        self.use_bf16 = c.bf16 == "always" or (c.bf16 == "auto" and self.device.type == "cuda")

        # -- 2. policy, tokenizer, teacher ------------------------------------------------
        model, self.tokenizer, self.model_info = load_policy(c, log=self.log)
        if c.lora:
            model = apply_lora(model, c)
        self.model = model.to(self.device)
        if c.gradient_checkpointing:
            # transformers >= 5 renames it activation_checkpointing_enable; older versions lack that name.
            if hasattr(self.model, "activation_checkpointing_enable"):
                self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if c.lora:
                self.model.enable_input_require_grads()
        self.use_template = uses_chat_template(self.tokenizer, c.use_chat_template)
        self.needs_gaps = c.method in GAP_METHODS
        # One epoch, one minibatch: the update's forward is the rollout policy's (grad accumulation allowed).
        self.on_policy = c.ppo_epochs == 1 and c.num_minibatches == 1
        self.teacher = Teacher(self.model, c.teacher if self.needs_gaps else "current",
                               refresh_steps=c.teacher_refresh_steps, ema_decay=c.teacher_ema_decay,
                               keep_base=c.kl_beta > 0)
        self.sampler = PromptSampler(len(self.train_rows), c.seed)

        # -- 3. optimisation ----------------------------------------------------------------
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model: no trainable parameters")
        self.optimizer = torch.optim.AdamW(self.params, lr=c.lr, betas=(c.adam_beta1, c.adam_beta2),
                                           weight_decay=c.weight_decay)
        self.total_updates = c.max_steps * c.ppo_epochs * c.num_minibatches
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.shuffle_gen = torch.Generator().manual_seed(c.seed + 1)
        self.step_count = 0
        self.consecutive_skips = 0
        self.last_saved_step = -1
        self._logger: Optional[MetricsLogger] = None

        # -- 4. the checkpoint (read only), then the first writes to OUT -----------------
        self.resumed_from: Optional[Path] = None
        history = self.run_dir.history
        if point is not None:
            restore_state(self, point)
            self.last_saved_step = self.step_count
            self.resumed_from = point.path
            history = history + [{"step": self.step_count, "field": k, "old": o, "new": n}
                                 for k, o, n in point.changes]
        self.run_dir.claim(self.log)
        if point is not None:
            truncate_metrics(self.out, self.step_count, drop_torn_tail=True, log=self.log)
            if point.changes:
                self.log("resume: changed " + "; ".join(f"{k} {o!r} -> {n!r}" for k, o, n in point.changes))
            self.log(f"resume: continuing from {point.path} (step {self.step_count})")
        write_run_config(self.out, c.to_dict(), history)
        _ = self.logger   # opens metrics.jsonl: from here on OUT is a run

    # =====================================================================================
    # one RL step
    # =====================================================================================
    def step(self) -> dict[str, Any]:
        """Run one RL step (and its eval/checkpoint when scheduled); return its metrics."""
        c, tok = self.config, self.tokenizer
        t_start = time.perf_counter()
        G = c.group_size

        # 1. generate ------------------------------------------------------------------------
        rows = [self.train_rows[i] for i in self.sampler.next(c.prompts_per_step)]
        prompts = [render_prompt(tok, r["prompt"], self.use_template) for r in rows]
        with self._autocast():
            ro = generate(self.model, tok, prompts, num_samples=G, max_new_tokens=c.max_new_tokens,
                          temperature=c.temperature, top_p=c.top_p, top_k=c.top_k,
                          mask_truncated=c.mask_truncated, device=self.device,
                          min_new_tokens=c.min_new_tokens, engine=c.generation_engine)
        t_gen = time.perf_counter()

        # 2. reward -------------------------------------------------------------------------
        rewards = self._rewards(ro.texts, rows, G)                                    # [N]
        group_ids = torch.arange(len(rows), device=self.device).repeat_interleave(G)   # [N]
        mask = ro.loss_mask                                                            # [N, T]

        # 3. score ---------------------------------------------------------------------------
        # On-policy (one epoch, one minibatch): the update's own forward gives the rollout
        # log-probs (old = logp.detach(), ρ = 1), as TRL does, so the policy is not scored
        # separately: only the teacher (and the KL reference) are, here. Each micro-batch of
        # the update then forms its rows' advantages from its forward (a row's advantage
        # needs all rewards but only its own gaps / entropies), so `grad_accum_steps`
        # micro-batches keep 1/k of the activations without any extra forward. Off-policy,
        # the policy is scored here without gradient. token_logprobs never materialises the
        # [N, T, V] logits, with or without their gradient (see scoring.py).
        with torch.no_grad(), self._autocast():
            old_logp = entropy = None
            if not self.on_policy:
                old_logp, entropy = token_logprobs(self.model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids,
                                                   ro.valid_mask, temperature=c.temperature, group_size=G,
                                                   chunk_size=c.score_chunk_size, with_entropy=True)  # [N, T] x2
            teacher_logp = self._teacher_logprobs(rows, ro, old_logp) if self.needs_gaps else None     # [N, T]
            ref_logp = None
            if c.kl_beta > 0:
                with self.teacher.reference(self.model) as ref_model:
                    ref_logp, _ = token_logprobs(ref_model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids,
                                                 ro.valid_mask, temperature=c.temperature, group_size=G,
                                                 chunk_size=c.score_chunk_size)                     # [N, T]
        zero = torch.zeros((), device=self.device)
        t_score = time.perf_counter()

        metrics: dict[str, Any] = {"step": self.step_count + 1}
        # 4. advantages and 5. update -------------------------------------------------------
        if self.on_policy:
            old_logp = torch.zeros(mask.shape, device=self.device)                       # [N, T], filled
            entropy = torch.zeros(mask.shape, device=self.device)                        # by the update
            adv = torch.zeros(mask.shape, device=self.device)

            def advantages_of(rows_mi, old_mi, entropy_mi):   # one micro-batch's forward -> its advantages
                old_logp[rows_mi], entropy[rows_mi] = old_mi.float(), entropy_mi.float()
                teacher = old_logp if teacher_logp is None else teacher_logp
                gaps_now = torch.where(mask, teacher - old_logp, zero)                   # rows not yet seen: unread
                adv[rows_mi] = self._advantages(rewards, group_ids, gaps_now, mask, entropy)[rows_mi]
                return adv[rows_mi]

            bad = self._nonfinite_scores(None, teacher_logp, ref_logp, ro.valid_mask)
            upd = (self._update(ro, old_logp, ref_logp, adv, mask, advantages_of=advantages_of) if bad is None
                   else {"skipped": 1, "skip_reason": bad})
            if upd.get("skip_reason") == "non-finite rollout log-prob":
                bad = upd["skip_reason"]
        else:
            bad = self._nonfinite_scores(old_logp, teacher_logp, ref_logp, ro.valid_mask)
            if bad is None:
                gaps = torch.where(mask, (old_logp if teacher_logp is None else teacher_logp) - old_logp, zero)
                adv = self._advantages(rewards, group_ids, gaps, mask, entropy)           # [N, T]
                upd = self._update(ro, old_logp, ref_logp, adv, mask)
            else:
                upd = {"skipped": 1, "skip_reason": bad}
        self.model.eval()
        teacher_logp = old_logp if teacher_logp is None else teacher_logp               # [N, T]
        gaps = torch.where(mask, teacher_logp - old_logp, zero)                          # [N, T]
        t_update = time.perf_counter()

        # 6. teacher ----------------------------------------------------------------------------
        self.step_count += 1
        refreshed = self.teacher.after_step(self.model, self.step_count)

        # 7. metrics, eval, checkpoint --------------------------------------------------------
        # A skipped step's scores may hold NaN: its diagnostics are logged as null, not computed.
        diag = (cast_diagnostics(rewards, group_ids, gaps, mask, config=c.cast, step=self.step_count - 1)
                if bad is None else dict.fromkeys(DIAGNOSTIC_KEYS, float("nan")))
        n_tokens = int(ro.valid_mask.sum())
        step_time = t_update - t_start
        mf = mask.float()
        metrics.update(
            reward_mean=float(rewards.mean()),
            reward_std=float(rewards.std(unbiased=False)),
            **{k: float(v) for k, v in diag.items()},
            entropy=float((entropy * mf).sum() / mf.sum().clamp_min(1)),
            completion_len=float(ro.valid_mask.sum(1).float().mean()),
            truncated_frac=float(ro.truncated.float().mean()),
            gap_abs_mean=float((gaps.abs() * mf).sum() / mf.sum().clamp_min(1)) if bad is None else 0.0,
            teacher_refreshed=int(refreshed),
            lr=float(self.scheduler.get_last_lr()[0]),
            step_time=step_time,
            tokens_per_s=n_tokens / max(step_time, 1e-9),
            time_generate=t_gen - t_start,
            time_score=t_score - t_gen,
            time_update=t_update - t_score,
        )
        metrics.update({k: v for k, v in upd.items() if k != "skip_reason"})
        if upd.get("skipped"):
            self.consecutive_skips += 1
            self.log(f"step {self.step_count}: skipped ({upd['skip_reason']}); "
                     f"{self.consecutive_skips} in a row")
        else:
            self.consecutive_skips = 0
        if c.eval_every and (self.step_count % c.eval_every == 0 or self.step_count == c.max_steps):
            metrics.update(self.evaluate())
        self.logger.log(metrics)
        if self.consecutive_skips >= c.max_consecutive_skips:
            self.close()
            raise TrainingStopped(f"training stopped: {self.consecutive_skips} consecutive steps had a non-finite "
                               f"loss, gradient or log-prob (last: {upd['skip_reason']}); lower lr, check the "
                               "reward and the model, or resume from the last checkpoint")
        if (c.save_every and self.step_count % c.save_every == 0) or (c.save_final and self.step_count == c.max_steps):
            self.save()
        return metrics

    # -- pieces of a step -------------------------------------------------------------------
    def _rewards(self, texts: list[str], rows: list[dict], G: int) -> torch.Tensor:
        answers = [r["answer"] for r in rows for _ in range(G)]
        extra = {k: [r.get(k) for r in rows for _ in range(G)] for k in rows[0] if k not in ("answer",)}
        extra["prompts"] = extra.pop("prompt")
        out = self.reward_fn(texts, answers, **extra)
        try:
            values = [float(v) for v in out]
        except (TypeError, ValueError):
            raise ValueError(f"reward: the reward function must return a list of floats, got {out!r:.200}") from None
        if len(values) != len(texts):
            raise ValueError(f"reward: the reward function returned {len(values)} values for {len(texts)} completions")
        for i, v in enumerate(values):
            if not math.isfinite(v):
                raise ValueError(f"reward: non-finite reward {v!r} at index {i}")
        return torch.tensor(values, dtype=torch.float32, device=self.device)           # [N]

    def _teacher_logprobs(self, rows: list[dict], ro: Rollout, old_logp: Optional[torch.Tensor]
                          ) -> Optional[torch.Tensor]:
        """Teacher log-probs [N, T]; None when the teacher is the rollout policy itself (g = 0 exactly)."""
        c = self.config
        if c.teacher_context != "identical":
            return self._teacher_logprobs_in_context(c.teacher_context, rows, ro,
                                                     allow_privileged=c.allow_privileged_teacher)
        if self.teacher.kind == "current":
            return None   # same weights, same context: the rollout log-probs themselves
        return self._teacher_score(ro.prompt_ids, ro.prompt_mask, ro)

    def _teacher_logprobs_in_context(self, template: str, rows: list[dict], ro: Rollout, *,
                                     allow_privileged: bool) -> torch.Tensor:
        """Teacher log-probs [N, T] of the sampled completions under ``template``'s prompts."""
        c = self.config
        texts = [render_prompt(self.tokenizer,
                               teacher_prompt(template, r["prompt"], r["answer"], allow_privileged=allow_privileged),
                               self.use_template) for r in rows]
        p_ids, p_mask = encode_prompts(self.tokenizer, texts, self.device)            # [P, P']
        p_ids = p_ids.repeat_interleave(c.group_size, dim=0)                          # [N, P']
        p_mask = p_mask.repeat_interleave(c.group_size, dim=0)                        # [N, P']
        return self._teacher_score(p_ids, p_mask, ro)

    def _teacher_score(self, p_ids: torch.Tensor, p_mask: torch.Tensor, ro: Rollout) -> torch.Tensor:
        c = self.config
        with self.teacher.weights(self.model) as teacher_model:
            logp, _ = token_logprobs(teacher_model, p_ids, p_mask, ro.completion_ids, ro.valid_mask,
                                     temperature=c.temperature, chunk_size=c.score_chunk_size,
                                     group_size=c.group_size)                                      # [N, T]
        return logp

    @staticmethod
    def _nonfinite_scores(old_logp, teacher_logp, ref_logp, valid) -> Optional[str]:
        # -inf teacher log-probs are legal (g = -inf saturates); NaN anywhere, or a non-finite
        # rollout log-prob of a token the rollout policy itself sampled, means broken weights.
        # (None: not scored here — the on-policy update checks its own forward.)
        if old_logp is not None and not bool(torch.isfinite(old_logp[valid]).all()):
            return "non-finite rollout log-prob"
        if teacher_logp is not None and bool(torch.isnan(teacher_logp[valid]).any()):
            return "NaN teacher log-prob"
        if ref_logp is not None and not bool(torch.isfinite(ref_logp[valid]).all()):
            return "non-finite reference log-prob"
        return None

    def _advantages(self, rewards, group_ids, gaps, mask, entropy) -> torch.Tensor:
        c, step = self.config, self.step_count
        if c.method == "cast":
            adv = cast_torch.cast_advantages(rewards, group_ids, gaps, mask, config=c.cast, step=step)
        elif c.method == "grpo":
            adv = baselines.grpo_advantages(rewards, group_ids, mask, config=c.cast)
        elif c.method == "rlsd":
            adv = baselines.rlsd_advantages(rewards, group_ids, gaps, mask, step=step, lam=c.rlsd_lam,
                                            lam_decay_steps=c.rlsd_lam_decay_steps, eps_w=c.rlsd_eps_w,
                                            config=c.cast)
        elif c.method == "rl_zvp":
            adv = baselines.rl_zvp_advantages(rewards, group_ids, entropy, mask, alpha=c.zvp_alpha, config=c.cast)
        else:   # "opsd"
            adv = baselines.opsd_advantages(gaps, mask)
        return adv.to(torch.float32)                                                  # [N, T]

    def _update(self, ro: Rollout, old_logp, ref_logp, adv, mask, advantages_of=None) -> dict[str, Any]:
        """μ epochs over minibatches; returns loss/grad_norm/approx_kl/clip_frac/skipped.

        ``advantages_of(rows, old_logp_rows, entropy_rows) -> adv_rows`` (on-policy: one
        epoch, one minibatch) is called with each micro-batch's own forward, detached;
        ``old_logp`` and ``adv`` are then filled by it (ρ = 1 exactly). A non-finite
        log-prob of a sampled token stops the update before anything is applied.
        """
        c = self.config
        n = mask.shape[0]
        mb = n // c.num_minibatches
        micro = mb // c.grad_accum_steps
        self.model.train()
        losses, norms = [], []
        kl_sum = clip_sum = tok_sum = 0.0
        skipped: Optional[str] = None
        for _epoch in range(c.ppo_epochs):
            order = (torch.randperm(n, generator=self.shuffle_gen) if c.num_minibatches > 1
                     else torch.arange(n)).to(self.device)                              # [N]
            for k in range(c.num_minibatches):
                idx = order[k * mb:(k + 1) * mb]                                          # [mb]
                denom = self._agg_denominator(mask[idx])
                self.optimizer.zero_grad(set_to_none=True)
                mb_loss = 0.0
                for j in range(c.grad_accum_steps):
                    mi = idx[j * micro:(j + 1) * micro]                                   # [micro]
                    m = mask[mi]                                                          # [micro, T]
                    with self._autocast():
                        logp, ent = token_logprobs(self.model, ro.prompt_ids[mi], ro.prompt_mask[mi],
                                                   ro.completion_ids[mi], ro.valid_mask[mi],
                                                   temperature=c.temperature, group_size=c.group_size,
                                                   with_entropy=advantages_of is not None)  # [micro, T] (grad)
                    if advantages_of is not None:
                        if not bool(torch.isfinite(logp.detach()[ro.valid_mask[mi]]).all()):
                            skipped = "non-finite rollout log-prob"
                            break
                        advantages_of(mi, logp.detach(), ent)                             # fills old_logp, adv
                    loss = cast_torch.policy_loss(
                        logp, old_logp[mi], adv[mi], m, clip_low=c.clip_low, clip_high=c.clip_high,
                        agg=c.loss_agg, ref_logp=None if ref_logp is None else ref_logp[mi], beta=c.kl_beta,
                        max_len=c.max_new_tokens, validate=False)
                    weight = self._agg_denominator(m) / denom   # micro share of the minibatch loss
                    (loss * weight).backward()
                    mb_loss += float(loss.detach()) * weight
                    with torch.no_grad():
                        d = (old_logp[mi] - logp.detach()).float()                         # [micro, T]
                        ratio = torch.exp(-d)                                             # [micro, T]
                        a = adv[mi]
                        clipped = ((a > 0) & (ratio > 1 + c.clip_high)) | ((a < 0) & (ratio < 1 - c.clip_low))
                        kl_sum += float(((torch.exp(d) - d - 1) * m).sum())
                        clip_sum += float((clipped & m).sum())
                        tok_sum += float(m.sum())
                if skipped:
                    break
                if not math.isfinite(mb_loss):
                    skipped = "non-finite loss"
                    break
                max_norm = c.max_grad_norm if c.max_grad_norm > 0 else float("inf")
                norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
                if not math.isfinite(norm):
                    skipped = "non-finite gradient"
                    break
                self.optimizer.step()
                self.scheduler.step()
                losses.append(mb_loss)
                norms.append(norm)
            if skipped:
                break
        self.optimizer.zero_grad(set_to_none=True)
        self.model.eval()
        nan = float("nan")
        out: dict[str, Any] = {
            "loss": float(np.mean(losses)) if losses else nan,
            "grad_norm": float(np.mean(norms)) if norms else nan,
            "approx_kl": kl_sum / tok_sum if tok_sum else 0.0,
            "clip_frac": clip_sum / tok_sum if tok_sum else 0.0,
            "skipped": int(skipped is not None),
        }
        if skipped:
            out["skip_reason"] = skipped
        return out

    def _agg_denominator(self, m: torch.Tensor) -> float:
        """The aggregation's denominator for rows ``m`` (so micro-batch losses add up exactly)."""
        agg = self.config.loss_agg
        if agg == "token-mean":
            return max(float(m.sum()), 1.0)
        if agg == "seq-mean-token-mean":
            return max(float((m.sum(1) > 0).sum()), 1.0)
        return float(m.shape[0])   # seq-mean-token-sum-norm: N * L, L constant

    def _lr_factor(self, update: int) -> float:
        c = self.config
        if update < c.warmup_steps:
            return (update + 1) / (c.warmup_steps + 1)
        if c.lr_schedule == "constant":
            return 1.0
        frac = min(1.0, (update - c.warmup_steps) / max(1, self.total_updates - c.warmup_steps))
        if c.lr_schedule == "linear":
            return 1.0 - frac
        return 0.5 * (1.0 + math.cos(math.pi * frac))

    def _autocast(self):
        if not self.use_bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    # =====================================================================================
    # evaluation
    # =====================================================================================
    @torch.no_grad()
    def evaluate(self, batch_prompts: int = 64) -> dict[str, float]:
        """Greedy pass@1 on the evaluation problems (``eval_accuracy``); ``eval_pass@k`` if asked.

        A completion is correct when its reward exceeds ``cast.correct_threshold``.
        Sampling for pass@k runs under a forked RNG seeded by (seed, step), so evaluating
        never changes the training run's random stream.
        """
        c, tok = self.config, self.tokenizer
        thr = c.cast.correct_threshold
        correct, passed = [], []
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []), self._autocast():
            torch.manual_seed(c.seed * 1_000_003 + self.step_count)
            for s in range(0, len(self.eval_rows), batch_prompts):
                rows = self.eval_rows[s:s + batch_prompts]
                prompts = [render_prompt(tok, r["prompt"], self.use_template) for r in rows]
                ro = generate(self.model, tok, prompts, num_samples=1, max_new_tokens=c.max_new_tokens,
                              do_sample=False, device=self.device, engine=c.generation_engine)
                correct += [float(v > thr) for v in self._rewards(ro.texts, rows, 1).tolist()]
                if c.eval_pass_k:
                    ro = generate(self.model, tok, prompts, num_samples=c.eval_pass_k,
                                  max_new_tokens=c.max_new_tokens, temperature=c.temperature, top_p=c.top_p,
                                  top_k=c.top_k, device=self.device, engine=c.generation_engine)
                    r = self._rewards(ro.texts, rows, c.eval_pass_k).view(len(rows), c.eval_pass_k)
                    passed += (r > thr).any(dim=1).float().tolist()
        out = {"eval_accuracy": float(np.mean(correct))}
        if c.eval_pass_k:
            out[f"eval_pass@{c.eval_pass_k}"] = float(np.mean(passed))
        return out

    # =====================================================================================
    # the loop
    # =====================================================================================
    @property
    def logger(self) -> MetricsLogger:
        if self._logger is None:
            c = self.config
            self._logger = MetricsLogger(self.out, tensorboard=c.tensorboard, wandb=c.wandb,
                                         wandb_project=c.wandb_project, run_config=c.to_dict())
        return self._logger

    def train(self) -> dict[str, Any]:
        """Run until ``max_steps``; returns the last step's metrics (with the final evaluation)."""
        c = self.config
        if self.step_count == 0 and c.eval_every:
            first = {"step": 0, **self.evaluate()}
            self.logger.log(first)
            self.log(f"step 0: eval_accuracy {first['eval_accuracy']:.3f}")
        last: dict[str, Any] = {}
        try:
            from tqdm.auto import tqdm
            bar = tqdm(total=c.max_steps, initial=self.step_count, disable=not c.progress, desc="cast-train",
                       unit="step", dynamic_ncols=True)
        except ImportError:   # pragma: no cover - tqdm is a declared dependency
            bar = None
        try:
            while self.step_count < c.max_steps:
                last = self.step()
                if bar is not None:
                    post = {"reward": f"{last['reward_mean']:.3f}"}
                    if "eval_accuracy" in last:
                        post["eval_acc"] = f"{last['eval_accuracy']:.3f}"
                    bar.set_postfix(post, refresh=False)
                    bar.update(1)
            if c.save_final and self.last_saved_step != self.step_count:
                self.save()
            self.run_dir.release(self.log)   # finished: a replaced run is no longer needed
        finally:
            if bar is not None:
                bar.close()
            self.close()
        return last

    def close(self) -> None:
        if self._logger is not None:
            self._logger.close()
            self._logger = None

    # =====================================================================================
    # checkpoints (format: checkpoint.py; what is saved and restored: resume.py)
    # =====================================================================================
    def save(self) -> Path:
        """Write an atomic checkpoint of the current state; a replaced run is deleted after the first."""
        path = save_checkpoint(self.ckpt_dir, self.step_count, self.model, self.tokenizer, capture_state(self),
                               keep=self.config.keep_checkpoints)
        self.last_saved_step = self.step_count
        self.run_dir.release(self.log)
        return path


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          allow_config_change: bool = False, log: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    """Convenience: ``Trainer(config, resume=..., overwrite=..., allow_config_change=...).train()``."""
    return Trainer(config, resume=resume, overwrite=overwrite, allow_config_change=allow_config_change,
                   log=log).train()
