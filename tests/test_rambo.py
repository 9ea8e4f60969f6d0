"""RAMBO: the adversarial update's sign and likelihood, its mixture log-probability, λ = 0, presets,
and the divergence guard (which serves every algorithm)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_world

from dynshift_agents.algorithms import MOPO, RAMBO, DivergenceError, MOPOConfig, load, RAMBOConfig
from dynshift_agents.algorithms.rambo import CONFIGURATIONS, PRESETS, mixture_log_prob
from dynshift_agents.world_model import WorldModel, WorldModelConfig

ENV = "DynShift/HalfCheetah-v0"
TINY = dict(rollout_batch_size=64, rollout_freq=50, net_arch=(16, 16), batch_size=32, adversary_steps=5,
            adversary_batch_size=64, bc_steps=20)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    data, model = tiny_world(tmp_path_factory, 2000,
                             WorldModelConfig.rambo(hidden=(32, 32), weight_decay=(0, 0, 0), max_epochs=5))
    model.save(tmp_path_factory.getbasetemp() / "rambo-model.pt")
    return data, tmp_path_factory.getbasetemp() / "rambo-model.pt"


def fresh(path):
    return WorldModel.load(path)


def test_mixture_log_prob_matches_a_float64_computation():
    rng = np.random.default_rng(0)
    mean, logvar = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2)) * 0.3
    sample = rng.normal(size=(4, 2))
    expected = []
    for b in range(4):
        density = 0.0
        for m in range(3):
            var = np.exp(logvar[m, b])
            density += np.prod(np.exp(-0.5 * (sample[b] - mean[m, b]) ** 2 / var) / np.sqrt(2 * math.pi * var)) / 3
        expected.append(math.log(density))
    got = mixture_log_prob(*(torch.as_tensor(a, dtype=torch.float32) for a in (sample, mean, logvar)))
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("bf16", [False, True])
def test_one_adversarial_step_lowers_the_models_value_and_keeps_the_likelihood(tiny, bf16):
    """A toy critic that prefers next states with a larger first coordinate: after one adversarial
    step the model predicts smaller ones for the same states and actions (also with bf16 products)."""
    data, path = tiny
    model = fresh(path)
    model.config = dataclasses.replace(model.config, precision="bf16" if bf16 else "fp32")
    agent = RAMBO(ENV, model, data, RAMBOConfig(**TINY, adversary_weight=0.05), seed=0)
    agent.q_values = lambda obs, actions: obs[:, 0]  # the toy critic (standardised states)
    obs = torch.as_tensor(data.obs[:512])
    actions = torch.as_tensor(data.actions[:512])

    def model_value():
        with torch.no_grad():
            delta, _ = agent.world_model.predict_mean(obs, actions)
        return float((obs[:, 0] + delta[:, 0]).mean())

    def real_nll():
        model = agent.world_model
        x = model._inputs(data.obs[:512], data.actions[:512])
        y = torch.as_tensor(np.concatenate([data.next_obs[:512] - data.obs[:512], data.rewards[:512, None]], 1))
        with torch.no_grad():
            return float(model.loss(x.expand(model.config.members, -1, -1), y.expand(model.config.members, -1, -1)))

    before_value, before_nll = model_value(), real_nll()
    stats = agent.adversary_step()
    assert model_value() < before_value
    assert abs(real_nll() - before_nll) < 0.05 * abs(before_nll) + 0.5
    assert np.isfinite(stats["adversarial"]) and np.isfinite(stats["likelihood"])


def test_lambda_zero_leaves_the_model_unchanged(tiny):
    data, path = tiny
    agent = RAMBO(ENV, fresh(path), data, RAMBOConfig(**TINY, adversary_weight=0.0), seed=0)
    before = {k: v.clone() for k, v in agent.world_model.state_dict().items()}
    agent.learn(100, progress_bar=False)
    for key, value in agent.world_model.state_dict().items():
        assert torch.equal(value, before[key]), key
    changed = RAMBO(ENV, fresh(path), data, RAMBOConfig(**TINY), seed=0)
    changed.learn(50, progress_bar=False)
    assert not torch.equal(changed.world_model.ensemble.head.weight, before["ensemble.head.weight"])


def test_rambo_trains_saves_loads_with_standardised_states(tiny, tmp_path):
    data, path = tiny
    agent = RAMBO(ENV, fresh(path), data, RAMBOConfig(**TINY), seed=0)
    agent.learn(100, progress_bar=False, checkpoint_dir=tmp_path / "ckpt")
    assert agent.bc_done
    real = agent.replay_buffer.real["observations"]
    np.testing.assert_allclose(real.mean(0), 0, atol=1e-4)
    loaded = load(tmp_path / "ckpt")
    assert type(loaded) is RAMBO
    np.testing.assert_array_equal(agent.predict(data.obs[:8])[0], loaded.predict(data.obs[:8])[0])
    meta = json.loads((tmp_path / "ckpt" / "agent.json").read_text())
    assert meta["state"]["bc_done"]
    np.testing.assert_array_equal(loaded.encoder.mean, agent.encoder.mean)
    assert loaded.encoder.mean.shape == (17,) and loaded.encoder.standardises


def test_behaviour_cloning_moves_the_actor_towards_the_data(tiny):
    data, path = tiny
    agent = RAMBO(ENV, fresh(path), data, RAMBOConfig(**TINY | {"bc_steps": 300, "bc_learning_rate": 1e-3}), seed=0)
    actor = agent.learner.policy.actor
    obs = torch.as_tensor(agent.replay_buffer.real["observations"][:500])
    target = torch.as_tensor(agent.replay_buffer.real["actions"][:500]).clamp(-0.999, 0.999)

    def nll():
        with torch.no_grad():
            mean, log_std, _ = actor.get_action_dist_params(obs)
            return float(-actor.action_dist.proba_distribution(mean, log_std).log_prob(target).mean())

    before = nll()
    agent.behaviour_cloning()
    assert nll() < before - 0.1


def test_presets_and_configurations():
    assert CONFIGURATIONS == ((1, 3e-4), (2, 3e-4), (5, 3e-4), (5, 0.0))
    assert RAMBOConfig.for_dataset("dynshift/halfcheetah/random-v0").adversary_weight == 0.0
    assert RAMBOConfig.for_dataset("dynshift/hopper/mixed-v0").rollout_length == 2
    assert RAMBOConfig.for_dataset("dynshift/walker2d/medium-expert-v0").rollout_length == 2
    assert len(PRESETS) == 12
    assert RAMBOConfig().adversary_reduction == "sum" and RAMBOConfig().real_ratio == 0.5
    with pytest.raises(ValueError, match="sum"):
        RAMBOConfig(adversary_reduction="max")
    assert RAMBO.world_model_config() == WorldModelConfig.rambo()


def test_divergence_guard_fires_and_keeps_the_previous_checkpoint(tiny, tmp_path):
    data, path = tiny
    agent = MOPO(ENV, fresh(path), data, MOPOConfig(rollout_batch_size=64, rollout_freq=50, net_arch=(16, 16),
                                                    batch_size=32), seed=0)

    def inject(a):
        if a.gradient_steps == 100:  # after the second block: poison the critic
            with torch.no_grad():
                next(a.learner.policy.critic.parameters()).fill_(float("nan"))

    with pytest.raises(DivergenceError, match=r"diverged at gradient step 1(0[01]|50)\b.*last good checkpoint"):
        agent.learn(300, progress_bar=False, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=50, callback=inject)
    kept = load(tmp_path / "ckpt")
    assert kept.gradient_steps == 100
    assert all(torch.isfinite(p).all() for p in kept.learner.policy.parameters())
