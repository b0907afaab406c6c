"""Which spec vectors catch which porting mistake: mutation runs of the JAX port.

    python examples/port_jax/mistakes.py            # writes mistakes.json, refreshes README.md's table

Each mistake below is a one-line edit of ``cast_jax.py`` (the text it replaces must occur exactly
once). Every mutant runs the ``cast_advantages`` vectors in float64; ``mistakes.json`` records
the cases it fails, and the README's table is rendered from that file.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
README = HERE / "README.md"
BEGIN, END = "<!-- mistakes:begin -->", "<!-- mistakes:end -->"

# Why no vector can fail a mistake, for the ones none does (checked: the table says when a note
# is attached to a mistake some vector does catch).
WHY_UNCAUGHT = {
    "up_flip_no_floor": "equivalent, for every legal config: the up-flip applies only when g > 0, where x = exp(g) ≥ 1 "
                        "(+inf for g = +inf), and for x ≥ 1, max(x, max(1, lc)) = max(x, lc) whatever lc, so "
                        "clip(x, max(1, lc), hc) = clip(x, lc, hc) for every hc, hc < 1 included "
                        "(`flip_floor_above_hi`); the same holds for the down-flip's max(1, lw)",
    "deadband_exclusive": "not observable in the spec's exact arithmetic: for a finite float g ≠ 0, exp(g) is "
                          "transcendental and never equals a float edge, ±inf reach no edge, and the one edge value "
                          "an input can reach, exp(0) = 1, only replaces g = 0 by 0; float64 exp can round onto an "
                          "edge, which is why spec §10 keeps inputs a relative 1e-6 away from the edges",
}

# (name, what a porter got wrong, text in cast_jax.py, replacement)
MISTAKES = [
    ("ddof_always_1", "sample std (ddof 1) whatever `std_ddof` says",
     "jnp.maximum(count - std_ddof, one)", "jnp.maximum(count - 1, one)"),
    ("no_eps_floor", "divide by σ without the `max(σ, eps)` floor",
     "mixed = dev / jnp.maximum(sigma, eps)", "mixed = dev / sigma"),
    ("threshold_inclusive", "correct iff r ≥ threshold (the spec: strictly >)",
     "correct = r > thr", "correct = r >= thr"),
    ("zero_variance_by_variance", "a group is zero-variance when its rewards are equal, not when all share correctness",
     "all_correct = n_correct == count", "all_correct = (n_correct == count) & (seg(r)[gid] == r * count)"),
    ("zv_base_not_scaled", "all-correct/all-wrong bases not multiplied by s",
     "jnp.where(all_correct, b_pos * s, jnp.where(all_wrong, -b_neg * s, mixed))",
     "jnp.where(all_correct, b_pos, jnp.where(all_wrong, -b_neg, mixed))"),
    ("lam_decay_unclipped", "λ keeps falling after D steps (goes negative)",
     "jnp.minimum(step, decay_steps).astype(dt)", "step.astype(dt)"),
    ("batch_scale_batch_mean", 'scale="batch" subtracts the batch mean (the spec: the group mean)',
     "        sigma = jnp.sqrt(jnp.sum(batch_dev * batch_dev)",
     "        dev = batch_dev\n        sigma = jnp.sqrt(jnp.sum(batch_dev * batch_dev)"),
    ("ids_as_indices", "group ids used directly as 0..K-1 indices",
     "_, gid = jnp.unique(ids, return_inverse=True, size=n)", "gid = ids"),
    ("no_down_flip", "teacher-negative tokens of positive rows keep their sign",
     "    pos = jnp.where(g < 0, -mag * weight(jnp.exp(-g), jnp.maximum(one, lw), hw), pos_keep)",
     "    pos = pos_keep"),
    ("down_flip_own_range", "the down-flip weighted with the positive side's range",
     "weight(jnp.exp(-g), jnp.maximum(one, lw), hw)", "weight(jnp.exp(-g), jnp.maximum(one, lc), hc)"),
    ("up_flip_no_floor", "the up-flip's low clip not floored at 1",
     "jnp.maximum(one, lc), hc)", "lc, hc)"),
    ("negative_side_exp_g", "the negative side weighs exp(g) instead of exp(−g)",
     "neg_keep = b * weight(jnp.exp(-g), lw, hw)", "neg_keep = b * weight(jnp.exp(g), lw, hw)"),
    ("weight_not_floored", "W = 1 + λ(clip − 1) without the max(0, ·)",
     "jnp.maximum(0, one + lam * (_clip(x, lo, hi) - one))", "one + lam * (_clip(x, lo, hi) - one)"),
    ("deadband_exclusive", "deadband ends exclusive (the spec: inclusive)",
     "(e >= dlo) & (e <= dhi)", "(e > dlo) & (e < dhi)"),
    ("no_adv_clip", "no final clip of the token advantage",
     "    adv = _clip(adv, adv_lo, adv_hi)\n", ""),
    ("mask_not_applied", "the output is not zeroed outside the mask",
     "    return jnp.where(m, adv, jnp.zeros((), dt))", "    return adv"),
    ("nan_gap_accepted", "NaN gaps inside the mask are not rejected",
     "    if np.any(nan_inside):", "    if False:"),
    ("nonfinite_reward_accepted", "NaN/inf rewards are not rejected",
     "    if not np.all(np.isfinite(r)):", "    if False:"),
]


def mutant(source: str, name: str, old: str, new: str) -> types.ModuleType:
    if source.count(old) != 1:
        raise ValueError(f"mistake {name}: the text to replace occurs {source.count(old)} times in cast_jax.py")
    module = types.ModuleType(f"cast_jax_{name}")
    exec(compile(source.replace(old, new), f"<cast_jax:{name}>", "exec"), module.__dict__)
    return module


def run() -> list[dict]:
    from cast_core.conformance import run_conformance

    source = (HERE / "cast_jax.py").read_text()
    results = []
    for name, what, old, new in MISTAKES:
        report = run_conformance(impl=mutant(source, name, old, new).cast_advantages)
        crashed = [r for r in report.failures if r.detail.startswith("raised")
                   and not r.detail.startswith(("raised ValueError", "raised TypeError"))]
        if crashed:  # the edit broke the port instead of making the mistake
            raise RuntimeError(f"mistake {name}: the mutant crashes ({crashed[0].detail}); fix its edit")
        caught = [r.name for r in report.failures]
        if caught and name in WHY_UNCAUGHT:
            raise RuntimeError(f"mistake {name}: now caught by {caught[:3]}; drop its WHY_UNCAUGHT note")
        results.append({"mistake": name, "description": what, "caught_by": caught, "cases": len(report.results),
                        "why_uncaught": None if caught else WHY_UNCAUGHT.get(name, "no note")})
        print(f"{name:28s} caught by {len(caught):3d} of {len(report.results)} vectors", flush=True)
    return results


def table(results: list[dict], shown: int = 4) -> str:
    lines = [f"| mistake | vectors that fail (of the {results[0]['cases']} cast_advantages ones) |", "|---|---|"]
    for r in results:
        names = r["caught_by"]
        listed = ", ".join(f"`{n}`" for n in names[:shown]) + (f", … ({len(names)} in all)" if len(names) > shown else "")
        lines.append(f"| {r['description']} | {listed or '**none**: ' + r['why_uncaught']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=HERE / "mistakes.json")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md's table")
    parser.add_argument("--render-only", action="store_true", help="only re-render README.md from the JSON")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.render_only:
        results = json.loads(args.json.read_text())
    else:
        results = run()
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if not args.no_readme:
        text = README.read_text()
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        README.write_text(f"{head}{BEGIN}\n{table(results)}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
