"""A tiny, fully local tokenizer and causal LM, for tests, demos and the tiny presets.

Nothing here downloads anything. The tokenizer is character level (every printable
ASCII character and the newline are tokens, plus ``<pad>``, ``<bos>``, ``<eos>`` and
``<unk>``), built with the ``tokenizers`` library and wrapped as a
``transformers.PreTrainedTokenizerFast``, so it round-trips arithmetic text exactly and
works with ``save_pretrained`` / ``AutoTokenizer.from_pretrained``. The model is a
randomly initialised Llama or Qwen2 of a few hundred thousand parameters.

Signatures are stable (other code and tests depend on them):

    make_tokenizer(save_dir=None) -> PreTrainedTokenizerFast
    make_tiny_model(tokenizer, *, arch="llama", hidden_size=64, num_layers=2,
                    num_heads=4, seed=0) -> PreTrainedModel
"""

from __future__ import annotations

import os
from typing import Optional

import torch

__all__ = ["make_tokenizer", "make_tiny_model", "TINY_CHAT_TEMPLATE", "SPECIAL_TOKENS", "ARCHS"]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
ARCHS = ("llama", "qwen2")

# A minimal chat template: the messages' contents joined by newlines, no role markers
# and an empty generation prompt. A single user message therefore renders to exactly
# its content, so the tiny presets see the same text with or without the template,
# while code paths that call `apply_chat_template` (TRL, the trainer's "auto" mode)
# still work.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['content'] }}"
    "{% if not loop.last %}\n{% endif %}{% endfor %}"
)


def make_tokenizer(save_dir: Optional[str | os.PathLike] = None):
    """Build the character-level tokenizer (vocabulary of 100 tokens).

    Args:
        save_dir: when given, the tokenizer is also written there with
            ``save_pretrained`` (the directory is created if needed).

    Returns:
        ``transformers.PreTrainedTokenizerFast`` with ``pad``/``bos``/``eos``/``unk``
        tokens set, ``padding_side="left"`` (decoder-only batched generation) and the
        minimal chat template :data:`TINY_CHAT_TEMPLATE`. Ids: ``<pad>`` = 0,
        ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3, then the characters. Encoding adds
        no special tokens; unknown characters map to ``<unk>``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {tok: i for i, tok in enumerate(list(SPECIAL_TOKENS) + chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    # Every character (whitespace included) is its own pre-token, hence its own token.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",
        model_max_length=1024,
    )
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    if save_dir is not None:
        os.makedirs(save_dir, exist_ok=True)
        tokenizer.save_pretrained(str(save_dir))
    return tokenizer


def make_tiny_model(tokenizer, *, arch: str = "llama", hidden_size: int = 64, num_layers: int = 2,
                    num_heads: int = 4, seed: int = 0):
    """Build a randomly initialised tiny causal LM matching ``tokenizer``.

    Args:
        tokenizer: gives ``vocab_size`` (``len(tokenizer)``) and the pad/bos/eos ids.
        arch: ``"llama"`` or ``"qwen2"``.
        hidden_size: model width; must be a positive multiple of ``num_heads``.
        num_layers: number of decoder layers (>= 1).
        num_heads: attention heads (>= 1); key/value heads equal query heads.
        seed: initialisation seed (the global torch RNG is left untouched).

    Returns:
        ``transformers.LlamaForCausalLM`` or ``Qwen2ForCausalLM`` in float32, eval mode,
        tied input/output embeddings, MLP width ``4 * hidden_size``, context 512.
    """
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    if arch not in ARCHS:
        raise ValueError(f"arch: must be one of {ARCHS}, got {arch!r}")
    for name, value in (("hidden_size", hidden_size), ("num_layers", num_layers), ("num_heads", num_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: must be an int >= 1, got {value!r}")
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size: must be a multiple of num_heads={num_heads}, got {hidden_size}")
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        initializer_range=0.02,
    )
    config = LlamaConfig(**common) if arch == "llama" else Qwen2Config(**common)
    # Initialise under a private RNG so building a model never perturbs the caller's stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.eval()
    return model
