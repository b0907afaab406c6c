"""What a comparison runs: an experiment grid (presets × arms × seeds) and its fairness rules.

A grid is a TOML file (``configs/experiments/*.toml``; :func:`load_grid`)::

    name = "tiny-quick"
    title = "Method comparison: ..."
    presets = ["tiny-arithmetic", "tiny-multistep"]
    seeds = [0, 1, 2]
    baseline = "grpo"                   # deltas are paired by seed against this arm
    headline = ["cast", "cast_contract"]  # arms that get a verdict against the baseline
    out = "runs/compare-quick"          # default run root
    caveats = ["..."]                   # report caveats specific to this grid

    [settings]                          # every run of every preset: budget, model, LoRA, eval size, ...
    max_steps = 60

    [preset_settings.tiny-multistep]    # optional, one preset's runs only
    max_new_tokens = 32

    [[arms]]                            # a plain method: the preset's settings as they are
    name = "grpo"

    [[arms]]                            # an arm with one documented difference
    name = "cast_contract"
    method = "cast"
    defaults = ["cast"]                 # these settings at the library default, not the preset's
    overrides = { }                     # and/or these settings (TrainConfig keys; ``cast`` merges by field)
    description = "CAST with the contract's default CASTConfig instead of the preset's CAST parameters"

Every run of a preset is the preset's config layered (``config.merge_settings``) with
:data:`PLUMBING`, the grid's ``settings``, its ``preset_settings``, ``--set`` and the
arm's difference, then ``method``, ``seed``, ``out`` and ``num_threads``. Settings that
only some methods read (:data:`METHOD_SPECIFIC`) are refused in ``settings`` and
``--set``: a method-specific change belongs to an arm, where the report states it.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

__all__ = [
    "Arm", "Grid", "CompareSettings", "METHOD_SPECIFIC", "PLUMBING", "RUN_KEYS", "EXPERIMENTS_DIR",
    "grid_from_mapping", "load_grid", "resolve_grid", "list_grids", "select", "check_shared_settings",
    "run_dir", "run_configs", "reference_config", "unexpected_differences", "method_specific_differences",
    "arm_differences",
]

# Settings that only some methods read: changing them for every run would tune those methods alone.
METHOD_SPECIFIC = ("cast", "rlsd_lam", "rlsd_lam_decay_steps", "rlsd_eps_w", "zvp_alpha", "teacher",
                   "teacher_refresh_steps", "teacher_ema_decay", "teacher_context", "allow_privileged_teacher")
# Run-plumbing settings (no effect on the learning itself), the same for every run; a grid may override them.
PLUMBING: dict[str, Any] = dict(tensorboard=False, progress=False, save_every=0, keep_checkpoints=1)
# Keys the comparison sets per run; a run's saved config may differ from another's in these.
RUN_KEYS = ("method", "seed", "out", "num_threads")
# The built-in grids of a source checkout (a path works from anywhere).
EXPERIMENTS_DIR = Path(__file__).resolve().parents[3] / "configs" / "experiments"
_LABELS = {"grpo": "GRPO", "rlsd": "RLSD", "rl_zvp": "RL-ZVP", "cast": "CAST", "opsd": "OPSD"}


def _plain(x: Any) -> Any:
    """JSON round trip: tuples become lists, as in a saved ``config.json``."""
    return json.loads(json.dumps(x))


@dataclasses.dataclass(frozen=True)
class Arm:
    """One arm of a grid: a trainer method, plus at most one documented difference.

    Attributes:
        name: the arm's name (its run folder, table rows, plot legend).
        method: the trainer method it runs (one of ``config.METHODS``).
        overrides: ``TrainConfig`` settings it changes (a ``merge_settings`` layer; ``cast``
            merges field by field into the preset's CAST parameters).
        defaults: settings it takes at the library default instead of the preset's value
            (``"cast"``: the contract's whole default ``CASTConfig``).
        description: what the difference is, for the report.
    """

    name: str
    method: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    defaults: tuple[str, ...] = ()
    description: str = ""

    @property
    def label(self) -> str:
        """Display name: ``CAST`` for the arm ``cast``, the arm's name for a variant."""
        return _LABELS.get(self.name, self.name)

    def layer(self) -> dict[str, Any]:
        """The arm's whole difference from the preset, as a JSON-ready settings layer (``{}``: none)."""
        from ..config import merge_settings
        return _plain(merge_settings({k: _library_default(k) for k in self.defaults}, self.overrides))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "label": self.label, "overrides": _plain(self.overrides),
                "defaults": list(self.defaults), "layer": self.layer(), "description": self.description}


def _library_default(key: str) -> Any:
    from cast_core.config import CASTConfig
    from ..config import TrainConfig
    if key == "cast":
        return CASTConfig().to_dict()
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}[key]


@dataclasses.dataclass(frozen=True)
class Grid:
    """An experiment grid (see the module docstring for the file format).

    Attributes:
        name / title: the grid's name and the report's title.   source: the file it came from.
        presets / seeds / arms: the grid; every arm runs every preset and seed.
        settings: ``TrainConfig`` settings for every run.   preset_settings: per preset, on top.
        baseline: the arm deltas are paired against ("" for none).
        headline: arms that get a verdict against the baseline.
        privileged / privileged_template: score CAST runs with the privileged teacher too
            (analysis only), with this context ({prompt} and {answer}).
        caveats: report caveats specific to this grid.   out: the default run root.
    """

    name: str
    presets: tuple[str, ...]
    seeds: tuple[int, ...]
    arms: tuple[Arm, ...]
    title: str = "Method comparison"
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    preset_settings: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    baseline: str = ""
    headline: tuple[str, ...] = ()
    privileged: bool = True
    privileged_template: str = ""
    caveats: tuple[str, ...] = ()
    out: str = ""
    source: str = ""

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(name)

    def settings_for(self, preset: str) -> dict[str, Any]:
        """The grid's settings for ``preset``'s runs (``settings`` then ``preset_settings``)."""
        from ..config import merge_settings
        return merge_settings(self.settings, self.preset_settings.get(preset, {}))

    def to_dict(self) -> dict[str, Any]:
        return _plain({
            "name": self.name, "title": self.title, "source": self.source, "presets": list(self.presets),
            "seeds": list(self.seeds), "arms": [a.to_dict() for a in self.arms], "settings": dict(self.settings),
            "preset_settings": {p: dict(v) for p, v in self.preset_settings.items()}, "baseline": self.baseline,
            "headline": list(self.headline), "privileged": self.privileged,
            "privileged_template": self.privileged_template, "caveats": list(self.caveats), "out": self.out})


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """What to run and where (built by ``compare.cli.parse_args``).

    Attributes:
        grid: the grid, with the command line's selections applied (None: only re-render).
        out: root of the run directories.   report_dir: where the report, JSON and plots go.
        overrides: the ``--set`` layer, applied to every run.
        jobs: runs in parallel (processes).   threads: torch threads per run.
        fresh: retrain runs that are already complete.
        action: "train" (train what is missing, then report), "summarize" (no training:
            summarise the runs in ``out``) or "render" (re-render the report from
            ``report_dir``'s JSON alone).
        command: the command line recorded in the report.
    """

    grid: Optional[Grid]
    out: str = ""
    report_dir: str = "reports"
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    jobs: int = 1
    threads: int = 1
    fresh: bool = False
    action: str = "train"
    command: str = ""


# =========================================================================================
# reading a grid
# =========================================================================================
_GRID_KEYS = {"name", "title", "presets", "seeds", "arms", "settings", "preset_settings", "baseline", "headline",
              "privileged", "privileged_template", "caveats", "out"}
_ARM_KEYS = {"name", "method", "overrides", "defaults", "description"}


def _str_list(where: str, v: Any, *, nonempty: bool = True) -> tuple[str, ...]:
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
        raise ValueError(f"{where}: must be a list of non-empty strings, got {v!r}")
    if nonempty and not v:
        raise ValueError(f"{where}: must not be empty")
    if len(set(v)) != len(v):
        raise ValueError(f"{where}: duplicate entries in {list(v)!r}")
    return tuple(v)


def check_shared_settings(layer: Mapping[str, Any], where: str) -> None:
    """Refuse, in a layer applied to every run, settings that are not ``TrainConfig`` fields,
    that the comparison sets itself (method, seed, out) or that only some methods read."""
    from ..config import TrainConfig
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in layer.items():
        if key in METHOD_SPECIFIC:
            shown = f"cast.{next(iter(value))}" if key == "cast" and isinstance(value, Mapping) and value else key
            raise ValueError(f"{where}: {shown!r} is read by only some methods; the comparison runs every method "
                             "with the preset defaults and does not tune one method alone (a grid arm's "
                             "overrides may change it, as a documented difference)")
        if key in ("method", "seed", "out"):
            raise ValueError(f"{where}: {key!r} is set by the comparison itself")
        if key not in known:
            raise ValueError(f"{where}: unknown TrainConfig setting {key!r}")


def _arm_from_mapping(where: str, d: Any) -> Arm:
    from ..config import METHODS, TrainConfig
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: must be a table, got {d!r}")
    unknown = sorted(set(d) - _ARM_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(_ARM_KEYS)}")
    name = d.get("name")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"{where}: name must be a non-empty folder name, got {name!r}")
    method = d.get("method", name)
    if method not in METHODS:
        raise ValueError(f"{where} ({name}): method must be one of {METHODS}, got {method!r}")
    overrides = d.get("overrides", {})
    if not isinstance(overrides, Mapping):
        raise ValueError(f"{where} ({name}): overrides must be a table, got {overrides!r}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in overrides:
        if key in ("method", "seed", "out") or key not in known:
            raise ValueError(f"{where} ({name}): overrides: {key!r} is not a setting an arm may change")
    defaults = _str_list(f"{where} ({name}): defaults", d.get("defaults", []), nonempty=False)
    bad = [k for k in defaults if k not in known or k in ("method", "seed", "out")]
    if bad:
        raise ValueError(f"{where} ({name}): defaults: {bad[0]!r} is not a TrainConfig setting an arm may reset")
    description = d.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{where} ({name}): description must be a string")
    arm = Arm(name=name, method=method, overrides=dict(overrides), defaults=defaults, description=description)
    if arm.layer() and not description:
        raise ValueError(f"{where} ({name}): an arm with a difference needs a description for the report")
    return arm


def grid_from_mapping(data: Mapping[str, Any], source: str = "") -> Grid:
    """Validate a grid mapping (a parsed TOML file) into a :class:`Grid` (``ValueError`` naming the key).

    Every (preset, arm) config is built once here, so a bad value fails before any run.
    """
    from ..analysis import DEFAULT_PRIVILEGED_TEMPLATE
    from ..config import PRESETS, get_preset, merge_settings

    where = f"grid {source or '<mapping>'}"
    unknown = sorted(set(data) - _GRID_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(_GRID_KEYS)}")
    name = data.get("name") or (Path(source).stem if source else "")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: name must be a non-empty string")
    presets = _str_list(f"{where}: presets", data.get("presets", []))
    bad = [p for p in presets if p not in PRESETS]
    if bad:
        raise ValueError(f"{where}: presets: unknown preset {bad[0]!r}; known: {', '.join(sorted(PRESETS))}")
    seeds = data.get("seeds", [])
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ValueError(f"{where}: seeds must be a non-empty list of distinct ints >= 0, got {seeds!r}")
    arms_in = data.get("arms", [])
    if not isinstance(arms_in, list) or not arms_in:
        raise ValueError(f"{where}: arms must be a non-empty array of tables ([[arms]])")
    arms = tuple(_arm_from_mapping(f"{where}: arms[{i}]", a) for i, a in enumerate(arms_in))
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: arms: duplicate arm names in {names}")
    settings = data.get("settings", {})
    if not isinstance(settings, Mapping):
        raise ValueError(f"{where}: settings must be a table")
    check_shared_settings(settings, f"{where}: settings")
    per_preset = data.get("preset_settings", {})
    if not isinstance(per_preset, Mapping) or not all(isinstance(v, Mapping) for v in per_preset.values()):
        raise ValueError(f"{where}: preset_settings must be a table of tables")
    for p, layer in per_preset.items():
        if p not in presets:
            raise ValueError(f"{where}: preset_settings: {p!r} is not one of the grid's presets {list(presets)}")
        check_shared_settings(layer, f"{where}: preset_settings.{p}")
    baseline = data.get("baseline", "grpo" if "grpo" in names else "")
    if baseline and baseline not in names:
        raise ValueError(f"{where}: baseline {baseline!r} is not one of the arms {names}")
    headline = _str_list(f"{where}: headline", data.get("headline", [a.name for a in arms if a.method == "cast"]),
                         nonempty=False)
    bad = [h for h in headline if h not in names or h == baseline]
    if bad:
        raise ValueError(f"{where}: headline: {bad[0]!r} is not an arm other than the baseline")
    caveats = _str_list(f"{where}: caveats", data.get("caveats", []), nonempty=False)
    privileged = data.get("privileged", True)
    if not isinstance(privileged, bool):
        raise ValueError(f"{where}: privileged must be true or false")
    template = data.get("privileged_template", DEFAULT_PRIVILEGED_TEMPLATE)
    _check_template(template, f"{where}: privileged_template")
    for key in ("title", "out"):
        if not isinstance(data.get(key, ""), str):
            raise ValueError(f"{where}: {key} must be a string")
    grid = Grid(name=name, title=data.get("title", "Method comparison"), presets=presets, seeds=tuple(seeds),
                arms=arms, settings=dict(settings), preset_settings={p: dict(v) for p, v in per_preset.items()},
                baseline=baseline, headline=headline, privileged=privileged, privileged_template=template,
                caveats=caveats, out=data.get("out") or f"runs/compare-{name}", source=source)
    for p in presets:
        for a in arms:
            try:
                get_preset(p, **merge_settings(PLUMBING, grid.settings_for(p), a.layer(), {"method": a.method}))
            except (ValueError, TypeError) as e:
                raise ValueError(f"{where}: preset {p} / arm {a.name}: {e}") from None
    return grid


def _check_template(template: Any, where: str) -> None:
    if not isinstance(template, str) or "{answer}" not in template or "{prompt}" not in template:
        raise ValueError(f"{where}: needs both {{prompt}} and {{answer}} slots, got {template!r}")


def _grid_dirs() -> list[Path]:
    return list(dict.fromkeys([Path.cwd() / "configs" / "experiments", EXPERIMENTS_DIR]))


def list_grids() -> list[str]:
    """Names of the grids in ``configs/experiments/`` (of the working directory and the source tree)."""
    return sorted({p.stem for d in _grid_dirs() if d.is_dir() for p in d.glob("*.toml")})


def resolve_grid(name: str) -> Path:
    """The file of grid ``name``: a path to a ``.toml`` file, or a name in ``configs/experiments/``."""
    p = Path(name)
    if p.suffix == ".toml" or len(p.parts) > 1:
        if not p.is_file():
            raise ValueError(f"--grid: {name!r} is not a file")
        return p
    for d in _grid_dirs():
        if (d / f"{name}.toml").is_file():
            return d / f"{name}.toml"
    raise ValueError(f"--grid: no grid {name!r} in configs/experiments/ (known: {', '.join(list_grids()) or 'none'}); "
                     "or give the path of a .toml file")


def load_grid(name: str) -> Grid:
    """Read and validate a grid file (:func:`resolve_grid` finds it)."""
    path = resolve_grid(name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"grid {path}: invalid TOML: {e}") from None
    try:
        shown = str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return grid_from_mapping(data, source=shown)


def select(grid: Grid, *, presets: Optional[Sequence[str]] = None, arms: Optional[Sequence[str]] = None,
           seeds: Optional[Sequence[int]] = None) -> Grid:
    """A sub-grid (command-line ``--presets`` / ``--methods`` / ``--seeds``).

    ``arms`` names arms of the grid or plain trainer methods (an arm of their own, with
    no difference). Seeds may be any distinct ints >= 0 (the grid's seeds are a default).
    """
    from ..config import METHODS, PRESETS
    if presets is not None:
        bad = [p for p in presets if p not in PRESETS]
        if bad:
            raise ValueError(f"--presets: unknown preset {bad[0]!r}; known: {', '.join(sorted(PRESETS))}")
        bad = [p for p in presets if p not in grid.presets]
        if bad:
            raise ValueError(f"--presets: {bad[0]!r} is not in grid {grid.name!r} (its presets: "
                             f"{', '.join(grid.presets)}); write a grid file for it")
        grid = dataclasses.replace(grid, presets=tuple(presets),
                                   preset_settings={p: v for p, v in grid.preset_settings.items() if p in presets})
    if arms is not None:
        known = {a.name: a for a in grid.arms}
        bad = [a for a in arms if a not in known and a not in METHODS]
        if bad:
            raise ValueError(f"--methods: unknown method {bad[0]!r}; choose from {', '.join(dict.fromkeys([*known, *METHODS]))}")
        chosen = tuple(known.get(a) or Arm(name=a, method=a) for a in arms)
        grid = dataclasses.replace(grid, arms=chosen, baseline=grid.baseline if grid.baseline in arms else "",
                                   headline=tuple(h for h in grid.headline if h in arms))
    if seeds is not None:
        grid = dataclasses.replace(grid, seeds=tuple(seeds))
    return grid


# =========================================================================================
# the runs of a grid
# =========================================================================================
def run_dir(out: str, preset: str, arm: str, seed: int) -> Path:
    return Path(out) / preset / arm / f"seed{seed}"


def run_configs(settings: CompareSettings) -> list[tuple[str, str, int, Any]]:
    """Every run's ``(preset, arm, seed, TrainConfig)``; checks the shared warm start.

    Raises ``ValueError`` if two runs of one preset would start from different
    warm-started models (they must differ only in method, seed and an arm's difference).
    """
    from ..config import get_preset, merge_settings
    from ..model import warm_start_key

    grid = settings.grid
    out = []
    for preset in grid.presets:
        keys = set()
        for arm in grid.arms:
            for seed in grid.seeds:
                cfg = get_preset(preset, **merge_settings(
                    PLUMBING, grid.settings_for(preset), settings.overrides, arm.layer(),
                    {"num_threads": settings.threads, "method": arm.method, "seed": seed,
                     "out": str(run_dir(settings.out, preset, arm.name, seed))}))
                if cfg.model == "tiny":
                    keys.add(warm_start_key(cfg))
                out.append((preset, arm.name, seed, cfg))
        if len(keys) > 1:
            raise ValueError(f"preset {preset!r}: runs would start from {len(keys)} different warm starts")
    return out


def reference_config(by_arm: Mapping[str, Sequence[Mapping[str, Any]]],
                     arms: Mapping[str, Arm]) -> Optional[dict[str, Any]]:
    """The config the others are checked against: the first run of the first arm without a
    difference; with only such arms absent, the first run's (:func:`unexpected_differences`
    applies an arm's difference to the reference, which leaves that arm's own config unchanged)."""
    for name, cs in by_arm.items():
        if cs and not arms[name].layer():
            return dict(cs[0])
    for cs in by_arm.values():
        if cs:
            return dict(cs[0])
    return None


def unexpected_differences(reference: Mapping[str, Any], cfg: Mapping[str, Any], arm: Arm) -> list[str]:
    """Settings where a run's saved config differs from ``reference`` beyond what is allowed.

    Allowed: :data:`RUN_KEYS` (``method`` must be the arm's) and exactly the arm's
    :meth:`Arm.layer`. Returns the differing keys, sorted after ``method`` (``[]``: the run conforms).
    """
    from ..config import merge_settings
    want = _plain(merge_settings(reference, arm.layer()))
    got = _plain(dict(cfg))
    keys = sorted((set(want) | set(got)) - set(RUN_KEYS))
    bad = [k for k in keys if want.get(k) != got.get(k)]
    if got.get("method") != arm.method:
        bad.insert(0, "method")
    return bad


def method_specific_differences(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Method-specific settings of a saved config that differ from the library defaults:
    ``[{"key", "value", "default"}]`` (CAST fields as ``cast.FIELD``)."""
    out = []
    default_cast = _plain(_library_default("cast"))
    for k, v in (cfg.get("cast") or {}).items():
        if k in default_cast and default_cast[k] != v:
            out.append({"key": f"cast.{k}", "value": v, "default": default_cast[k]})
    for k in METHOD_SPECIFIC:
        if k != "cast" and k in cfg and cfg[k] != _library_default(k):
            out.append({"key": k, "value": cfg[k], "default": _library_default(k)})
    return out


def arm_differences(preset_cfg: Mapping[str, Any], arm: Arm) -> list[dict[str, Any]]:
    """Where ``arm``'s runs differ from the preset's config ``preset_cfg`` (a plain arm's):
    ``[{"key", "value" (the arm's), "preset" (the preset's)}]``, CAST fields as ``cast.FIELD``."""
    layer = arm.layer()
    out = []
    for k, v in layer.items():
        if k == "cast":
            preset_cast = _plain(preset_cfg.get("cast") or {})
            out += [{"key": f"cast.{f}", "value": fv, "preset": preset_cast.get(f)}
                    for f, fv in v.items() if preset_cast.get(f) != fv]
        elif _plain(preset_cfg.get(k)) != v:
            out.append({"key": k, "value": v, "preset": _plain(preset_cfg.get(k))})
    return out
