"""Rollout tokens/s: our decode loop vs transformers' ``generate``, same model, same batch, one run.

Both sample the same prompts (P prompts x G completions, T 0.7 / top-p 0.95 / top-k 20 by
default) from the same float32 model in this process. Variants, timed in alternating
order every round:

- ``transformers generate``: ``model.generate`` (the trainer's ``engine="hf"``);
- ``ours``: :func:`cast_torch.train.rollout.generate` with ``engine="cast"`` (prefix
  prefilled once, finished rows leave the batch, candidate sampling, packed CPU weights);
- ``ours, no packing``: the same without the oneDNN-packed weights.

Completions have a fixed length (EOS banned until ``--max-new-tokens``), so every variant
produces exactly B x T tokens and tokens/s compares like with like. The first call of
each variant is a warm-up; every timed call of ``ours`` includes packing the weights (it
is done per call). Also measured in the same run: the read
bandwidth of a 512 MiB buffer and the cache-resident sgemm rate at the decode shape,
from which the bound of a decode step follows (every weight is read once per step:
bytes / bandwidth; and 2 · parameters · B FLOPs / rate). Written: a JSON of every
timing and a Markdown table rendered from it.

    python benchmarks/bench_rollout.py                          # SmolLM2-135M, 2 x 4, 48 tokens, 3 rounds
    python benchmarks/bench_rollout.py --rounds 5 --group-size 8
    python benchmarks/bench_rollout.py --render-only            # rewrite the .md from the .json
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as bc  # noqa: E402

import torch  # noqa: E402

VARIANTS = ("transformers generate", "ours", "ours, no packing")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bc.add_common_args(p, "bench-rollout")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (each variant once per round)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    for name in ("prompts", "group_size", "max_new_tokens", "rounds", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def prompts(tokenizer, n: int) -> list[str]:
    from cast_torch.train.model import render_prompt
    from cast_torch.train.word_problems import word_problem

    rng = random.Random(0)
    return [render_prompt(tokenizer, word_problem(rng, max_operand=20, num_steps=2)["prompt"], True)
            for _ in range(n)]


def run(args) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cast_torch.train.rollout import generate

    folder = bc.resolve_model(args.model, args.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32).eval()
    texts = prompts(tokenizer, args.prompts)
    b, t = args.prompts * args.group_size, args.max_new_tokens
    kw = dict(num_samples=args.group_size, max_new_tokens=t, min_new_tokens=t, temperature=args.temperature,
              top_p=args.top_p, top_k=args.top_k)
    calls = {
        "transformers generate": lambda: generate(model, tokenizer, texts, engine="hf", **kw),
        "ours": lambda: generate(model, tokenizer, texts, engine="cast", **kw),
        "ours, no packing": lambda: generate(model, tokenizer, texts, engine="cast", packed_weights=False, **kw),
    }
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    warm: dict[str, float] = {}
    for name in VARIANTS:
        t0 = time.perf_counter()
        ro = calls[name]()
        warm[name] = time.perf_counter() - t0
        assert ro.completion_ids.shape == (b, t), ro.completion_ids.shape
    for r in range(args.rounds):
        for name in (VARIANTS if r % 2 == 0 else VARIANTS[::-1]):
            torch.manual_seed(r)
            t0, c0 = time.perf_counter(), time.process_time()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            print(f"round {r + 1} {name:>22}: {times[name][-1]:6.2f} s  {b * t / times[name][-1]:6.1f} tokens/s",
                  file=sys.stderr, flush=True)
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(m.weight.numel() * 4 for m in model.modules() if isinstance(m, torch.nn.Linear))
    bandwidth = bc.read_bandwidth_gbs()
    gflops = bc.matmul_gflops(m=b)
    prompt_tokens = int(tokenizer(texts, padding=True, return_tensors="pt").input_ids.shape[1])
    return {
        "command": "python benchmarks/bench_rollout.py " + " ".join(sys.argv[1:]),
        "model": args.model, "parameters": params, "linear_weight_bytes": weight_bytes,
        "settings": {"prompts": args.prompts, "group_size": args.group_size, "rows": b, "new_tokens": t,
                     "prompt_tokens": prompt_tokens, "temperature": args.temperature, "top_p": args.top_p,
                     "top_k": args.top_k, "rounds": args.rounds, "fixed_length": True},
        "machine": {**bc.machine(), "read_bandwidth_gbs": bandwidth, f"sgemm_gflops_m{b}": gflops},
        "warmup_s": warm, "times_s": times, "cpu_s": cpu,
        "bound": {"decode_step_bandwidth_s": weight_bytes / (bandwidth * 1e9),
                  "decode_step_compute_s": 2 * params * b / (gflops * 1e9)},
    }


def render(data: dict) -> str:
    s, m, bound = data["settings"], data["machine"], data["bound"]
    tokens = s["rows"] * s["new_tokens"]
    hf = bc.summary(data["times_s"]["transformers generate"])
    hf_cpu = bc.summary(data["cpu_s"]["transformers generate"])
    rows = []
    for name, times in data["times_s"].items():
        st, ct = bc.summary(times), bc.summary(data["cpu_s"][name])
        rows.append([name, bc.fmt(st["mean"]), bc.fmt(st["min"]), bc.fmt(st["max"]), bc.fmt(tokens / st["mean"], 1),
                     bc.fmt(tokens / st["min"], 1), bc.fmt(hf["mean"] / st["mean"]), bc.fmt(ct["mean"]),
                     bc.fmt(tokens / ct["mean"], 1), bc.fmt(hf_cpu["mean"] / ct["mean"]),
                     bc.fmt(data["warmup_s"][name])])
    step = max(bound["decode_step_bandwidth_s"], bound["decode_step_compute_s"])
    ceiling = s["rows"] / step
    lines = [
        "# Rollout throughput: our decode loop vs transformers `generate`",
        "",
        f"Model {data['model']} ({data['parameters'] / 1e6:.1f} M parameters, float32), {s['prompts']} prompts x "
        f"G {s['group_size']} = {s['rows']} rows, prompt {s['prompt_tokens']} tokens (padded), "
        f"{s['new_tokens']} new tokens per row (fixed length: EOS banned until the limit), T {s['temperature']} / "
        f"top-p {s['top_p']} / top-k {s['top_k']}; {m['threads']} thread(s), torch {m['torch']}, "
        f"{s['rounds']} rounds in alternating order after one warm-up call each (load average "
        f"{m['loadavg_1m']} at the end: the machine is shared, timings are noisy).",
        "",
        bc.md_table(["variant", "wall s (mean)", "min", "max", "tokens/s (mean wall)", "tokens/s (best wall)",
                     "speed-up vs generate (wall)", "CPU s (mean)", "tokens per CPU s", "speed-up (CPU time)",
                     "warm-up call s"], rows),
        "",
        "CPU s is this process's CPU time (`time.process_time`, one thread): on a shared machine it counts only "
        "the cycles the process got, so it is steadier than wall time (memory-bandwidth contention still shows).",
        "",
        "## What bounds it",
        "",
        f"A decode step reads every linear weight once ({data['linear_weight_bytes'] / 2 ** 20:,.0f} MiB): at the "
        f"{m['read_bandwidth_gbs']:.1f} GB/s this process read a 512 MiB buffer with, that is "
        f"{bound['decode_step_bandwidth_s'] * 1e3:.0f} ms per step; its arithmetic (2 x parameters x "
        f"{s['rows']} rows) at the {m[f'sgemm_gflops_m' + str(s['rows'])]:.0f} GFLOP/s of a cache-resident "
        f"[{s['rows']}, 576] x [576, 1536] sgemm is {bound['decode_step_compute_s'] * 1e3:.0f} ms. So one step "
        f"costs at least ~{step * 1e3:.0f} ms, a ceiling of ~{ceiling:.0f} tokens/s for {s['rows']} rows "
        "(prefill excluded) on this core; more rows per step raise it almost linearly until compute binds.",
        "",
        f"Command: `{data['command'].strip()}`",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.render_only:
        bc.limit_threads(args.threads)
        import transformers
        transformers.logging.set_verbosity_error()
        bc.write_json(args.json, run(args))
    bc.write_report(args.json, args.md, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
