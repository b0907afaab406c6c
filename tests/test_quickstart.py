"""The README's quick start is two commands, and each sets up what it needs (checked with
``make -n``; .ci/run runs both for real from a fresh clone)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_readme_quick_start_is_two_make_commands():
    assert _quick_start_commands() == ["make demo", "make test"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target,runs", [
    ("demo", "cast-train --preset tiny-arithmetic --out runs/demo --overwrite"),
    ("test", "python -m pytest"),
])
def test_each_command_sets_up_the_environment_when_missing(tmp_path, target, runs):
    venv = tmp_path / "venv"
    plan = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(REPO), target, f"VENV={venv}"], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    create = next(i for i, ln in enumerate(plan) if "-m venv" in ln)
    torch_first = next(i for i, ln in enumerate(plan) if 'pip install --quiet "torch==' in ln)
    project = next(i for i, ln in enumerate(plan) if 'pip install --quiet -e ".[torch,trl,dev,gguf]"' in ln)
    command = next(i for i, ln in enumerate(plan) if runs in ln)
    assert create < torch_first < project < command
    # Once set up, the same command only runs.
    (venv / "bin").mkdir(parents=True)
    (venv / ".cast-installed").touch()
    plan = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(REPO), target, f"VENV={venv}"], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    assert len(plan) == 1 and runs in plan[0]


def test_ci_runs_the_two_commands_from_a_fresh_clone():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    steps = [ln.split("#", 1)[0].strip() for ln in ci.splitlines()]
    clone = next(i for i, s in enumerate(steps) if s.startswith("git clone"))
    assert steps.index("time make demo") > clone and steps.index("time make test") > clone
