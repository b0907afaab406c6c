"""CAST on verl 0.9: verl's PPO entry point with CAST installed in verl's driver.

    python examples/verl/main_cast.py                                  # the recipe, config/cast_grpo.yaml
    python examples/verl/main_cast.py actor_rollout_ref.model.path=/models/qwen3-1.7b \\
        algorithm.cast.teacher=ema trainer.n_gpus_per_node=4 trainer.use_v1=false

It does what ``python -m verl.trainer.main_ppo`` does — ``auto_set_device``, verl's
``validate_config``, ``run_ppo`` with verl's TaskRunner for ``trainer.use_v1`` — after CAST's own
check of the config (``cast_torch.integrations.verl.check_config``), and with a TaskRunner that
runs ``cast_torch.integrations.verl.install()`` in its process. See README.md.
"""

from __future__ import annotations

from pathlib import Path

import hydra

CONFIG_DIR = str(Path(__file__).resolve().parent / "config")


def prepare(config) -> None:
    """CAST's checks, then everything verl's ``main_ppo.main`` checks before starting Ray.

    Raises:
        ValueError / AssertionError: verl's or CAST's complaint about the config.
    """
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from cast_torch.integrations import verl as cast_verl

    if cast_verl.check_config(config) is None:  # CAST's settings first: cheap, and the likelier typo
        raise ValueError(f"algorithm.adv_estimator: this launcher runs CAST; got "
                         f"{config.algorithm.adv_estimator!r} (use verl's own main_ppo for other estimators)")
    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config),
                    use_critic=need_critic(config))


@hydra.main(config_path=CONFIG_DIR, config_name="cast_grpo", version_base=None)
def main(config) -> None:
    from verl.trainer.main_ppo import run_ppo

    from cast_torch.integrations.verl import cast_task_runner

    prepare(config)
    run_ppo(config, task_runner_class=cast_task_runner(config))


if __name__ == "__main__":
    main()
