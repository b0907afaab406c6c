"""Log-probs with gradient: chunked LM head vs full logits vs row micro-chunks, on SmolLM2-135M (CPU).

One forward + backward of the sampled tokens' log-probs (the on-policy update's forward)
for P prompts x G completions, LoRA r 16 on all linear layers, each variant in its own
process (peak RSS is that variant's):

- ``full logits``: the model's own logits for all rows, ``log_softmax``, gather (the
  trainer before this change): ``[N, T, V]`` float32 logits, their temperature copy and
  the log-softmax kept for backward.
- ``row micro-chunks``: the same, ``--rows`` rows per forward with a backward per chunk
  (gradient accumulation; the trainer's ``grad_accum_steps``).
- ``chunked head``: ``cast_torch.train.scoring.token_logprobs`` with the shared prompt
  off: backbone once, LM head in ~32 MiB blocks, recomputed in backward.
- ``chunked head + shared prompt``: the trainer's path: each group's prompt once.
- ``... one group per micro-chunk``: that, with a backward per group (what an on-policy
  update could do: CAST's token advantages need only the rewards' group statistics and
  the row's own gaps, so groups can be processed one at a time; not in the trainer yet).

Reported: CPU seconds (best of ``--reps``), the bytes autograd saved for backward (unique
storages, weights excluded) and the peak RSS above the loaded model. glibc's mmap
threshold is fixed at 1 MiB in every variant's process so freed blocks leave the RSS
(otherwise heap fragmentation dominates the figure); that is set identically for all.

    python benchmarks/bench_scoring.py                     # 2 x 4, prompt ~96, 48 tokens
    python benchmarks/bench_scoring.py --group-size 8 --new-tokens 96
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as bc  # noqa: E402

VARIANTS = ("full logits", "row micro-chunks", "chunked head", "chunked head + shared prompt",
            "chunked head + shared prompt, one group per micro-chunk")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bc.add_common_args(p, "bench-scoring")
    p.add_argument("--prompt-tokens", type=int, default=96)
    p.add_argument("--new-tokens", type=int, default=48)
    p.add_argument("--rows", type=int, default=2, help="rows per micro-chunk")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", default="", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _cur_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def worker(args) -> dict:
    bc.limit_threads(1)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from cast_torch.train.scoring import token_logprobs

    model = AutoModelForCausalLM.from_pretrained(args.model_dir, local_files_only=True, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")).train()
    gen = torch.Generator().manual_seed(0)
    n, g = args.prompts, args.group_size
    vocab = model.config.vocab_size
    prompt = torch.randint(0, vocab, (n, args.prompt_tokens), generator=gen).repeat_interleave(g, 0)
    pmask = torch.ones_like(prompt)
    comp = torch.randint(0, vocab, (n * g, args.new_tokens), generator=gen)
    cmask = torch.ones_like(comp, dtype=torch.bool)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def run() -> int:
        saved: dict[int, int] = {}

        def pack(x):
            storage = x.untyped_storage()
            if storage.data_ptr() not in weights:
                saved[storage.data_ptr()] = storage.nbytes()
            return x

        step = {"row micro-chunks": args.rows, VARIANTS[4]: g}.get(args.worker, n * g)
        chunks = [slice(i, i + step) for i in range(0, n * g, step)]
        peak_saved = 0
        for sl in chunks:
            saved.clear()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
                lp, _ = token_logprobs(model, prompt[sl], pmask[sl], comp[sl], cmask[sl], temperature=0.7,
                                       lean=args.worker.startswith("chunked"),
                                       group_size=g if "shared prompt" in args.worker else 1)
            peak_saved = max(peak_saved, sum(saved.values()))
            (lp.sum() / comp.numel()).backward()
            del lp
        model.zero_grad(set_to_none=True)
        return peak_saved

    run()                                   # warm-up; touches every weight
    base = _cur_rss_mib()
    times = []
    for _ in range(args.reps):
        c0 = time.process_time()
        saved_bytes = run()
        times.append(time.process_time() - c0)
    return {"variant": args.worker, "vocab": vocab, "cpu_s": times, "saved_mib": saved_bytes / 2 ** 20,
            "rss_above_model_mib": bc.peak_rss_mib() - base}


def render(data: dict) -> str:
    s = data["settings"]
    rows = []
    ref = min(data["results"]["full logits"]["cpu_s"])
    for name in VARIANTS:
        r = data["results"].get(name)
        if r is None:
            continue
        rows.append([name, bc.fmt(min(r["cpu_s"])), bc.fmt(ref / min(r["cpu_s"])), f"{r['saved_mib']:,.0f}",
                     f"{r['rss_above_model_mib']:,.0f}"])
    n, t, v = s["rows"], s["new_tokens"], s["vocab"]
    return "\n".join([
        "# Log-probs with gradient: chunked LM head vs full logits vs row micro-chunks",
        "",
        f"SmolLM2-135M-Instruct (float32) + LoRA r 16, {s['prompts']} prompts x G {s['group_size']} = {n} rows, "
        f"prompt {s['prompt_tokens']} + {t} completion tokens, one forward + backward of the completion "
        f"log-probs, 1 thread, best of {s['reps']}; row micro-chunks of {s['rows_per_chunk']} rows. For scale: "
        f"one float32 [N, T, V] = [{n}, {t}, {v}] tensor is {n * t * v * 4 / 2 ** 20:,.0f} MiB. "
        f"Load average {data['machine']['loadavg_1m']}: the machine is shared; CPU time is the steadier figure.",
        "",
        bc.md_table(["variant", "CPU s (best)", "speed vs full logits", "saved for backward MiB (largest chunk)",
                     "peak RSS above the loaded model, MiB"], rows),
        "",
        f"Command: `{data['command']}`",
        "",
    ])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if not args.render_only:
        folder = bc.resolve_model(args.model, args.cache_dir)
        results = {}
        for name in VARIANTS:
            cmd = [sys.executable, __file__, "--worker", name, "--model-dir", str(folder), "--prompts",
                   str(args.prompts), "--group-size", str(args.group_size), "--prompt-tokens", str(args.prompt_tokens),
                   "--new-tokens", str(args.new_tokens), "--rows", str(args.rows), "--reps", str(args.reps)]
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "1048576"})
            if proc.returncode:
                raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name:>30}: CPU {min(results[name]['cpu_s']):.2f} s, saved {results[name]['saved_mib']:.0f} MiB, "
                  f"RSS +{results[name]['rss_above_model_mib']:.0f} MiB", file=sys.stderr, flush=True)
        bc.write_json(args.json, {
            "command": "python benchmarks/bench_scoring.py " + " ".join(sys.argv[1:]),
            "machine": bc.machine(), "results": results,
            "settings": {"prompts": args.prompts, "group_size": args.group_size, "rows": args.prompts * args.group_size,
                         "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
                         "rows_per_chunk": args.rows, "reps": args.reps,
                         "vocab": next(iter(results.values()))["vocab"]}})
    bc.write_report(args.json, args.md, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
