"""The fused SAC update is SB3's ``SAC.train()``: the same parameters after several updates."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from dynshift_agents.algorithms.fused_sac import FusedSAC
from dynshift_agents.algorithms.sb3 import SpacesOnlyEnv


class FixedBatches(ReplayBuffer):
    """Returns the same pre-drawn batches to whichever learner asks, in order."""

    def __init__(self, batches, observation_space, action_space):
        super().__init__(1, observation_space, action_space)
        self.batches, self.index = batches, 0

    def sample(self, batch_size, env=None):
        batch = self.batches[self.index]
        self.index += 1
        return batch


def learner(cls, ent_coef, seed=0):
    space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float64)
    env = SpacesOnlyEnv(space, gym.spaces.Box(-1, 1, (3,), np.float32))
    model = cls("MlpPolicy", env, buffer_size=1, learning_starts=0, batch_size=32, ent_coef=ent_coef,
                policy_kwargs={"net_arch": [32, 32]}, seed=seed, device="cpu")
    model.set_logger(configure(None, []))
    return model


@pytest.mark.parametrize("ent_coef", ["auto", 0.2])
def test_fused_updates_give_sb3s_parameters(ent_coef):
    sb3, fused = learner(SAC, ent_coef), learner(FusedSAC, ent_coef)
    fused.policy.load_state_dict(sb3.policy.state_dict())  # the same start
    if ent_coef == "auto":
        fused.log_ent_coef.data.copy_(sb3.log_ent_coef.data)
    rng = np.random.default_rng(0)
    steps = 30

    def batch():
        obs = rng.normal(size=(32, 5))
        parts = (obs, rng.uniform(-1, 1, (32, 3)), obs + 0.1 * rng.normal(size=obs.shape),
                 (rng.random((32, 1)) < 0.05), rng.normal(size=(32, 1)))
        return ReplayBufferSamples(*(torch.as_tensor(p, dtype=torch.float32) for p in parts))

    batches = [batch() for _ in range(steps)]
    for model in (sb3, fused):
        model.replay_buffer = FixedBatches(copy.copy(batches), model.observation_space, model.action_space)
        torch.manual_seed(1)  # the same draws of the actor's noise
        model.train(gradient_steps=steps // 2, batch_size=32)
        model.train(gradient_steps=steps - steps // 2, batch_size=32)
    state, fused_state = sb3.policy.state_dict(), fused.policy.state_dict()
    assert state.keys() == fused_state.keys()  # the saved policy is SB3's
    for key in state:
        torch.testing.assert_close(fused_state[key], state[key], rtol=1e-5, atol=1e-6, msg=key)
    assert not torch.equal(state["critic.qf0.0.weight"], learner(SAC, ent_coef).policy.state_dict()["critic.qf0.0.weight"])
    if ent_coef == "auto":
        torch.testing.assert_close(fused.log_ent_coef, sb3.log_ent_coef, rtol=1e-4, atol=1e-6)
    assert fused._n_updates == sb3._n_updates == steps
    for key in ("train/actor_loss", "train/critic_loss", "train/ent_coef"):
        assert fused.logger.name_to_value[key] == pytest.approx(sb3.logger.name_to_value[key], rel=1e-4, abs=1e-6)


def test_own_learning_rates_for_the_actor_and_alpha_and_a_cap_on_alpha():
    """The public MOPO code's SAC settings: actor and α at 1e-4, critics at 3e-4, α ≤ 1."""
    space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float64)
    env = SpacesOnlyEnv(space, gym.spaces.Box(-1, 1, (3,), np.float32))
    model = FusedSAC("MlpPolicy", env, buffer_size=1, learning_starts=0, batch_size=32, ent_coef="auto_3.0",
                     policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu", learning_rate=3e-4,
                     actor_learning_rate=1e-4, ent_coef_learning_rate=1e-4, ent_coef_max=1.0)
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(32, 5))
    parts = (obs, rng.uniform(-1, 1, (32, 3)), obs, np.zeros((32, 1)), rng.normal(size=(32, 1)))
    batch = ReplayBufferSamples(*(torch.as_tensor(p, dtype=torch.float32) for p in parts))
    model.replay_buffer = FixedBatches([batch] * 3, model.observation_space, model.action_space)
    assert torch.exp(model.log_ent_coef).item() == pytest.approx(3.0)
    model.train(gradient_steps=3, batch_size=32)
    assert [g["lr"] for g in model.actor.optimizer.param_groups] == [1e-4]
    assert [g["lr"] for g in model.ent_coef_optimizer.param_groups] == [1e-4]
    assert [g["lr"] for g in model.critic.optimizer.param_groups] == [3e-4]
    assert torch.exp(model.log_ent_coef).item() <= 1.0 + 1e-6


def test_the_sac_options_need_the_fused_learner():
    from dynshift_agents.algorithms import MOPOConfig

    assert MOPOConfig(actor_learning_rate=1e-4).actor_learning_rate == 1e-4
    with pytest.raises(ValueError, match=r"\['ent_coef_max'\] need learner 'sac'"):
        MOPOConfig(learner="sac-sb3", ent_coef_max=1.0)
