"""The symbolic stage (sympy) in a separate, killable worker process.

Why a process: sympy's ``simplify`` and high-precision ``evalf`` have no time bound, and
Python cannot interrupt a running computation from another thread (``signal.alarm``
works only in the main thread, and a trainer verifies rewards in worker threads). So
the parent sends the parsed AST (JSON data, never code) to a persistent child, waits
at most the remaining per-call time, and on a timeout kills the child (it is restarted
lazily on the next call). Inside the child, which runs in its own main thread, a soft
``setitimer`` budget stops ``simplify`` early so the child can still answer through
its numeric-sampling fallback before the hard kill.

The child is started with ``subprocess`` (fork+exec, safe in a process that holds torch
threads; unlike ``multiprocessing`` "spawn" it does not re-import the trainer's
``__main__``), imports only sympy and this package, and speaks JSON lines on a private
copy of stdout. Nothing is started at import time.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .limits import (MAX_EXPONENT, MAX_FACTORIAL, MAX_RESULT_BITS, MAX_ROOT_BITS,
                     STARTUP_TIMEOUT, WORKER_MEMORY_BYTES)

__all__ = ["SymbolicPool", "get_pool", "serve", "symbolic_equal", "relation_set_equal"]


# ======================================================================================
# Child side: AST -> sympy via explicit constructors (never sympify / parse_expr)
# ======================================================================================

class _Rejected(Exception):
    pass


class _SoftTimeout(BaseException):
    """Raised by the soft timer; a BaseException so sympy's `except Exception` can't eat it."""


def _to_sympy(node, sp, real: bool = False):
    tag = node[0]
    if tag == "n":
        return sp.Rational(node[1], node[2])
    if tag == "s":
        return sp.Symbol(node[1], real=True) if real else sp.Symbol(node[1])
    if tag == "c":
        return {"pi": sp.pi, "e": sp.E, "i": sp.I, "oo": sp.oo}[node[1]]
    if tag == "+":
        return sp.Add(*[_to_sympy(t, sp, real) for t in node[1]])
    if tag == "*":
        return sp.Mul(*[_to_sympy(t, sp, real) for t in node[1]])
    if tag == "neg":
        return -_to_sympy(node[1], sp, real)
    if tag == "/":
        return _to_sympy(node[1], sp, real) / _to_sympy(node[2], sp, real)
    if tag == "^":
        return _pow(_to_sympy(node[1], sp, real), _to_sympy(node[2], sp, real), sp)
    if tag == "!":
        a = _to_sympy(node[1], sp, real)
        if a.is_Number and a > MAX_FACTORIAL:
            raise _Rejected("factorial too large")
        return sp.factorial(a)
    if tag == "f":
        a = _to_sympy(node[2], sp, real)
        name = node[1]
        if name == "sqrt":
            _check_radicand(a)
            return sp.sqrt(a)
        fn = {"sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec,
              "csc": sp.csc, "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan,
              "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "exp": sp.exp,
              "log": sp.log, "ln": sp.log, "abs": sp.Abs}[name]
        return fn(a)
    if tag == "root":
        a, n = _to_sympy(node[1], sp, real), _to_sympy(node[2], sp, real)
        _check_radicand(a)
        if n.is_Integer and abs(n) > 64:
            raise _Rejected("root index too large")
        if a.is_Number and a < 0 and n.is_Integer and n % 2 == 1:
            return sp.real_root(a, n)
        return sp.root(a, n)
    if tag == "log":
        return sp.log(_to_sympy(node[1], sp, real), _to_sympy(node[2], sp, real))
    if tag == "binom":
        n, k = _to_sympy(node[1], sp, real), _to_sympy(node[2], sp, real)
        if n.is_Number and abs(n) > MAX_FACTORIAL:
            raise _Rejected("binomial too large")
        return sp.binomial(n, k)
    raise _Rejected(f"unknown node {tag!r}")


def _bits(x) -> int:
    return max(int(x.p).bit_length(), int(x.q).bit_length())


def _check_radicand(a) -> None:
    if a.is_Rational and _bits(a) > MAX_ROOT_BITS:
        raise _Rejected("radicand too large")


def _pow(a, b, sp):
    # The same caps as evaluate._power, applied before sympy builds the number.
    if b.is_Number:
        if a.is_Number and a in (0, 1, -1):
            return sp.Pow(a, b)
        if abs(b) > MAX_EXPONENT:
            raise _Rejected("exponent too large")
        if a.is_Rational and b.is_Rational and abs(b.p) * _bits(a) > MAX_RESULT_BITS:
            raise _Rejected("power too large")
    return sp.Pow(a, b)


def _max_int_exponent(expr, sp) -> int:
    best = 0
    for p in expr.atoms(sp.Pow):
        if p.exp.is_Integer:
            best = max(best, abs(int(p.exp)))
    return best


def _complex(v) -> complex | None:
    try:
        z = complex(v)
    except (TypeError, ValueError, OverflowError):
        return None
    if z != z or abs(z) == float("inf"):
        return None
    return z


def _close(za: complex, zb: complex, tol: float) -> bool:
    scale = max(abs(za), abs(zb))
    return abs(za - zb) <= tol * scale or scale == 0.0


def symbolic_equal(a_node, b_node, *, rel_tol: float, inexact: bool, key: str,
                   budget: float) -> bool:
    """Equivalence of two ASTs with sympy (runs in the worker; callable directly too).

    Constants: the difference is evaluated with adaptive precision (30 correct digits,
    up to 400 working digits) and must vanish below 1e-300 relative (``rel_tol`` when a
    decimal literal is involved). Expressions: the difference is reduced with
    ``expand`` (small powers only) then ``simplify`` under a soft budget; 0 means
    equal. Otherwise the numeric-sampling fallback decides: at 8 deterministic points
    (`evaluate.sample_points`) the difference, evaluated with adaptive precision, must
    vanish (below 1e-300 relative; values within ``rel_tol`` when a decimal literal is
    involved) at every point where both sides are defined, at 4 points at least.
    """
    import sympy as sp

    from .evaluate import sample_points

    try:
        A, B = _to_sympy(a_node, sp), _to_sympy(b_node, sp)
    except (_Rejected, ZeroDivisionError, ValueError, TypeError, OverflowError):
        return False
    bad = (sp.nan, sp.zoo)
    if any(A.has(x) or B.has(x) for x in bad):
        return False
    diff = A - B
    if diff == 0:
        return True
    if diff.is_Number and not inexact:
        return False  # sympy's automatic simplification left a nonzero constant: x vs x + 1
    names = sorted({s.name for s in (A.free_symbols | B.free_symbols)})
    if not names:
        if not inexact:
            if diff.is_Number:  # sympy cancelled the irrational parts: exact verdict
                return False
            # evalf is adaptive: it raises the working precision (up to maxn digits)
            # until the *difference* has 30 correct digits, so a true zero comes out
            # below scale·1e-300 while pi^100 + 1 vs pi^100 keeps its exact 1.
            ad = sp.N(abs(sp.N(diff, 30, maxn=400)), 30)
            scale = sp.N(sp.Max(abs(sp.N(A, 30)), abs(sp.N(B, 30))), 30)
            if not (ad.is_Float or ad == 0) or not (scale.is_Float and scale.is_finite):
                return False
            return bool(ad <= scale * sp.Float("1e-300", 30))
        za, zb = sp.N(A, 30), sp.N(B, 30)
        ad = sp.N(abs(za - zb), 30)
        scale = sp.N(sp.Max(abs(za), abs(zb)), 30)
        if not (ad.is_Float or ad == 0) or not (scale.is_Float and scale.is_finite):
            return False
        return bool(ad <= sp.Float(rel_tol, 30) * scale)
    deadline = time.monotonic() + 0.5 * budget
    with _soft_budget(0.5 * budget):
        try:
            if _max_int_exponent(diff, sp) <= 64 and sp.expand(diff) == 0:
                return True
            if sp.simplify(diff) == 0:
                return True
        except _SoftTimeout:
            pass
        except Exception:  # sympy internals may fail on odd input; fall back to sampling
            pass
    tol = rel_tol
    symbols = {n: sp.Symbol(n) for n in names}
    valid = 0
    for env in sample_points(names, key):
        if time.monotonic() > deadline + 0.4 * budget:
            break
        subs = {symbols[n]: sp.Rational(v.numerator, v.denominator) for n, v in env.items()}
        za, zb = _complex(A.evalf(30, subs=subs)), _complex(B.evalf(30, subs=subs))
        if za is None or zb is None:
            continue
        if inexact:
            if not _close(za, zb, tol):
                return False
        else:
            # the difference itself, with adaptive precision (see the constant case)
            zd = _complex(diff.evalf(30, subs=subs, maxn=400))
            if zd is None or abs(zd) > max(abs(za), abs(zb)) * 1e-300:
                return False
        valid += 1
    return valid >= 4


_REL = {"<": "Lt", ">": "Gt", "\\le": "Le", "\\ge": "Ge", "=": "Eq", "\\ne": "Ne"}


def _relation(rel, sp):
    members, ops = rel
    nodes = [_to_sympy(m, sp, real=True) for m in members]
    links = [getattr(sp, _REL[op])(nodes[k], nodes[k + 1], evaluate=False)
             for k, op in enumerate(ops)]
    return links[0] if len(links) == 1 else sp.And(*links, evaluate=False)


def _described_set(desc, sp):
    if desc["kind"] == "intervals":
        parts = [sp.Interval(_to_sympy(lo, sp, True), _to_sympy(hi, sp, True), lo_open, hi_open)
                 for lo, hi, lo_open, hi_open in desc["items"]]
        return sp.Union(*parts)
    if desc["kind"] == "finite":
        return sp.FiniteSet(*[_to_sympy(v, sp, True) for v in desc["items"]])
    raise _Rejected("unknown set description")


def relation_set_equal(rel, var: str, desc: dict, *, budget: float) -> bool:
    """Whether the solution set of a one-variable relation chain over the reals equals
    a described set (intervals, a finite set, or another relation's solution set);
    sympy's ``as_set`` under a soft budget of half the call's time."""
    import sympy as sp

    del var  # the relation's only variable; its symbols are built real in _relation
    with _soft_budget(0.5 * budget):
        try:
            A = _relation(rel, sp).as_set()
            B = _relation(desc["rel"], sp).as_set() if desc["kind"] == "rel" else _described_set(desc, sp)
            if A == B:
                return True
            return bool(A.symmetric_difference(B).is_empty is True)
        except _SoftTimeout:
            pass
        except Exception:  # sympy cannot solve it: no decision, so not equal
            pass
    return False


class _soft_budget:
    """Raise `_SoftTimeout` inside the block after ``seconds`` (main thread, POSIX)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.05, seconds)
        self.armed = False

    def __enter__(self) -> None:
        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            def _alarm(signum, frame):
                raise _SoftTimeout()
            self.old = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True

    def __exit__(self, *exc) -> bool:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def serve() -> None:
    """Child main loop: JSON requests on stdin, JSON answers on a private stdout copy."""
    try:  # a runaway sympy computation raises MemoryError instead of swapping the host
        import resource
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > WORKER_MEMORY_BYTES:
            resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, hard))
    except (ImportError, ValueError, OSError):
        pass
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by libraries goes to stderr, not the protocol
    sys.stdout = sys.stderr
    import sympy  # noqa: F401  (import cost paid before "ready")

    # sympy imports its solvers and fills caches on first use (~0.5 s): pay that here,
    # at start-up, not inside the first answer's budget.
    x, one, two = ("s", "x"), ("n", 1, 1, False), ("n", 2, 1, False)
    abs_chain = ([one, ("f", "abs", x), two], ["\\le", "\\le"])
    relation_set_equal(abs_chain, "x", {"kind": "intervals", "items": [[("neg", one), one, False, False]]},
                       budget=30.0)
    sin2, cos2 = ("^", ("f", "sin", x), two), ("^", ("f", "cos", x), two)
    symbolic_equal(sin2, ("+", [one, ("neg", cos2)]), rel_tol=1e-6, inexact=False, key="warm", budget=30.0)

    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        try:
            req = json.loads(line)
            if req.get("op", "equal") == "relset":
                ok = relation_set_equal(req["rel"], req["var"], req["set"], budget=req["budget"])
            else:
                ok = symbolic_equal(req["a"], req["b"], rel_tol=req["rel_tol"],
                                    inexact=req["inexact"], key=req["key"], budget=req["budget"])
            out = {"id": req["id"], "ok": bool(ok)}
        except Exception as exc:  # a bad request answers False, it never kills the loop
            out = {"id": req.get("id") if isinstance(req, dict) else None, "ok": False,
                   "error": f"{type(exc).__name__}: {exc}"[:200]}
        proto.write(json.dumps(out) + "\n")


# ======================================================================================
# Parent side: a small pool of worker processes with hard per-call timeouts
# ======================================================================================

_ROOT = str(Path(__file__).resolve().parents[2])


class _Worker:
    def __init__(self) -> None:
        code = ("import sys; sys.path.insert(0, %r); "
                "from cast_core.verify._worker import serve; serve()" % _ROOT)
        # One BLAS/OpenMP thread: the worker does scalar sympy work beside a trainer.
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.next_id = 0

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self, timeout: float) -> bool:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return False
        return line is not None and json.loads(line).get("ready") is True

    def request(self, payload: dict, timeout: float) -> dict | None:
        self.next_id += 1
        payload = dict(payload, id=self.next_id)
        try:
            self.proc.stdin.write(json.dumps(payload) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return None
        end = time.monotonic() + timeout
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return None
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if line is None:
                return None
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                return msg

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def alive(self) -> bool:
        return self.proc.poll() is None


class SymbolicPool:
    """Up to ``max_workers`` worker processes, started on demand.

    ``call(payload, timeout)`` returns the worker's answer dict, or None when the answer
    did not arrive within ``timeout`` seconds (the worker is then killed) or no worker
    became free in time. Starting a worker is bounded separately by
    ``startup_timeout``; a worker that cannot start raises RuntimeError (an
    environment fault, not an answer).
    """

    def __init__(self, max_workers: int = 2, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers: must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self.startup_timeout = startup_timeout
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self.kills = 0
        self.calls = 0  # requests sent to a worker (the in-process stages decide the rest)

    def _acquire(self, deadline: float) -> _Worker | None:
        with self._cond:
            while True:
                while self._idle:
                    w = self._idle.pop()
                    if w.alive():
                        return w
                    self._count -= 1
                if self._count < self.max_workers:
                    self._count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
        try:
            w = _Worker()
        except OSError as exc:
            self._forget()
            raise RuntimeError(f"cast_core.verify: cannot start the symbolic worker: {exc}") from exc
        if not w.wait_ready(self.startup_timeout):
            w.kill()
            self._forget()
            raise RuntimeError("cast_core.verify: the symbolic worker did not start within "
                               f"{self.startup_timeout:.0f} s (is sympy importable?)")
        return w

    def _forget(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify()

    def call(self, payload: dict, timeout: float) -> dict | None:
        start = time.monotonic()
        self.calls += 1
        w = self._acquire(start + timeout)
        if w is None:
            return None
        # Startup time (first call only) is not charged to the answer's budget.
        remaining = max(0.0, timeout - (time.monotonic() - start)) if w.next_id else timeout
        reply = w.request(payload, remaining)
        if reply is None:
            w.kill()
            self.kills += 1
            self._forget()
            # Start the replacement now, in the background, so the next call does not
            # wait for a fresh interpreter to import sympy.
            threading.Thread(target=self._replenish, daemon=True).start()
            return None
        with self._cond:
            self._idle.append(w)
            self._cond.notify()
        return reply

    def _replenish(self) -> None:
        with self._cond:
            if self._count >= self.max_workers:
                return
            self._count += 1
        try:
            w = _Worker()
        except OSError:
            self._forget()
            return
        if not w.wait_ready(self.startup_timeout):
            w.kill()
            self._forget()
            return
        with self._cond:
            self._idle.append(w)
            self._cond.notify()

    def warmup(self) -> None:
        """Start one worker now (e.g. at trainer start-up) instead of on the first call."""
        w = self._acquire(time.monotonic() + self.startup_timeout)
        if w is not None:
            with self._cond:
                self._idle.append(w)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for w in idle:
            w.kill()


_POOL: SymbolicPool | None = None
_POOL_PID = 0
_POOL_LOCK = threading.Lock()


def get_pool() -> SymbolicPool:
    """The process-wide pool (created on first use; a forked child gets its own, since
    the parent's pipes must not be shared)."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid():
            _POOL = SymbolicPool(max_workers=max(1, min(4, os.cpu_count() or 1)))
            _POOL_PID = os.getpid()
            atexit.register(_POOL.close)
        return _POOL
