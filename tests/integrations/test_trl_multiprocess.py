"""CASTGRPOTrainer across 2 real processes (torchrun, gloo, CPU) on the tiny local model.

Checks what only several processes can get wrong: every rank computes the same CAST batch from
the gathered rewards/gaps/masks, keeps exactly its own rows, groups split over ranks are
scored whole, the diagnostics are logged once, and an all-wrong batch still has a gradient
(TRL's GRPOTrainer: exactly 0). Also runs the documented CPU launch of the example script.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

import cast_torch  # noqa: E402
from cast_core.config import CASTConfig  # noqa: E402
from cast_torch.diagnostics import cast_diagnostics  # noqa: E402
from cast_torch.train.tiny import make_tiny_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
B = 6   # per_device_train_batch_size in _trl_two_process.py
G = 4   # num_generations


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    make_tiny_model(make_tokenizer(save_dir=path)).save_pretrained(path)
    return str(path)


def _env():
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _torchrun():
    # torchrun of this interpreter: `.venv/bin/python -m pytest` (make test-slow) does not put
    # .venv/bin on PATH, and a torchrun found there could belong to another environment.
    return [sys.executable, "-m", "torch.distributed.run"]


@pytest.fixture(scope="module")
def ranks(tiny_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("trl2")
    cmd = [*_torchrun(), "--nproc_per_node", "2", "--master_port", str(29700 + os.getpid() % 200),
           str(HERE / "_trl_two_process.py"), tiny_path, str(out)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900, cwd=out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_two_real_processes_over_gloo(ranks):
    assert [r["process_index"] for r in ranks] == [0, 1]
    assert all(r["num_processes"] == 2 and r["distributed_type"] == "DistributedType.MULTI_CPU"
               and r["backend"] == "gloo" for r in ranks)


def test_each_rank_keeps_its_slice_of_the_global_cast_batch(ranks):
    config = CASTConfig.from_dict(ranks[0]["config"])
    assert len(ranks[0]["records"]) == len(ranks[1]["records"]) == 2
    # On-policy, the bridge reuses TRL's loss-forward log-probs as π_old: each rank forms its
    # rows' advantages per micro-batch, and the gathered batch must still be cast_advantages.
    assert all(rec["deferred"] for r in ranks for rec in r["records"])
    for k in range(2):
        r0, r1 = ranks[0]["records"][k], ranks[1]["records"][k]
        for key in ("rewards", "group_ids", "gaps", "mask", "advantages", "step"):
            assert r0[key] == r1[key], f"batch {k}: ranks disagree on the gathered {key}"
        rewards, group_ids = torch.tensor(r0["rewards"]), torch.tensor(r0["group_ids"])
        gaps, mask = torch.tensor(r0["gaps"]), torch.tensor(r0["mask"])
        assert rewards.shape == (2 * B,) and group_ids.tolist() == [i // G for i in range(2 * B)]
        expected = cast_torch.cast_advantages(rewards, group_ids, gaps, mask, config, r0["step"]).float()
        torch.testing.assert_close(torch.tensor(r0["advantages"]), expected, atol=1e-6, rtol=0)
        for rank, rec in enumerate((r0, r1)):
            local = torch.tensor(rec["local_advantages"])
            t = local.shape[1]
            rows = slice(rank * B, (rank + 1) * B)
            assert local.shape[0] == B
            assert torch.equal(local, expected[rows, :t]), f"batch {k}: rank {rank} kept the wrong rows"
            assert torch.equal(torch.tensor(rec["local_gaps"]), gaps[rows, :t])       # gathered = its own
            assert torch.equal(torch.tensor(rec["local_mask"]).bool(), mask[rows, :t])
            assert not mask[rows, t:].any()                                          # padding only
        # Group 1 (rows 4..7) lives on both ranks; it is scored as one group of G.
        assert set(range(4, 8)) & set(range(B)) and set(range(4, 8)) & set(range(B, 2 * B))
    gaps_second = torch.tensor(ranks[0]["records"][1]["gaps"])
    assert gaps_second.abs().max() > 1e-3   # the base teacher lags the policy after one step


def test_cast_metrics_logged_once_per_step_with_the_global_values(ranks):
    config = CASTConfig.from_dict(ranks[0]["config"])
    logged = [h for h in ranks[0]["log_history"] if "cast/frac_all_wrong" in h]
    assert len(logged) == 2
    for entry, rec in zip(logged, ranks[0]["records"]):
        diag = cast_diagnostics(torch.tensor(rec["rewards"]), torch.tensor(rec["group_ids"]),
                                torch.tensor(rec["gaps"]), torch.tensor(rec["mask"]), config, rec["step"])
        for key in ("frac_all_wrong", "frac_all_correct", "gap_mean_correct", "lam"):
            assert entry[f"cast/{key}"] == pytest.approx(diag[key], abs=1e-6), key


def test_all_wrong_batch_gradient_cast_positive_grpo_zero(ranks):
    for r in ranks:
        assert r["grad_norm_grpo_all_wrong"] == [0.0]
        assert len(r["grad_norm_cast_all_wrong"]) == 1 and r["grad_norm_cast_all_wrong"][0] > 0.0


def test_documented_cpu_command_starts_two_processes(tiny_path, tmp_path):
    """The CPU launch in examples/trl_multi_gpu/README.md: torchrun, not `accelerate launch --cpu`."""
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{a}+{b}=", "answer": str(a + b)}) + "\n"
                            for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]))
    cmd = [*_torchrun(), "--nproc_per_node", "2", "--master_port", str(29900 + os.getpid() % 90),
           str(ROOT / "examples" / "trl_multi_gpu" / "train_cast_grpo.py"),
           "--model_name_or_path", tiny_path, "--train_file", str(data), "--output_dir", str(tmp_path / "out"),
           "--use_cpu", "--per_device_train_batch_size", "4", "--num_generations", "4",
           "--max_completion_length", "8", "--max_steps", "1", "--logging_steps", "1", "--report_to", "none",
           "--save_strategy", "no", "--log_level", "info", "--disable_tqdm", "true"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    # HF Trainer's banner: per-device batch x processes x accumulation.
    assert "Total train batch size (w. parallel, distributed & accumulation) = 8" in out, out[-3000:]
    assert (tmp_path / "out" / "model.safetensors").exists()
