"""Every learner trains exactly as it did before the training loop became one seam (issue 38).

``tests/fixtures/learners.json`` was recorded with the code before the change (commit 62aeea9,
``python tests/test_learner_fixture.py --record``): from a synthetic dataset (and, for the model-based
recipes, an unfitted seeded world model), each learner trains 40 seeded gradient steps in blocks of 7;
the model-free ones and FB stop at step 21 (mid-block, TD3+BC's delayed actor off-phase), are saved,
loaded and trained on to 40, with BEAR's and BRAC-p's warm-ups ending at step 30, after the resume. The
fixture holds the sum and absolute sum of every tensor the agent saves (weights, optimiser states,
tuned coefficients) and what each block logged. The test replays the recipe on today's code and
compares to float tolerance (other CPUs round differently); on the recording machine the numbers are
identical.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURE = Path(__file__).parent / "fixtures" / "learners.json"
ENV = "DynShift/HalfCheetah-v0"
OBS, ACT = 17, 6
SMALL = dict(net_arch=(16, 16), batch_size=32)
MODEL_FREE = {
    "bc": dict(SMALL),
    "td3bc": dict(SMALL),
    "iql": dict(SMALL),
    "cql": dict(SMALL, n_actions=3),
    "cql-lagrange": dict(SMALL, n_actions=3, lagrange_gap=1.0),
    "bcq": dict(SMALL, vae_hidden=(16, 16), target_samples=3, act_samples=4),
    "bear": dict(SMALL, vae_hidden=(16, 16), target_samples=3, warmup_steps=30),
    "bracp": dict(SMALL, policy_arch=(16, 16), behaviour_steps=10, warm_start=30, ent_coef="auto",
                  log_std_range=(-20.0, 2.0)),  # SB3's entropy term and log-std range: BRAC-p before issue 38
    "awr": dict(SMALL, value_refresh=15),
    "fb": dict(z_dim=8, batch_size=32, forward_hidden=(16,), forward_embedding=16, head_hidden=(16,),
               backward_hidden=(16, 16), actor_hidden=(16, 16), inference_samples=100),
}
MODEL_BASED = {
    "mopo-sac-sb3": dict(SMALL, learner="sac-sb3", rollout_batch_size=64, rollout_freq=20, rollout_length=3),
    "mopo-tqc": dict(SMALL, learner="tqc", rollout_batch_size=64, rollout_freq=20, rollout_length=3),
}
STEPS, RESUME_AT, BLOCK = 40, 21, 7


def synthetic_dataset(n: int = 500):
    from dynshift_agents.data import Transitions

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, OBS)).astype(np.float32)
    returns = rng.normal(size=5).astype(np.float32) * 100  # IQL's reward scale reads episode returns
    return Transitions(obs=obs, actions=rng.uniform(-1, 1, (n, ACT)).astype(np.float32),
                       rewards=rng.normal(size=n).astype(np.float32),
                       next_obs=(obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32),
                       terminals=np.zeros(n, bool), timeouts=(np.arange(n) % 100 == 99), episode_returns=returns)


def checksums(tree, prefix: str = "") -> dict[str, list[float]]:
    """[sum, sum of |x|] of every floating tensor in a nested dict/list of saved state, by path."""
    out: dict[str, list[float]] = {}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, (list, tuple)) else ()
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            if value.dtype.is_floating_point:
                out[path] = [float(value.double().sum()), float(value.double().abs().sum())]
        else:
            out |= checksums(value, path + ".")
    return out


def train(name: str, tmp_path: Path) -> dict:
    from stable_baselines3.common.logger import Logger

    from dynshift_agents.algorithms import ALGORITHMS, load
    from dynshift_agents.algorithms import agent as agent_module

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = synthetic_dataset()
    algorithm = name.split("-")[0]
    cls = ALGORITHMS[algorithm]
    logged, dump = [], Logger.dump

    def record(logger, step=0):  # what each block logged, taken before the logger clears it
        logged.append({k: float(v) for k, v in sorted(logger.name_to_value.items())
                       if k.startswith(("train/", "rollout/")) and k != "train/n_updates"})
        dump(logger, step)

    Logger.dump = record
    saved_block = agent_module.BLOCK_STEPS
    agent_module.BLOCK_STEPS = BLOCK
    try:
        if name in MODEL_BASED:
            from dynshift_agents.world_model import WorldModel, WorldModelConfig

            model = WorldModel(OBS, ACT, WorldModelConfig(hidden=(32, 32), weight_decay=(0, 0, 0), precision="fp32"))
            x = np.concatenate([data.obs, data.actions], 1)
            model.input_mean.copy_(torch.as_tensor(x.mean(0)))
            model.input_std.copy_(torch.as_tensor(x.std(0)))
            agent = cls(ENV, model, data, cls.config_class(**MODEL_BASED[name]), seed=3)
            agent.learn(STEPS, progress_bar=False, log_formats=())
        else:
            agent = cls(ENV, data, cls.config_class(**MODEL_FREE[name]), seed=3)
            agent.learn(RESUME_AT, progress_bar=False, log_formats=(), checkpoint_dir=tmp_path / name)
            agent = load(tmp_path / name, dataset=data).learn(STEPS, progress_bar=False, log_formats=())
    finally:
        Logger.dump = dump
        agent_module.BLOCK_STEPS = saved_block
    return {"tensors": checksums(agent.tensors()), "logged": logged,
            "actions": agent.predict(data.obs[:4], deterministic=True)[0].tolist()}


@pytest.mark.parametrize("name", sorted(MODEL_FREE | MODEL_BASED))
def test_every_learner_trains_as_before_the_seam(name, tmp_path):
    recorded = json.loads(FIXTURE.read_text())[name]
    now = train(name, tmp_path)
    assert set(now["tensors"]) == set(recorded["tensors"])
    for key, value in recorded["tensors"].items():
        assert now["tensors"][key] == pytest.approx(value, rel=1e-4, abs=1e-4), key
    assert len(now["logged"]) == len(recorded["logged"])
    for a, b in zip(now["logged"], recorded["logged"]):
        assert set(a) >= set(b)
        for key in b:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-4), key
    np.testing.assert_allclose(now["actions"], recorded["actions"], rtol=1e-4, atol=1e-5)


if __name__ == "__main__" and "--record" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fixture = {name: train(name, Path(tmp)) for name in sorted(MODEL_FREE | MODEL_BASED)}
    target = Path(sys.argv[sys.argv.index("--record") + 1]) if len(sys.argv) > sys.argv.index("--record") + 1 else FIXTURE
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {target}")
