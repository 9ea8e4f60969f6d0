"""AugWM: the augmentations' formulas, z held along a rollout, and the context in the policy input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dynshift_agents.algorithms import AugWM, AugWMConfig, load
from dynshift_agents.algorithms.augwm import das, rad, rans
from dynshift_agents.world_model import WorldModelConfig

from conftest import tiny_world

ENV = "DynShift/HalfCheetah-v0"
TINY = dict(rollout_batch_size=64, rollout_freq=50, net_arch=(16, 16), batch_size=32, rollout_length=3,
            penalty_coef=0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_world(tmp_path_factory, 1500, WorldModelConfig(hidden=(16,), weight_decay=(0, 0), max_epochs=1))


def test_augmentation_formulas_on_hand_made_transitions():
    s = torch.tensor([[1.0, -2.0, 4.0]])
    s_next = torch.tensor([[2.0, 0.0, 1.0]])
    z = torch.tensor([[0.5, 2.0, 1.5]])
    assert torch.equal(das(s, s_next, z)[1], torch.tensor([[1.5, 2.0, -0.5]]))  # s + z(s' − s)
    assert torch.equal(das(s, s_next, z)[0], s)
    assert torch.equal(rad(s, s_next, z)[0], torch.tensor([[0.5, -4.0, 6.0]]))
    assert torch.equal(rad(s, s_next, z)[1], torch.tensor([[1.0, 0.0, 1.5]]))
    assert torch.equal(rans(s, s_next, z)[0], s)
    assert torch.equal(rans(s, s_next, z)[1], torch.tensor([[1.0, 0.0, 1.5]]))
    ones = torch.ones_like(z)
    for fn in (das, rad, rans):  # z = 1 is the identity
        assert all(torch.equal(a, b) for a, b in zip(fn(s, s_next, ones), (s, s_next)))


def stored_rollout(agent):
    """Run one rollout and return what entered the buffer, by rollout index."""
    captured = []
    original = agent.encode_model_step

    def spy(step):
        out = original(step)
        captured.append((step, out))
        return out

    agent.encode_model_step = spy
    agent.rollout()
    return captured


@pytest.mark.parametrize("augmentation", ["das", "rad", "rans"])
def test_z_is_held_along_each_rollout_and_appended_as_context(tiny, augmentation):
    data, model = tiny
    agent = AugWM(ENV, model, data, AugWMConfig(**TINY, augmentation=augmentation, context=True, augment="stored"), seed=0)
    assert agent.learner.observation_space.shape == (34,)
    z_seen = {}
    for raw, out in stored_rollout(agent):
        z = out.obs[:, 17:]
        assert torch.equal(out.next_obs[:, 17:], z)  # the same z on both sides of a transition
        for index, row in zip(raw.rollout_index.tolist(), z):
            z_seen.setdefault(index, []).append(row)
        expected_obs, expected_next = {"das": das, "rad": rad, "rans": rans}[augmentation](raw.obs, raw.next_obs, z)
        assert torch.equal(out.obs[:, :17], expected_obs) and torch.equal(out.next_obs[:, :17], expected_next)
    assert len(z_seen) == 64
    for rows in z_seen.values():  # one z per rollout, held along it
        assert all(torch.equal(rows[0], r) for r in rows)
    all_z = torch.stack([rows[0] for rows in z_seen.values()])
    assert all_z.min() >= 0.5 and all_z.max() <= 1.5 and all_z.std() > 0.2
    # dataset rows carry z = 1 in the same place
    real = agent.replay_buffer.real["observations"]
    assert real.shape == (1500, 34) and (real[:, 17:] == 1).all()


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_z_shared_draws_one_value_for_every_dimension_in_that_fraction(tiny, fraction):
    """z_shared = p: about p of the draws are one value in all 17 dimensions, the rest independent;
    at 0 the draws are exactly those of the default (a run without the option is unchanged)."""
    data, model = tiny
    agent = AugWM(ENV, model, data, AugWMConfig(**TINY, context=True, z_shared=fraction), seed=0)
    z = agent.sample_z(4000)
    shared = (z == z[:, :1]).all(1).float().mean().item()
    assert z.min() >= 0.5 and z.max() <= 1.5 and z[:, 0].std() > 0.25
    assert shared == pytest.approx(fraction, abs=0.03)
    if fraction == 0.0:
        default = AugWM(ENV, model, data, AugWMConfig(**TINY, context=True), seed=0)
        assert torch.equal(z, default.sample_z(4000))
    with pytest.raises(ValueError, match="z_shared"):
        AugWMConfig(z_shared=1.5)


def test_the_context_reaches_the_acting_policy(tiny):
    data, model = tiny
    agent = AugWM(ENV, model, data, AugWMConfig(**TINY, context=True, augment="stored"), seed=0)
    seen = []
    actor = agent.learner.policy.actor
    original = actor.forward
    actor.forward = lambda obs, deterministic=False: (seen.append(obs.clone()), original(obs, deterministic))[1]
    agent.rollout()
    first = seen[0]
    assert first.shape[1] == 34
    np.testing.assert_array_equal(first[:, 17:].numpy(), agent.rollout_z[: len(first)].numpy())


def test_default_policy_sees_states_only_and_oracle_uses_one_z(tiny):
    data, model = tiny
    agent = AugWM(ENV, model, data, AugWMConfig(**TINY, oracle_z=(0.75,)), seed=0)
    assert agent.learner.observation_space.shape == (17,)
    for raw, out in stored_rollout(agent):
        np.testing.assert_allclose(out.next_obs, raw.obs + 0.75 * (raw.next_obs - raw.obs), rtol=1e-6, atol=1e-6)


def test_z_per_transition_changes_within_a_rollout(tiny):
    data, model = tiny
    agent = AugWM(ENV, model, data, AugWMConfig(**TINY, z_per="transition", context=True, augment="stored"), seed=0)
    steps = stored_rollout(agent)
    first, second = steps[0][1], steps[1][1]
    assert not torch.equal(first.obs[: len(second), 17:], second.obs[:, 17:])


def test_train_save_load_predict_with_context(tiny, tmp_path):
    data, model = tiny
    agent = AugWM(ENV, model, data, AugWMConfig(**TINY, context=True), seed=0)
    agent.learn(100, progress_bar=False, checkpoint_dir=tmp_path / "ckpt")
    loaded = load(tmp_path / "ckpt")
    assert type(loaded) is AugWM and loaded.config.context
    obs = data.obs[:5]
    np.testing.assert_array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])
    ones = np.concatenate([obs, np.ones_like(obs)], 1)
    np.testing.assert_array_equal(loaded.predict(obs)[0], loaded.predict(ones)[0])  # default context z = 1
    z = np.full(17, 0.6)
    assert not np.array_equal(loaded.predict(obs, context=z)[0], loaded.predict(obs)[0])


def test_bad_configs():
    with pytest.raises(ValueError, match="das"):
        AugWMConfig(augmentation="mixup")
    with pytest.raises(ValueError, match="z_low"):
        AugWMConfig(z_low=2.0, z_high=1.0)
    with pytest.raises(ValueError, match="z_per"):
        AugWMConfig(z_per="episode")
    with pytest.raises(ValueError, match="'auto', 'stored' or 'sampled'"):
        AugWMConfig(augment="batch")


def test_auto_placement_is_sampled_for_a_context_policy_and_stored_for_default():
    """``augment="auto"`` (the default) resolves when the config is built, so a saved agent records it."""
    assert AugWMConfig(context=True).augment == "sampled"
    assert AugWMConfig().augment == "stored"
    assert AugWMConfig(context=True, augment="stored").augment == "stored"
    assert AugWMConfig.from_checkpoint(dataclasses.asdict(AugWMConfig(context=True))).augment == "sampled"
    older = {k: v for k, v in dataclasses.asdict(AugWMConfig(context=True)).items() if k not in ("augment", "z_shared")}
    assert AugWMConfig.from_checkpoint(older).augment == "stored"  # written before the field: stored


def test_evaluation_feeds_the_online_estimate_to_a_context_policy(tiny, monkeypatch):
    from dynshift_agents.evaluation import evaluate_settings

    data, model = tiny
    agent = AugWM(ENV, model, data, AugWMConfig(**TINY, context=True), seed=0)
    contexts = []
    original = agent.predict

    def spy(observation, state=None, episode_start=None, deterministic=True, context=None):
        contexts.append(np.array(context))
        return original(observation, state, episode_start, deterministic, context)

    monkeypatch.setattr(agent, "predict", spy)
    records = evaluate_settings(agent, ENV, [{"damping": 0.5}], episodes=2, seed=0)
    assert len(records) == 2 and len(contexts) == 1000
    assert contexts[0].shape == (2, 17) and (contexts[0] == 1).all()  # warm-up
    assert not (contexts[-1] == 1).all()  # then the estimate


def test_das_with_oracle_z_one_trains_exactly_as_mopo(tiny):
    """z = 1 is the identity augmentation, so AugWM-Default with that oracle is MOPO, update for update:
    whatever AugWM changes beyond the augmentation (sampling, buffers, RNG streams) would show here."""
    from dynshift_agents.algorithms import MOPO, MOPOConfig

    data, model = tiny
    settings = TINY | dict(penalty_coef=1.0)

    def trained(agent_class, config):  # built just before training: SB3 draws from the global RNGs the seed set
        agent = agent_class(ENV, model, data, config, seed=3)
        agent.learn(120, progress_bar=False)
        return list(agent.learner.policy.parameters())

    mopo = trained(MOPO, MOPOConfig(**settings))
    assert all(torch.equal(a, b) for a, b in zip(mopo, trained(AugWM, AugWMConfig(**settings, oracle_z=(1.0,))), strict=True))
    drawn = trained(AugWM, AugWMConfig(**settings))  # the control: z drawn from U(0.5, 1.5)
    assert not torch.equal(mopo[0], drawn[0])


@pytest.mark.parametrize("context", [False, True])
def test_sampled_augmentation_is_the_papers_algorithm_one(tiny, context):
    """``augment="sampled"``: rollouts store MOPO's own transitions (no z), and every row of a training
    batch, dataset rows included, gets DAS with its own z from U(z_low, z_high): s kept, s' = s +
    z ⊙ (s' − s) against the row as stored, z appended for a context policy."""
    data, model = tiny
    agent = AugWM(ENV, model, data, AugWMConfig(**TINY, augment="sampled", context=context), seed=0)
    for raw, stored in stored_rollout(agent):
        assert raw.context is None
        np.testing.assert_array_equal(stored.next_obs[:, :17], raw.next_obs)
        if context:
            assert torch.all(stored.obs[:, 17:] == 1.0)
    buffer = agent.learner.replay_buffer
    transform, buffer.transform = buffer.transform, None
    torch.manual_seed(0)
    buffer.rng = np.random.default_rng(5)
    plain = buffer.sample(64)
    buffer.rng = np.random.default_rng(5)
    buffer.transform = transform
    augmented = buffer.sample(64)
    n_real = int(round(64 * agent.config.real_ratio))
    assert n_real > 0
    s, s_next = plain.observations[:, :17], plain.next_observations[:, :17]
    torch.testing.assert_close(augmented.observations[:, :17], s)
    ratio = (augmented.next_observations[:, :17] - s) / (s_next - s)
    moving = (s_next - s).abs() > 1e-3
    assert ratio[moving].min() >= 0.5 - 1e-4 and ratio[moving].max() <= 1.5 + 1e-4
    assert ratio[:n_real][moving[:n_real]].std() > 0.1  # the dataset rows are augmented too, each its own z
    if context:
        z = augmented.observations[:, 17:]
        torch.testing.assert_close(augmented.next_observations[:, 17:], z)
        torch.testing.assert_close(ratio[moving], z[moving], rtol=1e-3, atol=1e-3)
    assert torch.equal(augmented.actions, plain.actions) and torch.equal(augmented.rewards, plain.rewards)


def test_sampled_augmentation_with_oracle_z_one_trains_as_mopo(tiny):
    from dynshift_agents.algorithms import MOPO, MOPOConfig

    data, model = tiny
    settings = TINY | dict(penalty_coef=1.0)

    def trained(agent_class, config):
        agent = agent_class(ENV, model, data, config, seed=3)
        agent.learn(120, progress_bar=False)
        return list(agent.learner.policy.parameters())

    mopo = trained(MOPO, MOPOConfig(**settings))
    oracle = trained(AugWM, AugWMConfig(**settings, augment="sampled", oracle_z=(1.0,)))
    drawn = trained(AugWM, AugWMConfig(**settings, augment="sampled"))
    # s + 1 · (s' − s) is s' up to float32 rounding, so the oracle z = 1 trains as MOPO up to that rounding
    for a, b in zip(mopo, oracle, strict=True):  # measured: 3e-8 apart after 120 updates, 0.03 for drawn z
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert max(float((a - b).abs().max()) for a, b in zip(mopo, drawn)) > 1e-2


def test_context_q_diagnostic_reads_the_critic_at_each_context(tiny, script):
    """scripts/augwm_diagnostics.py --context-q: Q(s, z, a) at z = 1 is the critic on [s, 1] with the
    dataset's actions in [−1, 1] and with the deterministic policy's, and each context is its own."""
    data, model = tiny
    agent = AugWM(ENV, model, data, AugWMConfig(**TINY, context=True), seed=0)
    agent.learn(60, progress_bar=False)
    obs, actions = torch.as_tensor(data.obs[:40]), data.actions[:40]
    rows = script("augwm_diagnostics").context_q(agent, obs, actions, torch.Generator().manual_seed(0))
    labels = [label for label, _, _ in rows]
    assert labels[0] == "z = 1" and "z ~ U(0.5, 1.5) (training)" in labels and len(set(labels)) == len(labels)
    critic, actor = agent.learner.critic, agent.learner.policy.actor
    with torch.no_grad():
        policy_obs = torch.cat([obs, torch.ones_like(obs)], 1)
        unit = torch.as_tensor(2 * (actions - agent.action_space.low) / (agent.action_space.high - agent.action_space.low) - 1,
                               dtype=torch.float32)
        expected_data = critic.q1_forward(policy_obs, unit).mean().item()
        expected_policy = critic.q1_forward(policy_obs, actor(policy_obs, deterministic=True)).mean().item()
    assert rows[0][1:] == pytest.approx((expected_data, expected_policy), rel=1e-6)
    assert len({q for _, q, _ in rows}) == len(rows)  # every context reads the critic at its own input
    episode_return, stats = script("augwm_diagnostics").inferred_contexts(agent, {"damping": 0.5}, skip=10)
    assert np.isfinite(episode_return) and "predict" not in vars(agent)  # the spy is gone afterwards
    assert stats["|z - 1| median"] > 0 and stats["spread median"] > 0  # estimates, not the warm-up's z = 1
