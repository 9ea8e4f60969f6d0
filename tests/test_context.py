"""Online context inference: recovering a known z, and following a switch."""

from __future__ import annotations

import numpy as np
import pytest

from dynshift_agents.context import OnlineContextEstimator


def synthetic(z_of_t, steps=400, dim=5, episodes=3, noise=0.01, seed=0):
    """Real changes are z ⊙ predicted changes plus noise; the 'model' predicts with an identity map."""
    rng = np.random.default_rng(seed)
    estimator = OnlineContextEstimator(lambda obs, actions: actions.numpy(), dim, episodes=episodes, warmup=10)
    history = []
    for t in range(steps):
        obs = rng.normal(size=(episodes, dim))
        predicted = rng.normal(size=(episodes, dim))
        next_obs = obs + z_of_t(t) * predicted + noise * rng.normal(size=(episodes, dim))
        estimator.update(obs, predicted, next_obs)
        history.append(estimator.z.copy())
    return estimator, np.array(history)


def test_recovers_a_known_z():
    z_true = np.array([0.5, 0.75, 1.0, 1.25, 1.5])
    estimator, history = synthetic(lambda t: z_true)
    np.testing.assert_allclose(estimator.z, np.broadcast_to(z_true, (3, 5)), atol=0.01)
    assert (history[:9] == 1).all()  # warm-up: z = 1 until 10 transitions


def test_follows_a_switch():
    before, after = np.full(5, 1.0), np.array([0.5, 0.5, 1.5, 1.5, 1.0])
    _, history = synthetic(lambda t: before if t < 200 else after)
    np.testing.assert_allclose(history[199], np.broadcast_to(before, (3, 5)), atol=0.02)
    # γ = 0.98: k steps after the switch the old data's weight is about γ^k, so the error is about
    # γ^k · |Δz| — under 0.05 after 150 steps, under 0.02 after 200
    np.testing.assert_allclose(history[349], np.broadcast_to(after, (3, 5)), atol=0.05)
    np.testing.assert_allclose(history[399], np.broadcast_to(after, (3, 5)), atol=0.02)
    assert np.abs(history[209] - after).max() > 0.1  # it does take time: not a hard-coded answer


def test_rows_reset_independently_and_clip():
    estimator = OnlineContextEstimator(lambda o, a: a.numpy(), 2, episodes=2, warmup=1, clip=(0.5, 2.0))
    estimator.update(np.zeros((2, 2)), np.ones((2, 2)), np.full((2, 2), 10.0))
    assert (estimator.z == 2.0).all()
    estimator.reset(np.array([True, False]))
    assert (estimator.z[0] == 1.0).all() and (estimator.z[1] == 2.0).all()
    estimator.update(np.zeros((1, 2)), np.ones((1, 2)), np.full((1, 2), 0.01), rows=np.array([0]))
    assert (estimator.z[0] == 0.5).all()
    with pytest.raises(ValueError, match="forgetting"):
        OnlineContextEstimator(lambda o, a: a, 2, forgetting=0.0)


def test_tracks_a_damping_switch_in_a_real_env():
    """The 'world model' is the nominal HalfCheetah itself, stepped from the same state; the real env
    switches to damping 0.5 at step 200. Before the switch ẑ = 1; after it, ẑ follows the shifted
    physics: within 0.05 of the plain least-squares z over the last 100 post-switch steps."""
    import gymnasium as gym

    import dynshift_envs  # noqa: F401

    nominal = gym.make("DynShift/HalfCheetah-v0").unwrapped
    nominal.reset(seed=0)

    def predict_delta(obs, actions):
        deltas = []
        for o, a in zip(obs.numpy().astype(np.float64), actions.numpy()):
            qpos = np.concatenate([[0.0], o[:8]])
            nominal.set_state(qpos, o[8:])
            deltas.append(nominal.step(a)[0] - o)
        return np.array(deltas)

    real = gym.make("DynShift/HalfCheetah-v0", schedule=[{"step": 200, "damping": 0.5}])
    obs, _ = real.reset(seed=1)
    rng = np.random.default_rng(0)
    estimator = OnlineContextEstimator(predict_delta, 17, warmup=10, forgetting=0.98)
    history, pairs = [], []
    for t in range(400):
        action = rng.uniform(-1, 1, 6).astype(np.float32)
        next_obs, *_ = real.step(action)
        estimator.update(obs[None], action[None], next_obs[None])
        if t >= 300:
            pairs.append((next_obs - obs, predict_delta(torch_tensor(obs[None]), torch_tensor(action[None]))[0]))
        history.append(estimator.z[0].copy())
        obs = next_obs
    np.testing.assert_allclose(history[199], np.ones(17), atol=1e-6)  # a perfect model before the switch
    delta, predicted = map(np.array, zip(*pairs))
    batch = (delta * predicted).sum(0) / (predicted**2).sum(0)
    velocities = slice(11, 17)  # the six joint velocities, which damping acts on
    assert (np.abs(batch[velocities] - 1) > 0.02).any()  # the switch is visible in the data
    np.testing.assert_allclose(history[-1][velocities], np.clip(batch[velocities], 0.1, 3.0), atol=0.05)


def torch_tensor(array):
    import torch

    return torch.as_tensor(array, dtype=torch.float32)
