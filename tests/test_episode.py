"""Schedules, sampled ranges, info and context over episodes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from dynshift_envs import ENV_IDS

SWITCH = [{"step": 5, "mass": 0.75, "damping": 0.5}]


def test_schedule_switches_after_the_t_th_step_and_restarts_on_reset():
    env = gym.make("DynShift/HalfCheetah-v0", schedule=SWITCH)
    base = gym.make("DynShift/HalfCheetah-v0").unwrapped.model
    for seed in (0, 1):
        _, info = env.reset(seed=seed)
        assert info["dynamics"]["mass"] == 1.0
        seen = []
        for _ in range(8):
            _, _, _, _, info = env.step(env.action_space.sample())
            seen.append((info["dynamics"]["mass"], info["dynamics"]["damping"]))
        assert seen == [(1.0, 1.0)] * 5 + [(0.75, 0.5)] * 3
        model = env.unwrapped.model
        np.testing.assert_array_equal(model.body_mass, base.body_mass * 0.75)
        np.testing.assert_array_equal(model.dof_damping, base.dof_damping * 0.5)


def test_schedule_keeps_state_continuous_and_matches_a_shifted_env():
    """Steps 1..t equal the unshifted env; step t+1 equals a shifted env started from the same state."""
    t = 5
    scheduled = gym.make("DynShift/Walker2d-v0", schedule=[{"step": t, "mass": 1.5}]).unwrapped
    plain = gym.make("DynShift/Walker2d-v0").unwrapped
    shifted = gym.make("DynShift/Walker2d-v0", mass=1.5).unwrapped
    actions = np.random.default_rng(0).uniform(-1, 1, (t + 1, 6))
    scheduled.reset(seed=4)
    plain.reset(seed=4)
    for a in actions[:t]:
        np.testing.assert_array_equal(scheduled.step(a)[0], plain.step(a)[0])
    qpos, qvel = scheduled.data.qpos.copy(), scheduled.data.qvel.copy()
    shifted.reset(seed=4)
    shifted.set_state(qpos, qvel)
    shifted.data.qacc_warmstart[:] = scheduled.data.qacc_warmstart
    obs = scheduled.step(actions[t])[0]
    np.testing.assert_allclose(obs, shifted.step(actions[t])[0], atol=1e-12)


def test_schedule_at_step_zero_applies_from_reset():
    env = gym.make("DynShift/Hopper-v0", schedule=[{"step": 0, "damping": 2.0}])
    _, info = env.reset(seed=0)
    assert info["dynamics"]["damping"] == 2.0


def test_schedule_can_cripple_a_leg_mid_episode():
    env = gym.make("DynShift/Ant-v0", schedule=[{"step": 2, "crippled_legs": ["back_leg"]}])
    env.reset(seed=0)
    legs = [env.step(env.action_space.sample())[4]["dynamics"]["crippled_legs"] for _ in range(3)]
    assert legs == [[], [], [2]]


@pytest.mark.parametrize("leg", [0, 3])
def test_a_leg_crippled_mid_episode_loses_its_gear_and_its_commands_from_that_step(leg):
    """Two Ants with the same schedule (leg crippled from step 4) and the same seed, one commanding
    the leg's two actuators the opposite way: before the switch the leg has its gear and the runs
    part; from the switch on its gear is zero, its actuators exert no force, and runs that agree up
    to the switch stay bit-identical whatever the leg is told."""
    schedule = [{"step": 4, "crippled_legs": [leg]}]
    a, b = (gym.make("DynShift/Ant-v0", schedule=schedule).unwrapped for _ in range(2))
    own = a.editor._leg_actuators[leg]
    nominal_gear = a.model.actuator_gear[own, 0].copy()
    assert (nominal_gear > 0).all()
    actions = np.random.default_rng(leg).uniform(-1, 1, (12, 8))
    flipped = actions.copy()
    flipped[:, own] = -flipped[:, own]
    # before the switch: geared, and the leg's commands move it
    a.reset(seed=1), b.reset(seed=1)
    for t in range(4):
        obs_a, obs_b = a.step(actions[t])[0], b.step(flipped[t])[0]
        np.testing.assert_array_equal(a.model.actuator_gear[own, 0], nominal_gear)
    assert np.abs(obs_a - obs_b).max() > 1e-3
    # same history up to the switch, then opposite commands to the crippled leg: nothing differs
    a.reset(seed=1), b.reset(seed=1)
    for t in range(12):
        obs_a = a.step(actions[t])[0]
        obs_b = b.step(actions[t] if t < 4 else flipped[t])[0]
        if t >= 4:
            np.testing.assert_array_equal(a.model.actuator_gear[own, 0], 0.0)
            dofs = a.model.jnt_dofadr[a.model.actuator_trnid[own, 0]]
            np.testing.assert_array_equal(a.data.qfrc_actuator[dofs], 0.0)  # no torque on its joints
        np.testing.assert_array_equal(obs_a, obs_b)


def test_ranges_follow_the_seed_and_stay_in_bounds():
    env = gym.make("DynShift/HalfCheetah-v0", mass=(0.5, 1.5), damping={"bthigh": [0.2, 0.4]})

    def draw(seed):
        _, info = env.reset(seed=seed)
        return info["dynamics"]["mass"], info["dynamics"]["damping"]["bthigh"]

    first = draw(10)
    assert first == draw(10)
    assert first != draw(11)
    draws = [draw(None) for _ in range(50)]  # unseeded resets continue the seeded stream
    assert all(0.5 <= m <= 1.5 and 0.2 <= d <= 0.4 for m, d in draws)
    assert len(set(draws)) == 50
    base = gym.make("DynShift/HalfCheetah-v0").unwrapped.model
    mass, _ = draw(12)
    np.testing.assert_allclose(env.unwrapped.model.body_mass, base.body_mass * mass, rtol=1e-15)


def test_fixed_shift_draws_nothing_from_the_rng():
    """Only ranges consume random numbers: a fixed shift starts from v5's initial states."""
    shifted = gym.make("DynShift/Hopper-v0", mass=1.3)
    v5 = gym.make("Hopper-v5")
    np.testing.assert_array_equal(shifted.reset(seed=3)[0], v5.reset(seed=3)[0])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_context_in_obs_appends_active_values(env_id):
    env = gym.make(env_id, context_in_obs=True, mass=1.25, damping=0.5, schedule=[{"step": 1, "mass": 0.5}])
    plain = gym.make(env_id)
    names = env.unwrapped.context_names
    assert names[:2] == ("mass", "damping")
    assert env.observation_space.shape[0] == plain.observation_space.shape[0] + len(names)
    obs, _ = env.reset(seed=0)
    n = plain.observation_space.shape[0]
    np.testing.assert_array_equal(obs[:n], plain.reset(seed=0)[0])
    assert obs[n : n + 2].tolist() == [1.25, 0.5]
    obs = env.step(env.action_space.sample())[0]
    assert obs[n : n + 2].tolist() == [1.25, 0.5]
    obs = env.step(env.action_space.sample())[0]
    assert obs[n : n + 2].tolist() == [0.5, 0.5]
    assert env.observation_space.contains(obs)


def test_context_per_name_and_ant_legs():
    env = gym.make("DynShift/Ant-v0", context_in_obs=True, mass={"torso": 2.0}, crippled_legs=[1]).unwrapped
    names = env.context_names
    vector = dict(zip(names, env.context_vector(env.dynamics)))
    assert vector["mass:torso"] == 2.0 and vector["mass:aux_1"] == 1.0 and vector["damping"] == 1.0
    assert [vector[f"leg_active:{leg}"] for leg in env.editor.leg_names] == [1.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_info_dynamics_at_reset_and_every_step(env_id):
    env = gym.make(env_id, damping=0.75)
    _, info = env.reset(seed=0)
    expected = {"mass": 1.0, "damping": 0.75, "scale_inertia": True, "crippled_legs": [], "morphology": "default",
                "friction": 1.0, "gravity": 1.0, "joint_range": 1.0}
    assert info["dynamics"] == expected
    for _ in range(3):
        assert env.step(env.action_space.sample())[4]["dynamics"] == expected


def test_schedule_with_several_switches_applies_them_in_order():
    env = gym.make("DynShift/Hopper-v0", schedule=[{"step": 2, "mass": 2.0}, {"step": 4, "damping": 0.5}])
    for seed in (0, 1):  # and again after a reset
        _, info = env.reset(seed=seed)
        seen = [(info["dynamics"]["mass"], info["dynamics"]["damping"])]
        for _ in range(5):
            d = env.step(np.zeros(3))[4]["dynamics"]
            seen.append((d["mass"], d["damping"]))
        assert seen == [(1.0, 1.0)] * 3 + [(2.0, 1.0)] * 2 + [(2.0, 0.5)]
