"""Trainer step time: CAST vs GRPO on the tiny-arithmetic preset, measured in one run.

CAST costs one extra forward pass without gradient per step (the self-teacher's
log-probs); everything else is shared, so the target is CAST / GRPO <= 1.3. Both runs
start from the same (cached) warm-started model, use the same seed, and alternate in
blocks so drifting machine load hits both alike. Prints the mean step time of each
method, the ratio, and the generate / score / update split.

    python benchmarks/bench_trainer.py [--steps 30] [--blocks 3] [--preset tiny-arithmetic]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from cast_torch.train import Trainer, get_preset

PARTS = ("time_generate", "time_score", "time_update")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny-arithmetic")
    p.add_argument("--steps", type=int, default=30, help="measured steps per method per block")
    p.add_argument("--blocks", type=int, default=3, help="alternating CAST/GRPO blocks")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured steps per trainer")
    args = p.parse_args()

    trainers = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("cast", "grpo"):
            cfg = get_preset(args.preset, method=method, out=f"{tmp}/{method}", seed=0,
                             max_steps=args.warmup + args.steps * args.blocks + 1, eval_every=0, save_every=0,
                             tensorboard=False, progress=False)
            trainers[method] = Trainer(cfg, log=lambda s: None)
            for _ in range(args.warmup):
                trainers[method].step()
        records: dict[str, list[dict]] = {"cast": [], "grpo": []}
        t0 = time.perf_counter()
        for _ in range(args.blocks):
            for method in ("cast", "grpo"):
                for _ in range(args.steps):
                    records[method].append(trainers[method].step())
        wall = time.perf_counter() - t0
        for tr in trainers.values():
            tr.close()

    cfg = trainers["cast"].config
    print(f"preset {args.preset}: N = {cfg.prompts_per_step} x {cfg.group_size} completions/step, "
          f"max_new_tokens {cfg.max_new_tokens}, {args.blocks} blocks x {args.steps} steps per method, "
          f"torch threads {cfg.num_threads or 'auto'}, wall {wall:.1f}s")
    print(f"{'method':<6} {'step_s':>8} {'median':>8} {'generate':>9} {'score':>8} {'update':>8}  split (gen/score/upd)")
    means = {}
    for method, recs in records.items():
        step = [r["step_time"] for r in recs]
        parts = [statistics.fmean(r[k] for r in recs) for k in PARTS]
        means[method] = statistics.fmean(step)
        total = sum(parts)
        split = "/".join(f"{100 * x / total:.0f}%" for x in parts)
        print(f"{method:<6} {means[method]:8.4f} {statistics.median(step):8.4f} {parts[0]:9.4f} {parts[1]:8.4f} "
              f"{parts[2]:8.4f}  {split}")
    score_ratio = (statistics.fmean(r["time_score"] for r in records["cast"])
                   / statistics.fmean(r["time_score"] for r in records["grpo"]))
    ratio = means["cast"] / means["grpo"]
    med = (statistics.median(r["step_time"] for r in records["cast"])
           / statistics.median(r["step_time"] for r in records["grpo"]))
    print(f"CAST / GRPO step time: mean {ratio:.3f}, median {med:.3f} (target <= 1.3); "
          f"score phase {score_ratio:.2f}x (the teacher forward)")


if __name__ == "__main__":
    main()
