"""The model cache: where derived models live, and how a folder is published into it.

Two things are cached, both keyed by a hash of everything that determines them, so a
later run finds the result instead of redoing the work:

- the warm-started tiny model (``tiny-<key>``, :mod:`cast_torch.train.model`);
- a GGUF file converted to a transformers folder (``gguf-v1-<sha>``, :mod:`cast_torch.train.gguf`).

A cache entry is built in a private temporary sibling folder and published with one
``os.replace``: readers see either no entry or a complete one, never a half-written
folder, and two processes building the same entry at once cannot corrupt it (the
second ``os.replace`` fails on the non-empty target; that process drops its own copy,
which is identical, and uses the winner's).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

__all__ = ["cache_root", "atomic_dir"]


def cache_root(config) -> Path:
    """Root of the model cache: ``cache_dir``, else ``$CAST_CACHE_DIR``, else ``~/.cache/cast-rlvr``."""
    if config.cache_dir:
        return Path(config.cache_dir)
    env = os.environ.get("CAST_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "cast-rlvr"


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target``; publish it as ``target`` on success.

    On an exception inside the block the temporary folder is removed and ``target`` is
    untouched. If ``target`` already exists when publishing (another process finished
    first), the temporary copy is discarded and ``target`` is kept as it is.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():   # not a lost race: a real failure to publish
            raise
