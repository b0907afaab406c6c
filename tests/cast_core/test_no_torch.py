"""cast_core must import (and run) with numpy and sympy alone."""
import subprocess
import sys


def test_import_cast_core_never_imports_torch():
    code = ("import sys, numpy as np, cast_core, cast_core.baselines, cast_core.diagnostics, cast_core.verify\n"
            "cast_core.cast_advantages([1.0, 0.0], [0, 0], np.zeros((2, 3)), np.ones((2, 3), bool))\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'trl'))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"cast_core pulled in heavy modules: {out.stdout} {out.stderr}"
