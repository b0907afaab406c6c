"""The policy: a local Hugging Face model, a GGUF file, or the tiny model with a cached warm start.

- ``config.model`` a directory: ``AutoModelForCausalLM`` + ``AutoTokenizer`` loaded with
  ``local_files_only=True`` (nothing is ever downloaded).
- ``config.model`` a GGUF (a ``.gguf`` file, a folder with ``gguf_file``, or a packaged
  model such as ``"smollm2-135m-instruct"``): converted once into a transformers folder in
  the cache (:mod:`cast_torch.train.gguf`), which is what gets loaded.
- ``config.model == "tiny"``: :mod:`cast_torch.train.tiny` builds a character-level
  tokenizer and a small Llama/Qwen2, then a short supervised warm start on generated
  worked solutions (``warm_start_noise`` of them with a wrong final answer) gives RL a
  policy with real but imperfect accuracy. The result is cached under
  ``cache_dir`` / ``$CAST_CACHE_DIR`` / ``~/.cache/cast-rlvr`` keyed by a hash of
  everything that determines it, written atomically, so later runs skip it.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from . import gguf
from .cache import atomic_dir, cache_root
from .data import WARM_START_SEED, _builtin_split, arithmetic_problem, builtin_terms, noisy_solution
from .tiny import make_tiny_model, make_tokenizer

__all__ = [
    "check_model_source", "load_policy", "warm_start", "warm_start_key", "cache_root", "render_prompt", "uses_chat_template",
    "apply_lora", "resolve_device",
]

_TINY_VERSION = "char-v2"   # bump when tiny.py or the warm start changes what gets cached


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"TrainConfig.device: {name!r} requested but CUDA is not available")
    return torch.device(name)


def warm_start_key(config) -> str:
    """Hash of every setting that determines the warm-started tiny model."""
    fields = {k: getattr(config, k) for k in (
        "tiny_arch", "tiny_hidden_size", "tiny_layers", "tiny_heads", "warm_start_steps", "warm_start_lr",
        "warm_start_batch_size", "warm_start_noise", "data", "max_operand", "eval_size", "use_chat_template")}
    fields["num_terms"] = builtin_terms(config) if config.data in ("arithmetic", "multistep") else None
    fields["version"] = _TINY_VERSION
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def uses_chat_template(tokenizer, mode: str) -> bool:
    """Whether prompts are wrapped with the chat template (``mode``: auto/always/never)."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if mode == "always" and not has:
        raise ValueError("TrainConfig.use_chat_template: 'always' but the tokenizer has no chat template")
    return has if mode == "auto" else mode == "always"


def render_prompt(tokenizer, prompt: Any, use_template: bool) -> str:
    """Prompt text fed to the model: a string or chat messages, through the template if used."""
    if isinstance(prompt, list):
        if not use_template:
            raise ValueError("prompt: chat messages need a tokenizer chat template "
                             "(set use_chat_template to 'auto' or 'always' with a chat model)")
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    if not isinstance(prompt, str):
        raise TypeError(f"prompt: must be a string or a list of chat messages, got {type(prompt).__name__}")
    if use_template:
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return prompt


# A transformers model folder: config.json, weights in one of these layouts, and a tokenizer.
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model",
                    "sentencepiece.bpe.model", "tekken.json")
_FOLDER_HINT = ("a transformers model folder holds config.json, the weights (model.safetensors or "
                "shards) and the tokenizer files (tokenizer.json, ...), as save_pretrained writes them")


def check_model_source(config) -> Optional[Path]:
    """Check ``config.model`` before anything loads: ``"tiny"``, a GGUF (a ``.gguf`` file, a
    folder with ``gguf_file``, or a packaged model), or a local model folder whose
    config.json, weights and tokenizer are present and readable.

    Reads only small files (config.json, the tokenizer, safetensors headers, a GGUF's
    magic bytes); never the weights. Every problem is a ``ValueError`` naming the folder
    or file and what to do.

    Returns:
        None for ``"tiny"``; the GGUF file for a GGUF source (the ``gguf`` package checked
        too); otherwise the model folder.
    """
    if config.model == "tiny":
        if config.gguf_file:
            raise ValueError("TrainConfig.gguf_file: set only with a GGUF model folder, not with model = 'tiny'")
        if config.data not in ("arithmetic", "multistep"):
            raise ValueError("TrainConfig.model: 'tiny' is trained on the built-in problems; set data to "
                             "'arithmetic' or 'multistep' or give a local model directory")
        return None
    gguf_file = gguf.gguf_path(config.model, config.gguf_file)
    if gguf_file is not None:
        gguf.check_gguf_support()
        return gguf_file
    path = Path(config.model)
    what = f"TrainConfig.model: {config.model!r}"
    if not path.exists():
        raise ValueError(f"{what} does not exist (models are never downloaded; give a local folder, a .gguf "
                         f"file, one of {sorted(gguf.PACKAGED_MODELS)}, or 'tiny'); " + _FOLDER_HINT)
    if not path.is_dir():
        raise ValueError(f"{what} is a file, not a model folder or a .gguf file; " + _FOLDER_HINT)
    found = sorted(p.name for p in path.glob("*.gguf"))
    if found and not (path / "config.json").is_file():
        raise ValueError(f"{what} has no config.json but holds GGUF file(s) {found[:3]}: set gguf_file to one")
    _check_model_config(path, what)
    _check_model_weights(path, what)
    _check_tokenizer(path, what)
    return path


def _check_model_config(path: Path, what: str) -> None:
    from transformers import AutoConfig

    cfg = path / "config.json"
    if not cfg.is_file():
        raise ValueError(f"{what} has no config.json; " + _FOLDER_HINT)
    try:
        doc = json.loads(cfg.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what}: config.json is not valid JSON ({e}); restore it from the original model") \
            from None
    if not isinstance(doc, dict) or "model_type" not in doc:
        raise ValueError(f"{what}: config.json has no model_type, so it is not a transformers model config")
    try:
        AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (ValueError, OSError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{what}: config.json cannot be used by transformers: {first}") from e


def _check_model_weights(path: Path, what: str) -> None:
    from .checkpoint import safetensors_problem

    present = [name for name in _WEIGHT_FILES if (path / name).is_file()]
    shards = sorted(path.glob("*.safetensors"))
    if not present and not shards:
        raise ValueError(f"{what} has no weights (none of {list(_WEIGHT_FILES)}); " + _FOLDER_HINT)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            names = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{what}: model.safetensors.index.json is not a valid shard index ({e})") from None
        missing = sorted(n for n in names if not (path / n).is_file())
        if missing:
            raise ValueError(f"{what}: the shard index names missing weight files {missing[:3]}")
    for f in shards:   # the header only: cheap, and catches truncated or foreign files
        problem = safetensors_problem(f)
        if problem:
            raise ValueError(f"{what}: weights file {f.name} is not a readable safetensors file ({problem}); "
                             "download or convert the model again")


def _check_tokenizer(path: Path, what: str) -> None:
    from transformers import AutoTokenizer

    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise ValueError(f"{what} has no tokenizer files (none of {list(_TOKENIZER_FILES)}); save the model's "
                         "tokenizer into the same folder (tokenizer.save_pretrained(folder))")
    try:
        AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:   # tokenizers raises bare Exceptions; a user folder is the input here
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{what}: the tokenizer cannot be loaded: {first[:300]}") from e


def _prepare_tokenizer(tokenizer) -> None:
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ValueError("model: the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"   # decoder-only batched generation


def load_policy(config, log: Callable[[str], None] = print) -> tuple[Any, Any, dict[str, Any]]:
    """The starting policy and tokenizer for ``config`` (float32, on CPU, eval mode).

    Returns:
        ``(model, tokenizer, info)``; ``info`` has ``source`` ("path", "gguf", "tiny-cache" or
        "tiny-warm-start"), ``path`` of the loaded folder (for a GGUF: its converted folder,
        plus ``gguf``, ``sha256`` and ``gguf_cache`` = "hit"/"converted"), ``cache_dir`` for
        the tiny model and the warm-start stats.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = check_model_source(config)
    if source is not None:
        info: dict[str, Any] = {"source": "path", "path": str(source)}
        if source.is_file():   # a GGUF: load its converted folder (converting on the first use)
            folder, record = gguf.ensure_converted(source, cache_root(config), log=log)
            info = {"source": "gguf", "gguf": str(source), "path": str(folder), "gguf_cache": record["cache"],
                    "sha256": record["sha256"]}
            source = folder
        tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(source), local_files_only=True, dtype=torch.float32)
        _prepare_tokenizer(tokenizer)
        model.eval()
        return model, tokenizer, info

    target = cache_root(config) / f"tiny-{warm_start_key(config)}"
    if (target / "warm_start.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(target), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(target), local_files_only=True, dtype=torch.float32)
        _prepare_tokenizer(tokenizer)
        model.eval()
        info = json.loads((target / "warm_start.json").read_text())
        log(f"warm start: cache hit, loaded {target} (skipping {config.warm_start_steps} supervised steps)")
        return model, tokenizer, {"source": "tiny-cache", "cache_dir": str(target), **info}

    tokenizer = make_tokenizer()
    _prepare_tokenizer(tokenizer)
    model = make_tiny_model(tokenizer, arch=config.tiny_arch, hidden_size=config.tiny_hidden_size,
                            num_layers=config.tiny_layers, num_heads=config.tiny_heads, seed=0)
    log(f"warm start: cache miss ({target}); {config.warm_start_steps} supervised steps on generated "
        f"solutions ({config.warm_start_noise:.0%} skip the last operation)")
    info = warm_start(model, tokenizer, config, log=log)
    _save_atomically(model, tokenizer, info, target)
    log(f"warm start: done in {info['seconds']:.1f}s, final loss {info['final_loss']:.3f}; cached at {target}")
    return model, tokenizer, {"source": "tiny-warm-start", "cache_dir": str(target), **info}


def _save_atomically(model, tokenizer, info: dict, target: Path) -> None:
    # Another process finishing the same warm start first is fine: its copy is identical.
    with atomic_dir(target) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "warm_start.json").write_text(json.dumps(info, indent=1))


def warm_start(model, tokenizer, config, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Supervised warm start of ``model`` on generated worked solutions (in place).

    Cross-entropy on the solution tokens and EOS (prompt tokens masked), AdamW with a
    linear warm-up of 50 steps and a cosine decay to 10%, gradient clip 1.0, batches of
    ``warm_start_batch_size`` fresh problems (never an evaluation prompt), a fraction
    ``warm_start_noise`` of them with a wrong final answer. Deterministic (own seeds).

    Returns:
        ``{"warm_start_steps", "final_loss", "seconds", "key"}``.
    """
    steps = config.warm_start_steps
    t0 = time.perf_counter()
    if steps == 0:
        return {"warm_start_steps": 0, "final_loss": float("nan"), "seconds": 0.0, "key": warm_start_key(config)}
    use_template = uses_chat_template(tokenizer, config.use_chat_template)
    _, eval_rows = _builtin_split(config)
    banned = {r["prompt"] for r in eval_rows}
    rng = random.Random(WARM_START_SEED)
    terms = builtin_terms(config)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.warm_start_lr, weight_decay=0.0)
    warm = min(50, steps)

    def lr_at(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        frac = (s - warm) / max(1, steps - warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

    model.train()
    ema_loss = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WARM_START_SEED)
        for s in range(steps):
            seqs, labels = [], []
            while len(seqs) < config.warm_start_batch_size:
                p = arithmetic_problem(rng, max_operand=config.max_operand, num_terms=terms)
                if p["prompt"] in banned:
                    continue
                prompt_ids = tokenizer(render_prompt(tokenizer, p["prompt"], use_template),
                                       add_special_tokens=False).input_ids
                target_ids = tokenizer(noisy_solution(p, rng, config.warm_start_noise),
                                       add_special_tokens=False).input_ids + [eos]
                seqs.append(prompt_ids + target_ids)
                labels.append([-100] * len(prompt_ids) + target_ids)
            length = max(map(len, seqs))
            ids = torch.full((len(seqs), length), pad, dtype=torch.long)           # [B, L]
            lab = torch.full((len(seqs), length), -100, dtype=torch.long)          # [B, L]
            att = torch.zeros((len(seqs), length), dtype=torch.long)               # [B, L]
            for i, (x, y) in enumerate(zip(seqs, labels)):
                ids[i, :len(x)] = torch.tensor(x)
                lab[i, :len(y)] = torch.tensor(y)
                att[i, :len(x)] = 1
            for group in optimizer.param_groups:
                group["lr"] = config.warm_start_lr * lr_at(s)
            loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            ema_loss = loss.item() if ema_loss is None else 0.95 * ema_loss + 0.05 * loss.item()
            if (s + 1) % max(1, steps // 5) == 0:
                log(f"warm start: step {s + 1}/{steps} loss {ema_loss:.3f}")
    model.eval()
    return {"warm_start_steps": steps, "final_loss": float(ema_loss), "seconds": time.perf_counter() - t0,
            "key": warm_start_key(config)}


def apply_lora(model, config):
    """Wrap ``model`` in a peft LoRA adapter named ``"default"`` (requires peft)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:   # pragma: no cover - peft is a declared extra
        raise ImportError("TrainConfig.lora: needs peft (pip install 'cast-rlvr[lora]')") from e
    targets: Any = config.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
        if not targets:
            raise ValueError("TrainConfig.lora_target_modules: no module names given")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, lora)
