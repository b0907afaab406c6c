"""Atomic, pickle-free checkpoints: ``OUT/checkpoints/step-N`` and a ``latest`` pointer.

A checkpoint directory holds::

    model/                      save_pretrained: the full weights, or for LoRA only the policy
                                adapter ("default"; never the base weights) + the tokenizer
    trainer_state.json          the trainer state's tree: step, counters, data position,
                                scheduler, optimizer hyper-parameters, Python/numpy RNG, the
                                run's config; tensors appear as references into ...
    trainer_state.safetensors   ... optimizer moments, torch RNG states, teacher weights

Reading a checkpoint runs no code: JSON and safetensors only, with a size cap on the JSON.
A checkpoint of cast-rlvr 0.1.0 (a pickled ``trainer_state.pt``) is read with
``torch.load(weights_only=True)`` and an allow-list of exactly the numpy types its RNG
state holds, so a crafted file is refused, never executed.

Writes go to ``checkpoints/.tmp-step-N-<random>`` and move into place with one
``os.replace``; the ``latest`` file (the name of the newest complete checkpoint) is
replaced the same way. A crash at any moment leaves the previous checkpoint and pointer
intact; stale ``.tmp-*`` directories are removed at the next save. ``latest`` must name a
``step-N`` directory inside ``checkpoints/``.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

__all__ = [
    "save_checkpoint", "latest_checkpoint", "list_checkpoints", "load_trainer_state", "read_checkpoint_config",
    "check_checkpoint_files", "safetensors_problem", "load_model_weights", "rng_state", "set_rng_state", "pack_state", "unpack_state",
    "STATE_JSON", "STATE_TENSORS", "LEGACY_STATE", "FORMAT",
]

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
LEGACY_STATE = "trainer_state.pt"
FORMAT = "cast-train-checkpoint/2"
_STEP_DIR = re.compile(r"step-(\d+)")
_MAX_JSON_BYTES = 64 << 20          # the tree is kilobytes; anything near this is not ours
_NDARRAY_KINDS = "biuf"             # bool, int, uint, float: raw bytes round-trip exactly
_KIND = "__kind__"


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU (and CUDA) RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- the state tree: JSON + tensors ---------------------------------------------------------
def pack_state(state: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a state tree into a JSON-able tree and its tensors (named by their path).

    Leaves may be None, bool, int, float, str, ``torch.Tensor`` or a numeric ``np.ndarray``;
    containers dicts, lists and tuples. Tensors become ``{"__kind__": "tensor", "key": path}``,
    arrays ``{"__kind__": "ndarray", "key", "dtype", "shape"}`` (raw bytes, exact), tuples
    ``{"__kind__": "tuple", "items"}``, dicts with non-string keys ``{"__kind__": "dict",
    "items": [[k, v], ...]}``. Anything else is a ``TypeError`` (a bug, caught at save time).
    """
    tensors: dict[str, torch.Tensor] = {}

    def enc(x: Any, path: str) -> Any:
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, torch.Tensor):
            tensors[path] = x.detach().cpu().contiguous()
            return {_KIND: "tensor", "key": path}
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in _NDARRAY_KINDS:
                raise TypeError(f"checkpoint: cannot store a numpy array of dtype {x.dtype} at {path}")
            raw = np.ascontiguousarray(x).view(np.uint8).reshape(-1)
            tensors[path] = torch.from_numpy(raw.copy())
            return {_KIND: "ndarray", "key": path, "dtype": x.dtype.str, "shape": list(x.shape)}
        if isinstance(x, np.generic):
            return enc(x.item(), path)
        if isinstance(x, tuple):
            return {_KIND: "tuple", "items": [enc(v, f"{path}.{i}") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [enc(v, f"{path}.{i}") for i, v in enumerate(x)]
        if isinstance(x, dict):
            if all(isinstance(k, str) for k in x) and _KIND not in x:
                return {k: enc(v, f"{path}.{k}") for k, v in x.items()}
            return {_KIND: "dict", "items": [[enc(k, f"{path}.key{i}"), enc(v, f"{path}.{k}")]
                                              for i, (k, v) in enumerate(x.items())]}
        raise TypeError(f"checkpoint: cannot store a {type(x).__name__} at {path}")

    return enc(state, "state"), tensors


def unpack_state(tree: Any, tensors: dict[str, torch.Tensor], where: str = "checkpoint") -> Any:
    """Inverse of :func:`pack_state`; a malformed tree is a ``ValueError`` naming ``where``."""
    def bad(what: str) -> ValueError:
        return ValueError(f"resume: {where} is damaged or was not written by cast-train ({what}); "
                          "resume from another checkpoint or start a new run")

    def dec(x: Any) -> Any:
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [dec(v) for v in x]
        if not isinstance(x, dict):
            raise bad(f"unexpected {type(x).__name__}")
        kind = x.get(_KIND)
        if kind is None:
            return {k: dec(v) for k, v in x.items()}
        if kind in ("tensor", "ndarray"):
            key = x.get("key")
            if not isinstance(key, str) or key not in tensors:
                raise bad(f"tensor {key!r} is missing")
            if kind == "tensor":
                return tensors[key]
            try:
                dtype = np.dtype(x["dtype"])
                shape = tuple(int(s) for s in x["shape"])
                if dtype.kind not in _NDARRAY_KINDS:
                    raise ValueError(dtype)
                return np.frombuffer(tensors[key].numpy().tobytes(), dtype=dtype).reshape(shape).copy()
            except (KeyError, TypeError, ValueError) as e:
                raise bad(f"array {key!r}: {e}") from None
        if kind == "tuple" and isinstance(x.get("items"), list):
            return tuple(dec(v) for v in x["items"])
        if kind == "dict" and isinstance(x.get("items"), list):
            out = {}
            for item in x["items"]:
                if not (isinstance(item, list) and len(item) == 2):
                    raise bad("a dict entry is not a [key, value] pair")
                key = dec(item[0])
                if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                    raise bad(f"unhashable dict key {type(key).__name__}")
                out[key] = dec(item[1])
            return out
        raise bad(f"unknown entry kind {kind!r}")

    return dec(tree)


# -- listing, the pointer ----------------------------------------------------------------------
def _is_complete(path: Path) -> bool:
    return (path / STATE_JSON).is_file() or (path / LEGACY_STATE).is_file()


def _inside(path: Path, ckpt_dir: Path) -> bool:
    """``path`` is a real directory directly inside ``ckpt_dir`` (no symlink leads out)."""
    return not path.is_symlink() and path.is_dir() and path.resolve().parent == ckpt_dir.resolve()


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Complete checkpoints ``step-N`` in ``ckpt_dir``, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir() if _STEP_DIR.fullmatch(p.name) and _inside(p, ckpt_dir)
             and _is_complete(p)]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_checkpoint(ckpt_dir: Path) -> Optional[Path]:
    """The checkpoint named by ``latest`` (or the newest complete one); None if there is none.

    Raises:
        ValueError: ``latest`` names anything but a ``step-N`` directory inside ``ckpt_dir``.
    """
    pointer = ckpt_dir / "latest"
    if pointer.is_file():
        with open(pointer, "rb") as f:
            raw = f.read(256)
        name = raw.decode("utf-8", errors="replace").strip()
        cand = ckpt_dir / name
        if not _STEP_DIR.fullmatch(name) or (cand.exists() and not _inside(cand, ckpt_dir)):
            raise ValueError(f"resume: {str(pointer)!r} names {name[:80]!r}, which is not a checkpoint directory "
                             f"inside {str(ckpt_dir)!r} (expected step-N); the run folder was edited or tampered "
                             "with: delete that file to resume from the newest checkpoint")
        if _is_complete(cand):
            return cand
    found = list_checkpoints(ckpt_dir)
    return found[-1] if found else None


# -- writing -----------------------------------------------------------------------------------
def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_model(model, directory: Path) -> None:
    if hasattr(model, "peft_config"):
        # Only the policy adapter: the teacher adapter's weights are trainer state, and the
        # base weights are the model source's (save_embedding_layers=False: we never resize them).
        model.save_pretrained(str(directory), selected_adapters=["default"], save_embedding_layers=False)
    else:
        model.save_pretrained(str(directory))


def save_checkpoint(ckpt_dir: Path, step: int, model, tokenizer, state: dict[str, Any], *, keep: int = 2) -> Path:
    """Write checkpoint ``step`` atomically and prune to the newest ``keep``.

    Args:
        ckpt_dir: ``OUT/checkpoints``.   step: RL steps completed.
        model: the policy (a peft model saves only its "default" adapter).
        tokenizer: saved with ``save_pretrained`` next to the weights.
        state: the trainer state tree (see :func:`pack_state`); ``state["config"]`` is kept
            readable on its own by :func:`read_checkpoint_config`.

    Returns:
        The final checkpoint directory.
    """
    from safetensors.torch import save_file

    tree, tensors = pack_state(state)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    for stale in ckpt_dir.glob(".tmp-step-*"):
        shutil.rmtree(stale, ignore_errors=True)
    final = ckpt_dir / f"step-{step}"
    tmp = ckpt_dir / f".tmp-step-{step}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    _save_model(model, tmp / "model")
    tokenizer.save_pretrained(str(tmp / "model"))
    save_file(tensors, str(tmp / STATE_TENSORS), metadata={"format": FORMAT})
    # The JSON is written last: a directory without it is not a checkpoint.
    (tmp / STATE_JSON).write_text(json.dumps({"format": FORMAT, "state": tree}), encoding="utf-8")
    if final.exists():   # a re-save of the same step (resume at the last step): replace it
        old = ckpt_dir / f".tmp-old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _write_atomic_text(ckpt_dir / "latest", final.name + "\n")
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


# -- reading -----------------------------------------------------------------------------------
def _read_tree(path: Path) -> Any:
    f = path / STATE_JSON
    if f.stat().st_size > _MAX_JSON_BYTES:
        raise ValueError(f"resume: {str(f)!r} is larger than {_MAX_JSON_BYTES >> 20} MB; it was not written by "
                         "cast-train")
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"resume: {str(f)!r} is not valid JSON ({e}); the checkpoint is damaged, resume from "
                         "another one or start a new run") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("state"), dict):
        raise ValueError(f"resume: {str(f)!r} is not a {FORMAT} trainer state")
    return doc["state"]


def _numpy_safe_globals() -> list[Any]:
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _load_legacy(path: Path) -> dict[str, Any]:
    """A cast-rlvr 0.1.0 ``trainer_state.pt``, unpickled with torch's weights-only loader."""
    f = path / LEGACY_STATE
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            state = torch.load(f, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as e:
        text = str(e)
        called = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        refused = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        detail = (f"it would call {called.group(1)}" if called else refused.group(1)[:160] if refused else
                  (text.strip().splitlines() or [type(e).__name__])[0][:160])
        raise ValueError(f"resume: refused {str(f)!r}: it holds more than tensors and plain data ({detail}); "
                         "cast-train never runs code from a run folder. Use a checkpoint written by cast-train, "
                         "or start a new run") from None
    if not isinstance(state, dict):
        raise ValueError(f"resume: {str(f)!r} does not hold a trainer state")
    return state


def load_trainer_state(path: Path) -> dict[str, Any]:
    """The trainer state of checkpoint directory ``path`` (no code runs while reading it)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not (path / STATE_JSON).is_file():
        return _load_legacy(path)
    tree = _read_tree(path)
    try:
        tensors = load_file(str(path / STATE_TENSORS))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"resume: {str(path / STATE_TENSORS)!r} cannot be read ({e}); the checkpoint is "
                         "damaged, resume from another one or start a new run") from None
    try:
        state = unpack_state(tree, tensors, where=str(path))
    except RecursionError:
        raise ValueError(f"resume: {str(path / STATE_JSON)!r} is nested too deeply; it was not written by "
                         "cast-train") from None
    if not isinstance(state, dict):
        raise ValueError(f"resume: {str(path)!r} does not hold a trainer state")
    return state


def read_checkpoint_config(path: Path) -> dict[str, Any]:
    """The run config stored in checkpoint ``path`` (JSON only; cheap)."""
    if (path / STATE_JSON).is_file():
        config = unpack_state(_read_tree(path).get("config"), {}, where=str(path))
    else:
        config = _load_legacy(path).get("config")
    if not isinstance(config, dict):
        raise ValueError(f"resume: checkpoint {str(path)!r} records no run config; it was not written by cast-train")
    return config


def safetensors_problem(f: Path) -> Optional[str]:
    """Why ``f`` is not a readable safetensors file (its header only: cheap), or None."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(f), framework="pt"):
            return None
    except (SafetensorError, OSError) as e:
        return str(e)


def check_checkpoint_files(path: Path) -> None:
    """Cheap integrity check of checkpoint ``path`` (safetensors headers only, no tensor data)."""
    files = sorted((path / "model").glob("*.safetensors")) if (path / "model").is_dir() else []
    if not files:
        raise ValueError(f"resume: checkpoint {str(path)!r} has no safetensors weights in model/; resume from "
                         "another checkpoint or start a new run")
    if (path / STATE_JSON).is_file():
        files.append(path / STATE_TENSORS)
    for f in files:
        problem = safetensors_problem(f)
        if problem:
            raise ValueError(f"resume: {str(f)!r} cannot be read ({problem}); the checkpoint is damaged, resume "
                             "from another one or start a new run")


def load_model_weights(model, model_dir: Path, *, lora: bool) -> None:
    """Load a checkpoint's ``model/`` weights into ``model`` (safetensors only)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ValueError(f"resume: no safetensors weights in {str(model_dir)!r}")
    sd: dict[str, torch.Tensor] = {}
    try:
        for f in files:
            sd.update(load_file(str(f)))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"resume: the weights in {str(model_dir)!r} cannot be read ({e})") from None
    if lora:
        from peft import set_peft_model_state_dict
        result = set_peft_model_state_dict(model, sd, adapter_name="default")
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise ValueError(f"resume: the adapter in {str(model_dir)!r} does not match this model "
                             f"(unexpected {sorted(unexpected)[:5]})")
        return
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # Tied output embeddings are saved once; anything else missing is a real mismatch.
    tied = {k for k in missing if "lm_head" in k}
    if set(missing) - tied or unexpected:
        raise ValueError(f"resume: checkpoint weights do not match the model (missing {sorted(set(missing) - tied)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]})")
