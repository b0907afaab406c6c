"""Cost of the torch CAST advantages next to the NumPy reference (CPU) and to a plain copy (GPU).

Two sections, every figure measured in this run:

1. CPU, N x T = 512 x 4096 by default: ``cast_core.cast_advantages`` (NumPy, float64)
   against ``cast_torch.cast_advantages`` (float64 and float32; ``validate`` on and off),
   timed interleaved (numpy, torch variant, numpy, ...) ``--reps`` times. For each torch
   variant it prints the median over repetitions of torch_time / numpy_time taken in the
   same repetition. NumPy is single-threaded, so torch is timed both with its default
   intra-op threads and with one thread (the like-for-like figure); on a machine whose
   cores are busy with other work, torch's multi-threaded ops wait for a free core and
   the default-thread figure says more about the machine than about the code.

2. Bandwidth (CUDA when present, or ``--device``): tokens per second of the hot path
   (``validate=False``) for N x T up to 4096 x 8192, and the achieved bandwidth against a
   device-to-device copy of the same bytes measured right after it. The bytes counted are
   the minimum any implementation must move: gaps read, mask read (1 byte), advantages
   written (rewards and group ids are N-sized, negligible). ``--compile`` adds a
   ``torch.compile``'d hot path (one fused kernel instead of ~18 eager passes).

    python benchmarks/bench_torch.py                      # CPU section (+ GPU section if CUDA)
    python benchmarks/bench_torch.py --reps 15 --compile
    python benchmarks/bench_torch.py --skip-cpu --device cuda --sizes 1024x4096,4096x8192
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Sequence

import numpy as np
import torch

import cast_core
import cast_torch
from cast_core import CASTConfig

DEFAULT_SIZES = "512x4096,1024x4096,2048x8192,4096x8192"


def make_batch(n: int, t: int, seed: int = 0, group_size: int = 8):
    """A GRPO-like batch as numpy arrays: groups of 8, 0/1 rewards (some groups all correct or
    all wrong), lengths uniform in [T/4, T], gaps ~ N(0, 0.3) with a few ±inf, NaN padding."""
    rng = np.random.default_rng(seed)
    gid = np.repeat(rng.permutation(10 * n)[: (n + group_size - 1) // group_size], group_size)[:n]
    p = rng.uniform(0, 1, gid.shape[0] // group_size + 1)[np.arange(n) // group_size]
    rewards = (rng.random(n) < p).astype(np.float64)
    lengths = rng.integers(max(t // 4, 1), t + 1, n)
    mask = np.arange(t)[None, :] < lengths[:, None]
    gaps = rng.normal(0.0, 0.3, (n, t))
    gaps[rng.random((n, t)) < 1e-4] = np.inf
    gaps[rng.random((n, t)) < 1e-4] = -np.inf
    gaps[~mask] = np.nan
    return rewards, gid, gaps, mask


def _timeit(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cpu_section(n: int, t: int, reps: int, use_compile: bool = False) -> dict[str, float]:
    """Interleaved CPU timings; returns {variant: median ratio torch/numpy}."""
    cfg = CASTConfig()
    r, gid, g, m = make_batch(n, t)
    tr, tgid, tg, tm = (torch.from_numpy(x) for x in (r, gid, g, m))
    tr32, tg32 = tr.float(), tg.float()
    reference = cast_core.cast_advantages(r, gid, g, m, cfg)
    got = cast_torch.cast_advantages(tr, tgid, tg, tm, cfg).numpy()
    err = float(np.max(np.abs(got - reference)))
    if err > 1e-12:
        raise SystemExit(f"torch float64 disagrees with cast_core by {err:.3e}: not benchmarking")

    variants: dict[str, Callable[[], object]] = {
        "float64 validate": lambda: cast_torch.cast_advantages(tr, tgid, tg, tm, cfg),
        "float64 no-validate": lambda: cast_torch.cast_advantages(tr, tgid, tg, tm, cfg, validate=False),
        "float32 validate": lambda: cast_torch.cast_advantages(tr32, tgid, tg32, tm, cfg),
        "float32 no-validate": lambda: cast_torch.cast_advantages(tr32, tgid, tg32, tm, cfg, validate=False),
    }
    if use_compile:
        compiled = torch.compile(lambda a, b, c, d: cast_torch.cast_advantages(a, b, c, d, cfg, validate=False),
                                 dynamic=False)
        t0 = time.perf_counter()
        compiled(tr32, tgid, tg32, tm)
        print(f"  (torch.compile of the float32 hot path took {time.perf_counter() - t0:.1f} s)")
        variants["float32 compiled"] = lambda: compiled(tr32, tgid, tg32, tm)

    default_threads = torch.get_num_threads()
    thread_settings = [default_threads] + ([1] if default_threads > 1 else [])
    numpy_fn = lambda: cast_core.cast_advantages(r, gid, g, m, cfg)   # noqa: E731
    for fn in [numpy_fn, *variants.values()]:
        fn()                                                      # warm-up (allocator, lazy init)
    times: dict[tuple[str, int], list[float]] = {(k, th): [] for k in variants for th in thread_settings}
    ratios: dict[tuple[str, int], list[float]] = {key: [] for key in times}
    numpy_times: list[float] = []
    try:
        for _ in range(reps):
            for key in times:
                name, threads = key
                torch.set_num_threads(threads)
                t_np = _timeit(numpy_fn)
                t_torch = _timeit(variants[name])
                numpy_times.append(t_np)
                times[key].append(t_torch)
                ratios[key].append(t_torch / t_np)
    finally:
        torch.set_num_threads(default_threads)

    print(f"CPU, N x T = {n} x {t}, {reps} interleaved repetitions "
          f"(torch {torch.__version__}, numpy {np.__version__}, default threads {default_threads})")
    print(f"  numpy cast_core float64: median {statistics.median(numpy_times) * 1e3:8.1f} ms, "
          f"best {min(numpy_times) * 1e3:8.1f} ms")
    print(f"  {'torch variant':24s}{'threads':>8s}{'median ms':>11s}{'best ms':>9s}{'median torch/numpy':>20s}")
    out = {}
    for (name, threads), ts in times.items():
        med_ratio = statistics.median(ratios[(name, threads)])
        out[f"{name}, {threads} thread{'s' if threads > 1 else ''}"] = med_ratio
        print(f"  {name:24s}{threads:>8d}{statistics.median(ts) * 1e3:>11.1f}{min(ts) * 1e3:>9.1f}"
              f"{med_ratio:>20.3f}")
    return out


def _device_timer(device: torch.device) -> Callable[[Callable[[], object], int], list[float]]:
    if device.type == "cuda":
        def run(fn, reps):
            out = []
            for _ in range(reps):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                out.append(start.elapsed_time(end) / 1e3)
            return out
    else:
        def run(fn, reps):
            return [_timeit(fn) for _ in range(reps)]
    return run


def bandwidth_section(device: torch.device, sizes: Sequence[tuple[int, int]], reps: int,
                      dtype: torch.dtype = torch.float32, use_compile: bool = False) -> list[dict]:
    """Tokens/s and bandwidth vs a same-bytes device-to-device copy for each N x T."""
    cfg = CASTConfig()
    timer = _device_timer(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows = []
    print(f"\nBandwidth on {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"inputs {dtype}, hot path validate=False, median of {reps}")
    print(f"  {'N x T':>12s} {'variant':>9s} {'ms':>9s} {'Mtok/s':>9s} {'GB/s':>8s} {'copy GB/s':>10s} {'of copy':>8s}")
    for n, t in sizes:
        r, gid, g, m = make_batch(n, t)
        tr = torch.from_numpy(r).to(device, dtype)
        tgid = torch.from_numpy(gid).to(device)
        tg = torch.from_numpy(g).to(device, dtype)
        tm = torch.from_numpy(m).to(device)
        out_itemsize = torch.empty((), dtype=torch.float64 if dtype == torch.float64 else torch.float32).element_size()
        min_bytes = n * t * (tg.element_size() + 1 + out_itemsize)
        # A copy that moves the same bytes: reads half of them, writes the other half.
        src = torch.empty(min_bytes // 2, dtype=torch.uint8, device=device)
        dst = torch.empty_like(src)
        variants = {"eager": lambda: cast_torch.cast_advantages(tr, tgid, tg, tm, cfg, validate=False)}
        if use_compile:
            variants["compiled"] = torch.compile(
                lambda: cast_torch.cast_advantages(tr, tgid, tg, tm, cfg, validate=False), dynamic=False)
        for name, fn in variants.items():
            for _ in range(3):                                    # warm-up (and compile)
                fn()
                dst.copy_(src)
            sync()
            t_kernel = statistics.median(timer(fn, reps))
            t_copy = statistics.median(timer(lambda: dst.copy_(src), reps))
            achieved = min_bytes / t_kernel
            copy_bw = 2 * src.numel() / t_copy
            row = dict(n=n, t=t, variant=name, ms=t_kernel * 1e3, tokens_per_s=n * t / t_kernel,
                       gbps=achieved / 1e9, copy_gbps=copy_bw / 1e9, frac_of_copy=achieved / copy_bw)
            rows.append(row)
            print(f"  {f'{n} x {t}':>12s} {name:>9s} {row['ms']:>9.3f} {row['tokens_per_s'] / 1e6:>9.1f} "
                  f"{row['gbps']:>8.1f} {row['copy_gbps']:>10.1f} {row['frac_of_copy']:>7.1%}")
        del tr, tgid, tg, tm, src, dst
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        n, t = item.lower().split("x")
        out.append((int(n), int(t)))
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=512, help="CPU section: completions N")
    p.add_argument("--t", type=int, default=4096, help="CPU section: padded length T")
    p.add_argument("--reps", type=int, default=9, help="interleaved repetitions per variant")
    p.add_argument("--compile", action="store_true", help="also time a torch.compile'd hot path")
    p.add_argument("--skip-cpu", action="store_true", help="skip the CPU-vs-numpy section")
    p.add_argument("--device", default=None,
                   help="device of the bandwidth section (default: cuda when available, else skipped)")
    p.add_argument("--sizes", default=DEFAULT_SIZES, help="bandwidth section: comma-separated NxT")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float64"],
                   help="bandwidth section: dtype of rewards and gaps")
    args = p.parse_args(argv)
    results: dict = {}
    if not args.skip_cpu:
        results["cpu_ratios"] = cpu_section(args.n, args.t, args.reps, args.compile)
    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    if device is None:
        print("\nBandwidth section skipped: no CUDA device (pass --device cpu to run it on the CPU).")
    else:
        results["bandwidth"] = bandwidth_section(torch.device(device), _sizes(args.sizes), args.reps,
                                                 getattr(torch, args.dtype), args.compile)
    return results


if __name__ == "__main__":
    main()
