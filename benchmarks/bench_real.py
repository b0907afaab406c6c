"""Our trainer vs TRL's GRPOTrainer on a real model (SmolLM2-135M-Instruct), side by side in one run.

Every configuration runs in its own subprocess (so peak RSS is that configuration's), with
identical settings on both sides: the same converted float32 model, the same built-in
word problems (chat template), P prompts x G completions, the same sampling (T 0.7 /
top-p 0.95 / top-k 20), the same reward (``cast_core.verify.math_reward``), lr 1e-6 constant,
clip 0.2 / 0.28, token-mean loss (TRL ``loss_type="dapo"``), no KL, grad clip 1.0, one
torch thread; LoRA r 16 / alpha 32 on all linear layers (TRL via ``peft_config``); CAST
with a snapshot teacher (K = 50). TRL keeps its defaults otherwise (gradient
checkpointing on); ours keeps its own (off). Configurations:

    ours-grpo-full    trl-grpo-full       GRPO, full fine-tuning
    ours-grpo-lora    trl-grpo-lora       GRPO, LoRA
    ours-cast-lora    bridge-cast-lora    CAST, LoRA: our trainer and our TRL bridge CASTGRPOTrainer
    (optional: trl-grpo-full-nogc, ours-grpo-full-gc, ours-grpo-lora-gc)

Measured per step (steps 2+ are summarised; step 1 includes one-time work): wall time
between consecutive step ends, CPU time of the process, the generate / score / update
split (TRL: time inside ``_generate_single_turn``, the rest of
``_generate_and_score_completions``, the rest of the step), and completion tokens (EOS
included, both sides count alike). Two completion-length modes: ``natural`` (sampling
stops at EOS) and ``fixed`` (EOS banned until ``--max-new-tokens``: ``min_new_tokens`` on
both sides), so tokens/s is also compared at equal work. Rounds alternate the order.
Written: a JSON of every step and a Markdown report rendered from it.

    python benchmarks/bench_real.py                               # all six, natural + fixed, 2 rounds
    python benchmarks/bench_real.py --configs ours-grpo-lora,trl-grpo-lora --lengths fixed --rounds 1
    python benchmarks/bench_real.py --render-only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as bc  # noqa: E402

CONFIGS = {   # name: (side, method, lora, gradient checkpointing)
    "ours-grpo-full": ("ours", "grpo", False, False),
    "trl-grpo-full": ("trl", "grpo", False, True),
    "ours-grpo-lora": ("ours", "grpo", True, False),
    "trl-grpo-lora": ("trl", "grpo", True, True),
    "ours-cast-lora": ("ours", "cast", True, False),
    "bridge-cast-lora": ("bridge", "cast", True, True),
    "trl-grpo-full-nogc": ("trl", "grpo", False, False),
    "ours-grpo-full-gc": ("ours", "grpo", False, True),
    "ours-grpo-lora-gc": ("ours", "grpo", True, True),
}
DEFAULT_CONFIGS = "ours-grpo-full,trl-grpo-full,ours-grpo-lora,trl-grpo-lora,ours-cast-lora,bridge-cast-lora"
LENGTHS = ("natural", "fixed")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct", help="model folder, .gguf, or packaged GGUF name")
    p.add_argument("--cache-dir", default="", help="GGUF conversion cache (default $CAST_CACHE_DIR or ~/.cache)")
    p.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated, of {sorted(CONFIGS)}")
    p.add_argument("--lengths", default="natural,fixed", help="comma-separated completion-length modes")
    p.add_argument("--prompts", type=int, default=2)
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--steps", type=int, default=4, help="RL steps per run (the first is not summarised)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=str(bc.REPO / "reports" / "bench-real.json"))
    p.add_argument("--md", default=str(bc.REPO / "reports" / "bench-real.md"))
    p.add_argument("--render-only", action="store_true", help="only re-render --md from --json")
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)       # internal: one run
    p.add_argument("--length", default="natural", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", default="", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--result", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.config_list = [c for c in args.configs.split(",") if c]
    args.length_list = [x for x in args.lengths.split(",") if x]
    for c in args.config_list:
        if c not in CONFIGS:
            p.error(f"--configs: unknown {c!r}; choose from {sorted(CONFIGS)}")
    for x in args.length_list:
        if x not in LENGTHS:
            p.error(f"--lengths: unknown {x!r}; choose from {LENGTHS}")
    for name in ("prompts", "group_size", "max_new_tokens", "rounds", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.steps < 2:
        p.error("--steps must be >= 2 (the first step is not summarised)")
    return args


# -- one run (subprocess) ----------------------------------------------------------------------

def _train_config(args, out: str, method: str, lora: bool, gc: bool):
    from cast_torch.train import TrainConfig

    return TrainConfig(
        out=out, model=args.model_dir, data="word-problems", method=method, seed=args.seed,
        max_steps=args.steps + 1000,   # never the last step: no final checkpoint inside the timing
        prompts_per_step=args.prompts, group_size=args.group_size, max_new_tokens=args.max_new_tokens,
        min_new_tokens=args.max_new_tokens if args.length == "fixed" else 0,
        temperature=0.7, top_p=0.95, top_k=20, lr=1e-6, lr_schedule="constant", clip_low=0.2, clip_high=0.28,
        loss_agg="token-mean", kl_beta=0.0, max_grad_norm=1.0, teacher="snapshot", teacher_refresh_steps=50,
        lora=lora, lora_r=16, lora_alpha=32.0, lora_dropout=0.0, lora_target_modules="all-linear",
        gradient_checkpointing=gc, eval_every=0, save_every=0, tensorboard=False, progress=False, device="cpu",
        num_threads=args.threads, bf16="never", score_chunk_size=args.prompts * args.group_size,
    )


def run_ours(args, method: str, lora: bool, gc: bool) -> dict:
    from cast_torch.train import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(_train_config(args, os.path.join(tmp, "run"), method, lora, gc), log=lambda s: None)
        n = args.prompts * args.group_size
        steps = []
        t_prev, c_prev = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            m = trainer.step()
            t, c = time.perf_counter(), time.process_time()
            steps.append({"wall": t - t_prev, "cpu": c - c_prev, "generate": m["time_generate"],
                          "score": m["time_score"], "update": t - t_prev - m["time_generate"] - m["time_score"],
                          "tokens": m["completion_len"] * n, "reward": m["reward_mean"]})
            t_prev, c_prev = t, c
        trainer.close()
    return {"steps": steps}


def run_trl(args, method: str, lora: bool, gc: bool, bridge: bool) -> dict:
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback

    from cast_core.verify import math_reward
    from cast_torch.train.data import load_problems

    with tempfile.TemporaryDirectory() as tmp:
        rows, _ = load_problems(_train_config(args, os.path.join(tmp, "unused"), method, lora, gc))
        dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}], "answer": r["answer"]}
                                     for r in rows])

        def correctness(completions, answer, **kwargs):
            return [math_reward(c[-1]["content"] if isinstance(c, list) else c, a) for c, a in zip(completions, answer)]

        times = {"generate": [], "gen_and_score": []}
        ends = []

        class Clock(TrainerCallback):
            def on_train_begin(self, a, state, control, **kwargs):
                ends.append((time.perf_counter(), time.process_time()))

            def on_step_end(self, a, state, control, **kwargs):
                ends.append((time.perf_counter(), time.process_time()))

        n = args.prompts * args.group_size
        common = dict(
            output_dir=os.path.join(tmp, "trl"), use_cpu=True, bf16=False, report_to=[], seed=args.seed,
            disable_tqdm=True, max_completion_length=args.max_new_tokens, num_generations=args.group_size,
            per_device_train_batch_size=n, max_steps=args.steps, logging_steps=1, save_strategy="no",
            learning_rate=1e-6, lr_scheduler_type="constant", temperature=0.7, top_p=0.95, top_k=20, beta=0.0,
            epsilon=0.2, epsilon_high=0.28, loss_type="dapo", max_grad_norm=1.0, dataloader_num_workers=0,
            gradient_checkpointing=gc, model_init_kwargs={"dtype": "float32"},
            generation_kwargs={"min_new_tokens": args.max_new_tokens} if args.length == "fixed" else None,
        )
        peft_config = None
        if lora:
            from peft import LoraConfig
            peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                     task_type="CAUSAL_LM")
        if bridge:
            from cast_torch.integrations.trl import CASTGRPOConfig, CASTGRPOTrainer
            trainer = CASTGRPOTrainer(model=args.model_dir, reward_funcs=correctness, train_dataset=dataset,
                                      peft_config=peft_config,
                                      args=CASTGRPOConfig(**common, cast_teacher_mode="snapshot",
                                                          cast_teacher_refresh_steps=50))
        else:
            trainer = trl.GRPOTrainer(model=args.model_dir, reward_funcs=correctness, train_dataset=dataset,
                                      peft_config=peft_config, args=trl.GRPOConfig(**common))

        def timed(fn, key):
            def wrapper(*a, **k):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    times[key].append(time.perf_counter() - t0)
            return wrapper

        trainer._generate_single_turn = timed(trainer._generate_single_turn, "generate")
        trainer._generate_and_score_completions = timed(trainer._generate_and_score_completions, "gen_and_score")
        trainer.add_callback(Clock())
        trainer.train()
        logs = [h for h in trainer.state.log_history if "completions/mean_length" in h]
        if len(ends) != args.steps + 1 or len(logs) != args.steps or len(times["gen_and_score"]) != args.steps:
            raise RuntimeError(f"TRL ran {len(ends) - 1} steps ({len(logs)} logged), expected {args.steps}")
        steps = []
        for i in range(args.steps):
            wall, cpu = ends[i + 1][0] - ends[i][0], ends[i + 1][1] - ends[i][1]
            gen, gs = times["generate"][i], times["gen_and_score"][i]
            steps.append({"wall": wall, "cpu": cpu, "generate": gen, "score": gs - gen, "update": wall - gs,
                          "tokens": logs[i]["completions/mean_length"] * n, "reward": logs[i]["reward"]})
    return {"steps": steps}


def worker(args) -> int:
    bc.limit_threads(args.threads)
    import transformers
    transformers.logging.set_verbosity_error()
    side, method, lora, gc = CONFIGS[args.worker]
    t0 = time.perf_counter()
    if side == "ours":
        result = run_ours(args, method, lora, gc)
    else:
        result = run_trl(args, method, lora, gc, bridge=side == "bridge")
    result.update(config=args.worker, length=args.length, seed=args.seed, peak_rss_mib=bc.peak_rss_mib(),
                  seconds=time.perf_counter() - t0, loadavg_1m=bc.machine()["loadavg_1m"])
    bc.write_json(args.result, result)
    return 0


# -- the driver --------------------------------------------------------------------------------

def drive(args) -> dict:
    folder = bc.resolve_model(args.model, args.cache_dir)
    runs = []
    jobs = [(c, x) for x in args.length_list for c in args.config_list]
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (config, length) in enumerate(jobs if r % 2 == 0 else jobs[::-1]):
                out = os.path.join(tmp, f"{r}-{i}.json")
                cmd = [sys.executable, __file__, "--worker", config, "--length", length, "--model-dir", str(folder),
                       "--steps", str(args.steps), "--prompts", str(args.prompts), "--group-size",
                       str(args.group_size), "--max-new-tokens", str(args.max_new_tokens), "--threads",
                       str(args.threads), "--seed", str(r), "--result", out]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if proc.returncode:
                    raise SystemExit(f"{config} ({length}) failed:\n{proc.stderr[-4000:]}")
                run = json.loads(Path(out).read_text())
                run["round"] = r
                runs.append(run)
                st = bc.summary(s["wall"] for s in run["steps"][1:])
                print(f"round {r + 1} {config:>18} {length:>7}: step {st['mean']:6.2f} s (min {st['min']:.2f}), "
                      f"peak RSS {run['peak_rss_mib']:7.0f} MiB  [{time.perf_counter() - t0:.0f} s]",
                      file=sys.stderr, flush=True)
    return {
        "command": "python benchmarks/bench_real.py " + " ".join(a for a in sys.argv[1:]),
        "model": args.model, "machine": bc.machine(),
        "settings": {"prompts": args.prompts, "group_size": args.group_size, "max_new_tokens": args.max_new_tokens,
                     "steps": args.steps, "rounds": args.rounds, "threads": args.threads,
                     "temperature": 0.7, "top_p": 0.95, "top_k": 20, "lr": 1e-6, "lora_r": 16, "lora_alpha": 32},
        "configs": {c: dict(zip(("side", "method", "lora", "gradient_checkpointing"), CONFIGS[c]))
                    for c in args.config_list},
        "runs": runs,
    }


# -- the report --------------------------------------------------------------------------------

def aggregate(data: dict) -> dict:
    """(config, length) -> figures over steps 2+ of every round (rounds pooled), peak RSS max over rounds."""
    out = {}
    for run in data["runs"]:
        key = (run["config"], run["length"])
        agg = out.setdefault(key, {"steps": [], "rss": []})
        agg["steps"] += run["steps"][1:]
        agg["rss"].append(run["peak_rss_mib"])
    table = {}
    for key, agg in out.items():
        steps = agg["steps"]
        wall = bc.summary(s["wall"] for s in steps)
        tokens = sum(s["tokens"] for s in steps)
        table[key] = {
            "wall_mean": wall["mean"], "wall_min": wall["min"], "n": wall["n"],
            "cpu_mean": bc.summary(s["cpu"] for s in steps)["mean"],
            "generate": bc.summary(s["generate"] for s in steps)["mean"],
            "score": bc.summary(s["score"] for s in steps)["mean"],
            "update": bc.summary(s["update"] for s in steps)["mean"],
            "tokens_per_step": tokens / len(steps),
            "tokens_per_s": tokens / sum(s["wall"] for s in steps),
            "tokens_per_cpu_s": tokens / sum(s["cpu"] for s in steps),
            "rss_max": max(agg["rss"]), "rss_min": min(agg["rss"]),
        }
    return table


PAIRS = [  # (label, ours, reference)
    ("GRPO full: ours / TRL (TRL default, grad. checkpointing on)", "ours-grpo-full", "trl-grpo-full"),
    ("GRPO full: ours / TRL without grad. checkpointing", "ours-grpo-full", "trl-grpo-full-nogc"),
    ("GRPO LoRA: ours / TRL", "ours-grpo-lora", "trl-grpo-lora"),
    ("CAST LoRA: ours / TRL GRPO", "ours-cast-lora", "trl-grpo-lora"),
    ("CAST LoRA: bridge CASTGRPOTrainer / TRL GRPO", "bridge-cast-lora", "trl-grpo-lora"),
    ("CAST LoRA: ours / bridge", "ours-cast-lora", "bridge-cast-lora"),
    ("CAST / GRPO step time, ours (LoRA)", "ours-cast-lora", "ours-grpo-lora"),
    ("CAST / GRPO step time, bridge vs TRL (LoRA)", "bridge-cast-lora", "trl-grpo-lora"),
]


def render(data: dict) -> str:
    s, m = data["settings"], data["machine"]
    table = aggregate(data)
    lengths = [x for x in LENGTHS if any(k[1] == x for k in table)]
    configs = [c for c in CONFIGS if any(k[0] == c for k in table)]
    lines = [
        "# Real model: our trainer vs TRL's GRPOTrainer (SmolLM2-135M-Instruct, CPU)",
        "",
        f"{s['prompts']} prompts x G {s['group_size']}, at most {s['max_new_tokens']} new tokens, T {s['temperature']} / "
        f"top-p {s['top_p']} / top-k {s['top_k']}, lr {s['lr']}, LoRA r {s['lora_r']} / alpha {s['lora_alpha']} "
        f"(all linear layers), {s['threads']} thread, torch {m['torch']}; {s['steps']} steps per run, steps 2+ "
        f"summarised, {s['rounds']} rounds in alternating order, every run in its own process. The machine is "
        f"shared with other jobs (load average {m['loadavg_1m']} at the end on {m['cpus']} cores): wall times are "
        "noisy; CPU time (this process's, one thread) is the steadier figure.",
        "",
    ]
    for length in lengths:
        title = ("natural length (sampling stops at EOS)" if length == "natural" else
                 f"fixed length (EOS banned until {s['max_new_tokens']} tokens, both sides)")
        lines += [f"## Per configuration, {title}", ""]
        rows = []
        for c in configs:
            t = table.get((c, length))
            if t is None:
                continue
            gc = "on" if data["configs"][c]["gradient_checkpointing"] else "off"
            rows.append([c, gc, bc.fmt(t["wall_mean"]), bc.fmt(t["wall_min"]), bc.fmt(t["cpu_mean"]),
                         f"{t['generate']:.2f} / {t['score']:.2f} / {t['update']:.2f}", bc.fmt(t["tokens_per_step"], 0),
                         bc.fmt(t["tokens_per_s"], 1), bc.fmt(t["tokens_per_cpu_s"], 1),
                         f"{t['rss_max']:,.0f}" + (f" ({t['rss_min']:,.0f})" if t["rss_min"] != t["rss_max"] else "")])
        lines += [bc.md_table(["config", "grad. ckpt", "step s (mean)", "step s (min)", "CPU s/step",
                               "generate / score / update s", "completion tokens/step", "tokens/s (wall)",
                               "tokens per CPU s", "peak RSS MiB (max, min over rounds)"], rows), ""]
        rows = []
        for label, a, b in PAIRS:
            ta, tb = table.get((a, length)), table.get((b, length))
            if ta is None or tb is None:
                continue
            rows.append([label, bc.fmt(ta["wall_mean"] / tb["wall_mean"]), bc.fmt(ta["tokens_per_s"] / tb["tokens_per_s"]),
                         bc.fmt(ta["tokens_per_cpu_s"] / tb["tokens_per_cpu_s"]), bc.fmt(ta["rss_max"] / tb["rss_max"])])
        if rows:
            lines += ["Ratios (step time < 1: faster; tokens/s > 1: faster; RSS < 1: smaller):", "",
                      bc.md_table(["pair", "step time", "tokens/s (wall)", "tokens per CPU s", "peak RSS"], rows), ""]
    lines += [f"Command: `{data['command'].strip()}` (the JSON next to this file holds every step).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    if not args.render_only:
        bc.limit_threads(args.threads)
        bc.write_json(args.json, drive(args))
    data = json.loads(Path(args.json).read_text())
    Path(args.md).write_text(render(data))
    print(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
