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
