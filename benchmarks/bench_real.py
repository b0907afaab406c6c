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
    (optional: trl-grpo-full-nogc, ours-grpo-full-gc, ours-grpo-lora-gc, ours-cast-lora-gc; the
    *-mmap1m variants: the same with glibc's MALLOC_MMAP_THRESHOLD_ fixed at 1 MiB; the *-micro
    variants of ours: the on-policy update in one micro-batch per prompt group)

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
import dataclasses
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
    "ours-cast-lora-gc": ("ours", "cast", True, True),
    "ours-cast-lora-gc-mmap1m": ("ours", "cast", True, True),
    "ours-grpo-lora-mmap1m": ("ours", "grpo", True, False),
    "ours-cast-lora-mmap1m": ("ours", "cast", True, False),
    "bridge-cast-lora-mmap1m": ("bridge", "cast", True, True),
    "trl-grpo-lora-mmap1m": ("trl", "grpo", True, True),
}
# Environment of a configuration's process beyond the common one. glibc's malloc keeps freed
# blocks below its (adaptive, up to 32 MiB) mmap threshold in the heap, where fragmentation
# holds on to them; a fixed 1 MiB threshold returns every larger block to the OS at once,
# trading page faults (CPU time) for peak RSS. Applied to both sides alike.
CONFIG_ENV = {name: {"MALLOC_MMAP_THRESHOLD_": "1048576"} for name in CONFIGS if name.endswith("-mmap1m")}
# Our on-policy update in micro-batches of one group each (grad_accum_steps = prompts).
for _name in ("ours-grpo-lora", "ours-cast-lora", "ours-grpo-full"):
    CONFIGS[_name + "-micro"] = CONFIGS[_name]
DEFAULT_CONFIGS = "ours-grpo-full,trl-grpo-full,ours-grpo-lora,trl-grpo-lora,ours-cast-lora,bridge-cast-lora"
LENGTHS = ("natural", "fixed")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bc.add_common_args(p, "bench-real")
    p.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated, of {sorted(CONFIGS)}")
    p.add_argument("--lengths", default="natural,fixed", help="comma-separated completion-length modes")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--steps", type=int, default=4, help="RL steps per run (the first is not summarised)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
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


# -- one run ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What one run trains on and how (shared by this benchmark and gpu_check.py)."""

    model_dir: str
    prompts: int = 2
    group_size: int = 4
    max_new_tokens: int = 48
    length: str = "natural"          # "natural" or "fixed" (EOS banned until max_new_tokens)
    steps: int = 4
    threads: int = 1                 # 0: all CPUs
    seed: int = 0
    device: str = "cpu"              # "cpu" or "cuda"
    bf16: bool = False               # bf16 autocast on both sides
    data: str = "word-problems"
    micro_batches: int = 1           # ours: grad_accum_steps of the on-policy update


def _train_config(spec: RunSpec, out: str, method: str, lora: bool, gc: bool):
    from cast_torch.train import TrainConfig

    return TrainConfig(
        out=out, model=spec.model_dir, data=spec.data, method=method, seed=spec.seed,
        max_steps=spec.steps + 1000,   # never the last step: no final checkpoint inside the timing
        prompts_per_step=spec.prompts, group_size=spec.group_size, max_new_tokens=spec.max_new_tokens,
        min_new_tokens=spec.max_new_tokens if spec.length == "fixed" else 0,
        temperature=0.7, top_p=0.95, top_k=20, lr=1e-6, lr_schedule="constant", clip_low=0.2, clip_high=0.28,
        loss_agg="token-mean", kl_beta=0.0, max_grad_norm=1.0, teacher="snapshot", teacher_refresh_steps=50,
        lora=lora, lora_r=16, lora_alpha=32.0, lora_dropout=0.0, lora_target_modules="all-linear",
        gradient_checkpointing=gc, eval_every=0, save_every=0, tensorboard=False, progress=False,
        device=spec.device, num_threads=spec.threads, bf16="always" if spec.bf16 else "never",
        score_chunk_size=spec.prompts * spec.group_size, grad_accum_steps=spec.micro_batches,
    )


def _sync(spec: RunSpec) -> None:
    if spec.device.startswith("cuda"):
        import torch
        torch.cuda.synchronize()


def run_ours(spec: RunSpec, method: str, lora: bool, gc: bool) -> dict:
    """Per-step wall/CPU time, generate/score/update split and completion tokens of our Trainer."""
    from cast_torch.train import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(_train_config(spec, os.path.join(tmp, "run"), method, lora, gc), log=lambda s: None)
        n = spec.prompts * spec.group_size
        steps = []
        _sync(spec)
        t_prev, c_prev = time.perf_counter(), time.process_time()
        for _ in range(spec.steps):
            m = trainer.step()
            _sync(spec)
            t, c = time.perf_counter(), time.process_time()
            steps.append({"wall": t - t_prev, "cpu": c - c_prev, "generate": m["time_generate"],
                          "score": m["time_score"], "update": t - t_prev - m["time_generate"] - m["time_score"],
                          "tokens": m["completion_len"] * n, "reward": m["reward_mean"]})
            t_prev, c_prev = t, c
        trainer.close()
        del trainer
    return {"steps": steps}


def run_trl(spec: RunSpec, method: str, lora: bool, gc: bool, bridge: bool) -> dict:
    """The same figures for TRL's GRPOTrainer (``bridge``: our CASTGRPOTrainer on top of it)."""
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback

    from cast_core.verify import math_reward
    from cast_torch.train.data import load_problems
    from cast_torch.train.model import uses_chat_template

    with tempfile.TemporaryDirectory() as tmp:
        config = _train_config(spec, os.path.join(tmp, "unused"), method, lora, gc)
        rows, _ = load_problems(config)
        from transformers import AutoTokenizer
        chat = uses_chat_template(AutoTokenizer.from_pretrained(spec.model_dir, local_files_only=True), "auto")
        dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}] if chat else r["prompt"],
                                      "answer": r["answer"]} for r in rows])

        def correctness(completions, answer, **kwargs):
            return [math_reward(c[-1]["content"] if isinstance(c, list) else c, a) for c, a in zip(completions, answer)]

        times = {"generate": [], "gen_and_score": []}
        ends = []

        class Clock(TrainerCallback):
            def on_train_begin(self, a, state, control, **kwargs):
                _sync(spec)
                ends.append((time.perf_counter(), time.process_time()))

            def on_step_end(self, a, state, control, **kwargs):
                _sync(spec)
                ends.append((time.perf_counter(), time.process_time()))

        n = spec.prompts * spec.group_size
        common = dict(
            output_dir=os.path.join(tmp, "trl"), use_cpu=spec.device == "cpu", bf16=spec.bf16, report_to=[],
            seed=spec.seed, disable_tqdm=True, max_completion_length=spec.max_new_tokens,
            num_generations=spec.group_size, per_device_train_batch_size=n, max_steps=spec.steps, logging_steps=1,
            save_strategy="no", learning_rate=1e-6, lr_scheduler_type="constant", temperature=0.7, top_p=0.95,
            top_k=20, beta=0.0, epsilon=0.2, epsilon_high=0.28, loss_type="dapo", max_grad_norm=1.0,
            dataloader_num_workers=0, gradient_checkpointing=gc, model_init_kwargs={"dtype": "float32"},
            generation_kwargs={"min_new_tokens": spec.max_new_tokens} if spec.length == "fixed" else None,
        )
        peft_config = None
        if lora:
            from peft import LoraConfig
            peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                     task_type="CAUSAL_LM")
        if bridge:
            from cast_torch.integrations.trl import CASTGRPOConfig, CASTGRPOTrainer
            trainer = CASTGRPOTrainer(model=spec.model_dir, reward_funcs=correctness, train_dataset=dataset,
                                      peft_config=peft_config,
                                      args=CASTGRPOConfig(**common, cast_teacher_mode="snapshot",
                                                          cast_teacher_refresh_steps=50))
        else:
            trainer = trl.GRPOTrainer(model=spec.model_dir, reward_funcs=correctness, train_dataset=dataset,
                                      peft_config=peft_config, args=trl.GRPOConfig(**common))

        def timed(fn, key):
            def wrapper(*a, **k):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    _sync(spec)
                    times[key].append(time.perf_counter() - t0)
            return wrapper

        trainer._generate_single_turn = timed(trainer._generate_single_turn, "generate")
        trainer._generate_and_score_completions = timed(trainer._generate_and_score_completions, "gen_and_score")
        trainer.add_callback(Clock())
        trainer.train()
        logs = [h for h in trainer.state.log_history if "completions/mean_length" in h]
        if len(ends) != spec.steps + 1 or len(logs) != spec.steps or len(times["gen_and_score"]) != spec.steps:
            raise RuntimeError(f"TRL ran {len(ends) - 1} steps ({len(logs)} logged), expected {spec.steps}")
        steps = []
        for i in range(spec.steps):
            wall, cpu = ends[i + 1][0] - ends[i][0], ends[i + 1][1] - ends[i][1]
            gen, gs = times["generate"][i], times["gen_and_score"][i]
            steps.append({"wall": wall, "cpu": cpu, "generate": gen, "score": gs - gen, "update": wall - gs,
                          "tokens": logs[i]["completions/mean_length"] * n, "reward": logs[i]["reward"]})
        del trainer
    return {"steps": steps}


def run_config(spec: RunSpec, config: str) -> dict:
    """One configuration of :data:`CONFIGS` under ``spec``."""
    side, method, lora, gc = CONFIGS[config]
    if config.endswith("-micro"):
        spec = dataclasses.replace(spec, micro_batches=spec.prompts)
    if side == "ours":
        return run_ours(spec, method, lora, gc)
    return run_trl(spec, method, lora, gc, bridge=side == "bridge")


def worker(args) -> int:
    bc.limit_threads(args.threads)
    import transformers
    transformers.logging.set_verbosity_error()
    spec = RunSpec(model_dir=args.model_dir, prompts=args.prompts, group_size=args.group_size,
                   max_new_tokens=args.max_new_tokens, length=args.length, steps=args.steps, threads=args.threads,
                   seed=args.seed)
    t0 = time.perf_counter()
    result = run_config(spec, args.worker)
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
                proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, **CONFIG_ENV.get(config, {})})
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
        "model": args.model, "machine": bc.machine(), "commit": bc.git_commit(),
        "settings": {"prompts": args.prompts, "group_size": args.group_size, "max_new_tokens": args.max_new_tokens,
                     "steps": args.steps, "rounds": args.rounds, "threads": args.threads,
                     "temperature": 0.7, "top_p": 0.95, "top_k": 20, "lr": 1e-6, "lora_r": 16, "lora_alpha": 32},
        "configs": {c: {**dict(zip(("side", "method", "lora", "gradient_checkpointing"), CONFIGS[c])),
                        "env": CONFIG_ENV.get(c, {})} for c in args.config_list},
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
    ("CAST / GRPO step cost, ours (LoRA)", "ours-cast-lora", "ours-grpo-lora"),
    ("GRPO LoRA, ours one group per micro-batch / TRL", "ours-grpo-lora-micro", "trl-grpo-lora"),
    ("CAST LoRA, ours one group per micro-batch / TRL GRPO", "ours-cast-lora-micro", "trl-grpo-lora"),
    ("GRPO full, ours one group per micro-batch / TRL", "ours-grpo-full-micro", "trl-grpo-full"),
    ("CAST / GRPO step cost, ours one group per micro-batch (LoRA)", "ours-cast-lora-micro", "ours-grpo-lora-micro"),
    ("GRPO LoRA, ours with grad. checkpointing / TRL", "ours-grpo-lora-gc", "trl-grpo-lora"),
    ("CAST LoRA, ours with grad. checkpointing / TRL GRPO", "ours-cast-lora-gc", "trl-grpo-lora"),
    ("GRPO full, ours with grad. checkpointing / TRL", "ours-grpo-full-gc", "trl-grpo-full"),
    ("GRPO LoRA, 1 MiB mmap threshold on both sides: ours / TRL", "ours-grpo-lora-mmap1m", "trl-grpo-lora-mmap1m"),
    ("CAST LoRA, 1 MiB mmap threshold on both sides: ours / TRL GRPO", "ours-cast-lora-mmap1m",
     "trl-grpo-lora-mmap1m"),
    ("CAST LoRA, 1 MiB mmap threshold on both sides: bridge / TRL GRPO", "bridge-cast-lora-mmap1m",
     "trl-grpo-lora-mmap1m"),
    ("CAST LoRA, ours with 1 MiB mmap threshold / TRL GRPO default", "ours-cast-lora-mmap1m", "trl-grpo-lora"),
    ("GRPO LoRA, ours with 1 MiB mmap threshold / TRL GRPO default", "ours-grpo-lora-mmap1m", "trl-grpo-lora"),
    ("CAST LoRA, ours with grad. ckpt + 1 MiB mmap threshold / TRL GRPO default", "ours-cast-lora-gc-mmap1m",
     "trl-grpo-lora"),
    ("CAST LoRA, grad. ckpt + 1 MiB mmap threshold on both sides: ours / TRL GRPO", "ours-cast-lora-gc-mmap1m",
     "trl-grpo-lora-mmap1m"),
]


TITLE = "# Real model: our trainer vs TRL's GRPOTrainer (SmolLM2-135M-Instruct, CPU)"


def render(data: dict, level: str = "#", title: str = "") -> str:
    s, m = data["settings"], data["machine"]
    table = aggregate(data)
    lengths = [x for x in LENGTHS if any(k[1] == x for k in table)]
    configs = [c for c in CONFIGS if any(k[0] == c for k in table)]
    sub = level + "#"
    lines = [
        f"{level} {title}" if title else TITLE,
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
        name = ("natural length (sampling stops at EOS)" if length == "natural" else
                f"fixed length (EOS banned until {s['max_new_tokens']} tokens, both sides)")
        lines += [f"{sub} Per configuration, {name}", ""]
        rows = []
        for c in configs:
            t = table.get((c, length))
            if t is None:
                continue
            gc = "on" if data["configs"][c]["gradient_checkpointing"] else "off"
            if c.endswith("-micro"):
                gc += ", one group per micro-batch"
            if data["configs"][c].get("env"):
                gc += ", " + " ".join(f"{k}={v}" for k, v in data["configs"][c]["env"].items())
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
    lines += ["Our split puts the on-policy forward with gradient (which also gives π_old) under score, its "
              "backward and the optimizer step under update; TRL's loss forward and backward are both under update.",
              "", f"Command: `{data['command'].strip()}`, commit {data.get('commit', '?')} (the JSON next to this "
              "file holds every step).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    if not args.render_only:
        bc.limit_threads(args.threads)
        bc.write_json(args.json, drive(args))
    parts = [json.loads(Path(f).read_text()) for f in args.json.split(",")]
    text = render(parts[0]) if len(parts) == 1 else "\n".join(
        [TITLE, "", "Each run below is its own side-by-side measurement (its own command and commit).", ""] +
        [render(p, level="#" * 2, title=f"Run {i + 1}") for i, p in enumerate(parts)])
    Path(args.md).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
