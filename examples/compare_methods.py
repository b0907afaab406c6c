"""Compare GRPO, RLSD, RL-ZVP and CAST on an experiment grid and write reports/method-comparison.md.

A grid is a TOML file in configs/experiments/ (presets x arms x seeds, the budget and any
setting shared by every arm). The built-in ones, tiny-quick and tiny-full, run CAST twice:
as the preset configures it (``cast``) and with the contract's default CASTConfig
(``cast_contract``; the only setting that differs is the deadband).

Same as ``cast-train compare``; see docs/compare.md. Examples::

    python examples/compare_methods.py --quick --jobs 2 --report-dir reports/quick   # <= 10 min on 2 CPU cores
    python examples/compare_methods.py --jobs 2                  # the tiny-full grid (the presets' budgets)
    python examples/compare_methods.py --grid my-grid.toml       # any grid file
    python examples/compare_methods.py --quick --no-train        # re-summarise existing runs
    python examples/compare_methods.py --report-only             # re-render reports/ from its JSON alone
"""

import sys

from cast_torch.train.compare import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
