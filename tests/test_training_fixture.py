"""MOPO, AugWM and RAMBO train exactly as they did before the agents moved into three layers.

``tests/fixtures/training.json`` was recorded with the code before the move (a checkout of commit
9cc54c2, ``python tests/test_training_fixture.py --record``): from a synthetic dataset and an unfitted,
seeded world model (no MuJoCo stepping and no fit, so nothing depends on the simulator), each
algorithm trains two blocks of seeded updates; the fixture holds a checksum of every parameter tensor
of the policy (and of the world model, which RAMBO changes) and the logged losses. The test replays
the same recipe on today's code and compares to float tolerance (different CPUs round differently).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURE = Path(__file__).parent / "fixtures" / "training.json"
ENV = "DynShift/HalfCheetah-v0"
OBS, ACT = 17, 6
COMMON = dict(rollout_batch_size=64, rollout_freq=20, net_arch=(16, 16), batch_size=32, rollout_length=3)
RECIPES = {
    "mopo": dict(COMMON, penalty_coef=1.0),
    "augwm": dict(COMMON, penalty_coef=1.0, context=True, augment="stored"),  # recorded before "auto"
    "augwm-default": dict(COMMON, penalty_coef=1.0, augmentation="rad"),
    "rambo": dict(COMMON, bc_steps=10, adversary_steps=20, adversary_batch_size=16, real_ratio=0.5),
}


def synthetic_dataset(n: int = 500):
    from dynshift_agents.data import Transitions

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, OBS)).astype(np.float32)
    return Transitions(obs=obs, actions=rng.uniform(-1, 1, (n, ACT)).astype(np.float32),
                       rewards=rng.normal(size=n).astype(np.float32),
                       next_obs=(obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32),
                       terminals=np.zeros(n, bool), timeouts=np.zeros(n, bool))


def train(name: str) -> dict:
    """The recipe: seeded, unfitted world model; two blocks of ``rollout_freq`` updates."""
    from stable_baselines3.common.logger import Logger

    from dynshift_agents.algorithms import ALGORITHMS
    from dynshift_agents.world_model import WorldModel, WorldModelConfig

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = synthetic_dataset()
    algorithm = name.split("-")[0]
    fp32 = {"precision": "fp32"} if "precision" in {f.name for f in dataclasses.fields(WorldModelConfig)} else {}
    model_config = WorldModelConfig(hidden=(32, 32), weight_decay=(0, 0, 0), **fp32)  # (fp32 before, too)
    model = WorldModel(OBS, ACT, model_config)
    model.input_mean.copy_(torch.as_tensor(np.concatenate([data.obs, data.actions], 1).mean(0)))
    model.input_std.copy_(torch.as_tensor(np.concatenate([data.obs, data.actions], 1).std(0)))
    agent_class = ALGORITHMS[algorithm]
    agent = agent_class(ENV, model, data, agent_class.config_class(**RECIPES[name]), seed=3)
    losses, dump = [], Logger.dump

    def logged(logger, step=0):  # what each block logged, taken before the logger clears it
        losses.append({k: float(v) for k, v in sorted(logger.name_to_value.items())
                       if k.startswith(("train/", "rollout/", "adversary/"))})
        dump(logger, step)

    Logger.dump = logged
    try:
        agent.learn(40, progress_bar=False, log_formats=())
    finally:
        Logger.dump = dump
    policy = {k: float(v.double().sum()) for k, v in agent.learner.policy.state_dict().items()
              if v.dtype.is_floating_point}
    world = {k: float(v.double().sum()) for k, v in agent.world_model.state_dict().items() if v.dtype.is_floating_point}
    action = agent.predict(data.obs[:4])[0].tolist()
    return {"policy": policy, "world_model": world, "losses": losses, "actions": action}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_training_is_unchanged_by_the_move(name):
    recorded = json.loads(FIXTURE.read_text())[name]
    now = train(name)
    for part in ("policy", "world_model"):
        assert set(now[part]) == set(recorded[part])
        for key, value in recorded[part].items():
            assert now[part][key] == pytest.approx(value, rel=1e-4, abs=1e-4), (part, key)
    assert len(now["losses"]) == len(recorded["losses"])
    for a, b in zip(now["losses"], recorded["losses"]):
        for key in b:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-4), key
    np.testing.assert_allclose(now["actions"], recorded["actions"], rtol=1e-4, atol=1e-5)


if __name__ == "__main__" and "--record" in sys.argv:
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps({name: train(name) for name in sorted(RECIPES)}, indent=1) + "\n")
    print(f"wrote {FIXTURE}")
