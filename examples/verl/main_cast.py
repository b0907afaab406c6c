"""verl's PPO entry point with CAST installed in every Ray worker (untested against a live verl).

    python examples/verl/main_cast.py algorithm.adv_estimator=cast <verl overrides...>

It starts Ray itself with `worker_process_setup_hook` pointing at
`cast_torch.integrations.verl.install`, so the process that computes advantages (verl's
TaskRunner actor) registers the "cast" estimator and passes it the batch; then it hands
over to verl's `run_ppo` with verl's own Hydra config. See README.md.
"""

import os

import hydra
import ray
from omegaconf import OmegaConf
from verl.trainer import main_ppo
from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

CONFIG_DIR = os.path.join(os.path.dirname(main_ppo.__file__), "config")
SETUP_HOOK = "cast_torch.integrations.verl.install"


@hydra.main(config_path=CONFIG_DIR, config_name="ppo_trainer", version_base=None)
def main(config):
    runtime_env = OmegaConf.to_container(OmegaConf.create(get_ppo_ray_runtime_env()))
    user_env = config.get("ray_kwargs", {}).get("ray_init", {}).get("runtime_env", {}) or {}
    runtime_env = OmegaConf.to_container(OmegaConf.merge(runtime_env, user_env))
    runtime_env["worker_process_setup_hook"] = SETUP_HOOK
    if "CAST_VERL_CONFIG" in os.environ:
        runtime_env.setdefault("env_vars", {})["CAST_VERL_CONFIG"] = os.environ["CAST_VERL_CONFIG"]
    ray.init(runtime_env=runtime_env)
    main_ppo.run_ppo(config)


if __name__ == "__main__":
    main()
