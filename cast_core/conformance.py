"""Conformance runner: check an implementation of the CAST math against spec/vectors.

Usage::

    python -m cast_core.conformance                      # cast_core against every vector
    python -m cast_core.conformance --impl my_pkg.cast:cast_advantages
    python -m cast_core.conformance --loss-impl my_pkg.loss:policy_loss --grad-impl my_pkg.loss:policy_loss_grad
    python -m cast_core.conformance --impl-for grpo_advantages=my_pkg.baselines:grpo_advantages
    python -m cast_core.conformance --only 'worked_example*' -v
    python -m cast_core.conformance --vectors path/to/spec/vectors --torch --impl cast_torch:cast_advantages
    python -m cast_core.conformance --dtype float32 --impl examples.port_jax.cast_jax:cast_advantages

With no override every function in the vectors is checked against ``cast_core``. With
overrides (``--impl``, ``--loss-impl``, ``--grad-impl``, ``--impl-for``) only the
overridden functions are checked, so a port can be tested piece by piece; a
``--loss-impl`` without ``--grad-impl`` checks the loss values and skips the gradients.

Calling conventions (inputs are numpy arrays: ``rewards [N] float64``, ``group_ids [N]
int64``, ``gaps [N, T] float64``, ``mask [N, T] bool``, other ``[N, T]`` inputs float64;
``config`` is a :class:`cast_core.CASTConfig`)::

    cast_advantages(rewards, group_ids, gaps, mask, config=cfg, step=step) -> [N, T]
    base_advantages(rewards, group_ids, config=cfg, step=step)             -> [N]
    token_advantages(base, gaps, mask, config=cfg, step=step)              -> [N, T]
    policy_loss(logp, old_logp, advantages, mask, **params, ref_logp=...)  -> scalar
    policy_loss_grad(same)                                                  -> [N, T]
    grpo_advantages(rewards, group_ids, mask, config=cfg)
    rlsd_advantages(rewards, group_ids, gaps, mask, **params, config=cfg)
    rl_zvp_advantages(rewards, group_ids, entropies, mask, **params, config=cfg)
    opsd_advantages(gaps, mask)
    CASTConfig(**config)                                                    (error cases)

Results may be numpy arrays, nested lists, Python floats, torch tensors (converted
without importing torch) or anything else ``numpy.asarray`` converts (JAX, CuPy, ... arrays).
A case passes when ``|actual − expected| <= atol + rtol·|expected|`` everywhere (and
positions outside the mask are exactly 0); an error case passes when the implementation
raises ``ValueError`` or ``TypeError``.

Precision (``--dtype``): the vectors' ``atol``/``rtol`` (1e-12, 1e-9) are the spec's float64
tolerance. ``--dtype float32`` rounds every floating-point input to float32 before the call
and checks against ``DTYPE_TOLERANCES["float32"]`` instead (the expected values stay
the exact float64 ones): a float32 port computes on float32 data, so it is held to what
float32 arithmetic can reach, and a float64 port run this way still passes. The exit
status is 0 when every selected case passes, 1 on any failure, 2 on a usage problem.
The vector format is documented in ``spec/vectors/SCHEMA.md``.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "DEFAULT_IMPLS",
    "DTYPE_TOLERANCES",
    "Comparison",
    "CaseResult",
    "Report",
    "compare",
    "to_numpy",
    "load_vectors",
    "default_vectors_dir",
    "resolve_impl",
    "run_conformance",
    "main",
]

SCHEMA_VERSION = 1

DEFAULT_IMPLS: dict[str, str] = {
    "cast_advantages": "cast_core:cast_advantages",
    "base_advantages": "cast_core:base_advantages",
    "token_advantages": "cast_core:token_advantages",
    "policy_loss": "cast_core:policy_loss",
    "policy_loss_grad": "cast_core:policy_loss_grad",
    "grpo_advantages": "cast_core.baselines:grpo_advantages",
    "rlsd_advantages": "cast_core.baselines:rlsd_advantages",
    "rl_zvp_advantages": "cast_core.baselines:rl_zvp_advantages",
    "opsd_advantages": "cast_core.baselines:opsd_advantages",
    "CASTConfig": "cast_core:CASTConfig",
}

# (atol, rtol) by the floating dtype the inputs are given in; None = each case's own
# (the spec's float64 tolerance, spec/CAST.md §10). float32: the unit roundoff is
# 2^-24 ≈ 6e-8, a CAST advantage is a handful of roundings (mean, std, exp, weight, clip)
# of values of size ≤ ~2, and inputs sit ≥ a relative 1e-6 from every decision boundary
# (far more than float32's exp error), so 1e-5 relative (~170 roundings) is slack without
# hiding a wrong rule: the mistakes the vectors catch move results by > 1e-3.
DTYPE_TOLERANCES: dict[str, tuple[float, float] | None] = {
    "float64": None,
    "float32": (1e-6, 1e-5),
}

# Default dtype of each named input; a case's "dtypes" entry overrides it (error cases
# use that to pass, e.g., a float mask holding NaN or float group ids).
_INPUT_DTYPES = {"group_ids": "int64", "mask": "bool"}

# Functions whose [N, T] output must be exactly 0 outside the mask.
_MASKED_OUTPUTS = {"cast_advantages", "token_advantages", "grpo_advantages", "rlsd_advantages",
                   "rl_zvp_advantages", "opsd_advantages"}


# ----------------------------------------------------------------------------------
# Conversion and the one comparator
# ----------------------------------------------------------------------------------
def to_numpy(x: Any) -> np.ndarray:
    """numpy array, nested list, Python scalar or torch tensor -> float64 ndarray.

    Torch is never imported: anything with ``.detach()`` is treated as a tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        try:
            x = x.numpy()
        except TypeError:  # bfloat16 and friends have no numpy dtype
            x = x.double().numpy()
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class Comparison:
    """Outcome of :func:`compare`: ``ok``, the largest absolute error, where the worst
    violation is, and a one-line explanation when not ok."""

    ok: bool
    max_abs_err: float
    worst_index: tuple[int, ...] | None = None
    message: str = ""


def compare(actual: Any, expected: Any, *, atol: float, rtol: float,
            exact_zero: np.ndarray | None = None) -> Comparison:
    """Compare ``actual`` with ``expected`` elementwise: ``|a − e| <= atol + rtol·|e|``.

    ``exact_zero`` (bool, same shape) marks positions that must be exactly 0 (the
    spec's masked outputs). Non-finite expected values must be matched exactly; a
    non-finite actual against a finite expected value is a mismatch. The returned
    ``worst_index`` is the position exceeding its tolerance by the most."""
    try:
        a = to_numpy(actual)
    except (TypeError, ValueError) as exc:
        return Comparison(False, math.inf, None, f"result not convertible to float64: {exc}")
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return Comparison(False, math.inf, None, f"shape {a.shape} != expected {e.shape}")
    if a.size == 0:
        return Comparison(True, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - e)
        same_nonfinite = (~np.isfinite(e)) & (a == e)
        err = np.where(same_nonfinite, 0.0, err)
        err = np.where(np.isnan(err), np.inf, err)
        tol = atol + rtol * np.where(np.isfinite(e), np.abs(e), 0.0)
        excess = err - tol
        if exact_zero is not None:
            zero_bad = np.asarray(exact_zero, dtype=bool) & (a != 0)
            excess = np.where(zero_bad, np.inf, excess)
    max_abs = float(np.max(err))
    worst_flat = int(np.argmax(excess))
    worst = tuple(int(i) for i in np.unravel_index(worst_flat, e.shape))
    if excess.flat[worst_flat] <= 0:
        return Comparison(True, max_abs, worst)
    where = f"index {worst}" if e.ndim else "value"
    if exact_zero is not None and bool(np.asarray(exact_zero, dtype=bool)[worst]) and a[worst] != 0:
        msg = f"{where} is outside the mask and must be exactly 0, got {float(a[worst])!r}"
    else:
        msg = (f"{where}: got {float(a[worst])!r}, expected {float(e[worst])!r} "
               f"(abs err {float(err[worst]):.3g})")
    return Comparison(False, max_abs, worst, msg)


# ----------------------------------------------------------------------------------
# Vectors
# ----------------------------------------------------------------------------------
def default_vectors_dir() -> Path:
    """``spec/vectors`` of the source checkout this package lives in."""
    return Path(__file__).resolve().parent.parent / "spec" / "vectors"


def _decode(value: Any) -> Any:
    """JSON value -> Python value with the strings "nan", "inf", "-inf" as floats."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def load_vectors(vectors_dir: str | Path | None = None) -> list[dict]:
    """Every case of every ``*.json`` file in ``vectors_dir`` (sorted by file name), each
    with a ``"file"`` key added."""
    d = Path(vectors_dir) if vectors_dir is not None else default_vectors_dir()
    if not d.is_dir():
        raise FileNotFoundError(
            f"conformance vectors not found at {d}: the vectors ship in the source tree "
            "(spec/vectors); pass --vectors DIR (or vectors_dir=...) pointing at a checkout's "
            "spec/vectors")
    files = sorted(d.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no *.json vector files in {d}")
    cases = []
    for f in files:
        data = json.loads(f.read_text(encoding="utf-8"))
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{f}: schema_version {data.get('schema_version')!r}, "
                             f"this runner reads version {SCHEMA_VERSION}")
        for case in data["cases"]:
            cases.append({**case, "file": f.name})
    return cases


def _array(case: dict, name: str, float_dtype: str = "float64") -> np.ndarray | None:
    """Input ``name`` of ``case`` as numpy, its floating-point values rounded to ``float_dtype``."""
    raw = case["inputs"].get(name)
    if raw is None:
        return None
    dtype = case.get("dtypes", {}).get(name, _INPUT_DTYPES.get(name, "float64"))
    arr = np.array(_decode(raw), dtype=dtype)
    if arr.dtype.kind == "f":
        arr = arr.astype(float_dtype)
    shape = case.get("shapes", {}).get(name)
    return arr.reshape(shape) if shape is not None else arr


def _tolerance(case: dict, float_dtype: str) -> tuple[float, float]:
    """(atol, rtol) for ``case`` when its inputs are given in ``float_dtype``."""
    loose = DTYPE_TOLERANCES[float_dtype]
    if loose is None:
        return case["atol"], case["rtol"]
    return max(case["atol"], loose[0]), max(case["rtol"], loose[1])


def resolve_impl(spec: str | Callable) -> Callable:
    """``"module:attr"`` (attr may be dotted) -> the object; callables pass through."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"implementation must be 'module:function', got {spec!r}")
    module_name, attr = spec.split(":", 1)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec} is not callable")
    return obj


def _invoke(function: str, fn: Callable, case: dict, adapt: Callable[[Any], Any],
            float_dtype: str = "float64") -> Any:
    """Call ``fn`` for ``case`` with the calling convention of ``function``."""
    config_fields = case.get("config", {})
    if function == "CASTConfig":
        return fn(**config_fields)
    from .config import CASTConfig  # built here so an invalid config counts as the impl's error

    cfg = CASTConfig(**config_fields)
    step = case.get("step", 0)
    params = dict(case.get("params", {}))
    x = {name: adapt(_array(case, name, float_dtype)) for name in case["inputs"]}
    if function == "cast_advantages":
        return fn(x["rewards"], x["group_ids"], x["gaps"], x["mask"], config=cfg, step=step)
    if function == "base_advantages":
        return fn(x["rewards"], x["group_ids"], config=cfg, step=step)
    if function == "token_advantages":
        return fn(x["base"], x["gaps"], x["mask"], config=cfg, step=step)
    if function in ("policy_loss", "policy_loss_grad"):
        if x.get("ref_logp") is not None:
            params["ref_logp"] = x["ref_logp"]
        return fn(x["logp"], x["old_logp"], x["advantages"], x["mask"], **params)
    if function == "grpo_advantages":
        return fn(x["rewards"], x["group_ids"], x["mask"], config=cfg)
    if function == "rlsd_advantages":
        return fn(x["rewards"], x["group_ids"], x["gaps"], x["mask"], config=cfg, **params)
    if function == "rl_zvp_advantages":
        return fn(x["rewards"], x["group_ids"], x["entropies"], x["mask"], config=cfg, **params)
    if function == "opsd_advantages":
        return fn(x["gaps"], x["mask"])
    raise ValueError(f"unknown function {function!r} in the vectors")


# ----------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------
@dataclass
class CaseResult:
    """One vector's outcome: status is "pass", "fail" or "skip"."""

    name: str
    function: str
    status: str
    max_abs_err: float | None = None
    detail: str = ""


@dataclass
class Report:
    """All results of one run, in vector order."""

    results: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.status == "pass" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.status == "fail" for r in self.results)

    @property
    def skipped(self) -> int:
        return sum(r.status == "skip" for r in self.results)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if r.status == "fail"]

    def summary(self) -> str:
        s = f"{self.passed} passed, {self.failed} failed"
        return s + (f", {self.skipped} skipped" if self.skipped else "")

    def table(self, verbose: bool = False) -> str:
        width = max([len(r.name) for r in self.results] + [4])
        lines = [f"{'name':<{width}}  {'status':<6}  max abs err", "-" * (width + 23)]
        for r in self.results:
            err = "-" if r.max_abs_err is None else f"{r.max_abs_err:.3e}"
            lines.append(f"{r.name:<{width}}  {r.status:<6}  {err}")
            if r.detail and (verbose or r.status != "pass"):
                lines.append(f"{'':<{width}}    {r.detail}")
        return "\n".join(lines)


def _check_case(case: dict, impls: Mapping[str, Callable], adapt: Callable,
                float_dtype: str = "float64") -> CaseResult:
    name, function = case["name"], case["function"]
    if "expect_error" in case:
        try:
            out = _invoke(function, impls[function], case, adapt, float_dtype)
            if function == "CASTConfig":
                return CaseResult(name, function, "fail", None, f"accepted an invalid config: {out!r}")
        except (ValueError, TypeError) as exc:
            return CaseResult(name, function, "pass", None, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the wrong kind of failure is a finding, not a crash
            return CaseResult(name, function, "fail", None,
                              f"expected ValueError/TypeError, raised {type(exc).__name__}: {exc}")
        return CaseResult(name, function, "fail", None, "expected ValueError/TypeError, returned normally")

    atol, rtol = _tolerance(case, float_dtype)
    checks: list[tuple[str, Any, Any, np.ndarray | None]] = []  # (label, fn key, expected, exact_zero)
    mask = _array(case, "mask")
    outside = None if mask is None else ~np.asarray(mask, dtype=bool)
    if function == "policy_loss":
        if "policy_loss" in impls:
            checks.append(("loss", "policy_loss", case["expected"]["loss"], None))
        if "policy_loss_grad" in impls:
            checks.append(("grad", "policy_loss_grad", case["expected"]["grad"], outside))
    else:
        checks.append(("", function, case["expected"],
                       outside if function in _MASKED_OUTPUTS else None))
    worst = 0.0
    notes = []
    for label, key, expected, exact_zero in checks:
        prefix = f"{label}: " if label else ""
        try:
            out = _invoke(key, impls[key], case, adapt, float_dtype)
        except Exception as exc:
            return CaseResult(name, function, "fail", None, f"{prefix}raised {type(exc).__name__}: {exc}")
        cmp = compare(out, _decode(expected), atol=atol, rtol=rtol, exact_zero=exact_zero)
        worst = max(worst, cmp.max_abs_err)
        if not cmp.ok:
            return CaseResult(name, function, "fail", worst, prefix + cmp.message)
    if function == "policy_loss" and "policy_loss_grad" not in impls:
        notes.append("gradient not checked (no --grad-impl)")
    return CaseResult(name, function, "pass", worst, "; ".join(notes))


def run_conformance(impl: str | Callable | None = None, loss_impl: str | Callable | None = None,
                    grad_impl: str | Callable | None = None, *,
                    impls: Mapping[str, str | Callable] | None = None,
                    vectors_dir: str | Path | None = None, only: str | Sequence[str] | None = None,
                    functions: Sequence[str] | None = None,
                    input_adapter: Callable[[Any], Any] | None = None,
                    dtype: str = "float64") -> Report:
    """Run the vectors and return a :class:`Report` (see the module docstring).

    ``impl``/``loss_impl``/``grad_impl`` override ``cast_advantages``/``policy_loss``/
    ``policy_loss_grad``; ``impls`` maps any function name to an override. With no
    override every function runs against cast_core; with overrides only the overridden
    functions run (``functions`` selects explicitly). ``only`` is a glob (or list of
    globs) on case names. ``input_adapter`` converts each numpy input before the call
    (e.g. ``torch.from_numpy``). ``dtype`` (a key of :data:`DTYPE_TOLERANCES`) is the
    floating dtype the inputs are given in, and picks the tolerance."""
    if dtype not in DTYPE_TOLERANCES:
        raise ValueError(f"dtype: must be one of {sorted(DTYPE_TOLERANCES)}, got {dtype!r}")
    overrides: dict[str, str | Callable] = dict(impls or {})
    if impl is not None:
        overrides["cast_advantages"] = impl
    if loss_impl is not None:
        overrides["policy_loss"] = loss_impl
    if grad_impl is not None:
        overrides["policy_loss_grad"] = grad_impl
    unknown = sorted(set(overrides) - set(DEFAULT_IMPLS))
    if unknown:
        raise ValueError(f"no such function in the vectors: {unknown}; known: {sorted(DEFAULT_IMPLS)}")
    if functions is not None:
        selected = set(functions)
        unknown = sorted(selected - set(DEFAULT_IMPLS))
        if unknown:
            raise ValueError(f"no such function in the vectors: {unknown}; known: {sorted(DEFAULT_IMPLS)}")
    elif overrides:
        selected = set(overrides)
    else:
        selected = set(DEFAULT_IMPLS)
    table = {}
    for fname in selected:
        table[fname] = resolve_impl(overrides.get(fname, DEFAULT_IMPLS[fname]))
    if "policy_loss_grad" in selected:
        selected.add("policy_loss")  # gradient vectors live in the policy_loss cases
    patterns = [only] if isinstance(only, str) else list(only or [])
    adapt = input_adapter or (lambda a: a)
    report = Report()
    for case in load_vectors(vectors_dir):
        if case["function"] not in selected:
            continue
        if patterns and not any(fnmatch.fnmatchcase(case["name"], p) for p in patterns):
            continue
        report.results.append(_check_case(case, table, adapt, dtype))
    return report


def _torch_adapter() -> Callable[[Any], Any]:
    import torch  # only on request (--torch); cast_core itself never imports torch

    def adapt(a):
        return None if a is None else torch.from_numpy(np.ascontiguousarray(a))
    return adapt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cast_core.conformance",
        description="Check an implementation of the CAST math against the spec vectors.")
    parser.add_argument("--impl", help="cast_advantages implementation, module:function "
                        "(default cast_core:cast_advantages)")
    parser.add_argument("--loss-impl", help="policy_loss implementation, module:function")
    parser.add_argument("--grad-impl", help="policy_loss_grad implementation, module:function "
                        "(default cast_core:policy_loss_grad unless --loss-impl is given)")
    parser.add_argument("--impl-for", action="append", default=[], metavar="FUNCTION=module:function",
                        help=f"override any function; repeatable. Functions: {', '.join(DEFAULT_IMPLS)}")
    parser.add_argument("--functions", help="comma-separated functions to check (default: all, or the overridden ones)")
    parser.add_argument("--vectors", type=Path, default=None, help="vector directory (default: the checkout's spec/vectors)")
    parser.add_argument("--only", action="append", default=None, metavar="PATTERN",
                        help="glob on case names; repeatable")
    parser.add_argument("--torch", action="store_true", help="pass torch tensors (from_numpy) instead of numpy arrays")
    parser.add_argument("--dtype", choices=sorted(DTYPE_TOLERANCES), default="float64",
                        help="floating dtype of the inputs; float32 also uses the float32 tolerance "
                        f"(atol, rtol = {DTYPE_TOLERANCES['float32']}); default float64 (the vectors' own)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show details of passing cases too")
    args = parser.parse_args(argv)
    impls: dict[str, str] = {}
    for item in args.impl_for:
        if "=" not in item:
            parser.error(f"--impl-for needs FUNCTION=module:function, got {item!r}")
        k, v = item.split("=", 1)
        impls[k.strip()] = v.strip()
    functions = [f.strip() for f in args.functions.split(",")] if args.functions else None
    try:
        report = run_conformance(args.impl, args.loss_impl, args.grad_impl, impls=impls,
                                 vectors_dir=args.vectors, only=args.only, functions=functions,
                                 input_adapter=_torch_adapter() if args.torch else None, dtype=args.dtype)
    except (FileNotFoundError, ValueError, ImportError, AttributeError) as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    if not report.results:
        print("conformance: no cases selected", file=sys.stderr)
        return 2
    print(report.table(verbose=args.verbose))
    if args.dtype != "float64":
        atol, rtol = DTYPE_TOLERANCES[args.dtype]
        print(f"inputs in {args.dtype}; tolerance atol={atol:g}, rtol={rtol:g}")
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
