"""Throughput and latency of `cast_core.verify.is_equivalent`, beside math-verify.

Generates N (default 10,000) mixed ``(pred, ref)`` pairs deterministically (seed 0) from
the verifier's categories — integers, decimals vs fractions, thousands separators,
percentages, scientific notation, LaTeX radicals and pi, units, tuples, intervals,
sets, multiple choice, symbolic polynomials and trig identities — about half of them
equivalent, the rest near-misses. Times every call of ours and, when ``math_verify`` is
installed, of ``verify(parse(ref), parse(pred))`` on the same pairs in the same run, and
prints answers/s, p50/p99 latency (wall clock, and the CPU time of this thread, which a
loaded machine does not inflate), how many comparisons needed the sympy worker, the
speed ratio and the agreement between the two.

    python benchmarks/bench_verify.py [--n 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from fractions import Fraction

from cast_core.verify import is_equivalent, warmup
from cast_core.verify._worker import get_pool


def _frac_tex(f: Fraction) -> str:
    s = "-" if f < 0 else ""
    return f"{s}\\frac{{{abs(f.numerator)}}}{{{f.denominator}}}"


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """n (category, pred, ref) pairs; deterministic in (n, seed)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        cat = rng.choice(["int", "dec", "sep", "pct", "sci", "frac", "sqrt", "pi", "units",
                          "tuple", "interval", "set", "mc", "poly", "trig"])
        same = rng.random() < 0.5
        if cat == "int":
            a = rng.randint(-10**6, 10**6)
            pred, ref = str(a if same else a + rng.choice([-1, 1, 10])), str(a)
        elif cat == "dec":
            f = Fraction(rng.randint(1, 999), rng.choice([2, 4, 5, 8, 10, 20, 25]))
            g = f if same else f + Fraction(1, 100)
            pred, ref = str(float(g)), _frac_tex(f)
        elif cat == "sep":
            a = rng.randint(1000, 10**9)
            pred, ref = f"{a:,}", str(a if same else a + 1000)
        elif cat == "pct":
            p = rng.randint(1, 99)
            pred, ref = f"{p}\\%", str(p / 100 if same else (p + 1) / 100)
        elif cat == "sci":
            m, e = rng.randint(1, 9), rng.randint(-5, 8)
            pred, ref = f"{m}\\times 10^{{{e}}}", f"{m}e{e if same else e + 1}"
        elif cat == "frac":
            f = Fraction(rng.randint(-50, 50), rng.randint(1, 40))
            k = rng.randint(2, 5)
            pred = f"{f.numerator * k}/{f.denominator * k}"
            ref = _frac_tex(f if same else f + 1)
        elif cat == "sqrt":
            a, b = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7])
            pred, ref = f"\\sqrt{{{a * a * b}}}", f"{a if same else a + 1}\\sqrt{{{b}}}"
        elif cat == "pi":
            k = rng.randint(1, 12)
            pred, ref = f"\\frac{{{k}\\pi}}{{6}}", f"\\frac{{\\pi}}{{6}} \\cdot {k if same else k + 1}"
        elif cat == "units":
            a = rng.randint(1, 500)
            pred, ref = f"{a}\\text{{ cm}}", str(a if same else a * 10)
        elif cat == "tuple":
            a, b = rng.randint(-9, 9), rng.randint(-9, 9)
            pred, ref = f"\\left({a}, {b}\\right)", f"({a},{b if same else b + 1})"
        elif cat == "interval":
            a = rng.randint(-9, 9)
            pred = f"(-\\infty, {a}]"
            ref = pred if same else f"(-\\infty, {a})"
        elif cat == "set":
            xs = rng.sample(range(-20, 20), 3)
            ys = list(reversed(xs)) if same else xs[:2] + [xs[2] + 1]
            pred, ref = "\\{" + ", ".join(map(str, xs)) + "\\}", "\\{" + ", ".join(map(str, ys)) + "\\}"
        elif cat == "mc":
            c = rng.choice("ABCDE")
            pred, ref = f"\\text{{({c})}}", c if same else "ABCDE"["ABCDE".index(c) - 1]
        elif cat == "poly":
            a, b = rng.randint(1, 9), rng.randint(1, 9)
            pred = f"(x+{a})(x+{b})"
            ref = f"x^2+{a + b}x+{a * b if same else a * b + 1}"
        else:
            k = rng.randint(2, 5)
            pred = f"\\sin^2({k}x)+\\cos^2({k}x)"
            ref = "1" if same else "2"
        out.append((cat, pred, ref))
    return out


def _stats(lat: list[float]) -> tuple[float, float, float]:
    lat = sorted(lat)
    total = sum(lat)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    return len(lat) / total, p50 * 1e3, p99 * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="number of (pred, ref) pairs")
    ap.add_argument("--seed", type=int, default=0, help="pair generator seed")
    args = ap.parse_args()
    pairs = make_pairs(args.n, args.seed)

    t0 = time.perf_counter()
    warmup()
    print(f"worker start-up (once per process): {time.perf_counter() - t0:.2f} s")

    ours, lat, cpu = [], [], []
    calls0 = get_pool().calls
    for _, pred, ref in pairs:
        t, c = time.perf_counter(), time.thread_time()
        ours.append(is_equivalent(pred, ref))
        cpu.append(time.thread_time() - c)
        lat.append(time.perf_counter() - t)
    rate, p50, p99 = _stats(lat)
    _, c50, c99 = _stats([max(x, 1e-9) for x in cpu])
    print(f"pairs: {len(pairs)}  (equivalent per ours: {sum(ours)}; "
          f"sympy worker calls: {get_pool().calls - calls0})")
    print(f"cast_core.verify : {rate:9.0f} answers/s   p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   "
          f"(CPU p50 {c50:.3f} ms, p99 {c99:.3f} ms)")

    try:
        from math_verify import parse, verify
    except ImportError:
        print("math-verify      : not installed, comparison skipped")
        return
    theirs, lat2 = [], []
    for _, pred, ref in pairs:
        t = time.perf_counter()
        try:
            theirs.append(bool(verify(parse("$" + ref + "$"), parse("$" + pred + "$"))))
        except Exception:
            theirs.append(False)
        lat2.append(time.perf_counter() - t)
    rate2, q50, q99 = _stats(lat2)
    print(f"math-verify      : {rate2:9.0f} answers/s   p50 {q50:7.3f} ms   p99 {q99:7.3f} ms")
    print(f"speed ratio (ours / math-verify answers/s): {rate / rate2:.1f}x   "
          f"p50 ratio (theirs / ours): {q50 / p50:.1f}x")
    agree = sum(a == b for a, b in zip(ours, theirs))
    print(f"agreement on these pairs: {agree}/{len(pairs)} ({100 * agree / len(pairs):.1f}%)")
    by_cat: dict[str, int] = {}
    for (cat, _, _), a, b in zip(pairs, ours, theirs):
        if a != b:
            by_cat[cat] = by_cat.get(cat, 0) + 1
    if by_cat:
        print("disagreements by category: " + ", ".join(f"{k}={v}" for k, v in sorted(by_cat.items())))


if __name__ == "__main__":
    main()
