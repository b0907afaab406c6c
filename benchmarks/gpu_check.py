"""GPU readiness in one run: conformance, cast_advantages bandwidth, and our trainer vs TRL on a real shape.

Needs nothing beyond this repository and its installed packages (no hub, no registry, no
data): every model and tokenizer is built locally. Prints one table (and writes it as
JSON with ``--json``):

1. **conformance** — every spec vector through ``cast_torch`` on the device, in float64
   (the vectors' own tolerances, the public runner) and with float32 / bf16 inputs
   (expected: ``cast_core`` on the inputs as rounded to that dtype; tolerance: the test
   suite's low-precision rule, ``tests/cast_torch/_torch_compare.tolerance``).
2. **bench_torch** — tokens/s of ``cast_advantages`` (hot path) and its fraction of a
   device-to-device copy of the same bytes (``benchmarks/bench_torch.bandwidth_section``).
3. **trainer** — our ``Trainer`` and TRL's ``GRPOTrainer`` / our ``CASTGRPOTrainer`` with
   bf16 autocast on a locally built model of Qwen2.5-0.5B's shape (random weights; 24
   layers, hidden 896, 14 / 2 heads, vocabulary 151,936), fixed-length generation (EOS
   banned until the limit on both sides): step time (mean and min over steps 2+), the
   generate / score / update split, completion tokens/s and peak device memory of each
   configuration (``benchmarks/bench_real.run_config``, the same code as the CPU benchmark).

On a machine without CUDA (or with ``--cpu-smoke``) the same code paths run at small
sizes on the CPU — a 2-layer model of the same family, bf16 autocast included — so CI
knows the script works; the figures then mean nothing.

    python benchmarks/gpu_check.py                  # CUDA: under 8 minutes on one GPU
    python benchmarks/gpu_check.py --cpu-smoke      # CPU, about a minute
    python benchmarks/gpu_check.py --json gpu-check.json --configs ours-grpo-full,trl-grpo-full
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as bc  # noqa: E402
import bench_real  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6,
                  rms_norm_eps=1e-6, tie_word_embeddings=True)
SMOKE_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, vocab_size=1024, max_position_embeddings=1024, rope_theta=1e6,
                   rms_norm_eps=1e-6, tie_word_embeddings=True)
GPU_CONFIGS = "ours-grpo-full,trl-grpo-full,ours-grpo-lora,trl-grpo-lora,ours-cast-lora,bridge-cast-lora"
SMOKE_CONFIGS = "ours-grpo-full,trl-grpo-full,ours-cast-lora,bridge-cast-lora"
TORCH_IMPLS = {
    "cast_advantages": "cast_torch:cast_advantages", "base_advantages": "cast_torch:base_advantages",
    "token_advantages": "cast_torch:token_advantages", "policy_loss": "cast_torch:policy_loss",
    "grpo_advantages": "cast_torch.baselines:grpo_advantages", "rlsd_advantages": "cast_torch.baselines:rlsd_advantages",
    "rl_zvp_advantages": "cast_torch.baselines:rl_zvp_advantages",
    "opsd_advantages": "cast_torch.baselines:opsd_advantages",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-smoke", action="store_true", help="small sizes on the CPU (automatic without CUDA)")
    p.add_argument("--configs", default=None, help=f"trainer configurations (default GPU: {GPU_CONFIGS}; "
                   f"smoke: {SMOKE_CONFIGS}); of {sorted(bench_real.CONFIGS)}")
    p.add_argument("--prompts", type=int, default=None, help="prompts per step (GPU 8, smoke 2)")
    p.add_argument("--group-size", type=int, default=None, help="G (GPU 8, smoke 2)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="fixed completion length (GPU 128, smoke 4)")
    p.add_argument("--steps", type=int, default=3, help="RL steps per configuration (the first is not summarised)")
    p.add_argument("--sizes", default=None, help="bench_torch N x T sizes (GPU 1024x4096,4096x8192; smoke 64x256)")
    p.add_argument("--skip", default="", help="comma-separated sections to skip: conformance,bench_torch,trainer")
    p.add_argument("--json", default="", help="also write the results here")
    args = p.parse_args(argv)
    args.smoke = args.cpu_smoke or not torch.cuda.is_available()
    smoke = args.smoke
    args.configs = args.configs or (SMOKE_CONFIGS if smoke else GPU_CONFIGS)
    args.prompts = args.prompts or (2 if smoke else 8)
    args.group_size = args.group_size or (2 if smoke else 8)
    args.max_new_tokens = args.max_new_tokens or (4 if smoke else 128)
    args.sizes = args.sizes or ("64x256" if smoke else "1024x4096,4096x8192")
    for c in args.configs.split(","):
        if c not in bench_real.CONFIGS:
            p.error(f"--configs: unknown {c!r}; choose from {sorted(bench_real.CONFIGS)}")
    if args.steps < 2:
        p.error("--steps must be >= 2")
    return args


# -- 1. conformance ------------------------------------------------------------------------------

def conformance(device: torch.device) -> list[dict]:
    """Spec vectors through cast_torch on ``device``: float64 (vector tolerances), float32 and bf16."""
    from cast_core import conformance as cc

    sys.path.insert(0, str(bc.REPO / "tests" / "cast_torch"))
    from _torch_compare import tolerance  # the test suite's low-precision rule (one place)

    rows = []

    def to_device(dtype):
        def adapt(a):
            if a is None:
                return None
            t = torch.from_numpy(np.ascontiguousarray(a)).to(device)
            return t.to(dtype) if t.is_floating_point() else t
        return adapt

    report = cc.run_conformance(impls=TORCH_IMPLS, input_adapter=to_device(torch.float64))
    worst = max((r.max_abs_err for r in report.results if r.max_abs_err is not None), default=0.0)
    rows.append({"dtype": "float64", "passed": report.passed, "failed": report.failed, "max_abs_err": worst,
                 "failures": [f"{r.name}: {r.detail}" for r in report.failures][:5]})
    core = {name: cc.resolve_impl(cc.DEFAULT_IMPLS[name]) for name in TORCH_IMPLS}
    impls = {name: cc.resolve_impl(spec) for name, spec in TORCH_IMPLS.items()}
    for dtype in (torch.float32, torch.bfloat16):
        dev_adapt = to_device(dtype)

        def rounded(a, dev_adapt=dev_adapt):   # the inputs as the device saw them, back in float64 numpy
            t = dev_adapt(a)
            return None if t is None else (t.double().cpu().numpy() if t.is_floating_point() else t.cpu().numpy())

        passed = failed = 0
        worst, failures = 0.0, []
        for case in cc.load_vectors():
            fn = case["function"]
            if fn not in impls or "expect_error" in case:
                continue
            try:
                actual = cc._invoke(fn, impls[fn], case, dev_adapt)
                expected = cc._invoke(fn, core[fn], case, rounded)
                e = cc.to_numpy(expected)
                scale = float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0))
                atol, rtol = tolerance(dtype, scale)
                mask = cc._array(case, "mask")
                outside = None if mask is None or fn == "policy_loss" else ~np.asarray(mask, dtype=bool)
                cmp = cc.compare(actual, e, atol=atol, rtol=rtol, exact_zero=outside)
                worst = max(worst, cmp.max_abs_err)
                ok, detail = cmp.ok, cmp.message
            except Exception as exc:   # a crash is a failure of this case, reported, not fatal
                ok, detail = False, f"raised {type(exc).__name__}: {exc}"
            passed += ok
            failed += not ok
            if not ok:
                failures.append(f"{case['name']}: {detail}")
        rows.append({"dtype": str(dtype).replace("torch.", ""), "passed": passed, "failed": failed,
                     "max_abs_err": worst, "failures": failures[:5]})
    return rows


# -- 2. bench_torch --------------------------------------------------------------------------------

def bench_torch_rows(device: torch.device, sizes: str) -> list[dict]:
    import bench_torch

    with contextlib.redirect_stdout(io.StringIO()):   # this script prints one table of its own
        return bench_torch.bandwidth_section(device, bench_torch._sizes(sizes), reps=9 if device.type == "cuda" else 3)


# -- 3. trainer --------------------------------------------------------------------------------------

def build_model(folder: Path, shape: dict) -> int:
    """A random-weight Qwen2 of ``shape`` and the local character tokenizer, saved to ``folder``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from cast_torch.train.tiny import make_tokenizer

    tokenizer = make_tokenizer(save_dir=folder)
    config = Qwen2Config(**shape, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    del model
    return params


def trainer_rows(args, device: torch.device, folder: Path) -> list[dict]:
    spec = bench_real.RunSpec(model_dir=str(folder), prompts=args.prompts, group_size=args.group_size,
                              max_new_tokens=args.max_new_tokens, length="fixed", steps=args.steps,
                              threads=1 if device.type == "cpu" else 0, device=device.type, bf16=True)
    rows = []
    for config in args.configs.split(","):
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()):   # TRL prints its logs; this script prints one table
                steps = bench_real.run_config(spec, config)["steps"][1:]
        except Exception as exc:   # one failing configuration must not hide the others
            rows.append({"config": config, "error": f"{type(exc).__name__}: {exc}",
                         "trace": traceback.format_exc()[-2000:]})
            continue
        wall = [s["wall"] for s in steps]
        tokens = sum(s["tokens"] for s in steps)
        row = {"config": config, "step_mean": sum(wall) / len(wall), "step_min": min(wall),
               "generate": sum(s["generate"] for s in steps) / len(steps),
               "score": sum(s["score"] for s in steps) / len(steps),
               "update": sum(s["update"] for s in steps) / len(steps),
               "tokens_per_step": tokens / len(steps), "tokens_per_s": tokens / sum(wall),
               "seconds": time.perf_counter() - t0}
        if device.type == "cuda":
            row["peak_mem_mib"] = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
        rows.append(row)
    return rows


# -- the table ---------------------------------------------------------------------------------------

def render(result: dict) -> str:
    lines = [f"GPU check on {result['device_name']} ({'CPU smoke mode: sizes too small to mean anything' if result['smoke'] else 'CUDA'}); "
             f"torch {result['torch']}; {result['seconds']:.0f} s", ""]
    rows = []
    for r in result.get("conformance", []):
        rows.append(["conformance", f"cast_torch, {r['dtype']} inputs", f"{r['passed']} passed, {r['failed']} failed",
                     f"max abs err {r['max_abs_err']:.2e}" + (f"; {r['failures'][0]}" if r["failures"] else "")])
    for r in result.get("bench_torch", []):
        rows.append(["bench_torch", f"cast_advantages {r['n']} x {r['t']} ({r['variant']})",
                     f"{r['tokens_per_s'] / 1e6:,.1f} M tokens/s", f"{r['gbps']:.1f} GB/s = {r['frac_of_copy']:.0%} "
                     f"of a copy ({r['copy_gbps']:.0f} GB/s)"])
    t = result.get("trainer")
    if t:
        rows.append(["trainer", f"model: Qwen2-family, {t['parameters'] / 1e6:,.1f} M parameters (random), bf16",
                     f"{t['prompts']} prompts x G {t['group_size']}, {t['max_new_tokens']} tokens (fixed)",
                     f"steps 2..{t['steps']}"])
        by_name = {r["config"]: r for r in t["rows"]}
        for r in t["rows"]:
            if "error" in r:
                rows.append(["trainer", r["config"], "ERROR", r["error"][:200]])
                continue
            mem = f", peak {r['peak_mem_mib']:,.0f} MiB" if "peak_mem_mib" in r else ""
            rows.append(["trainer", r["config"], f"step {r['step_mean']:.2f} s (min {r['step_min']:.2f})",
                         f"gen/score/update {r['generate']:.2f}/{r['score']:.2f}/{r['update']:.2f} s, "
                         f"{r['tokens_per_s']:,.0f} tokens/s{mem}"])
        for _, a, b in bench_real.PAIRS:
            ra, rb = by_name.get(a), by_name.get(b)
            if ra and rb and "error" not in ra and "error" not in rb:
                mem = (f", memory {ra['peak_mem_mib'] / rb['peak_mem_mib']:.2f}x" if "peak_mem_mib" in ra
                       and rb.get("peak_mem_mib") else "")
                rows.append(["ratio", f"{a} / {b}", f"step time {ra['step_mean'] / rb['step_mean']:.2f}x",
                             f"tokens/s {ra['tokens_per_s'] / rb['tokens_per_s']:.2f}x{mem}"])
    lines.append(bc.md_table(["section", "what", "result", "detail"], rows))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import transformers
    transformers.logging.set_verbosity_error()
    device = torch.device("cpu" if args.smoke else "cuda")
    if args.smoke:
        bc.limit_threads(1)
    skip = set(filter(None, args.skip.split(",")))
    t0 = time.perf_counter()
    result = {"smoke": args.smoke, "torch": torch.__version__,
              "device_name": "cpu" if args.smoke else torch.cuda.get_device_name(0)}
    if "conformance" not in skip:
        result["conformance"] = conformance(device)
    if "bench_torch" not in skip:
        result["bench_torch"] = bench_torch_rows(device, args.sizes)
    if "trainer" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "model"
            params = build_model(folder, SMOKE_SHAPE if args.smoke else QWEN25_05B)
            result["trainer"] = {"parameters": params, "prompts": args.prompts, "group_size": args.group_size,
                                 "max_new_tokens": args.max_new_tokens, "steps": args.steps,
                                 "rows": trainer_rows(args, device, folder)}
    result["seconds"] = time.perf_counter() - t0
    print(render(result))
    if args.json:
        bc.write_json(args.json, result)
    failed = sum(r["failed"] for r in result.get("conformance", [])) + sum(
        "error" in r for r in result.get("trainer", {}).get("rows", []))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
