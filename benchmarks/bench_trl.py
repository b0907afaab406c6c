"""Steps per second: our trainer vs TRL's GRPOTrainer, side by side in one process (CPU).

Both get the same tiny local model (built here, nothing downloaded), the same arithmetic
prompts, the same prompts × G completions per step, the same completion length limit, the
same sampling (temperature 1, no top-p/top-k), the same optimizer settings and the same
reward (`cast_core.verify.math_reward`). Each run does ``--warmup`` untimed steps, then
``--steps`` timed ones; every run is repeated ``--rounds`` times in alternating order and the
best round is kept. Printed: steps/s and mean completion length of each run (generation cost
follows the sampled lengths) and the ratios, all measured now.

    python benchmarks/bench_trl.py                   # defaults: 4 prompts x G=8, 16 tokens, 5 steps
    python benchmarks/bench_trl.py --steps 10 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=4, help="prompts per step")
    p.add_argument("--group-size", type=int, default=8, help="G, completions per prompt")
    p.add_argument("--max-new-tokens", type=int, default=16, help="completion length limit")
    p.add_argument("--steps", type=int, default=5, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    p.add_argument("--hidden-size", type=int, default=64, help="tiny model width")
    p.add_argument("--layers", type=int, default=2, help="tiny model layers")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--rounds", type=int, default=2, help="repeat every run; the best round is reported")
    args = p.parse_args(argv)
    for name in ("prompts", "group_size", "max_new_tokens", "steps", "hidden_size", "layers", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.threads < 0:
        p.error("--warmup and --threads must be >= 0")
    return args


def build_model(path: str, args) -> None:
    from cast_torch.train.tiny import make_tiny_model, make_tokenizer

    tokenizer = make_tokenizer(save_dir=path)
    make_tiny_model(tokenizer, hidden_size=args.hidden_size, num_layers=args.layers).save_pretrained(path)


def problems(n: int) -> list[dict[str, str]]:
    from cast_torch.train.data import generate_problems

    return generate_problems(n, seed=0, max_operand=49)


def time_ours(model_dir: str, out: str, method: str, args) -> tuple[float, float]:
    """(steps/s, mean completion length) of cast_torch.train.Trainer over the timed steps."""
    from cast_torch.train import TrainConfig, Trainer

    config = TrainConfig(
        out=out, model=model_dir, data="arithmetic", max_operand=49, method=method, seed=0,
        max_steps=args.warmup + args.steps, prompts_per_step=args.prompts, group_size=args.group_size,
        max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0, lr=args.lr,
        clip_low=0.2, clip_high=0.28, loss_agg="token-mean", kl_beta=0.0, max_grad_norm=1.0,
        teacher="snapshot", teacher_refresh_steps=50, eval_every=0, save_every=0, tensorboard=False,
        progress=False, device="cpu", num_threads=torch.get_num_threads(), bf16="never",
        score_chunk_size=args.prompts * args.group_size,
    )
    trainer = Trainer(config, log=lambda message: None)
    for _ in range(args.warmup):
        trainer.step()
    lengths = []
    start = time.perf_counter()
    for _ in range(args.steps):
        lengths.append(trainer.step()["completion_len"])
    elapsed = time.perf_counter() - start
    trainer.close()
    return args.steps / elapsed, sum(lengths) / len(lengths)


def time_trl(model_dir: str, out: str, cast: bool, args) -> tuple[float, float]:
    """(steps/s, mean completion length) of TRL's GRPOTrainer (or CASTGRPOTrainer) over the timed steps."""
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback

    from cast_core.verify import math_reward

    def correctness(completions, answer, **kwargs):
        return [math_reward(c, a) for c, a in zip(completions, answer)]

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_end(self, a, state, control, **kwargs):
            self.times.append(time.perf_counter())

    common = dict(
        output_dir=out, use_cpu=True, bf16=False, report_to=[], seed=0, disable_tqdm=True,
        max_completion_length=args.max_new_tokens, num_generations=args.group_size,
        per_device_train_batch_size=args.prompts * args.group_size, max_steps=args.warmup + args.steps,
        logging_steps=1, save_strategy="no", activation_checkpointing=False, learning_rate=args.lr,
        lr_scheduler_type="constant", temperature=1.0, top_p=1.0, top_k=0, beta=0.0, epsilon=0.2,
        epsilon_high=0.28, loss_type="dapo", max_grad_norm=1.0, dataloader_num_workers=0,
    )
    dataset = Dataset.from_list(problems(400))
    if cast:
        from cast_torch.integrations.trl import CASTGRPOConfig, CASTGRPOTrainer

        trainer = CASTGRPOTrainer(model=model_dir, reward_funcs=correctness, train_dataset=dataset,
                                  args=CASTGRPOConfig(**common, cast_teacher_mode="snapshot"))
    else:
        trainer = trl.GRPOTrainer(model=model_dir, reward_funcs=correctness, train_dataset=dataset,
                                  args=trl.GRPOConfig(**common))
    clock = StepClock()
    trainer.add_callback(clock)
    trainer.train()
    times = clock.times
    if len(times) != args.warmup + args.steps:
        raise RuntimeError(f"TRL ran {len(times)} steps, expected {args.warmup + args.steps}")
    start = times[args.warmup - 1] if args.warmup else None
    if start is None:
        raise RuntimeError("TRL timing needs --warmup >= 1 (its first step includes setup)")
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    timed = lengths[args.warmup:]
    return args.steps / (times[-1] - start), sum(timed) / len(timed)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    import transformers

    transformers.logging.set_verbosity_error()
    print(f"torch {torch.__version__}, {threads} threads; "
          f"{args.prompts} prompts x G={args.group_size}, max {args.max_new_tokens} new tokens, "
          f"tiny llama h={args.hidden_size} L={args.layers}; {args.warmup} warm-up + {args.steps} timed steps, "
          f"{args.rounds} round(s), best round kept")
    names = ("ours grpo", "trl GRPOTrainer", "ours cast", "trl CASTGRPOTrainer")
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "tiny")
        build_model(model_dir, args)
        runs = {
            "ours grpo": lambda i: time_ours(model_dir, os.path.join(tmp, f"ours-grpo-{i}"), "grpo", args),
            "trl GRPOTrainer": lambda i: time_trl(model_dir, os.path.join(tmp, f"trl-{i}"), False, args),
            "ours cast": lambda i: time_ours(model_dir, os.path.join(tmp, f"ours-cast-{i}"), "cast", args),
            "trl CASTGRPOTrainer": lambda i: time_trl(model_dir, os.path.join(tmp, f"trl-cast-{i}"), True, args),
        }
        for i in range(args.rounds):
            # Alternate the order so neither side always runs first (cold caches, other load).
            for name in (names if i % 2 == 0 else names[::-1]):
                rate, length = runs[name](i)
                torch.set_num_threads(threads)  # our Trainer sets it; keep both sides equal
                print(f"round {i + 1} {name:>20}: {rate:7.3f} steps/s  (mean completion {length:5.2f} tokens)",
                      flush=True)
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, length)
    print("best of rounds:")
    for name in names:
        print(f"{name:>22}: {best[name][0]:7.3f} steps/s  (mean completion {best[name][1]:5.2f} tokens)")
    print("ratios (> 1: ours is faster):")
    print(f"{'ours grpo / trl GRPOTrainer':>40} = {best['ours grpo'][0] / best['trl GRPOTrainer'][0]:5.2f}x")
    print(f"{'ours cast / trl GRPOTrainer':>40} = {best['ours cast'][0] / best['trl GRPOTrainer'][0]:5.2f}x")
    print(f"{'ours cast / trl CASTGRPOTrainer':>40} = "
          f"{best['ours cast'][0] / best['trl CASTGRPOTrainer'][0]:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
