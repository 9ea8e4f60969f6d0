"""Shifted models hold exactly the physics they claim, checked against models MuJoCo compiled itself."""

from __future__ import annotations

import re

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from conftest import copy_state

from dynshift_envs import ENV_IDS
from dynshift_envs.model import CRIPPLED_RGBA, set_constants


def nominal(env_id):
    return gym.make(env_id).unwrapped


def reference_model(env, *, mass=1.0, damping=1.0, zero_gear_joints=(), friction=1.0, gravity=1.0):
    """The env's XML recompiled by MuJoCo with densities × mass (so masses and inertias scale
    together), joint damping × damping, the gears of the given joints' actuators at zero, every
    geom's friction × friction and gravity × gravity."""
    spec = mujoco.MjSpec.from_file(env.fullpath)
    total = spec.compiler.settotalmass
    spec.compiler.settotalmass = -1
    spec.option.gravity = np.asarray(spec.option.gravity) * gravity
    for geom in spec.geoms:
        geom.density *= mass
        geom.friction = np.asarray(geom.friction) * friction
    for joint in spec.joints:
        joint.damping = joint.damping * damping
    for actuator in spec.actuators:
        if actuator.target in zero_gear_joints:
            actuator.gear = np.zeros(6)
    model = spec.compile()
    if total > 0:  # HalfCheetah: the XML's settotalmass, scaled like every density
        mujoco.mj_setTotalmass(model, total * mass)
        set_constants(model, mujoco.MjData(model))
    return model


def step_both(env, reference, action, seed=3):
    """Reset ``env``, copy its state into ``reference``, take one env step and the same MuJoCo steps."""
    env.reset(seed=seed)
    data = mujoco.MjData(reference)
    copy_state(env.model, env.data, reference, data)
    env.step(action)
    data.ctrl[:] = action
    mujoco.mj_step(reference, data, nstep=env.frame_skip)
    return env.data, data


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("shift", [{"mass": 0.5}, {"mass": 1.5}, {"damping": 0.3}, {"mass": 1.25, "damping": 1.75}])
def test_one_step_matches_recompiled_model(env_id, shift):
    env = gym.make(env_id, **shift).unwrapped
    reference = reference_model(env, **shift)
    for array in ("body_mass", "body_inertia", "dof_damping", "body_subtreemass"):
        np.testing.assert_allclose(getattr(env.model, array), getattr(reference, array), rtol=1e-12)
    np.testing.assert_allclose(env.model.dof_invweight0, reference.dof_invweight0, rtol=1e-9)
    assert env.model.stat.meaninertia == pytest.approx(reference.stat.meaninertia, rel=1e-12)
    action = np.random.default_rng(1).uniform(-1, 1, env.action_space.shape)
    ours, theirs = step_both(env, reference, action)
    np.testing.assert_allclose(ours.qpos, theirs.qpos, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.qvel, theirs.qvel, rtol=0, atol=1e-9)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_arrays_are_nominal_times_multiplier_and_never_compound(env_id):
    base = nominal(env_id).model
    env = gym.make(env_id, mass=1.5, damping=0.25)
    for seed in range(3):
        env.reset(seed=seed)
        model = env.unwrapped.model
        np.testing.assert_array_equal(model.body_mass, base.body_mass * 1.5)
        np.testing.assert_array_equal(model.body_inertia, base.body_inertia * 1.5)
        np.testing.assert_array_equal(model.dof_damping, base.dof_damping * 0.25)
        np.testing.assert_array_equal(model.actuator_gear, base.actuator_gear)


def test_scale_inertia_false_scales_mass_only():
    base = nominal("DynShift/Hopper-v0").model
    model = gym.make("DynShift/Hopper-v0", mass=2.0, scale_inertia=False).unwrapped.model
    np.testing.assert_array_equal(model.body_mass, base.body_mass * 2.0)
    np.testing.assert_array_equal(model.body_inertia, base.body_inertia)
    np.testing.assert_allclose(model.body_subtreemass[0], 2.0 * base.body_subtreemass[0])


def test_per_name_maps_touch_only_named_body_and_joint():
    base = nominal("DynShift/Walker2d-v0").model
    env = gym.make("DynShift/Walker2d-v0", mass={"thigh_left": 2.0}, damping={"foot_joint": 3.0}).unwrapped
    model = env.model
    thigh, foot = model.body("thigh_left").id, model.joint("foot_joint").dofadr[0]
    expected_mass = base.body_mass.copy()
    expected_mass[thigh] *= 2.0
    expected_damping = base.dof_damping.copy()
    expected_damping[foot] *= 3.0
    np.testing.assert_array_equal(model.body_mass, expected_mass)
    np.testing.assert_array_equal(model.body_inertia[thigh], base.body_inertia[thigh] * 2.0)
    others = np.arange(model.nbody) != thigh
    np.testing.assert_array_equal(model.body_inertia[others], base.body_inertia[others])
    np.testing.assert_array_equal(model.dof_damping, expected_damping)


def test_free_joint_damping_map_scales_all_six_dofs():
    ant = gym.make("DynShift/Ant-v0", damping={"hip_1": 2.0}).unwrapped
    base = nominal("DynShift/Ant-v0").model
    hip = ant.model.joint("hip_1").dofadr[0]
    changed = np.flatnonzero(ant.model.dof_damping != base.dof_damping)
    assert changed.tolist() == [hip]
    multipliers = ant.editor.dof_multipliers({"root": 3.0})
    assert multipliers[:6].tolist() == [3.0] * 6 and multipliers[6:].tolist() == [1.0] * 8


# ---- crippled Ant legs ------------------------------------------------------------------------


@pytest.mark.parametrize("leg", [0, 1, 2, 3])
def test_crippled_leg_ignores_its_commands_and_others_still_act(leg):
    env = gym.make("DynShift/Ant-v0", crippled_legs=[leg]).unwrapped
    joints = (f"hip_{leg + 1}", f"ankle_{leg + 1}")
    own = [a for a in range(env.model.nu) if env.model.joint(env.model.actuator_trnid[a, 0]).name in joints]
    assert len(own) == 2
    np.testing.assert_array_equal(env.model.actuator_gear[own, 0], 0.0)
    rng = np.random.default_rng(leg)
    action = rng.uniform(-1, 1, 8).astype(np.float32)

    def next_obs(a):
        env.reset(seed=5)
        return env.step(a)

    base_obs, base_reward, *_ = next_obs(action)
    changed = action.copy()
    changed[own] = -changed[own]
    obs, reward, *_ = next_obs(changed)
    np.testing.assert_array_equal(obs, base_obs)  # the crippled leg's commands change nothing
    other = [a for a in range(8) if a not in own]
    changed = action.copy()
    changed[other] = -changed[other]
    obs, _, *_ = next_obs(changed)
    assert np.abs(obs - base_obs).max() > 1e-3  # the other legs still act


def test_crippled_control_cost_sees_commanded_action():
    env = gym.make("DynShift/Ant-v0", crippled_legs=["front_left_leg"])
    env.reset(seed=0)
    action = np.full(8, 0.5, dtype=np.float32)
    _, _, _, _, info = env.step(action)
    assert info["reward_ctrl"] == pytest.approx(-0.5 * np.sum(action**2))


def test_crippled_leg_matches_model_with_zero_gear():
    env = gym.make("DynShift/Ant-v0", crippled_legs=[3]).unwrapped
    reference = reference_model(env, zero_gear_joints=("hip_4", "ankle_4"))
    np.testing.assert_array_equal(env.model.actuator_gear, reference.actuator_gear)
    action = np.random.default_rng(9).uniform(-1, 1, 8)
    ours, theirs = step_both(env, reference, action)
    np.testing.assert_allclose(ours.qpos, theirs.qpos, atol=1e-9, rtol=0)


def test_leg_names_and_numbers_are_the_same_legs():
    by_name = gym.make("DynShift/Ant-v0", crippled_legs=["back_leg", "front_right_leg"]).unwrapped
    by_number = gym.make("DynShift/Ant-v0", crippled_legs=[2, 1]).unwrapped
    np.testing.assert_array_equal(by_name.model.actuator_gear, by_number.model.actuator_gear)
    assert by_name.dynamics.crippled_legs == (1, 2)


def test_crippled_leg_is_red_and_uncrippled_leg_is_not():
    env = gym.make("DynShift/Ant-v0", crippled_legs=[0]).unwrapped
    rgba = env.model.geom_rgba
    left = [env.model.geom(n).id for n in ("aux_1_geom", "left_leg_geom", "left_ankle_geom")]
    np.testing.assert_array_equal(rgba[left], np.tile(CRIPPLED_RGBA.astype(rgba.dtype), (3, 1)))
    assert not np.allclose(rgba[env.model.geom("aux_2_geom").id], [0.9, 0.1, 0.1, 1.0])


# ---- friction and gravity ---------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("shift", [{"friction": 0.5}, {"friction": 2.0}, {"gravity": 0.5}, {"gravity": 1.5},
                                   {"friction": 0.25, "gravity": 1.25, "mass": 1.5}])
def test_friction_and_gravity_step_like_a_recompiled_model(env_id, shift):
    env = gym.make(env_id, **shift).unwrapped
    base = nominal(env_id).model
    k_f, k_g = shift.get("friction", 1.0), shift.get("gravity", 1.0)
    np.testing.assert_array_equal(env.model.geom_friction, base.geom_friction * k_f)
    np.testing.assert_array_equal(env.model.opt.gravity, base.opt.gravity * k_g)
    np.testing.assert_array_equal(env.model.dof_damping, base.dof_damping)
    reference = reference_model(env, **shift)
    np.testing.assert_allclose(env.model.geom_friction, reference.geom_friction, rtol=1e-12)
    np.testing.assert_allclose(env.model.opt.gravity, reference.opt.gravity, rtol=1e-12)
    action = np.random.default_rng(2).uniform(-1, 1, env.action_space.shape)
    for _ in range(3):  # contacts form within a few steps of the reset
        ours, theirs = step_both(env, reference, action)
    np.testing.assert_allclose(ours.qpos, theirs.qpos, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.qvel, theirs.qvel, rtol=0, atol=1e-9)


def test_friction_changes_what_happens_on_the_floor():
    """Not a no-op: a HalfCheetah pushing with the same actions moves differently on ice."""
    def distance(**kwargs):
        env = gym.make("DynShift/HalfCheetah-v0", **kwargs)
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(100):
            env.step(rng.uniform(-1, 1, 6))
        return env.unwrapped.data.qpos[0]

    assert abs(distance(friction=0.05) - distance()) > 0.05


def test_friction_map_and_ranges():
    env = gym.make("DynShift/Hopper-v0", friction={"foot_geom": 0.5}).unwrapped
    base = nominal("DynShift/Hopper-v0").model
    foot = env.model.geom("foot_geom").id
    expected = base.geom_friction.copy()
    expected[foot] *= 0.5
    np.testing.assert_array_equal(env.model.geom_friction, expected)
    ranged = gym.make("DynShift/Hopper-v0", friction=(0.5, 1.5), gravity=(0.8, 1.2))
    seen = set()
    for seed in range(3):
        _, info = ranged.reset(seed=seed)
        model = ranged.unwrapped.model
        k_f, k_g = info["dynamics"]["friction"], info["dynamics"]["gravity"]
        assert 0.5 <= k_f <= 1.5 and 0.8 <= k_g <= 1.2
        np.testing.assert_array_equal(model.geom_friction, base.geom_friction * k_f)
        np.testing.assert_array_equal(model.opt.gravity, base.opt.gravity * k_g)
        seen.add((k_f, k_g))
    assert len(seen) == 3
    again = gym.make("DynShift/Hopper-v0", friction=(0.5, 1.5), gravity=(0.8, 1.2))
    assert again.reset(seed=1)[1]["dynamics"]["friction"] == ranged.reset(seed=1)[1]["dynamics"]["friction"]


@pytest.mark.parametrize("kwargs, message", [
    ({"friction": -1.0}, "friction must be a positive finite number"),
    ({"friction": {"no_such_geom": 2.0}}, "friction: unknown Hopper name(s) ['no_such_geom']; valid names: floor, torso_geom"),
    ({"gravity": 0.0}, "gravity must be a positive finite number"),
    ({"gravity": {"torso": 2.0}}, "gravity must be a number or a (low, high) range"),
    ({"gravity": "strong"}, "gravity must be a positive finite number"),
    ({"friction": (2.0, 1.0)}, "a range needs low <= high"),
])
def test_bad_friction_and_gravity_raise(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        gym.make("DynShift/Hopper-v0", **kwargs)


def test_friction_and_gravity_are_in_info_and_in_the_context_only_when_changed():
    env = gym.make("DynShift/Hopper-v0", gravity=0.5, context_in_obs=True)
    obs, info = env.reset(seed=0)
    assert info["dynamics"]["gravity"] == 0.5 and info["dynamics"]["friction"] == 1.0
    assert env.unwrapped.context_names == ("mass", "damping", "gravity")
    assert obs[-1] == 0.5
    plain = gym.make("DynShift/Hopper-v0", context_in_obs=True).unwrapped
    assert plain.context_names == ("mass", "damping")
    switching = gym.make("DynShift/Hopper-v0", schedule=[{"step": 2, "friction": 0.5}], context_in_obs=True)
    switching.reset(seed=0)
    assert switching.unwrapped.context_names == ("mass", "damping", "friction")
    for _ in range(3):  # steps 0 and 1 run before the switch, step 2 after it
        obs, *_, info = switching.step(np.zeros(3))
    assert info["dynamics"]["friction"] == 0.5 and obs[-1] == 0.5
    np.testing.assert_array_equal(switching.unwrapped.model.geom_friction,
                                  nominal("DynShift/Hopper-v0").model.geom_friction * 0.5)
