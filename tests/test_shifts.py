"""Shifted models hold exactly the physics they claim, checked against models MuJoCo compiled itself."""

from __future__ import annotations

import json
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
    state, action = next(iter(floor_contact_states(env_id).values()))  # a step that starts on the floor
    assert start_contacts(env.model, state)  # friction enters this step
    ours, theirs = step_from(env, state, action), step_from_model(reference, state, action, env.frame_skip)
    np.testing.assert_allclose(ours.qpos, theirs.qpos, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.qvel, theirs.qvel, rtol=0, atol=1e-9)


# ---- contact-true per-geom friction -------------------------------------------------------------

_STATES: dict[str, dict] = {}


def floor_contact_states(env_id: str, steps: int = 400) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For every geom that touches the floor in a random-action run from a reset (seed 0), the first
    state where it does and only floor contacts are active, with the action taken there:
    ``{geom name: (integration state, action)}``. Reached by stepping on from the reset (every robot
    starts in the air)."""
    if env_id not in _STATES:
        env = gym.make(env_id).unwrapped
        env.reset(seed=0)
        model, rng, kind = env.model, np.random.default_rng(0), mujoco.mjtState.mjSTATE_INTEGRATION
        floor, scratch, found = model.geom("floor").id, mujoco.MjData(env.model), {}
        for _ in range(steps):
            copy_state(model, env.data, model, scratch)  # the contacts of the state the next step starts from
            action = rng.uniform(-1, 1, env.action_space.shape)
            pairs = [tuple(c.geom) for c in scratch.contact[:scratch.ncon]]
            if pairs and all(floor in pair for pair in pairs):
                for pair in pairs:
                    name = model.geom(pair[1] if pair[0] == floor else pair[0]).name
                    if name not in found:
                        state = np.empty(mujoco.mj_stateSize(model, kind))
                        mujoco.mj_getState(model, env.data, state, kind)
                        found[name] = (state, action)
            if env.step(action)[2]:
                env.reset(seed=len(found) + 1)
        _STATES[env_id] = found
    return _STATES[env_id]


def start_contacts(model, state) -> list[tuple[str, str]]:
    """The geom-name pairs in contact at ``state`` (those the next step's first substep uses)."""
    data = mujoco.MjData(model)
    mujoco.mj_setState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(model, data)
    return [(model.geom(c.geom[0]).name, model.geom(c.geom[1]).name) for c in data.contact[:data.ncon]]


def step_from(env, state, action):
    """One env step from an integration state."""
    mujoco.mj_setState(env.model, env.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(env.model, env.data)
    env.step(action)
    return env.data


def step_from_model(model, state, action, frame_skip):
    """The same step on a bare model: ``frame_skip`` MuJoCo steps under ``action``."""
    data = mujoco.MjData(model)
    mujoco.mj_setState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(model, data)
    data.ctrl[:] = action
    mujoco.mj_step(model, data, nstep=frame_skip)
    return data


def contact_friction_reference(env_id, state, shifted: dict[str, float]):
    """The nominal model in which every floor contact that involves a shifted geom has ``k ×`` the
    friction MuJoCo gives it nominally (MuJoCo's max rule), made by MuJoCo's priority rule instead of
    explicit pairs: each robot geom that touches a shifted geom on the floor gets a higher priority,
    the larger condim and k × the element-wise larger friction of it and the floor. The contacts
    active at ``state`` are checked to carry exactly those nominal values first, read off MuJoCo.
    Independent of dynshift_envs.contacts."""
    model = copy_model(nominal(env_id).model)
    floor = model.geom("floor").id
    data = mujoco.MjData(model)
    mujoco.mj_setState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(model, data)
    for contact in data.contact[:data.ncon]:  # MuJoCo's own nominal contacts follow the max rule
        robot = contact.geom[1] if contact.geom[0] == floor else contact.geom[0]
        np.testing.assert_array_equal(contact.friction[[0, 2, 3]],
                                      np.maximum(model.geom_friction[robot], model.geom_friction[floor]))
    for robot in range(model.ngeom):
        k = shifted.get(model.geom(robot).name, 1.0) * shifted.get("floor", 1.0)
        if robot == floor or k == 1.0:
            continue
        np.testing.assert_array_equal(model.geom_solref[robot], model.geom_solref[floor])
        np.testing.assert_array_equal(model.geom_solimp[robot], model.geom_solimp[floor])
        model.geom_priority[robot] = 1
        model.geom_condim[robot] = max(model.geom_condim[robot], model.geom_condim[floor])
        model.geom_friction[robot] = k * np.maximum(model.geom_friction[robot], model.geom_friction[floor])
    return model


def copy_model(model):
    import copy
    return copy.deepcopy(model)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_combined_contact_parameters_are_mujocos(env_id):
    """dynshift_envs.contacts.combined gives every contact MuJoCo generates its parameters."""
    from dynshift_envs.contacts import combined

    env = gym.make(env_id).unwrapped
    model, data = env.model, mujoco.MjData(env.model)
    seen = 0
    for state, _ in floor_contact_states(env_id).values():
        mujoco.mj_setState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(model, data)
        for contact in data.contact[:data.ncon]:
            expected = combined(model, *contact.geom)
            assert contact.dim == expected.condim
            np.testing.assert_array_equal(contact.friction, expected.friction)
            np.testing.assert_array_equal(contact.solref, expected.solref)
            np.testing.assert_array_equal(contact.solimp, expected.solimp)
            assert contact.includemargin == expected.margin - expected.gap
            seen += 1
    assert seen > 0


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("k", [0.25, 2.0])
def test_a_geom_friction_shift_scales_exactly_its_contacts(env_id, k):
    """For every geom that touches the floor, and for the floor itself: one step that starts in
    contact under ``friction={geom: k}`` matches the nominal model with that contact's friction set
    to k × what MuJoCo gave it, and differs from the nominal step (no shift is a no-op)."""
    states = floor_contact_states(env_id)
    assert states, "the run found no floor contact"
    cases = [(geom, geom, state, action) for geom, (state, action) in states.items()]
    toucher, (state, action) = next(iter(states.items()))
    cases.append(("floor", toucher, state, action))
    for shifted, toucher, state, action in cases:
        env = gym.make(env_id, friction={shifted: k}).unwrapped
        reference = contact_friction_reference(env_id, state, {shifted: k})
        ours = step_from(env, state, action)
        theirs = step_from_model(reference, state, action, env.frame_skip)
        plain = step_from(nominal(env_id), state, action)
        assert any(toucher in pair and shifted in pair or shifted == toucher and toucher in pair
                   for pair in start_contacts(env.model, state))
        np.testing.assert_allclose(ours.qpos, theirs.qpos, rtol=0, atol=1e-9, err_msg=f"{shifted} x {k}")
        np.testing.assert_allclose(ours.qvel, theirs.qvel, rtol=0, atol=1e-9, err_msg=f"{shifted} x {k}")
        assert not np.array_equal(ours.qvel, plain.qvel), f"friction={{{shifted!r}: {k}}} changed nothing"


def test_the_floor_and_the_foot_are_not_no_ops_where_the_max_rule_would_make_them_so():
    """Hopper's foot (2.0) dominates the floor (1.0) under MuJoCo's max rule: scaling the floor's
    coefficient alone, or the foot's below the floor's, would change nothing. Here the contact's
    friction is what each shift claims, the floor at 0.1 moves as the foot at 0.1 (the foot's one
    contact is with the floor), and the nominal robot, the foot at 0.5 and at 0.1 all move differently."""
    env_id = "DynShift/Hopper-v0"
    state, action = floor_contact_states(env_id)["foot_geom"]
    results = {}
    for shift in ({}, {"floor": 0.1}, {"foot_geom": 0.1}, {"foot_geom": 0.5}):
        env = gym.make(env_id, friction=shift).unwrapped if shift else nominal(env_id)
        data = mujoco.MjData(env.model)
        mujoco.mj_setState(env.model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(env.model, data)
        foot = [c for c in data.contact[:data.ncon] if env.model.geom("foot_geom").id in c.geom]
        results[json.dumps(shift)] = step_from(env, state, action).qvel.copy()
        k = next(iter(shift.values()), 1.0)
        assert foot and foot[0].friction[0] == pytest.approx(2.0 * k)
    assert np.array_equal(results['{"floor": 0.1}'], results['{"foot_geom": 0.1}'])
    assert len({v.tobytes() for v in results.values()}) == 3


def test_a_friction_map_at_one_is_the_nominal_motion():
    """Contacts made explicit with multiplier 1 move exactly as the nominal model (every robot, 300
    random steps)."""
    for env_id in ENV_IDS:
        a, b = gym.make(env_id), gym.make(env_id, friction={"floor": 1.0})
        a.reset(seed=0), b.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(300):
            action = rng.uniform(-1, 1, a.action_space.shape)
            assert np.array_equal(a.step(action)[0], b.step(action)[0])


def test_friction_maps_in_a_schedule_and_on_two_geoms():
    """A map named only in a schedule entry takes effect at its step; two shifted geoms in contact
    multiply (k_floor · k_foot)."""
    env = gym.make("DynShift/Hopper-v0", schedule=[{"step": 1, "friction": {"foot_geom": 0.5}}]).unwrapped
    env.reset(seed=0)
    foot, floor = env.model.geom("foot_geom").id, env.model.geom("floor").id
    pair = int(np.flatnonzero((env.model.pair_geom1 == floor) & (env.model.pair_geom2 == foot))[0])
    assert env.model.pair_friction[pair, 0] == 2.0
    env.step(np.zeros(3)), env.step(np.zeros(3))
    assert env.model.pair_friction[pair, 0] == 1.0
    both = gym.make("DynShift/Hopper-v0", friction={"foot_geom": 0.5, "floor": 0.2}).unwrapped
    pair = int(np.flatnonzero((both.model.pair_geom1 == floor) & (both.model.pair_geom2 == foot))[0])
    assert both.model.pair_friction[pair, 0] == pytest.approx(2.0 * 0.5 * 0.2)


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


# ---- kinematic shifts (joint ranges) ------------------------------------------------------------


def range_reference(env, scales: dict[str, float]):
    """The env's XML recompiled by MuJoCo with the named joints' ranges scaled about their centres."""
    spec = mujoco.MjSpec.from_file(env.fullpath)
    for joint in spec.joints:
        if joint.name in scales:
            low, high = joint.range
            centre, half = (low + high) / 2, (high - low) / 2 * scales[joint.name]
            joint.range = [centre - half, centre + half]
    from dynshift_envs.model import _compile
    return _compile(spec)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_joint_range_is_the_centred_scaled_range_and_steps_like_a_recompiled_model(env_id):
    """For every limited joint of every robot: jnt_range is the nominal range scaled by 0.3 about its
    centre, equal to MuJoCo's own compile of the edited XML; from a state where the restricted
    limits are violated (so the limit constraints act), one step matches the recompiled model and
    differs from the nominal step."""
    base = nominal(env_id)
    limited = [base.model.joint(j).name for j in range(base.model.njnt) if base.model.jnt_limited[j]]
    assert limited
    scales = {name: 0.3 for name in limited}
    env = gym.make(env_id, joint_range=scales).unwrapped
    reference = range_reference(env, scales)
    np.testing.assert_allclose(env.model.jnt_range, reference.jnt_range, rtol=0, atol=1e-12)
    for name in limited:
        low, high = base.model.jnt_range[base.model.joint(name).id]
        np.testing.assert_allclose(env.model.jnt_range[env.model.joint(name).id],
                                   [(low + high) / 2 - 0.3 * (high - low) / 2, (low + high) / 2 + 0.3 * (high - low) / 2])
    state, action = next(iter(floor_contact_states(env_id).values()))
    ours = step_from(env, state, action)
    theirs = step_from_model(reference, state, action, env.frame_skip)
    plain = step_from(base, state, action)
    assert ours.nefc > 0
    np.testing.assert_allclose(ours.qpos, theirs.qpos, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.qvel, theirs.qvel, rtol=0, atol=1e-9)
    assert not np.allclose(ours.qpos, plain.qpos)
    assert gym.make(env_id, joint_range=0.3).unwrapped.model.jnt_range.tolist() == env.model.jnt_range.tolist()


def test_joint_range_in_info_context_schedule_and_ranges():
    env = gym.make("DynShift/Hopper-v0", schedule=[{"step": 1, "joint_range": {"foot_joint": 0.5}}],
                   context_in_obs=True)
    obs, info = env.reset(seed=0)
    names = env.unwrapped.context_names
    assert names[-3:] == ("joint_range:thigh_joint", "joint_range:leg_joint", "joint_range:foot_joint")
    assert info["dynamics"]["joint_range"] == 1.0 and obs[-1] == 1.0
    foot = env.unwrapped.model.joint("foot_joint").id
    for _ in range(2):
        obs, *_, info = env.step(np.zeros(3))
    assert info["dynamics"]["joint_range"] == {"foot_joint": 0.5} and obs[-1] == 0.5
    np.testing.assert_allclose(env.unwrapped.model.jnt_range[foot], [-np.pi / 8, np.pi / 8])
    ranged = gym.make("DynShift/Hopper-v0", joint_range={"thigh_joint": (0.5, 0.9)})
    draws = {ranged.reset(seed=seed)[1]["dynamics"]["joint_range"]["thigh_joint"] for seed in range(3)}
    assert len(draws) == 3 and all(0.5 <= d <= 0.9 for d in draws)


@pytest.mark.parametrize("kwargs, message", [
    ({"joint_range": {"rootz": 0.5}}, "joint_range: unlimited joint 'rootz' of Hopper; the limited joints are: "
                                      "thigh_joint, leg_joint, foot_joint"),
    ({"joint_range": {"knee": 0.5}}, "joint_range: unknown joint 'knee' of Hopper; the limited joints are: thigh_joint"),
    ({"joint_range": {"foot_joint": 0.0}}, "joint_range['foot_joint'] must be a positive finite number"),
    ({"joint_range": -0.5}, "joint_range must be a positive finite number"),
    ({"schedule": [{"step": 3, "joint_range": {"root": 0.5}}]}, "unknown joint 'root' of Hopper"),
])
def test_bad_joint_ranges_raise(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        gym.make("DynShift/Hopper-v0", **kwargs)
