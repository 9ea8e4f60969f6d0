"""The behaviour-regularised learners of the DARA paper's table (BCQ, BEAR, BRAC-p, AWR): their
defining terms on hand-made inputs, and tiny training runs that save, load and predict identically."""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
import torch

from dynshift_agents.algorithms import (AWR, BCQ, BEAR, BRACP, AWRConfig, BCQConfig, BEARConfig, BRACConfig, describe,
                                        load)
from dynshift_agents.algorithms.awr import awr_weights, td_lambda_returns
from dynshift_agents.algorithms.bcq import soft_clipped_target
from dynshift_agents.algorithms.bear import mmd
from dynshift_agents.algorithms.bracp import sampled_kl

from conftest import assert_resumes_exactly, make_learner

ENV = "DynShift/HalfCheetah-v0"
LEARNERS = {
    "bcq": (BCQ, BCQConfig, dict(vae_hidden=(16, 16), act_samples=8, target_samples=3)),
    "bear": (BEAR, BEARConfig, dict(vae_hidden=(16, 16), warmup_steps=100, target_samples=3)),
    "bracp": (BRACP, BRACConfig, dict(policy_arch=(16, 16), behaviour_steps=50, warm_start=100)),
    "awr": (AWR, AWRConfig, dict(value_refresh=100)),
}


make = functools.partial(make_learner, LEARNERS)


# -- BCQ ---------------------------------------------------------------------------------------------


def test_bcq_target_mixes_min_and_max_then_takes_the_best_sample():
    q1 = torch.tensor([[1.0], [3.0], [5.0], [0.0]])
    q2 = torch.tensor([[2.0], [0.0], [4.0], [8.0]])  # two states × two samples
    target = soft_clipped_target(q1, q2, lmbda=0.75, samples=2)
    assert target.squeeze(1).tolist() == pytest.approx([max(0.75 * 1 + 0.25 * 2, 0.75 * 0 + 0.25 * 3),
                                                        max(0.75 * 4 + 0.25 * 5, 0.75 * 0 + 0.25 * 8)])


def test_bcq_perturbation_stays_within_phi(tiny):
    _, data = tiny
    agent = make("bcq", data, phi=0.05)
    learner = agent.learner
    with torch.no_grad():
        for layer in learner.perturbation:  # a perturbation network pushed to saturation
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(50)
        obs = torch.as_tensor(agent.encoder(data.obs[:256]))
        actions = torch.empty(256, 6).uniform_(-0.9, 0.9)
        shift = learner.perturb(obs, actions) - actions
    assert shift.abs().max() <= 0.05 + 1e-6 and shift.abs().max() > 0.04
    low, high = agent.action_space.low, agent.action_space.high
    env_shift = agent.learner.policy.unscale_action(shift.numpy() + 0.0) - agent.learner.policy.unscale_action(np.zeros(6))
    assert (np.abs(env_shift) <= 0.05 * (high - low) + 1e-6).all()


# -- BEAR --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["laplacian", "gaussian"])
def test_bear_mmd_against_a_direct_computation(kernel):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 5, 2)), rng.normal(1.0, size=(3, 4, 2))
    sigma = 10.0 if kernel == "laplacian" else 20.0

    def k(a, b):
        d = np.abs(a - b).sum() if kernel == "laplacian" else ((a - b) ** 2).sum()
        return math.exp(-d / (2 * sigma))

    expected = []
    for i in range(3):
        xx = np.mean([k(a, b) for a in x[i] for b in x[i]])
        yy = np.mean([k(a, b) for a in y[i] for b in y[i]])
        xy = np.mean([k(a, b) for a in x[i] for b in y[i]])
        expected.append(math.sqrt(xx + yy - 2 * xy + 1e-6))
    got = mmd(torch.as_tensor(x), torch.as_tensor(y), kernel, sigma)
    assert got.tolist() == pytest.approx(expected, rel=1e-9)
    assert float(mmd(torch.as_tensor(x), torch.as_tensor(x), kernel, sigma).max()) == pytest.approx(1e-3, rel=1e-6)


@pytest.mark.parametrize("epsilon, direction", [(0.0, 1), (10.0, -1)])  # MMD > 0 = ε always; MMD < 10 always
def test_bear_multiplier_rises_while_mmd_exceeds_epsilon(tiny, epsilon, direction):
    _, data = tiny
    agent = make("bear", data, epsilon=epsilon, lagrange_learning_rate=1e-2)
    agent.learn(20, progress_bar=False)
    assert direction * float(agent.learner.log_alpha.detach()) > 0.1
    assert -5 <= float(agent.learner.log_alpha.detach()) <= 10


# -- BRAC-p ------------------------------------------------------------------------------------------


def constant_gaussian(actor, mean: float, std: float) -> None:
    """Make an SB3 SAC actor output N(mean, std²) (pre-tanh) whatever the state."""
    with torch.no_grad():
        for layer, value in ((actor.mu, mean), (actor.log_std, math.log(std))):
            layer.weight.zero_()
            layer.bias.fill_(value)


def test_bracp_sampled_kl_matches_the_closed_form(tiny):
    _, data = tiny
    agent = make("bracp", data)
    actor, behaviour = agent.learner.actor, agent.learner.behaviour
    constant_gaussian(actor, 0.3, 0.5)
    constant_gaussian(behaviour, -0.2, 0.8)
    obs = torch.as_tensor(agent.encoder(data.obs[:100]))
    torch.manual_seed(0)
    with torch.no_grad():
        _, _, kl = sampled_kl(actor, behaviour, obs, samples=400)
    per_dim = math.log(0.8 / 0.5) + (0.5 ** 2 + (0.3 + 0.2) ** 2) / (2 * 0.8 ** 2) - 0.5  # KL(N1‖N2)
    assert float(kl.mean()) == pytest.approx(6 * per_dim, rel=0.02)  # tanh is invertible: the same KL


def test_bracp_fits_the_behaviour_policy_first(tiny):
    _, data = tiny
    agent = make("bracp", data, behaviour_steps=200)
    obs = torch.as_tensor(agent.encoder(data.obs[:512]))
    actions = torch.as_tensor(agent.learner.policy.scale_action(data.actions[:512])).clamp(-0.999, 0.999)

    def nll():
        with torch.no_grad():
            mean, log_std, _ = agent.learner.behaviour.get_action_dist_params(obs)
            return -float(agent.learner.behaviour.action_dist.proba_distribution(mean, log_std).log_prob(actions).mean())

    before = nll()
    agent.learn(10, progress_bar=False)
    assert bool(agent.learner.behaviour_fitted) and nll() < before - 1.0


@pytest.mark.parametrize("sb3_entropy", [False, True])
def test_bracp_losses_on_a_hand_made_batch(tiny, sb3_entropy):
    """By default (the official primal agent) the actor minimises −Q + α·KL and the critics regress on
    r + γ(1 − done)·min Q̄(s', a'), with no entropy term; with SB3's term on (ent_coef="auto") both carry
    α_ent·log π."""
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    _, data = tiny
    extra = dict(ent_coef="auto", log_std_range=(-20.0, 2.0)) if sb3_entropy else {}
    agent = make("bracp", data, behaviour_steps=0, warm_start=0, **extra)
    learner, cfg = agent.learner, agent.config
    assert cfg.log_std_range == ((-20.0, 2.0) if sb3_entropy else (-5.0, 0.0))
    gen = torch.Generator().manual_seed(3)
    batch = ReplayBufferSamples(torch.randn(8, 17, generator=gen), torch.rand(8, 6, generator=gen) * 2 - 1,
                                torch.randn(8, 17, generator=gen), torch.tensor([[0.0]] * 7 + [[1.0]]),
                                torch.randn(8, 1, generator=gen))
    critic_before = [p.detach().clone() for p in learner.critic.parameters()]
    torch.manual_seed(11)
    with torch.no_grad():  # the same draws update() makes, in its order
        actions, log_pi, kl = sampled_kl(learner.actor, learner.behaviour, batch.observations, cfg.kl_samples)
        next_actions, next_log_prob = learner.actor.action_log_prob(batch.next_observations)
        next_q = torch.cat(learner.critic_target(batch.next_observations, next_actions), 1).min(1, keepdim=True).values
        ent = float(torch.exp(learner.log_ent_coef)) if sb3_entropy else 0.0
        target = batch.rewards + (1 - batch.dones) * cfg.gamma * (next_q - ent * next_log_prob.reshape(-1, 1))
        critic_loss = 0.5 * sum(torch.nn.functional.mse_loss(q, target)
                                for q in learner.critic(batch.observations, batch.actions))
    torch.manual_seed(11)
    metrics = learner.update(batch, step=cfg.warm_start)
    assert float(metrics["critic_loss"]) == pytest.approx(float(critic_loss), rel=1e-5)
    assert float(metrics["ent_coef"]) == pytest.approx(ent)
    with torch.no_grad():  # the actor's loss reads the critics after their step
        q = torch.cat(learner.critic(batch.observations.repeat_interleave(cfg.kl_samples, 0), actions), 1).min(1).values
        actor_loss = (-q + cfg.alpha * kl + ent * log_pi).mean()
    assert float(metrics["actor_loss"]) == pytest.approx(float(actor_loss), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, learner.critic.parameters()))


def test_bracp_clips_the_log_std_to_the_official_range(tiny):
    _, data = tiny
    agent = make("bracp", data)
    constant_gaussian(agent.learner.actor, 0.0, math.exp(-9.0))  # far below −5
    constant_gaussian(agent.learner.behaviour, 0.0, math.exp(1.5))  # above 0
    obs = torch.as_tensor(agent.encoder(data.obs[:4]))
    with torch.no_grad():
        assert torch.all(agent.learner.actor.get_action_dist_params(obs)[1] == -5.0)
        assert torch.all(agent.learner.behaviour.get_action_dist_params(obs)[1] == 0.0)


# -- AWR ---------------------------------------------------------------------------------------------


def test_awr_td_lambda_returns_by_hand():
    rewards = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    values, next_values = np.zeros(5), np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    terminals = np.array([False, False, True, False, False])
    ends = np.array([False, False, True, False, True])  # two trajectories: terminated, then truncated
    got = td_lambda_returns(rewards, values, next_values, terminals, ends, gamma=0.9, lam=0.5)
    r2 = 3.0  # terminated: no bootstrap
    r1 = 2.0 + 0.9 * (0.5 * 20.0 + 0.5 * r2)  # next_values[t] is V(s_{t+1})
    r0 = 1.0 + 0.9 * (0.5 * 10.0 + 0.5 * r1)
    r4 = 5.0 + 0.9 * 50.0  # truncated: bootstraps from V(s_5)
    r3 = 4.0 + 0.9 * (0.5 * 40.0 + 0.5 * r4)
    assert got.tolist() == pytest.approx([r0, r1, r2, r3, r4])


def test_awr_weights_are_normalised_and_clipped():
    advantages = np.array([-3.0, 0.0, 1.0, 100.0])
    weights = awr_weights(advantages, beta=0.5, max_weight=20.0)
    normalised = (advantages - advantages.mean()) / advantages.std()
    assert weights.tolist() == pytest.approx(np.minimum(np.exp(normalised / 0.5), 20.0).tolist())
    assert weights.max() == 20.0 and weights.min() < 1  # the best clipped, the worst below the mean's weight
    assert awr_weights(advantages * 7 + 3, 0.5, 20.0).tolist() == pytest.approx(weights.tolist())  # scale-free


# -- training, checkpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_trains_saves_loads_and_predicts_identically(tiny, tmp_path, name):
    _, data = tiny
    agent = make(name, data)
    agent.learn(300, progress_bar=False, checkpoint_dir=tmp_path / "ckpt")
    assert agent.learner._n_updates == 300 and describe(tmp_path / "ckpt")["algorithm"] == name
    loaded = load(tmp_path / "ckpt")
    obs = data.obs[:16]
    torch.manual_seed(0)
    first = agent.predict(obs)[0]
    torch.manual_seed(0)
    np.testing.assert_array_equal(first, loaded.predict(obs)[0])
    assert np.all(np.abs(first) <= 1.0)
    saved, restored = agent.learner.get_parameters(), loaded.learner.get_parameters()
    assert saved.keys() == restored.keys()
    for part in saved:  # every state dict (networks and optimisers), value for value
        torch.testing.assert_close(restored[part], saved[part], rtol=0, atol=0)
    loaded.attach_dataset(data)
    loaded.learn(350, progress_bar=False)
    assert loaded.learner._n_updates == 350


def test_evaluating_a_sampling_policy_is_seeded_and_leaves_training_alone(tiny):
    """BCQ samples VAE actions inside predict: its evaluation depends on its seed only, and a run that
    evaluates after each of its two blocks ends with the parameters of a run that never evaluates."""
    from dynshift_agents.evaluation import episode_returns

    _, data = tiny
    calls = []

    def evaluate(agent):
        calls.append(episode_returns(agent, ENV, 1, seed=3))
        return {}

    # each built just before it trains: building seeds torch's global generator (SB3's set_random_seed)
    evaluated = make("bcq", data).learn(2000, progress_bar=False, log_formats=(), eval_callback=evaluate,
                                        eval_every=1000)
    plain = make("bcq", data).learn(2000, progress_bar=False, log_formats=())
    assert len(calls) == 2
    for a, b in zip(evaluated.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.manual_seed(123)
    again = episode_returns(plain, ENV, 1, seed=3)
    np.testing.assert_array_equal(again, episode_returns(plain, ENV, 1, seed=3))  # whatever the caller's state
    assert not np.array_equal(again, episode_returns(plain, ENV, 1, seed=4))


def test_from_the_command_line(tiny, tmp_path, capsys):
    from dynshift_agents import cli

    dataset_id, _ = tiny
    for name, extra in (("bcq", ["--set", "vae_hidden=[16,16]"]), ("bear", ["--set", "warmup_steps=10"]),
                        ("bracp", ["--set", "behaviour_steps=10"]), ("awr", [])):
        out = tmp_path / name
        cli.main(["train", name, "--dataset", dataset_id, "--out", str(out), "--no-progress", "--gradient-steps", "50",
                  "--set", "net_arch=[16,16]", "--set", "batch_size=32", *extra])
        capsys.readouterr()
        cli.main(["evaluate", str(out), "--episodes", "1", "--json"])
        assert '"episodes": 1' in capsys.readouterr().out
    grid_file = tmp_path / "grid.json"
    grid_file.write_text(json.dumps([{"mass": 0.5}, {"mass": 1.5}]))
    names = ["bcq", "bear", "bracp", "awr"]
    cli.main(["grid", *(str(tmp_path / n) for n in names), "--names", *names, "--grid", str(grid_file),
              "--episodes", "1", "--workers", "1", "--out", str(tmp_path / "grid")])
    records = [json.loads(line) for line in (tmp_path / "grid" / "records.jsonl").read_text().splitlines()]
    assert sorted((r["policy"], r["setting_index"]) for r in records) == sorted((n, i) for n in names for i in (0, 1))
    table = (tmp_path / "grid" / "table.md").read_text()
    assert all(n in table for n in names)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_a_run_resumed_from_its_checkpoint_trains_as_one_never_interrupted(tiny, tmp_path, name):
    _, data = tiny
    assert_resumes_exactly(lambda: make(name, data), data, tmp_path)


# -- learning (slow) -----------------------------------------------------------------------------------

BASE_LEARNER_BUDGET = 30_000
"""Gradient steps of BC, BCQ, BRAC-p and AWR in the slow test below, and of
experiments/base-learners-hopper.toml: BCQ runs at about 19 steps/s on one core (27 min)."""

BEAR_BUDGET = 60_000
"""BEAR's: its actor trains on the MMD alone for its first 40 000 steps (``warmup_steps``), so a
shorter run measures a policy matched to the data, not BEAR."""


@pytest.fixture(scope="module")
def hopper_medium_with_bc(tmp_path_factory):
    """A fresh hopper medium collection (seed 0) in a private store, and BC's score on it at the budget."""
    from dynshift_agents import experiment
    from dynshift_agents.data import collect

    root = tmp_path_factory.mktemp("base-learners")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root / "datasets"))
        torch.set_num_threads(1)
        dataset_id = collect("hopper", "medium", seed=0, progress=False).spec.dataset_id
        bc = experiment.train("bc", dataset_id, BASE_LEARNER_BUDGET, seed=0, out=root / "bc", progress=False,
                              log_formats=())
        yield root, dataset_id, experiment.evaluate(bc, bc.env_id, episodes=10)["normalised_score"]


@pytest.mark.slow
@pytest.mark.parametrize("name, budget", [
    ("bcq", BASE_LEARNER_BUDGET), ("awr", BASE_LEARNER_BUDGET), ("bear", BEAR_BUDGET),
    # its Q runs away once the warm start ends (20 000 steps): KL to the behaviour 0.09 → 20.7, Q 175 → 337
    # against a real discounted return of 32 (episodes fall after about 40 steps); the same before issue 38
    # with SB3's entropy term (7.3)
    pytest.param("bracp", BASE_LEARNER_BUDGET, marks=pytest.mark.xfail(
        strict=True, reason="measured 2026-12-06 (official agent, seed 0, 30 000 steps): 2.7 < 80 % of BC's 32.0 "
                            "(docs/results/model-free.md)")),
])
def test_reaches_most_of_bcs_score_on_hopper_medium(hopper_medium_with_bc, monkeypatch, name, budget):
    """Each of the DARA paper's base learners, at its defaults, seed 0, on hopper medium: 10 final
    episodes score at least 80 % of BC's D4RL score on the same data at BASE_LEARNER_BUDGET steps (the
    papers' learners mostly match or beat BC on medium data).

    Measured through experiments/base-learners-hopper.toml, whose runs are this test's (BC and AWR
    trained again outside the sweep gave the same scores to the last digit): BC 32.0, BCQ 56.4,
    AWR 81.3 (2-core AMD EPYC, 2026-12-02); BRAC-p 2.7 (the official agent, experiments/bracp-official-hopper.toml,
    2-core Intel Xeon, 2026-12-06; 7.3 with SB3's entropy term before issue 38). BEAR at BEAR_BUDGET: 61.4 in a run resumed
    from its 30 000-step checkpoint (experiments/bear-hopper.toml), not this test's run in one go (at
    30 000 steps, inside its warm-up, it scored 80.0). BC's 32.0 is a low point: its evaluations
    every 5 000 steps alternate between about 86 (a hop that lasts the episode) and 28-41 (a faster
    gait that falls), as every learner's here do, so one final score per learner is a noisy
    comparison; the study's three seeds are the measurement to read."""
    from dynshift_agents import experiment

    root, dataset_id, bc_score = hopper_medium_with_bc
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root / "datasets"))
    agent = experiment.train(name, dataset_id, budget, seed=0, out=root / name, progress=False, log_formats=())
    score = experiment.evaluate(agent, agent.env_id, episodes=10)["normalised_score"]
    assert score >= 0.8 * bc_score, f"{name} on hopper medium: {score:.1f} < 80 % of BC's {bc_score:.1f}"
