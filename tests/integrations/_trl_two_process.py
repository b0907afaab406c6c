"""torchrun target of test_trl_multiprocess.py: CASTGRPOTrainer and TRL's GRPOTrainer, 2 CPU processes.

    torchrun --nproc_per_node 2 _trl_two_process.py MODEL_DIR OUT_DIR

Each rank writes OUT_DIR/rank{R}.json with what it saw; the test compares the ranks. Nothing
is checked here, so a failing check names the rank and the batch in the pytest output.
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import datasets  # noqa: E402
import trl  # noqa: E402

from cast_torch.integrations.trl import CASTGRPOConfig, CASTGRPOTrainer  # noqa: E402

PROMPTS = [f"{a}+{b}=" for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4), (6, 1), (9, 3), (5, 5)]]


class Recording(CASTGRPOTrainer):
    """Keeps, per generation batch, this rank's own rows next to the gathered batch.

    ``_cast_record`` is where a generation batch is complete on every path: right after
    generation when π_old is known, or after the last micro-batch's loss forward when the
    bridge reuses TRL's on-policy log-probs (advantages are then formed per micro-batch and
    passed in).
    """

    records: list

    def _cast_record(self, mode, rewards, group_ids, gaps, mask, step, advantages=None):
        advantages_all = super()._cast_record(mode, rewards, group_ids, gaps, mask, step, advantages)
        local_n = mask.size(0)
        start = self.accelerator.process_index * local_n
        local = advantages if advantages is not None else advantages_all[start:start + local_n, :mask.size(1)]
        last = self.cast_last_batch
        self.records.append({
            "deferred": advantages is not None,
            "local_advantages": local.tolist(), "local_mask": mask.tolist(), "local_gaps": gaps.tolist(),
            "rewards": last["rewards"].tolist(), "group_ids": last["group_ids"].tolist(),
            "gaps": last["gaps"].tolist(), "mask": last["mask"].tolist(),
            "advantages": last["advantages"].tolist(), "step": last["step"],
        })
        return advantages_all


def length_parity(completion_ids, **kwargs):
    return [float(len(ids) % 2) for ids in completion_ids]


def zero_reward(completions, **kwargs):
    return [0.0] * len(completions)


def args(out, cls=CASTGRPOConfig, **overrides):
    kwargs = dict(output_dir=out, use_cpu=True, bf16=False, report_to=[], seed=0, max_completion_length=8,
                  num_generations=4, per_device_train_batch_size=6, max_steps=2, logging_steps=1,
                  save_strategy="no", activation_checkpointing=False, learning_rate=1e-2, disable_tqdm=True)
    kwargs.update(overrides)
    return cls(**kwargs)


def grad_norms(trainer):
    return [float(h["grad_norm"]) for h in trainer.state.log_history if "grad_norm" in h]


def main(model_dir, out_dir):
    data = datasets.Dataset.from_list([{"prompt": p} for p in PROMPTS])
    cast = Recording(model=model_dir, reward_funcs=length_parity, train_dataset=data,
                     args=args(os.path.join(out_dir, "cast"), cast_teacher_mode="base"))
    cast.records = []
    cast.train()
    config = cast.args.cast_config()
    zero_cast = CASTGRPOTrainer(model=model_dir, reward_funcs=zero_reward, train_dataset=data,
                                args=args(os.path.join(out_dir, "zc"), max_steps=1, cast_teacher_mode="current"))
    zero_cast.train()
    zero_grpo = trl.GRPOTrainer(model=model_dir, reward_funcs=zero_reward, train_dataset=data,
                                args=args(os.path.join(out_dir, "zg"), cls=trl.GRPOConfig, max_steps=1))
    zero_grpo.train()
    acc = cast.accelerator
    report = {
        "process_index": acc.process_index, "num_processes": acc.num_processes,
        "distributed_type": str(acc.distributed_type), "backend": str(acc.state.backend),
        "config": config.to_dict(), "records": cast.records,
        "log_history": cast.state.log_history,
        "grad_norm_cast_all_wrong": grad_norms(zero_cast), "grad_norm_grpo_all_wrong": grad_norms(zero_grpo),
    }
    with open(os.path.join(out_dir, f"rank{acc.process_index}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
