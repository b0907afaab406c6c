"""Compare GRPO, RLSD, RL-ZVP and CAST on the tiny presets and write reports/method-comparison.md.

CAST runs twice: as the preset configures it (``cast``) and with the contract's default
CASTConfig (``cast_contract``; the only setting that differs is the deadband).

Same as ``cast-train compare``; see docs/compare.md. Examples::

    python examples/compare_methods.py --quick --jobs 2 --report-dir reports/quick   # <= 10 min on 2 CPU cores
    python examples/compare_methods.py --jobs 2         # full mode (the presets' budgets)
    python examples/compare_methods.py --jobs 2 --report-only   # rewrite the report from the runs

Every method runs with the preset's defaults (cast_contract: the contract's CASTConfig), the
same cached warm start and seeds 0, 1, 2.
"""

import sys

from cast_torch.train.compare import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
