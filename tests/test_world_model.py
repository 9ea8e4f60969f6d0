"""The ensemble world model, the termination functions, and the model env's step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dynshift_agents.data import collect, load_transitions
from dynshift_agents.rollout import ModelEnv, rollout
from dynshift_agents.termination import TERMINATION_FNS
from dynshift_agents.world_model import WorldModel, WorldModelConfig

NOISE = 0.05


def linear_gaussian(n=6000, seed=0):
    """s' = s + A s + B a + ε, r = s₀ − a₁ + ε with ε ~ N(0, NOISE²)."""
    system = np.random.default_rng(1234)
    A, B = system.normal(size=(4, 4)) * 0.1, system.normal(size=(2, 4)) * 0.2
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 4)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    delta = obs @ A + act @ B
    reward = obs[:, 0] - act[:, 1]
    next_obs = obs + delta + NOISE * rng.normal(size=delta.shape)
    reward_noisy = reward + NOISE * rng.normal(size=n)
    return obs, act, reward_noisy.astype(np.float32), next_obs.astype(np.float32), delta, reward


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    obs, act, rew, next_obs, delta, reward = linear_gaussian()
    model = WorldModel(4, 2, WorldModelConfig(hidden=(64, 64), weight_decay=(0, 0, 0), patience=8))
    report = model.fit(obs, act, rew, next_obs, seed=0)
    return model, report


def test_fits_a_linear_gaussian_system(fitted):
    model, report = fitted
    obs, act, _, _, delta, reward = linear_gaussian(n=2000, seed=1)  # fresh data
    with torch.no_grad():
        mean, logvar = model(obs, act)
    truth = torch.as_tensor(np.concatenate([delta, reward[:, None]], axis=1), dtype=torch.float32)
    # the mean recovers the noiseless function to a small fraction of the noise
    assert float((mean - truth).pow(2).mean().sqrt()) < 0.4 * NOISE
    # the predicted noise level is the true one
    assert float(torch.exp(0.5 * logvar).mean()) == pytest.approx(NOISE, rel=0.15)
    assert max(report.holdout_mse) < 1.3 * NOISE**2
    assert report.holdout_rows == 1000 and report.train_rows == 5000


def test_elites_are_the_lowest_holdout_members(fitted):
    model, report = fitted
    assert report.elites == list(np.argsort(report.holdout_mse)[:5])
    assert model.elite_index.tolist() == report.elites
    # sampling uses only elites: with one elite, deterministic samples are that member's mean
    obs, act, *_ = linear_gaussian(n=50, seed=2)
    saved = model.elite_index.clone()
    try:
        model.elite_index = torch.tensor([3])
        next_obs, reward, mean, _ = model.sample(obs, act, deterministic=True)
        np.testing.assert_allclose(next_obs - torch.as_tensor(obs), mean[3, :, :-1], atol=1e-6)
        np.testing.assert_allclose(reward, mean[3, :, -1], atol=1e-6)
    finally:
        model.elite_index = saved


def test_save_load_round_trips_exactly(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "wm.pt", {"note": "x"})
    loaded = WorldModel.load(tmp_path / "wm.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    obs, act, *_ = linear_gaussian(n=20, seed=3)
    with torch.no_grad():
        pairs = list(zip(model(obs, act), loaded(obs, act)))
    for a, b in pairs:
        assert torch.equal(a, b)
    assert loaded.config == model.config and loaded.metadata == {"note": "x"}
    assert torch.load(tmp_path / "wm.pt", weights_only=True)  # no pickled code needed


def test_the_ensemble_is_batched_not_a_loop():
    model = WorldModel(3, 1, WorldModelConfig(hidden=(8,), weight_decay=(0, 0)))
    x = torch.randn(5, 4)
    mean, logvar = model.ensemble(x)
    assert mean.shape == (7, 5, 4) and logvar.shape == (7, 5, 4)
    # member m of a batched pass equals a pass through member m's weights alone
    layer, head = model.ensemble.hidden[0], model.ensemble.head
    h = F.silu(x @ layer.weight[2] + layer.bias[2])
    assert torch.allclose(mean[2], (h @ head.weight[2] + head.bias[2])[:, :4], atol=1e-6)


def test_log_variance_is_soft_clamped_into_learnable_bounds():
    model = WorldModel(2, 1, WorldModelConfig(hidden=(4,), weight_decay=(0, 0), max_logvar=0.5, min_logvar=-10))
    with torch.no_grad():
        for p in model.ensemble.parameters():
            p.zero_()
        model.ensemble.max_logvar.fill_(0.5)
        model.ensemble.min_logvar.fill_(-10.0)
        model.ensemble.head.bias[..., 3:] = torch.tensor([100.0, -100.0, 0.0])  # raw log-variances
    _, logvar = model.ensemble(torch.zeros(1, 3))
    raw = torch.tensor([100.0, -100.0, 0.0])
    expected = 0.5 - F.softplus(0.5 - raw)
    expected = -10.0 + F.softplus(expected + 10.0)
    assert torch.allclose(logvar[0, 0], expected)
    assert logvar.max() <= 0.5 + 1e-3 and logvar.min() >= -10.0 - 1e-3  # soft bounds
    assert model.ensemble.max_logvar.requires_grad and model.ensemble.min_logvar.requires_grad


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="elites"):
        WorldModelConfig(members=3, elites=5)
    with pytest.raises(ValueError, match="one value per layer"):
        WorldModelConfig(hidden=(8, 8), weight_decay=(0.0,))
    with pytest.raises(ValueError, match="too few"):
        WorldModel(2, 1).fit(np.zeros((10, 2)), np.zeros((10, 1)), np.zeros(10), np.zeros((10, 2)))


@pytest.mark.parametrize("robot", ["hopper", "walker2d", "ant", "halfcheetah"])
def test_termination_functions_agree_with_the_envs(robot, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    size = 3000 if robot != "ant" else 1500
    data = load_transitions(collect(robot, "random", size=size, progress=False).spec.dataset_id)
    fn = TERMINATION_FNS[robot]
    np.testing.assert_array_equal(fn(data.obs, data.actions, data.next_obs), data.terminals)
    as_torch = fn(torch.as_tensor(data.obs), torch.as_tensor(data.actions), torch.as_tensor(data.next_obs))
    np.testing.assert_array_equal(as_torch.numpy(), data.terminals)
    if robot in ("hopper", "walker2d"):
        assert data.terminals.sum() > 10  # random robots fall: the comparison is not vacuous


def test_rollouts_stop_terminated_rows_and_keep_the_model_state():
    model = WorldModel(2, 1, WorldModelConfig(members=2, elites=1, hidden=(4,), weight_decay=(0, 0)))
    # terminate every row whose first coordinate is positive
    env = ModelEnv(model, lambda o, a, n: n[:, 0] > 0)
    start = torch.randn(100, 2)
    steps = list(rollout(env, lambda o, i: torch.zeros(len(o), 1), start, horizon=4, chunk=30,
                         generator=torch.Generator().manual_seed(0)))
    chunk_of = [int(step.rollout_index[0]) // 30 for step in steps]
    assert sorted(set(chunk_of)) == [0, 1, 2, 3]
    for (a, ca), (b, cb) in zip(zip(steps, chunk_of), zip(steps[1:], chunk_of[1:])):
        if ca == cb:  # the next step of the same chunk continues exactly the rows that did not terminate
            assert torch.equal(b.rollout_index, a.rollout_index[~a.dones])
            assert torch.equal(b.obs, a.next_obs[~a.dones])
    assert all(len(step) > 0 for step in steps)
    assert sum(1 for c in chunk_of if c == 0) <= 4  # never longer than the horizon


def test_bf16_fitting_reaches_the_same_accuracy():
    obs, act, rew, next_obs, *_ = linear_gaussian()
    model = WorldModel(4, 2, WorldModelConfig(hidden=(64, 64), weight_decay=(0, 0, 0), patience=8, precision="bf16"))
    report = model.fit(obs, act, rew, next_obs, seed=0)
    assert max(report.holdout_mse) < 1.5 * NOISE**2
    assert model.ensemble.head.weight.dtype == torch.float32


def test_a_fit_is_the_same_model_whatever_the_generators_state_before():
    """The initial weights come from the fit's seed: two models built at different points of torch's
    global generator (torch seeds it randomly in every process) fit to the same parameters."""
    obs, act, rew, next_obs, *_ = linear_gaussian(n=600, seed=4)
    config = WorldModelConfig(hidden=(16, 16), weight_decay=(0, 0, 0), max_epochs=3, precision="fp32")
    models = []
    for draws in (0, 7):
        torch.rand(draws)  # elsewhere in the generator's stream
        model = WorldModel(obs.shape[1], act.shape[1], config)
        model.fit(obs, act, rew, next_obs, seed=5)
        models.append(model)
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
