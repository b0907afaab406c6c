"""Where RL starts: a preset's start model on its held-out problems, before any training.

    python examples/real_model_baseline.py --preset smollm2              # prints one JSON line
    python examples/real_model_baseline.py --preset smollm2 --samples 8 --eval-size 64 --threads 1
    python examples/real_model_baseline.py --preset smollm2 --set max_operand=20 --set num_terms=3

Reports greedy accuracy (the trainer's ``eval_accuracy`` at step 0), the mean sampled
reward at the preset's own sampling settings (temperature, top-p, top-k, max_new_tokens)
with ``--samples`` completions per problem, and how those groups split: all right, all
wrong, mixed (only mixed groups carry a GRPO signal). Per story family too, for the
built-in word problems. Nothing is trained and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import torch

from cast_torch.train import get_preset
from cast_torch.train.cli import parse_set
from cast_torch.train.data import load_problems
from cast_torch.train.model import load_policy, render_prompt, resolve_device, uses_chat_template
from cast_torch.train.rollout import generate
from cast_torch.train.trainer import resolve_reward


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="smollm2")
    ap.add_argument("--samples", type=int, default=8, help="sampled completions per problem (the group size)")
    ap.add_argument("--eval-size", type=int, default=None, help="held-out problems (default: the preset's)")
    ap.add_argument("--batch", type=int, default=16, help="prompts per generate call")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the preset's setting)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset field, as in cast-train (e.g. --set max_operand=20)")
    args = ap.parse_args()

    over: dict = {"eval_size": args.eval_size} if args.eval_size else {}
    for item in args.set:
        path, value = parse_set(item)
        over[".".join(path)] = value
    cfg = get_preset(args.preset, **over)
    torch.set_num_threads(args.threads or cfg.num_threads or torch.get_num_threads())
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    model, tok, info = load_policy(cfg, log=lambda s: None)
    device = resolve_device(cfg.device)
    model.to(device)
    use_template = uses_chat_template(tok, cfg.use_chat_template)
    reward_fn = resolve_reward(cfg.reward)
    _, rows = load_problems(cfg)
    thr = cfg.cast.correct_threshold

    greedy, sampled, lengths, truncated = [], [], [], []
    by_family: dict[str, list[float]] = defaultdict(list)
    for s in range(0, len(rows), args.batch):
        batch = rows[s:s + args.batch]
        prompts = [render_prompt(tok, r["prompt"], use_template) for r in batch]
        answers = [r["answer"] for r in batch]
        ro = generate(model, tok, prompts, num_samples=1, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                      device=device)
        greedy += [float(v > thr) for v in reward_fn(ro.texts, answers)]
        ro = generate(model, tok, prompts, num_samples=args.samples, max_new_tokens=cfg.max_new_tokens,
                      temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k, device=device)
        r = [float(v) for v in reward_fn(ro.texts, [a for a in answers for _ in range(args.samples)])]
        for i, row in enumerate(batch):
            group = r[i * args.samples:(i + 1) * args.samples]
            sampled.append(group)
            by_family[row.get("family", "all")] += group
        lengths += ro.valid_mask.sum(1).tolist()
        truncated += ro.truncated.tolist()

    correct = [[v > thr for v in g] for g in sampled]
    n = len(sampled)
    print(json.dumps({
        "preset": args.preset, "overrides": over, "model": cfg.model, "max_operand": cfg.max_operand,
        "num_terms": cfg.num_terms, "problems": n, "samples": args.samples,
        "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature,
        "greedy_accuracy": sum(greedy) / n,
        "sampled_reward": sum(map(sum, sampled)) / (n * args.samples),
        "frac_mixed": sum(0 < sum(g) < len(g) for g in correct) / n,
        "frac_all_wrong": sum(not any(g) for g in correct) / n,
        "frac_all_correct": sum(all(g) for g in correct) / n,
        "sampled_reward_by_family": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_family.items())},
        "completion_len_mean": sum(lengths) / len(lengths), "truncated_frac": sum(truncated) / len(truncated),
        "threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - t0, 1),
        "model_source": info.get("source"),
    }))


if __name__ == "__main__":
    main()
