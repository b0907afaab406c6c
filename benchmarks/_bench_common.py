"""Helpers shared by the real-model benchmarks (imported from the scripts' own folder)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def limit_threads(n: int) -> None:
    """One BLAS/OpenMP pool of ``n`` threads, set before any work (children inherit the env)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)


def resolve_model(model: str, cache_dir: str = "") -> Path:
    """A transformers folder for ``model`` (a folder, a .gguf, or a packaged GGUF; converted once)."""
    from cast_torch.train import gguf

    path = gguf.gguf_path(model)
    if path is None:
        folder = Path(model)
        if not (folder / "config.json").is_file():
            raise SystemExit(f"--model: {model!r} is neither a model folder nor a GGUF")
        return folder
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("CAST_CACHE_DIR") or
                                                  Path.home() / ".cache" / "cast-rlvr")
    folder, _ = gguf.ensure_converted(path, root, log=lambda s: print(s, file=sys.stderr))
    return folder


def git_commit() -> str:
    """The checkout's commit (with "+dirty" when the work tree differs), for the record."""
    import subprocess
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or
            platform.machine(), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "loadavg_1m": round(load[0], 2), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available()
            else None}


def read_bandwidth_gbs(mib: int = 512, reps: int = 5) -> float:
    """Best-of-``reps`` single-pass read bandwidth of a ``mib`` MiB float32 buffer (not cache resident)."""
    buf = torch.ones(mib * 2 ** 20 // 4)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        buf.sum()
        best = min(best, time.perf_counter() - t0)
    return buf.numel() * 4 / best / 1e9


def matmul_gflops(m: int = 8, k: int = 576, n: int = 1536, reps: int = 200) -> float:
    """Best-of sgemm throughput ``[m, k] @ [k, n]`` with both operands cache resident, GFLOP/s."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9


def summary(values: Iterable[float]) -> dict[str, float]:
    v = list(values)
    return {"mean": statistics.fmean(v), "min": min(v), "max": max(v), "n": len(v)}


def add_common_args(p: argparse.ArgumentParser, report: str) -> None:
    """The arguments every real-model benchmark takes: the model, the batch shape, where results go.

    ``report`` names the files: ``reports/<report>.json`` (every measurement) and
    ``reports/<report>.md`` (rendered from it; ``--render-only`` re-renders without measuring).
    """
    p.add_argument("--model", default="smollm2-135m-instruct", help="model folder, .gguf, or packaged GGUF name")
    p.add_argument("--cache-dir", default="", help="GGUF conversion cache (default $CAST_CACHE_DIR or ~/.cache)")
    p.add_argument("--prompts", type=int, default=2, help="prompts per batch")
    p.add_argument("--group-size", type=int, default=4, help="completions per prompt (G)")
    p.add_argument("--json", default=str(REPO / "reports" / f"{report}.json"), help="results file written")
    p.add_argument("--md", default=str(REPO / "reports" / f"{report}.md"), help="Markdown report rendered from --json")
    p.add_argument("--render-only", action="store_true", help="only re-render --md from --json")


def write_report(json_path: str, md_path: str, render: Callable[[dict], str]) -> str:
    """Render the Markdown report from the results JSON (never from in-memory figures), write and print it."""
    text = render(json.loads(Path(json_path).read_text()))
    Path(md_path).write_text(text)
    print(text)
    return text


def write_json(path: str, data: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def fmt(x: Optional[float], digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"
