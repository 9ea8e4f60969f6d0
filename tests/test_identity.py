"""With default arguments every DynShift env is bit for bit its Gymnasium v5 twin."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from dynshift_envs import ENV_IDS, V5_TWINS
from dynshift_envs.model import load_model


def _model_arrays(model):
    arrays = {}
    for name in dir(model):
        if name.startswith("_"):
            continue
        try:
            value = getattr(model, name)
        except Exception:
            continue
        if isinstance(value, np.ndarray):
            arrays[name] = value
    return arrays


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_model_is_v5_model(env_id):
    ours = gym.make(env_id).unwrapped.model
    theirs = gym.make(V5_TWINS[env_id]).unwrapped.model
    a, b = _model_arrays(ours), _model_arrays(theirs)
    assert a.keys() == b.keys()
    different = [k for k in a if not np.array_equal(a[k], b[k], equal_nan=True)]
    assert different == []
    for stat in ("meaninertia", "meanmass", "meansize", "extent"):
        assert getattr(ours.stat, stat) == getattr(theirs.stat, stat), stat


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rollout_bit_identical_across_episodes(env_id):
    steps = 320
    ours = gym.make(env_id, max_episode_steps=120)
    theirs = gym.make(V5_TWINS[env_id], max_episode_steps=120)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, *ours.action_space.shape)).astype(np.float32)
    o1, _ = ours.reset(seed=7)
    o2, _ = theirs.reset(seed=7)
    np.testing.assert_array_equal(o1, o2)
    episodes = 0
    for t in range(steps):
        r1 = ours.step(actions[t])
        r2 = theirs.step(actions[t])
        np.testing.assert_array_equal(r1[0], r2[0])
        assert (r1[1], r1[2], r1[3]) == (r2[1], r2[2], r2[3])
        for key, value in r2[4].items():
            np.testing.assert_array_equal(r1[4][key], value)
        if r1[2] or r1[3]:
            episodes += 1
            o1, _ = ours.reset()
            o2, _ = theirs.reset()
            np.testing.assert_array_equal(o1, o2)
    assert episodes >= 2  # the comparison crossed episode boundaries


def test_load_model_is_from_xml_path_without_warning(capfd):
    from gymnasium.envs.mujoco.mujoco_env import expand_model_path

    path = expand_model_path("half_cheetah.xml")
    capfd.readouterr()
    ours = load_model(path)
    assert "WARNING" not in capfd.readouterr().err
    theirs = mujoco.MjModel.from_xml_path(path)  # prints MuJoCo 4's settotalmass deprecation warning
    a, b = _model_arrays(ours), _model_arrays(theirs)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    assert ours.body_mass.sum() == pytest.approx(14.0, abs=1e-12)


def test_identity_apply_is_bit_identical():
    """Writing nominal dynamics back (after a shift) restores the compiled model bit for bit."""
    env = gym.make("DynShift/HalfCheetah-v0").unwrapped
    reference = {k: v.copy() for k, v in _model_arrays(env.model).items()}
    env.editor.apply(env.editor.normalise(env.base_dynamics.replace(mass=1.7, damping=0.3, scale_inertia=False)))
    env.editor.apply(env.base_dynamics)
    now = _model_arrays(env.model)
    assert [k for k in reference if not np.array_equal(reference[k], now[k], equal_nan=True)] == []
    theirs = gym.make("HalfCheetah-v5").unwrapped.model
    assert (env.model.stat.meaninertia, env.model.stat.meanmass) == (theirs.stat.meaninertia, theirs.stat.meanmass)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_observation_keywords_change_the_observation_only(env_id):
    """With v5's observation keywords the dynamics are untouched: the same seed and actions give a
    default env's observations as ``default_observation()``, and the keywords' own observation is
    the v5 twin's with those keywords."""
    keywords = {"exclude_current_positions_from_observation": False}
    if env_id == "DynShift/Ant-v0":
        keywords = {"include_cfrc_ext_in_observation": False}
    default, changed, twin = gym.make(env_id), gym.make(env_id, **keywords), gym.make(V5_TWINS[env_id], **keywords)
    assert changed.observation_space.shape != default.observation_space.shape
    obs = [env.reset(seed=3)[0] for env in (default, changed, twin)]
    actions = np.random.default_rng(1).uniform(-1, 1, (60, *default.action_space.shape))
    for t in range(61):
        np.testing.assert_array_equal(changed.unwrapped.default_observation(), obs[0])
        np.testing.assert_array_equal(obs[1], obs[2])
        if t < 60:
            obs = [env.step(actions[t])[0] for env in (default, changed, twin)]
    assert changed.observation_space.contains(obs[1].astype(changed.observation_space.dtype))
