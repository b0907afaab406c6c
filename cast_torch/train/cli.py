"""``cast-train``: the command line of the GRPO/CAST trainer.

    cast-train [train] --preset tiny-arithmetic --out runs/demo      # train (the default subcommand)
    cast-train train --config run.toml --method grpo --max-steps 200 --seed 1
    cast-train train --preset tiny-arithmetic --set lr=1e-4 --set cast.lam=0.3
    cast-train train --out runs/demo --resume                        # continue a run
    cast-train --out runs/demo --resume --max-steps 600              # ... for longer (allow-listed change)
    cast-train --preset tiny-arithmetic --out runs/demo --overwrite  # start OUT afresh
    cast-train plot runs/demo                                        # PNG curves
    cast-train presets                                               # list presets

Subcommands live in :data:`SUBCOMMANDS` as ``"module:function"`` strings imported on
use; each function takes the remaining argv list and returns an exit code. A module
(e.g. ``cast_torch.train.compare``) adds a subcommand by being listed there.
Precedence of settings: preset < config file (which may name a ``preset``) < flags.
Every user-facing failure prints one ``cast-train: error: ...`` line (naming the file, field
or path and what to do) and exits with status 2, before the model loads and before ``OUT``
changes; unexpected exceptions keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

__all__ = ["main", "SUBCOMMANDS", "train_main", "presets_main", "build_config", "parse_set", "set_layer"]

SUBCOMMANDS: dict[str, str] = {
    "train": "cast_torch.train.cli:train_main",
    "plot": "cast_torch.train.plot:main",
    "compare": "cast_torch.train.compare:main",
    "presets": "cast_torch.train.cli:presets_main",
}

_USAGE = """usage: cast-train [SUBCOMMAND] [options]

subcommands:
  train     train a model (the default when the first argument is an option)
  plot      write PNG curves of a run: cast-train plot OUT
  compare   compare methods over seeds (when installed)
  presets   list the built-in presets

run `cast-train SUBCOMMAND --help` for the options of each.
"""


def _resolve(name: str) -> Callable[[list[str]], int]:
    target = SUBCOMMANDS[name]
    module, _, func = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise SystemExit(f"cast-train: error: subcommand {name!r} is not available ({module} is not installed)")
        raise
    return getattr(mod, func)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``cast-train`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(_USAGE)
        return 0
    if args and args[0] in SUBCOMMANDS:
        name, rest = args[0], args[1:]
    elif not args or args[0].startswith("-"):
        name, rest = "train", args
    else:
        print(f"cast-train: error: unknown subcommand {args[0]!r}; choose from {sorted(SUBCOMMANDS)}",
              file=sys.stderr)
        return 2
    return int(_resolve(name)(rest) or 0)


def parse_set(item: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` → (["a", "b"], value); the value is read as TOML, else kept as a string."""
    if "=" not in item:
        raise ValueError(f"--set: expected KEY=VALUE, got {item!r}")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key:
        raise ValueError(f"--set: empty key in {item!r}")
    import tomllib
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def set_layer(items: Sequence[str]) -> dict[str, Any]:
    """``--set`` items as one config layer for ``config.merge_settings``: ``FIELD=v`` or ``cast.FIELD=v``."""
    layer: dict[str, Any] = {}
    for item in items:
        path, value = parse_set(item)
        if len(path) == 1:
            layer[path[0]] = value
        elif len(path) == 2 and path[0] == "cast":
            layer.setdefault("cast", {})[path[1]] = value
        else:
            raise ValueError(f"--set: unknown key {'.'.join(path)!r} (use FIELD or cast.FIELD)")
    return layer


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cast-train train", description="Train a causal LM with GRPO/CAST.")
    p.add_argument("--preset", help="start from a built-in preset (see `cast-train presets`)")
    p.add_argument("--config", help="TOML or YAML config file (keys = TrainConfig fields, [cast] table)")
    p.add_argument("--method", help="advantage estimator: cast, grpo, rlsd, rl_zvp, opsd")
    p.add_argument("--max-steps", type=int, help="number of RL steps")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--out", help="output directory")
    p.add_argument("--model", help='local model directory, a .gguf file, "smollm2-135m-instruct", or "tiny"')
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous run in OUT (it is moved aside, and deleted once the new run has a checkpoint)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: accept changed settings beyond max_steps/eval/save/logging (recorded in "
                        "OUT/config.json)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any field (TOML value syntax; cast.FIELD for the estimator); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def build_config(args: argparse.Namespace):
    """The :class:`TrainConfig` for parsed ``train`` arguments (preset < file < flags)."""
    from .config import config_from_mapping, load_config_file, merge_settings

    data: dict[str, Any] = {}
    if args.config:
        data = load_config_file(args.config)
    if args.preset:
        if "preset" in data and data["preset"] != args.preset:
            raise ValueError(f"--preset {args.preset!r} conflicts with preset = {data['preset']!r} in {args.config}")
        data["preset"] = args.preset
    if not args.config and not args.preset and not args.resume:
        raise ValueError("give --preset NAME or --config FILE (see `cast-train presets`)")
    for flag, key in (("method", "method"), ("max_steps", "max_steps"), ("seed", "seed"), ("out", "out"),
                      ("model", "model")):
        if getattr(args, flag) is not None:
            data[key] = getattr(args, flag)
    if args.no_progress:
        data["progress"] = False
    data = merge_settings(data, set_layer(args.set))
    if args.resume and not args.config and not args.preset:
        # Resume from OUT alone: the run's saved config.json is the base.
        if not args.out:
            raise ValueError("--resume without --preset/--config needs --out DIR")
        from .rundir import read_run_config
        data = merge_settings(read_run_config(args.out), data)
    return config_from_mapping(data)


def _fail(message: str) -> int:
    print(f"cast-train: error: {message}", file=sys.stderr)
    return 2


def _os_error(e: OSError) -> str:
    """One line for an ``OSError``: the path, the system's reason, what to do."""
    where = f"{e.filename!r}" + (f" -> {e.filename2!r}" if e.filename2 else "") if e.filename else "a file"
    reason = e.strerror or str(e)
    return f"{where}: {reason}; check the path, its permissions and the free disk space"


def train_main(argv: Sequence[str]) -> int:
    """``cast-train train``: build the config, train, print the final metrics as JSON.

    The error boundary: a bad input (config, folder, checkpoint, model folder, data) is one
    ``cast-train: error: ...`` line and exit status 2, raised before the model loads and before
    ``OUT`` changes; an ``OSError`` is translated the same way, and so is a run stopped by
    non-finite steps. Any other exception is a bug and keeps its traceback.
    """
    args = _train_parser().parse_args(list(argv))
    try:
        config = build_config(args)
        from .trainer import Trainer, TrainingStopped   # torch and transformers: after the config checks
        trainer = Trainer(config, resume=args.resume, overwrite=args.overwrite,
                          allow_config_change=args.allow_config_change)
    except (ValueError, TypeError) as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(_os_error(e))
    try:
        final = trainer.train()
    except TrainingStopped as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"{_os_error(e)}; the last checkpoint is intact: fix that and run again with --resume")
    except KeyboardInterrupt:
        if trainer.last_saved_step >= 0:
            hint = (f"continue from the last checkpoint (step {trainer.last_saved_step}) with: "
                    f"cast-train --out {config.out} --resume")
        else:
            hint = "no checkpoint was written yet: run the same command again (or with --overwrite)"
        print(f"cast-train: interrupted after step {trainer.step_count}; {hint}", file=sys.stderr)
        return 130
    keys = ("step", "reward_mean", "eval_accuracy", "frac_mixed", "loss", "step_time")
    print(json.dumps({k: final[k] for k in keys if k in final}))
    saved = f", checkpoint in {Path(config.out) / 'checkpoints'}" if trainer.last_saved_step >= 0 else ""
    print(f"cast-train: done; metrics in {Path(config.out) / 'metrics.jsonl'}{saved}")
    return 0


def presets_main(argv: Sequence[str]) -> int:
    """``cast-train presets``: list the built-in presets and their settings."""
    argparse.ArgumentParser(prog="cast-train presets", description="List the built-in presets.").parse_args(list(argv))
    from .config import PRESETS
    for name, values in PRESETS.items():
        print(f"{name}:")
        for k, v in values.items():
            print(f"  {k} = {v!r}")
    return 0


if __name__ == "__main__":   # pragma: no cover
    raise SystemExit(main())
