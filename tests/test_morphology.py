"""Big and small HalfCheetah: generated files, shape, mass, warning-free simulation."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from dynshift_envs import morphology

ASSETS = Path(__file__).resolve().parents[1] / "assets"
LEG_GEOMS = morphology.LEG_BODIES  # each leg body has one geom of the same name


@pytest.mark.parametrize("name", ["big", "small"])
def test_committed_xml_equals_generator_output(name):
    assert (ASSETS / f"half_cheetah_{name}.xml").read_text() == morphology.generate(name)
    assert morphology.asset_path(name).read_text() == morphology.generate(name)  # the installed copy


@pytest.mark.parametrize("name, scale", [("big", 1.25), ("small", 0.75)])
def test_shape_change_and_total_mass(name, scale):
    base = gym.make("DynShift/HalfCheetah-v0").unwrapped.model
    model = gym.make("DynShift/HalfCheetah-v0", morphology=name).unwrapped.model
    assert model.body_mass[1:].sum() == pytest.approx(14.0, rel=1e-12)
    for geom in LEG_GEOMS:
        np.testing.assert_allclose(model.geom(geom).size[:2], base.geom(geom).size[:2] * scale, rtol=1e-12)
        np.testing.assert_allclose(model.geom(geom).pos, base.geom(geom).pos * scale, rtol=1e-12)
    for geom in ("torso", "head"):
        np.testing.assert_array_equal(model.geom(geom).size, base.geom(geom).size)
    for body in ("bshin", "bfoot", "fshin", "ffoot"):
        np.testing.assert_allclose(model.body(body).pos, base.body(body).pos * scale, rtol=1e-12)
    for body in ("bthigh", "fthigh"):  # hips stay on the torso
        np.testing.assert_array_equal(model.body(body).pos, base.body(body).pos)
    # same joints, actuators and observation layout as the nominal robot
    assert (model.nq, model.nv, model.nu) == (base.nq, base.nv, base.nu)
    np.testing.assert_array_equal(model.dof_damping, base.dof_damping)
    # the torso starts at the height that keeps the nominal foot clearance
    assert morphology._lowest_leg_point(model) == pytest.approx(morphology._lowest_leg_point(base), abs=1e-12)


@pytest.mark.parametrize("name", ["big", "small"])
def test_compiles_and_simulates_a_second_without_warnings(name, capfd):
    capfd.readouterr()
    model = mujoco.MjModel.from_xml_path(str(morphology.asset_path(name)))
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    for _ in range(int(1.0 / model.opt.timestep)):
        data.ctrl[:] = rng.uniform(-1, 1, model.nu)
        mujoco.mj_step(model, data)
    assert [w.number for w in data.warning] == [0] * len(data.warning)
    assert np.all(np.isfinite(data.qpos))
    env = gym.make("DynShift/HalfCheetah-v0", morphology=name)
    env.reset(seed=0)
    for _ in range(20):
        env.step(env.action_space.sample())
    assert "WARNING" not in capfd.readouterr().err


def test_morphology_is_recorded_and_combines_with_mass():
    env = gym.make("DynShift/HalfCheetah-v0", morphology="small", mass=2.0)
    _, info = env.reset(seed=0)
    assert info["dynamics"]["morphology"] == "small"
    assert env.unwrapped.model.body_mass[1:].sum() == pytest.approx(28.0, rel=1e-12)


# ---- every robot: morphologies built with MjSpec at construction ---------------------------------

from dynshift_envs import ENV_IDS  # noqa: E402


def _scaled_bodies(env_id, morphology):
    """Body ids that a morphology scales, with their factor."""
    env = gym.make(env_id).unwrapped
    model = env.model
    if isinstance(morphology, dict):
        return {model.body(name).id: k for name, k in morphology.items()}
    k = morphology_module_scale(morphology)
    roots = [model.body(name).id for name in type(env).limb_roots]
    inside = {}
    for body in range(1, model.nbody):
        parent, chain = body, []
        while parent > 0:
            chain.append(parent)
            parent = model.body_parentid[parent]
        if any(root in chain for root in roots):
            inside[body] = k
    return inside


def morphology_module_scale(name):
    return morphology.LIMB_SCALES[name]


CASES = [(env_id, m) for env_id in ENV_IDS if env_id != "DynShift/HalfCheetah-v0" for m in ("big", "small")] + [
    ("DynShift/Hopper-v0", {"thigh": 1.5}), ("DynShift/Walker2d-v0", {"torso": 0.8, "foot_left": 1.3}),
    ("DynShift/Ant-v0", {"torso": 1.2, "aux_2": 0.6}), ("DynShift/HalfCheetah-v0", {"bshin": 1.4, "torso": 0.9}),
]


@pytest.mark.parametrize("env_id, shape", CASES, ids=lambda v: str(v))
def test_every_robot_morphology_keeps_mass_changes_geometry_and_simulates_cleanly(env_id, shape, capfd):
    """Total mass equals the nominal; each scaled body's geoms have sizes × k; its child bodies hang
    k times as far from its anchor; unscaled bodies keep their geoms; the robot starts with the
    nominal clearance under its lowest point; 1 000 random steps run with no MuJoCo warning."""
    base = gym.make(env_id).unwrapped.model
    env = gym.make(env_id, morphology=shape)
    model = env.unwrapped.model
    assert model.body_mass.sum() == pytest.approx(base.body_mass.sum(), rel=1e-12)
    assert (model.nq, model.nv, model.nu, model.ngeom) == (base.nq, base.nv, base.nu, base.ngeom)
    scaled = _scaled_bodies(env_id, shape)
    assert scaled
    for body in range(1, model.nbody):
        k = scaled.get(body, 1.0)
        for geom in np.flatnonzero(base.geom_bodyid == body):
            np.testing.assert_allclose(model.geom_size[geom], base.geom_size[geom] * k, rtol=1e-12)
        hinge = [j for j in np.flatnonzero(base.jnt_bodyid == body) if base.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
        anchor = base.jnt_pos[hinge[0]] if hinge else np.zeros(3)
        for child in np.flatnonzero(base.body_parentid == body):
            if child != body:
                np.testing.assert_allclose(model.body_pos[child] - anchor, (base.body_pos[child] - anchor) * k,
                                           rtol=1e-9, atol=1e-12)
    assert morphology._lowest_point(model) == pytest.approx(morphology._lowest_point(base), abs=1e-9)
    capfd.readouterr()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        if any(env.step(rng.uniform(-1, 1, env.action_space.shape))[2:4]):
            env.reset()
        assert [w.number for w in env.unwrapped.data.warning] == [0] * len(env.unwrapped.data.warning)
    assert np.all(np.isfinite(env.unwrapped.data.qpos))
    assert "WARNING" not in capfd.readouterr().err


def test_spec_built_cheetah_legs_equal_the_generated_files():
    """HalfCheetah's committed big legs and the same scale given as a body map (built with MjSpec at
    construction) are the same robot."""
    files = gym.make("DynShift/HalfCheetah-v0", morphology="big").unwrapped.model
    spec = gym.make("DynShift/HalfCheetah-v0", morphology={b: 1.25 for b in LEG_GEOMS}).unwrapped.model
    for array in ("geom_size", "geom_pos", "body_pos", "jnt_pos", "body_mass", "body_inertia", "qpos0"):
        np.testing.assert_allclose(getattr(spec, array), getattr(files, array), rtol=1e-9, atol=1e-12, err_msg=array)


@pytest.mark.parametrize("kwargs, message", [
    ({"morphology": "huge"}, "unknown morphology 'huge'; known: default, big, small, or a {body: scale} map"),
    ({"morphology": {"wing": 1.2}}, "morphology: unknown Hopper body name(s) ['wing']; valid names: torso, thigh"),
    ({"morphology": {"thigh": 0.0}}, "morphology['thigh'] must be a positive finite number"),
    ({"morphology": {"thigh": (0.5, 1.0)}}, "morphology['thigh'] must be a positive finite number"),
    ({"schedule": [{"step": 3, "morphology": "big"}]}, "morphology cannot change mid-episode"),
])
def test_bad_morphologies_raise(kwargs, message):
    import re
    with pytest.raises(ValueError, match=re.escape(message)):
        gym.make("DynShift/Hopper-v0", **kwargs)
